// The BPE merge loop on tiny hand-made vocabularies (ids: bytes 0-255 are ids 0-255, extras follow),
// and the priority-queue loop against the plain quadratic reference on random words.
import Kernels
import Testing
@testable import Tokenizer

@Suite("BPE")
struct BPETests {
    @Test("merges apply lowest rank first, whatever their position")
    func rankOrder() throws {
        // "ab" = 256, "bc" = 257, "abc" = 258
        let t1 = try tinyTokenizer(extra: ["ab", "bc", "abc"], merges: ["a b", "b c", "ab c"])
        #expect(t1.encode("abc") == [258])  // a+b (rank 0), then ab+c (rank 2)
        let t2 = try tinyTokenizer(extra: ["ab", "bc", "abc"], merges: ["b c", "a b", "ab c"])
        #expect(t2.encode("abc") == [97, 257])  // b+c first (rank 0); "a bc" has no rank
    }

    @Test("on equal rank the leftmost pair merges first")
    func leftmostOnTies() throws {
        let t = try tinyTokenizer(extra: ["aa", "aaa"], merges: ["a a", "aa a"])  // aa = 256, aaa = 257
        // Leftmost first gives "aa" + "a", and then "aa a" (rank 1) applies: one token. (Rightmost first
        // would give "a" + "aa", which has no merge.)
        #expect(t.encode("aaa") == [257])
        #expect(t.encode("aaaa") == [256, 256])    // (a a)(a a): both rank 0, no "aa aa" merge
        let u = try tinyTokenizer(extra: ["aa"], merges: ["a a"])
        #expect(u.encode("aaa") == [256, 97])     // leftmost pair merges, the last a stays
    }

    @Test("a merged symbol that is no token falls back to its bytes")
    func nonTokenSymbol() throws {
        // "xy" is in the merges but not a token; "xyz" is (256).
        let t = try tinyTokenizer(extra: ["xyz"], merges: ["x y", "xy z"])
        #expect(t.encode("xyz") == [256])
        #expect(t.encode("xy") == [120, 121])
    }

    @Test("bytes without a token are dropped, alone or inside a merged symbol")
    func droppedBytes() throws {
        // Byte 4 has no token; ids shift down by one above it.
        let t = try tinyTokenizer(merges: ["x \u{04}"], dropBytes: [4])
        #expect(t.encode("a\u{04}b") == [96, 97])
        #expect(t.encode("\u{04}").isEmpty)
        #expect(t.encode("x\u{04}") == [119])  // merged "x\u{04}" is no token: x, then the dropped byte
    }

    @Test("malformed merges are ignored, and the first of two equal merges keeps its rank")
    func malformedMerges() throws {
        let bad = try Tokenizer(configuration: TokenizerConfiguration(
            tokens: ByteEncoding.stringForByte + ["ab"], merges: ["ab", " ab", "a ", "a b"]))
        #expect(bad.encode("ab") == [256])
        // "b c" appears at ranks 0 and 2; with rank 0 it beats "a b" (rank 1).
        let dup = try tinyTokenizer(extra: ["ab", "bc"], merges: ["b c", "a b", "b c"])
        #expect(dup.encode("abc") == [97, 257])
    }

    @Test("the queue-based loop equals the plain reference on random words (tiny vocabulary)")
    func fastEqualsReferenceTiny() throws {
        var rng = SplitMix64(seed: 1)
        let letters: [Character] = ["a", "b", "c"]
        var extra: [String] = [], merges: [String] = []
        var known: [String] = letters.map(String.init)
        var seen = Set(known)
        while merges.count < 40 {
            let l = known[Int(rng.next() % UInt64(known.count))], r = known[Int(rng.next() % UInt64(known.count))]
            guard (l + r).count <= 6, !seen.contains(l + r) else { continue }
            seen.insert(l + r)
            merges.append("\(l) \(r)")
            known.append(l + r)
            if rng.next() % 4 != 0 { extra.append(l + r) }  // some merge results are not tokens
        }
        let t = try tinyTokenizer(extra: extra, merges: merges)
        for _ in 0..<2000 {
            let word = Array((0..<(1 + Int(rng.next() % 30))).map { _ in letters[Int(rng.next() % 3)] }.map { UInt8($0.asciiValue!) })
            #expect(t.bpeFast(word) == t.bpeReference(word), "\(String(decoding: word, as: UTF8.self))")
        }
        // Words past BPE.bucketThreshold take the rank-bucket queue: on three letters nearly every
        // merge queues pairs out of position order into buckets that already hold entries.
        for _ in 0..<20 {
            let length = BPE.bucketThreshold + Int(rng.next() % 1000)
            let word = (0..<length).map { _ in UInt8(letters[Int(rng.next() % 3)].asciiValue!) }
            #expect(t.bpeFast(word) == t.bpeReference(word), "a \(length)-letter word")
        }
    }

