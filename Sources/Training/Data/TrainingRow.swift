// What one row of a batch holds: one example, or several short examples packed one after another up
// to `maxSequence` tokens. Each example's span is recorded (`segments`), so attention can be kept
// inside it and positions restart at 0 in each (`positions`, `segmentIDs`); a packed row then
// computes exactly what its examples would alone. Every example's first token is untrained (mask
// false), so no loss ever crosses a boundary.
//
// Packing is first-fit decreasing: examples by length, longest first (ties in file order), each into
// the first row with room; rows keep the order they were opened in. Deterministic, and within a few
// percent of the fewest rows for typical length mixes.

public struct TrainingRow: Sendable, Equatable {
    public var tokens: [Int32]
    public var mask: [Bool]
    /// Each example's token range in `tokens`, in order; together they cover `tokens`.
    public var segments: [Range<Int>]
    /// The data file line of each segment's example.
    public var lines: [Int]

    public init(_ example: TrainingExample) {
        tokens = example.tokens
        mask = example.mask
        segments = [0..<example.tokens.count]
        lines = [example.line]
    }

    mutating func append(_ example: TrainingExample) {
        segments.append(tokens.count..<(tokens.count + example.tokens.count))
        lines.append(example.line)
        tokens += example.tokens
        mask += example.mask
    }

    /// Per token, the index of its segment.
    public var segmentIDs: [Int32] {
        var ids = [Int32](repeating: 0, count: tokens.count)
        for (s, range) in segments.enumerated() { for t in range { ids[t] = Int32(s) } }
        return ids
    }

    /// Per token, its position inside its own example (RoPE positions restart per segment).
    public var positions: [Int32] {
        var positions = [Int32](repeating: 0, count: tokens.count)
        for range in segments { for t in range { positions[t] = Int32(t - range.lowerBound) } }
        return positions
    }

    public var trainedTokenCount: Int { mask.reduce(0) { $0 + ($1 ? 1 : 0) } }

    /// One row per example, unpacked.
    public static func unpacked(_ examples: [TrainingExample]) -> [TrainingRow] {
        examples.map(TrainingRow.init)
    }

    /// Packs `examples` (each at most `maxSequence` tokens, as loading leaves them) into rows of at
    /// most `maxSequence` tokens.
    public static func packed(_ examples: [TrainingExample], maxSequence: Int) -> [TrainingRow] {
        let order = examples.indices.sorted {
            examples[$0].tokens.count != examples[$1].tokens.count
                ? examples[$0].tokens.count > examples[$1].tokens.count : $0 < $1
        }
        var rows: [TrainingRow] = []
        for index in order {
            let example = examples[index]
            precondition(example.tokens.count <= maxSequence, "example longer than maxSequence: truncate at load")
            if let row = rows.firstIndex(where: { $0.tokens.count + example.tokens.count <= maxSequence }) {
                rows[row].append(example)
            } else {
                rows.append(TrainingRow(example))
            }
        }
        return rows
    }
}
