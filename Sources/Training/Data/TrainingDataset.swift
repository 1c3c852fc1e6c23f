// A training data file loaded and validated before anything trains: every line parsed
// (TrainingRecord), rendered and tokenized (TrainingTokenizer), cut to `maxSequence` tokens, and
// counted in a report. A malformed line fails the whole load with its line number, unless `skipBad`
// (then it is listed in the report). Examples that keep no trained token are dropped with a reason.
// The file's sha256 goes into the adapter's manifest.

import Crypto
import ModelFormats

/// One example ready to train on.
public struct TrainingExample: Sendable, Equatable {
    /// 1-based line of the data file it came from.
    public var line: Int
    public var tokens: [Int32]
    /// mask[t]: token t is a target (see TrainingTokenizer.swift); mask[0] is always false.
    public var mask: [Bool]

    public init(line: Int, tokens: [Int32], mask: [Bool]) {
        precondition(tokens.count == mask.count)
        self.line = line
        self.tokens = tokens
        self.mask = mask
    }

    public var trainedTokenCount: Int { mask.reduce(0) { $0 + ($1 ? 1 : 0) } }
}

public struct TrainingDataOptions: Sendable, Equatable {
    /// Longest example in tokens; longer ones keep their first `maxSequence` tokens.
    public var maxSequence: Int
    /// Skip malformed lines (listed in the report) instead of failing the load.
    public var skipBad: Bool
    /// Accept `lorad eval`'s `"expected"`/`"must_contain"` beside `"messages"` (TrainingRecord.parse).
    public var evaluationKeys: Bool

    public init(maxSequence: Int, skipBad: Bool = false, evaluationKeys: Bool = false) {
        self.maxSequence = maxSequence
        self.skipBad = skipBad
        self.evaluationKeys = evaluationKeys
    }
}

/// What validation found, printed before training starts.
public struct TrainingDataReport: Sendable, Equatable, CustomStringConvertible {
    public struct LineNote: Sendable, Equatable {
        public var line: Int
        public var reason: String
    }
    public struct Truncation: Sendable, Equatable {
        public var line: Int
        public var tokens: Int
        public var cut: Int
    }

    public var file: String
    /// Examples kept, their tokens and trained tokens (after truncation).
    public var examples = 0
    public var tokens = 0
    public var trainedTokens = 0
    /// Malformed lines skipped under `skipBad`, each with its reason.
    public var skipped: [LineNote] = []
    /// Well-formed examples left with nothing to train on.
    public var dropped: [LineNote] = []
    /// Examples cut to `maxSequence`: how long they were and how many tokens went.
    public var truncated: [Truncation] = []

    /// One warning line per truncated example.
    public var warnings: [String] {
        truncated.map { "\(file):\($0.line): \($0.tokens) tokens, cut to \($0.tokens - $0.cut) (\($0.cut) tokens dropped)" }
    }

    public var description: String {
        var lines = ["\(file): \(examples) examples, \(tokens) tokens, \(trainedTokens) trained"]
        if !truncated.isEmpty { lines.append("\(truncated.count) truncated:") }
        lines += warnings.map { "  " + $0 }
        if !dropped.isEmpty { lines.append("\(dropped.count) dropped:") }
        lines += dropped.map { "  \(file):\($0.line): \($0.reason)" }
        if !skipped.isEmpty { lines.append("\(skipped.count) malformed lines skipped:") }
        lines += skipped.map { "  \(file):\($0.line): \($0.reason)" }
        return lines.joined(separator: "\n")
    }
}

/// A loaded, validated data file.
public struct TrainingDataset: Sendable {
    public var examples: [TrainingExample]
    public var report: TrainingDataReport
    /// Lowercase hex sha256 of the file's bytes.
    public var sha256: String

    /// Loads `path` (JSONL). Throws TrainingError.badExample for the first malformed line (unless
    /// `options.skipBad`), .noExamples when nothing is left to train on, .badSetting for a
    /// `maxSequence` below 2.
    public static func load(path: String, tokenizer: TrainingTokenizer, options: TrainingDataOptions) throws(TrainingError) -> TrainingDataset {
        let region: ByteRegion
        do { region = try ByteRegion(path: path) } catch {
            throw .noExamples(file: path, reason: "cannot be read: \(error)")
        }
        return try load(region.buffer, name: path, tokenizer: tokenizer, options: options)
    }

    /// Loads JSONL from memory; `name` stands for the file in messages.
    public static func load(_ bytes: UnsafeRawBufferPointer, name: String, tokenizer: TrainingTokenizer,
                            options: TrainingDataOptions) throws(TrainingError) -> TrainingDataset {
        guard options.maxSequence >= 2 else {
            throw .badSetting(name: "max_sequence", value: "\(options.maxSequence)", expected: "at least 2 tokens")
        }
        var report = TrainingDataReport(file: name)
        var examples: [TrainingExample] = []
        var lineNumber = 0
        var start = 0
        while start < bytes.count {
            lineNumber += 1
            var end = start
            while end < bytes.count && bytes[end] != 0x0A { end += 1 }
            let next = end + 1
            if end > start && bytes[end - 1] == 0x0D { end -= 1 }
            let line = bytes[start..<end]
            start = next
            // Blank lines (a trailing newline, spacing) are not examples.
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }

            let tokenized: TokenizedExample
            do throws(TrainingError) {
                let record = try TrainingRecord.parse(line, file: name, line: lineNumber, evaluationKeys: options.evaluationKeys)
                do { tokenized = try tokenizer.tokenize(record) } catch {
                    throw TrainingError.badExample(file: name, line: lineNumber, reason: error.reason)
                }
            } catch {
                guard options.skipBad, case .badExample(_, _, let reason) = error else { throw error }
                report.skipped.append(.init(line: lineNumber, reason: reason))
                continue
            }

            var example = TrainingExample(line: lineNumber, tokens: tokenized.tokens, mask: tokenized.mask)
            if example.trainedTokenCount == 0 {
                report.dropped.append(.init(line: lineNumber, reason: "no trained token (every assistant turn has weight 0)"))
                continue
            }
            if example.tokens.count > options.maxSequence {
                let cut = example.tokens.count - options.maxSequence
                report.truncated.append(.init(line: lineNumber, tokens: example.tokens.count, cut: cut))
                example.tokens.removeLast(cut)
                example.mask.removeLast(cut)
                if example.trainedTokenCount == 0 {
                    report.dropped.append(.init(line: lineNumber, reason:
                        "no trained token left in the first \(options.maxSequence) tokens (max_sequence) of \(example.tokens.count + cut)"))
                    continue
                }
            }
            report.examples += 1
            report.tokens += example.tokens.count
            report.trainedTokens += example.trainedTokenCount
            examples.append(example)
        }
        guard !examples.isEmpty else {
            let why = lineNumber == 0 ? "the file is empty"
                : "\(report.dropped.count) examples dropped, \(report.skipped.count) malformed lines skipped, none left"
            throw .noExamples(file: name, reason: why)
        }
        return TrainingDataset(examples: examples, report: report, sha256: sha256Hex(bytes))
    }

    static func sha256Hex(_ bytes: UnsafeRawBufferPointer) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in SHA256.hash(data: bytes) {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