    @Test("the queue-based loop equals the plain reference on the real vocabulary")
    func fastEqualsReferenceReal() throws {
        let t = try RealModel.tokenizer()
        var rng = SplitMix64(seed: 2)
        let fixture = try GoldenFixture.load()
        var checked = 0
        for c in fixture.cases {
            for piece in t.preTokenize(c.text) {
                let bytes = Array(piece.utf8)
                #expect(t.bpeFast(bytes) == t.bpeReference(bytes), "\(piece.debugDescription)")
                checked += 1
            }
        }
        for _ in 0..<500 {  // random bytes, invalid UTF-8 included
            let bytes = (0..<(1 + Int(rng.next() % 20))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            #expect(t.bpeFast(bytes) == t.bpeReference(bytes), "\(bytes)")
        }
        #expect(checked > 1000)
    }

    @Test("the queue-based loop equals the plain reference on long pathological pieces")
    func fastEqualsReferenceLong() throws {
        // Long pieces (past BPE.bucketThreshold: the rank-bucket queue) queue thousands of candidates,
        // most of them going stale, and runs of one character tie on rank at every position: what
        // the staleness rule and the leftmost-first order must get right. 1500-3000 bytes keeps the
        // quadratic reference quick.
        let t = try RealModel.tokenizer()
        var rng = SplitMix64(seed: 3)
        func random(_ alphabet: String, _ n: Int) -> [UInt8] {
            let a = Array(alphabet.utf8)
            return (0..<n).map { _ in a[Int(rng.next() % UInt64(a.count))] }
        }
        let pieces: [(String, [UInt8])] = [
            ("a-run", Array(repeating: UInt8(ascii: "a"), count: 3001)),
            ("space-run", Array(repeating: 0x20, count: 2999)),
            ("newline-run", Array(repeating: 0x0A, count: 1500)),
            ("ab-run", Array(String(repeating: "ab", count: 1200).utf8)),
            ("abc-run", Array(String(repeating: "abc", count: 700).utf8)),
            ("letters", random("abcdefghijklmnopqrstuvwxyz", 3000)),
            ("few-letters", random("aeinst", 3000)),
            ("punctuation", random("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", 2500)),
            ("dashes-equals", random("-=", 2000)),
            ("digits", random("0123456789", 2000)),
        ]
        for (name, bytes) in pieces {
            #expect(t.bpeFast(bytes) == t.bpeReference(bytes), "\(name)")
        }
    }

    @Test("the rank-bucket queue takes candidates in the heap's order under random pushes and pops")
    func bucketsEqualHeap() {
        // Few ranks and positions, so buckets get pushes in and out of position order, below and
        // above what was taken, and empty and refill.
        var rng = SplitMix64(seed: 4)
        for round in 0..<50 {
            let ranks = 1 + round % 7 * 20, positions = 1 + round % 5 * 40
            var heap = MergeQueue()
            var buckets = RankBuckets(rankCount: ranks)
            var pending = Set<UInt64>()  // no (rank, position) twice, as in BPE
            for _ in 0..<2000 {
                if rng.next() % 3 != 0 {
                    let rank = Int(rng.next() % UInt64(ranks)), position = Int32(rng.next() % UInt64(positions))
                    let key = UInt64(rank) << 32 | UInt64(position)
                    guard pending.insert(key).inserted else { continue }
                    heap.push(key)
                    buckets.push(position, rank: rank)
                } else {
                    var taken: UInt64?
                    while let rank = buckets.lowestRank() {
                        if let position = buckets.popLeftmost(rank: rank) {
                            taken = UInt64(rank) << 32 | UInt64(position)
                            break
                        }
                    }
                    let expected = heap.pop()
                    #expect(taken == expected)
                    if let expected { pending.remove(expected) }
                }
            }
        }
    }
}
