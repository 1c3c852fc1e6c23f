// Packing (segment boundaries, positions, no example split or lost) and the held-out split
// (deterministic per seed, sizes, order). Synthetic examples: no model needed.

import Kernels
import Testing
@testable import Training

struct TrainingRowTests {
    /// Example i has `lengths[i]` tokens valued 1000·line + position, trained after its first token.
    static func examples(_ lengths: [Int]) -> [TrainingExample] {
        lengths.enumerated().map { i, n in
            TrainingExample(line: i + 1, tokens: (0..<n).map { Int32(1000 * (i + 1) + $0) }, mask: (0..<n).map { $0 > 0 })
        }
    }

    @Test func packingKeepsEveryExampleWholeWithItsBoundaries() {
        let lengths = [5, 17, 3, 9, 12, 1, 16, 7, 7, 2, 11]
        let input = Self.examples(lengths)
        let rows = TrainingRow.packed(input, maxSequence: 16 + 1)
        var seen: [Int] = []
        for row in rows {
            #expect(row.tokens.count <= 17)
            #expect(row.tokens.count == row.mask.count)
            #expect(row.segments.first?.lowerBound == 0 && row.segments.last?.upperBound == row.tokens.count)
            for (s, range) in row.segments.enumerated() {
                if s > 0 { #expect(range.lowerBound == row.segments[s - 1].upperBound) }
                let example = input[row.lines[s] - 1]
                #expect(Array(row.tokens[range]) == example.tokens)
                #expect(Array(row.mask[range]) == example.mask)
                #expect(row.mask[range.lowerBound] == false, "a segment's first token is never a target")
                #expect(row.positions[range] == ArraySlice((0..<Int32(range.count)).map { $0 }))
                #expect(row.segmentIDs[range].allSatisfy { $0 == Int32(s) })
            }
            seen += row.lines
        }
        #expect(seen.sorted() == Array(1...lengths.count))
        #expect(rows.map(\.trainedTokenCount).reduce(0, +) == input.map(\.trainedTokenCount).reduce(0, +))
        // First-fit decreasing: 90 tokens fit in ceil(90/17) = 6 rows here.
        #expect(rows.count == 6)
        // Deterministic.
        #expect(TrainingRow.packed(input, maxSequence: 17) == rows)
    }

    @Test func unpackedRowsAreTheExamples() {
        let input = Self.examples([4, 2])
        let rows = TrainingRow.unpacked(input)
        #expect(rows.map(\.tokens) == input.map(\.tokens))
        #expect(rows.map(\.segments) == [[0..<4], [0..<2]])
        #expect(rows[0].positions == [0, 1, 2, 3])
    }

    @Test func splitIsDeterministicPerSeed() throws {
        let input = Self.examples(Array(repeating: 3, count: 20))
        let a = try TrainingSplit(input, evalFraction: 0.15, seed: 42)
        let b = try TrainingSplit(input, evalFraction: 0.15, seed: 42)
        #expect(a == b)
        #expect(a.eval.count == 3 && a.train.count == 17)
        #expect(Set(a.eval.map(\.line) + a.train.map(\.line)) == Set(1...20))
        #expect(a.train.map(\.line) == a.train.map(\.line).sorted(), "file order kept")
        #expect(a.eval.map(\.line) == a.eval.map(\.line).sorted())
        let others = try (1...5).map { try TrainingSplit(input, evalFraction: 0.15, seed: UInt64($0)).eval.map(\.line) }
        #expect(Set(others + [a.eval.map(\.line)]).count > 1, "seeds choose different examples")
        // Pinned: the split of a seed must not change between versions (a resumed run relies on it).
        #expect(a.eval.map(\.line) == Self.pinnedEval)
    }

    static let pinnedEval: [Int] = {
        var order = Array(0..<20)
        var rng = SplitMix64(seed: 42)
        for i in stride(from: 19, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return order.prefix(3).map { $0 + 1 }.sorted()
    }()

    @Test func splitSizes() throws {
        #expect(try TrainingSplit(Self.examples([3, 3]), evalFraction: 0.1, seed: 0).eval.count == 1)
        #expect(try TrainingSplit(Self.examples([3]), evalFraction: 0.2, seed: 0).eval.isEmpty, "the only example trains")
        #expect(try TrainingSplit(Self.examples([3, 3, 3]), evalFraction: 0, seed: 0).eval.isEmpty)
        #expect(throws: TrainingError.self) { try TrainingSplit(Self.examples([3]), evalFraction: 1, seed: 0) }
        #expect(throws: TrainingError.self) { try TrainingSplit(Self.examples([3]), evalFraction: -0.1, seed: 0) }
    }
}

struct TrainingBatchesTests {
    @Test func epochsAreSeededShufflesCutIntoBatches() {
        let e0 = TrainingBatches.epoch(0, rows: 10, batchSize: 4, seed: 9)
        #expect(e0.map(\.count) == [4, 4, 2])
        #expect(e0.flatMap { $0 }.sorted() == Array(0..<10))
        #expect(TrainingBatches.epoch(0, rows: 10, batchSize: 4, seed: 9) == e0)
        #expect(TrainingBatches.epoch(1, rows: 10, batchSize: 4, seed: 9) != e0, "each epoch its own order")
        #expect(TrainingBatches.epoch(0, rows: 10, batchSize: 4, seed: 10) != e0)
        #expect(TrainingBatches.epoch(3, rows: 0, batchSize: 2, seed: 1).isEmpty)
        #expect(TrainingBatches.epoch(0, rows: 1, batchSize: 8, seed: 1) == [[0]])
    }
}
