// The optimiser's state in a checkpoint: the step count and every tensor's m and v, as their f32 bit
// patterns, so a resumed run continues exactly as an uninterrupted one. Layout (little-endian):
//   "LORADAMW"  8-byte magic
//   u32         format version (1)
//   u64         step
//   u32         tensor count n
//   n × u64     element count of each tensor
//   per tensor: count × u32 m bits, then count × u32 v bits
// The hyperparameters and groups are the run's configuration, not state: a checkpoint is loaded into
// an optimiser built with the same tensor sizes (checked) and continues with whatever it was given.

import ModelFormats

extension AdamW {
    static let magic = Array("LORADAMW".utf8)
    static let formatVersion: UInt32 = 1

    public func stateBytes() -> [UInt8] {
        var out = Self.magic
        out.reserveCapacity(32 + 8 * tensorSizes.count + 8 * tensorSizes.reduce(0, +))
        func put<T: FixedWidthInteger>(_ x: T) { withUnsafeBytes(of: x.littleEndian) { out += $0 } }
        put(Self.formatVersion)
        put(UInt64(step))
        put(UInt32(tensorSizes.count))
        for size in tensorSizes { put(UInt64(size)) }
        for i in tensorSizes.indices {
            for x in m[i] { put(x.bitPattern) }
            for x in v[i] { put(x.bitPattern) }
        }
        return out
    }

    /// Replaces the step and moments with those in `bytes` (from `stateBytes`). `source` names the
    /// checkpoint in errors. Nothing changes when it throws.
    public mutating func restoreState(_ bytes: UnsafeRawBufferPointer, source: String) throws(TrainingError) {
        func bad(_ reason: String) -> TrainingError { .badCheckpoint(path: source, reason: reason) }
        var offset = 0
        func take<T: FixedWidthInteger>(_: T.Type) throws(TrainingError) -> T {
            guard offset + MemoryLayout<T>.size <= bytes.count else { throw bad("optimiser state ends early at byte \(offset)") }
            var x: T = 0
            withUnsafeMutableBytes(of: &x) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + MemoryLayout<T>.size])) }
            offset += MemoryLayout<T>.size
            return T(littleEndian: x)
        }
        guard bytes.count >= 8, Array(bytes[0..<8]) == Self.magic else { throw bad("not an optimiser state (expected the LORADAMW magic)") }
        offset = 8
        let version = try take(UInt32.self)
        guard version == Self.formatVersion else { throw bad("optimiser state format \(version), expected \(Self.formatVersion)") }
        let step = try take(UInt64.self)
        let count = try take(UInt32.self)
        guard Int(count) == tensorSizes.count else {
            throw bad("optimiser state for \(count) tensors, this run trains \(tensorSizes.count) (another rank or target modules?)")
        }
        for i in tensorSizes.indices {
            let size = try take(UInt64.self)
            guard size == UInt64(tensorSizes[i]) else {
                throw bad("tensor \(i) has \(size) elements in the optimiser state, \(tensorSizes[i]) in this run")
            }
        }
        let expected = offset + 8 * tensorSizes.reduce(0, +)
        guard bytes.count == expected else { throw bad("optimiser state is \(bytes.count) bytes, expected \(expected)") }
        var newM: [[Float]] = [], newV: [[Float]] = []
        for size in tensorSizes {
            var mi = [Float](repeating: 0, count: size), vi = [Float](repeating: 0, count: size)
            for k in 0..<size { mi[k] = Float(bitPattern: try take(UInt32.self)) }
            for k in 0..<size { vi[k] = Float(bitPattern: try take(UInt32.self)) }
            newM.append(mi)
            newV.append(vi)
        }
        self.step = Int(step)
        m = newM
        v = newV
    }

    /// Writes the state to `path` atomically (temporary file, then rename).
    public func saveState(to path: String) throws {
        try writeFileAtomically(stateBytes(), to: path)
    }

    /// Reads a state written by `saveState`.
    public mutating func loadState(from path: String) throws(TrainingError) {
        let region: ByteRegion
        do { region = try ByteRegion(path: path) } catch { throw .badCheckpoint(path: path, reason: "cannot be read: \(error)") }
        try restoreState(region.buffer, source: path)
    }
}
