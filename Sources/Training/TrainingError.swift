// What can stop a training run before or while it runs, each with what was expected. Bad data is
// found before the first step (with the line it came from); nothing a failed run did reaches the
// registry.

public enum TrainingError: Error, Equatable, CustomStringConvertible {
    /// A line of a JSONL data file that is not a training example.
    case badExample(file: String, line: Int, reason: String)
    /// Nothing left to train on after validation (every example dropped, or an empty file).
    case noExamples(file: String, reason: String)
    /// A setting outside what the trainer accepts (`--lr -1`, `--rank 0`).
    case badSetting(name: String, value: String, expected: String)
    /// A checkpoint that does not belong to this run or does not parse.
    case badCheckpoint(path: String, reason: String)
    /// The run stopped making sense (a non-finite loss or gradient); nothing is published.
    case diverged(step: Int, reason: String)

    public var description: String {
        switch self {
        case .badExample(let file, let line, let reason): return "\(file):\(line): \(reason)"
        case .noExamples(let file, let reason): return "\(file): no examples to train on: \(reason)"
        case .badSetting(let name, let value, let expected): return "\(name) \(value): expected \(expected)"
        case .badCheckpoint(let path, let reason): return "checkpoint \(path): \(reason)"
        case .diverged(let step, let reason):
            return "training diverged at step \(step): \(reason) (hint: a lower --lr or a --max-grad-norm)"
        }
    }
}
