// The real model's tokenizer and chat template for the data tests (LORAD_TEST_MODEL: a missing model
// is a failure, never a skip), and small helpers to load JSONL text.

import ChatTemplate
import Foundation
import ModelFormats
import Testing
import Tokenizer
import Training

struct TestSetupError: Error, CustomStringConvertible {
    var description: String
}

enum TrainingTestModel {
    /// SmolLM2's tokenizer and template, read once (no weights are bound).
    static let loaded: Result<TrainingTokenizer, TestSetupError> = {
        guard let path = ProcessInfo.processInfo.environment["LORAD_TEST_MODEL"], !path.isEmpty,
              FileManager.default.fileExists(atPath: path) else {
            return .failure(TestSetupError(description: "LORAD_TEST_MODEL is not set or missing: run the suite with `make test`"))
        }
        do {
            let gguf = try GGUFFile(path: path)
            return .success(TrainingTokenizer(tokenizer: try Tokenizer(gguf: gguf), template: try ChatTemplate.fromModel(metadata: gguf.metadata)))
        } catch {
            return .failure(TestSetupError(description: "cannot read \(path): \(error)"))
        }
    }()

    static func tokenizer() throws -> TrainingTokenizer {
        switch loaded {
        case .success(let t): return t
        case .failure(let e):
            Issue.record("\(e)")
            throw e
        }
    }
}

/// Loads `text` as a data file named "data.jsonl".
func loadJSONL(_ text: String, maxSequence: Int = 512, skipBad: Bool = false) throws -> TrainingDataset {
    let tokenizer = try TrainingTestModel.tokenizer()
    let bytes = Array(text.utf8)
    return try bytes.withUnsafeBytes {
        try TrainingDataset.load($0, name: "data.jsonl", tokenizer: tokenizer,
                                 options: TrainingDataOptions(maxSequence: maxSequence, skipBad: skipBad))
    }
}

/// The trained tokens of `example` as text, one string per contiguous run (control tokens rendered).
func trainedRuns(_ tokens: [Int32], _ mask: [Bool], _ tokenizer: Tokenizer) -> [String] {
    var runs: [String] = []
    var current: [Int32] = []
    for (id, trained) in zip(tokens, mask) {
        if trained { current.append(id) } else if !current.isEmpty {
            runs.append(tokenizer.decode(current, renderSpecial: true))
            current = []
        }
    }
    if !current.isEmpty { runs.append(tokenizer.decode(current, renderSpecial: true)) }
    return runs
}
