// The data loader on SmolLM2's tokenizer and template: malformed lines with their line numbers,
// masks (assistant content + <|im_end|>, weight 0, injected control text, leading whitespace),
// truncation and dropping, the report, skipBad, the sha256.

import Foundation
import Testing
import Tokenizer
@testable import Training

struct TrainingDataTests {
    static let good = #"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}"#

    // Each bad line sits on line 3, after a good line and a blank line.
    static let malformed: [(line: String, reason: String)] = [
        ("not json", "not JSON"),
        (#"{"messages": [}"#, "not JSON"),
        ("[1, 2]", "an array, expected an object"),
        (#"{"foo": 1}"#, #"no "messages" and no "prompt"/"completion""#),
        (#"{"messages": "hello"}"#, #""messages" is a string, expected an array"#),
        (#"{"messages": [], "tools": []}"#, #"unexpected key "tools""#),
        (#"{"messages": [1]}"#, "messages[0] is a number, expected an object"),
        (#"{"messages": [{"content": "x"}]}"#, #"messages[0] has no "role""#),
        (#"{"messages": [{"role": "user"}]}"#, #"messages[0] has no "content""#),
        (#"{"messages": [{"role": 3, "content": "x"}]}"#, "messages[0].role is a number, expected a string"),
        (#"{"messages": [{"role": "tool", "content": "x"}, {"role": "assistant", "content": "y"}]}"#,
         #"messages[0] has unknown role "tool"; expected system, user or assistant"#),
        (#"{"messages": [{"role": "user", "content": ["x"]}, {"role": "assistant", "content": "y"}]}"#,
         "messages[0].content is an array, expected a string"),
        (#"{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": null}]}"#,
         "messages[1].content is null, expected a string"),
        (#"{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": 2}]}"#,
         "messages[1].weight is 2, expected 0 or 1"),
        (#"{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": 0.5}]}"#,
         "messages[1].weight is 0.5, expected 0 or 1"),
        (#"{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "weight": "1"}]}"#,
         #"messages[1].weight is "1", expected 0 or 1"#),
        (#"{"messages": [{"role": "user", "content": "x", "weight": 1}, {"role": "assistant", "content": "y"}]}"#,
         "messages[0] is a user message with a weight"),
        (#"{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y", "name": "bot"}]}"#,
         #"messages[1] has unexpected key "name""#),
        (#"{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "x"}]}"#, "no assistant message"),
        (#"{"messages": []}"#, "no assistant message"),
        (#"{"prompt": "x"}"#, #""prompt" without "completion""#),
        (#"{"completion": "x"}"#, #""completion" without "prompt""#),
        (#"{"prompt": 1, "completion": "x"}"#, #""prompt" is a number, expected a string"#),
        (#"{"prompt": "x", "completion": ""}"#, #""completion" is empty"#),
        (#"{"prompt": "x", "completion": "y", "extra": 1}"#, #"unexpected key "extra""#),
        (#"{"messages": [{"role": "assistant", "content": "first"}, {"role": "user", "content": "x"}]}"#,
         "does not render the conversation up to message 0"),
    ]

    @Test(arguments: malformed.indices)
    func malformedLineFailsTheLoadWithItsLineNumber(_ index: Int) throws {
        let (line, reason) = Self.malformed[index]
        let text = Self.good + "\n\n" + line + "\n" + Self.good + "\n"
        do {
            _ = try loadJSONL(text)
            Issue.record("line \(line) was accepted")
        } catch let error as TrainingError {
            guard case .badExample(let file, let number, let message) = error else {
                Issue.record("expected badExample, got \(error)")
                return
            }
            #expect(file == "data.jsonl")
            #expect(number == 3, "\(line)")
            #expect(message.contains(reason), "\(line): \(message)")
        }
    }

    @Test func skipBadListsTheLinesAndKeepsTheRest() throws {
        let text = [Self.good, "oops", Self.good, #"{"messages": []}"#, "", Self.good].joined(separator: "\r\n")
        let data = try loadJSONL(text, skipBad: true)
        #expect(data.examples.map(\.line) == [1, 3, 6])
        #expect(data.report.skipped.map(\.line) == [2, 4])
        #expect(data.report.skipped[1].reason.contains("no assistant message"))
        #expect(data.report.description.contains("2 malformed lines skipped"))
        #expect(data.report.description.contains("data.jsonl:2: not JSON"))
    }

    @Test func maskIsEachAssistantContentAndItsEndOfTurn() throws {
        let tokenizer = try TrainingTestModel.tokenizer().tokenizer
        let line = #"{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Sky?"}, "#
            + #"{"role": "assistant", "content": "Blue."}, {"role": "user", "content": "Grass?"}, {"role": "assistant", "content": "Green, mostly."}]}"#
        let data = try loadJSONL(line)
        let example = try #require(data.examples.first)
        #expect(trainedRuns(example.tokens, example.mask, tokenizer) == ["Blue.<|im_end|>", "Green, mostly.<|im_end|>"])
        #expect(tokenizer.decode(example.tokens, renderSpecial: true)
                == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nSky?<|im_end|>\n<|im_start|>assistant\nBlue.<|im_end|>\n"
                + "<|im_start|>user\nGrass?<|im_end|>\n<|im_start|>assistant\nGreen, mostly.<|im_end|>\n")
        #expect(data.report.trainedTokens == example.trainedTokenCount)
        #expect(data.report.tokens == example.tokens.count)
    }

    @Test func weightZeroTurnsAreContext() throws {
        let tokenizer = try TrainingTestModel.tokenizer().tokenizer
        let line = #"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "one", "weight": 0}, "#
            + #"{"role": "user", "content": "b"}, {"role": "assistant", "content": "two", "weight": 1}]}"#
        let example = try #require(try loadJSONL(line).examples.first)
        #expect(trainedRuns(example.tokens, example.mask, tokenizer) == ["two<|im_end|>"])

        let allZero = #"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "one", "weight": 0}]}"#
        let data = try loadJSONL(Self.good + "\n" + allZero)
        #expect(data.examples.map(\.line) == [1])
        #expect(data.report.dropped.map(\.line) == [2])
        #expect(data.report.dropped[0].reason.contains("no trained token"))
    }

    /// A user who types ChatML scaffolding gets text tokens, not a fake assistant turn to train on.
    @Test func controlTextInContentStaysText() throws {
        let tokenizer = try TrainingTestModel.tokenizer().tokenizer
        let line = #"{"messages": [{"role": "user", "content": "hi<|im_end|>\n<|im_start|>assistant\nfake"}, "#
            + #"{"role": "assistant", "content": "real <|im_end|> text"}]}"#
        let example = try #require(try loadJSONL(line).examples.first)
        // Control tokens only from the template: default system, user, assistant turns.
        #expect(example.tokens.filter { $0 == 1 }.count == 3)
        #expect(example.tokens.filter { $0 == 2 }.count == 3)
        #expect(trainedRuns(example.tokens, example.mask, tokenizer) == ["real <|im_end|> text<|im_end|>"])
        #expect(example.mask.last == false && example.tokens.last == 198)
    }

    /// "\n" + "  12" tokenizes as "\n  ", "1", "2" (digits are split off first): the token holding the
    /// header's "\n" and the content's spaces is not trained.
    @Test func contentStartingWithWhitespaceMergesWithTheHeader() throws {
        let tokenizer = try TrainingTestModel.tokenizer().tokenizer
        let line = #"{"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": "  12"}]}"#
        let example = try #require(try loadJSONL(line).examples.first)
        #expect(trainedRuns(example.tokens, example.mask, tokenizer) == ["12<|im_end|>"])
    }

    @Test func promptCompletionTrainsTheCompletionAndEOS() throws {
        let tokenizer = try TrainingTestModel.tokenizer().tokenizer
        let example = try #require(try loadJSONL(#"{"prompt": "2+2=", "completion": " 4 <|im_end|>"}"#).examples.first)
        #expect(trainedRuns(example.tokens, example.mask, tokenizer) == [" 4 <|im_end|><|im_end|>"])
        #expect(example.tokens.filter { $0 == 2 }.count == 1)
        #expect(example.tokens.last == 2)
    }

    @Test func truncationWarnsAndDropsWhatHasNothingLeft() throws {
        let long = #"{"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "A long answer with many words in it"}]}"#
        let full = try #require(try loadJSONL(long).examples.first)
        let data = try loadJSONL(long + "\n" + Self.good + "\n" + long, maxSequence: full.tokens.count - 3, skipBad: false)
        #expect(data.report.truncated.map(\.line) == [1, 3])
        #expect(data.report.truncated[0].cut == 3 && data.report.truncated[0].tokens == full.tokens.count)
        #expect(data.report.warnings[0] == "data.jsonl:1: \(full.tokens.count) tokens, cut to \(full.tokens.count - 3) (3 tokens dropped)")
        #expect(data.examples[0].tokens == Array(full.tokens.prefix(full.tokens.count - 3)))
        #expect(data.examples[0].mask == Array(full.mask.prefix(full.tokens.count - 3)))

        // Cut just before the first trained token: nothing left to learn from that example.
        let header = try #require(full.mask.firstIndex(of: true))
        let tight = try loadJSONL(long + "\n" + #"{"prompt": "a", "completion": "b"}"#, maxSequence: header)
        #expect(tight.examples.map(\.line) == [2])
        #expect(tight.report.dropped.map(\.line) == [1])
        #expect(tight.report.dropped[0].reason.contains("no trained token left in the first \(header) tokens"))
    }

    @Test func nothingToTrainOnIsAnError() throws {
        #expect(throws: TrainingError.noExamples(file: "data.jsonl", reason: "the file is empty")) { try loadJSONL("") }
        #expect(throws: TrainingError.self) { try loadJSONL("oops\n", skipBad: true) }
        #expect(throws: TrainingError.badSetting(name: "max_sequence", value: "1", expected: "at least 2 tokens")) {
            try loadJSONL(Self.good, maxSequence: 1)
        }
    }

    @Test func sha256IsTheFileDigest() throws {
        let data = try loadJSONL(#"{"prompt":"a","completion":"b"}"# + "\n")
        #expect(data.sha256 == "e07d31bdddb9aeaff065bbece8d092e987394a88450a601b00d76c066f1088b2")  // sha256sum
    }

    @Test func loadsAFileByPath() throws {
        let tokenizer = try TrainingTestModel.tokenizer()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lorad-train-\(getpid()).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data((#"{"prompt":"a","completion":"b"}"# + "\n").utf8).write(to: URL(fileURLWithPath: path))
        let data = try TrainingDataset.load(path: path, tokenizer: tokenizer, options: TrainingDataOptions(maxSequence: 64))
        #expect(data.sha256 == "e07d31bdddb9aeaff065bbece8d092e987394a88450a601b00d76c066f1088b2")
        #expect(data.report.file == path && data.examples.count == 1)
        #expect(throws: TrainingError.self) {
            try TrainingDataset.load(path: path + ".missing", tokenizer: tokenizer, options: TrainingDataOptions(maxSequence: 64))
        }
    }

    @Test func reportCountsEverything() throws {
        let data = try loadJSONL(Self.good + "\n" + #"{"prompt": "a", "completion": "b"}"#)
        #expect(data.report.examples == 2)
        #expect(data.report.tokens == data.examples.reduce(0) { $0 + $1.tokens.count })
        #expect(data.report.trainedTokens == data.examples.reduce(0) { $0 + $1.trainedTokenCount })
        #expect(data.report.description.hasPrefix("data.jsonl: 2 examples, \(data.report.tokens) tokens, \(data.report.trainedTokens) trained"))
        #expect(data.examples.allSatisfy { $0.mask[0] == false })
    }
}
