import Testing
import Training

struct TrainingErrorTests {
    @Test func messagesSayWhereAndWhatWasExpected() {
        #expect(TrainingError.badExample(file: "d.jsonl", line: 3, reason: "not JSON").description == "d.jsonl:3: not JSON")
        #expect(TrainingError.badSetting(name: "--lr", value: "-1", expected: "a positive number").description
                == "--lr -1: expected a positive number")
    }
}
