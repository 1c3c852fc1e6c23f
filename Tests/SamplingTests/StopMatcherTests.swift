// Stop strings over streamed chunks, against hand-worked cases and a plain reference, and the
// finish-reason logic of GenerationLimits.

import Testing
@testable import Sampling

struct StopMatcherTests {
    /// Feeds `chunks`, then flushes if nothing matched; returns the pieces sent and the stop.
    static func run(_ stops: [String], _ chunks: [String]) -> (pieces: [String], stop: String?) {
        var m = StopMatcher(stopStrings: stops)
        var pieces: [String] = []
        for chunk in chunks {
            let out = m.feed(chunk)
            pieces.append(out.text)
            if let s = out.stoppedBy { return (pieces, s) }
        }
        pieces.append(m.flush())
        return (pieces, nil)
    }

    @Test func stopSpanningChunksIsCut() {
        let r = Self.run(["</s>"], ["Hello <", "/", "s> world"])
        #expect(r.pieces == ["Hello ", "", ""])
        #expect(r.stop == "</s>")
    }

    @Test func partialPrefixThatIsNotAStopIsReleased() {
        let r = Self.run(["STOP"], ["ab ST", "ART", " now"])
        #expect(r.pieces == ["ab ", "START", " now", ""])
        #expect(r.stop == nil)
    }

    @Test func heldTextIsReleasedAtFlush() {
        let r = Self.run(["END"], ["the EN"])
        #expect(r.pieces == ["the ", "EN"])
        #expect(r.stop == nil)
    }

    @Test func multipleStopStrings() {
        // "\n" could start "\n\n", then "User" could start "User:", which matches.
        let r = Self.run(["\n\n", "User:"], ["Hi\n", "User", ": x"])
        #expect(r.pieces == ["Hi", "\n", ""])
        #expect(r.stop == "User:")
        #expect(Self.run(["\n\n", "User:"], ["Hi\n", "\nUser: x"]).pieces == ["Hi", ""])
    }

    @Test func stopAtTheVeryStart() {
        var m = StopMatcher(stopStrings: ["###"])
        #expect(m.feed("###") == StopMatcher.Output(text: "", stoppedBy: "###"))
        #expect(m.isFinished)
        #expect(m.feed("more") == StopMatcher.Output(text: ""))
        #expect(m.flush() == "")
    }

    @Test func overlappingPrefixes() {
        // "ab" is a prefix of "abc": both match at the same start, output is the same either way;
        // the first listed is reported (llama-server's rule).
        #expect(Self.run(["abc", "ab"], ["xa", "bc"]) == (["x", ""], "abc"))
        #expect(Self.run(["ab", "abc"], ["xa", "bc"]) == (["x", ""], "ab"))
        // "ab" completes before "abc" could: stop as soon as any stop string is complete.
        #expect(Self.run(["abc", "ab"], ["xa", "b", "c"]) == (["x", ""], "ab"))
        // Earliest start wins within one chunk...
        #expect(Self.run(["bc", "abcd"], ["abcd"]) == ([""], "abcd"))
        // ...but a stop string complete after an earlier chunk ends the output there.
        #expect(Self.run(["bc", "abcd"], ["a", "bc", "d"]) == (["", "a"], "bc"))
        // The longest possible start is held back: "aab" could become "aabx".
        #expect(Self.run(["aabx", "abz"], ["caab", "y"]) == (["c", "aaby", ""], nil))
    }

    @Test func textBeforeAndAfterAMatchInOneChunk() {
        #expect(Self.run(["<|end|>"], ["done.<|end|> trailing"]) == (["done."], "<|end|>"))
    }

    @Test func noStopStringsPassesEverythingThrough() {
        #expect(Self.run([], ["a", "b<", ""]) == (["a", "b<", "", ""], nil))
        #expect(Self.run([""], ["x"]) == (["x", ""], nil))      // empty stops are ignored
    }

    @Test func multiByteCharactersAreNeverSplit() {
        #expect(Self.run(["é!"], ["caf", "é", "!"]) == (["caf", "", ""], "é!"))
        #expect(Self.run(["é!"], ["café", " ok"]) == (["caf", "é ok", ""], nil))
        #expect(Self.run(["🙂x"], ["a🙂", "🙂", "x"]) == (["a", "🙂", ""], "🙂x"))
    }

    /// Plain reference: after each chunk, if the text so far contains a stop string, the output is
    /// the text before the earliest occurrence; otherwise everything, at the end.
    static func reference(_ stops: [String], _ chunks: [String]) -> (String, String?) {
        var text: [UInt8] = []
        for chunk in chunks {
            text += Array(chunk.utf8)
            var best: (Int, String)?
            for s in stops {
                let b = Array(s.utf8)
                guard b.count <= text.count else { continue }
                for start in 0...(text.count - b.count) where Array(text[start..<start + b.count]) == b {
                    if best == nil || start < best!.0 { best = (start, s) }
                    break
                }
            }
            if let best { return (String(decoding: text[..<best.0], as: UTF8.self), best.1) }
        }
        return (String(decoding: text, as: UTF8.self), nil)
    }

    @Test func randomStreamsMatchTheReference() {
        // Small alphabet so prefixes overlap constantly; random chunkings of random texts.
        var g = SamplerRandom(seed: 5)
        let alphabet = Array("abc")
        func word(_ n: Int) -> String { String((0..<n).map { _ in alphabet[Int(g.next() % 3)] }) }
        for _ in 0..<3000 {
            let stops = (0..<Int(g.next() % 3) + 1).map { _ in word(Int(g.next() % 4) + 1) }
            let text = word(Int(g.next() % 16))
            var chunks: [String] = []
            var rest = Substring(text)
            while !rest.isEmpty {
                let n = Int(g.next() % 4)    // empty chunks too
                chunks.append(String(rest.prefix(n)))
                rest = rest.dropFirst(n)
            }
            let (pieces, stop) = Self.run(stops, chunks)
            let (expected, expectedStop) = Self.reference(stops, chunks)
            #expect(pieces.joined() == expected, "stops \(stops) chunks \(chunks)")
            // Which stop is reported may differ only between stops that match at the same place.
            #expect((stop == nil) == (expectedStop == nil), "stops \(stops) chunks \(chunks)")
        }
    }

    @Test func finishReasons() {
        let limits = GenerationLimits(maxTokens: 3, endOfGenerationTokens: [0, 2, 4])
        #expect(limits.finishReason(after: 10, generatedCount: 1) == nil)
        #expect(limits.finishReason(after: 10, generatedCount: 3) == .length)
        #expect(limits.finishReason(after: 2, generatedCount: 1) == .stop)
        #expect(limits.finishReason(after: 4, generatedCount: 3) == .stop)   // EOG wins at the cap
        let unlimited = GenerationLimits(SamplingParameters(), endOfGenerationTokens: [0])
        #expect(unlimited.finishReason(after: 5, generatedCount: 1_000_000) == nil)
        #expect(unlimited.isEndOfGeneration(0) && !unlimited.isEndOfGeneration(5))
        #expect(FinishReason.stop.rawValue == "stop" && FinishReason.length.rawValue == "length")
    }
}
