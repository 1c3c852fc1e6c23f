// The GGUF reader against deliberately corrupted files, each built in code: every one must give
// its own typed error naming the problem and the byte offset, and none may trap.

import Kernels
import Testing
@testable import ModelFormats

/// The error the reader gives for `bytes`, or nil when it accepts them.
private func readError(_ bytes: [UInt8]) -> GGUFError? {
    do {
        _ = try GGUFFile(bytes: bytes)
        return nil
    } catch let e as GGUFError {
        return e
    } catch {
        Issue.record("unexpected error type \(type(of: error)): \(error)")
        return nil
    }
}

/// A small valid file: two KVs (one array of strings), two tensors (F32 [4,2], Q8_0 [32,1]).
private func validFile() -> RawGGUF {
    var g = RawGGUF()
    g.header(tensors: 2, kvs: 2)
    g.kvString("general.architecture", "llama")
    g.string("tokenizer.ggml.tokens"); g.u32(9); g.u32(8); g.u64(2); g.string("a"); g.string("bc")
    g.tensorInfo("w", dims: [4, 2], type: 0, offset: 0)
    g.tensorInfo("q", dims: [32, 1], type: 8, offset: 32)
    g.pad()
    g.zeros(32)  // w: 8 f32
    g.zeros(34)  // q: one Q8_0 block
    return g
}

@Suite struct GGUFReaderTests {
    @Test func readsValidFile() throws {
        let f = try GGUFFile(bytes: validFile().bytes)
        #expect(f.version == 3)
        #expect(f.metadataKeys == ["general.architecture", "tokenizer.ggml.tokens"])
        #expect(f.metadata["tokenizer.ggml.tokens"]?.array?.strings == ["a", "bc"])
        #expect(f.tensors.map(\.name) == ["w", "q"])
        #expect(f.tensor(named: "q")?.type == .q8_0)
        #expect(f.tensor(named: "w")?.shape == [4, 2])
        #expect(f.data(of: f.tensor(named: "q")!).count == 34)
        #expect(f.dataOffset % 32 == 0)
    }

    @Test func badMagic() {
        var b = validFile().bytes
        b[0] = 0x47; b[1] = 0x47; b[2] = 0x4D; b[3] = 0x4C  // "GGML"
        #expect(readError(b) == .badMagic(found: 0x4C4D_4747))
        #expect(readError([]) == .truncated(what: "magic", offset: 0, needed: 4, fileSize: 0))
    }

    @Test(arguments: [0 as UInt32, 1, 4, 0x0300_0000])
    func unsupportedVersion(_ version: UInt32) {
        var g = RawGGUF()
        g.header(version: version, tensors: 0, kvs: 0)
        #expect(readError(g.bytes) == .unsupportedVersion(version))
    }

    @Test func version2IsAccepted() throws {
        var g = RawGGUF()
        g.header(version: 2, tensors: 0, kvs: 1)
        g.kvU32("a.b", 7)
        #expect(try GGUFFile(bytes: g.bytes).metadata["a.b"]?.int == 7)
    }

    /// Every prefix of a valid file is rejected with a typed error: truncation inside the header,
    /// each KV, the array, each tensor info, the padding and the data.
    @Test func everyTruncationIsRejected() {
        let full = validFile().bytes
        for n in 0..<full.count {
            let e = readError(Array(full.prefix(n)))
            #expect(e != nil, "prefix of \(n) bytes was accepted")
            switch e {
            case .truncated, .tensorOutOfBounds, .implausibleCount: break
            default: Issue.record("prefix \(n): unexpected error \(String(describing: e))")
            }
        }
        #expect(readError(full) == nil)
    }

    @Test func truncationNamesTheSection() {
        let full = validFile().bytes
        // Inside the bytes of the array's second string.
        var g = RawGGUF()
        g.header(tensors: 2, kvs: 2)
        g.kvString("general.architecture", "llama")
        g.string("tokenizer.ggml.tokens"); g.u32(9); g.u32(8); g.u64(2); g.string("a"); g.u64(2)
        let cut = g.bytes.count + 1
        let e = readError(Array(full.prefix(cut)))
        #expect(e == .truncated(what: "element 1 of 'tokenizer.ggml.tokens'", offset: g.bytes.count,
                                needed: 2, fileSize: cut))
        // Inside the data of the second tensor.
        let short = Array(full.dropLast(1))
        #expect(readError(short) == .tensorOutOfBounds(tensor: "q", start: UInt64(full.count - 34),
                                                       byteCount: 34, fileSize: short.count))
    }

    @Test func countsThatExceedTheFile() {
        var g = RawGGUF()
        g.header(tensors: UInt64.max, kvs: 0)
        #expect(readError(g.bytes) == .implausibleCount(what: "tensor count", value: UInt64.max, offset: 8))

        g = RawGGUF()
        g.header(tensors: 0, kvs: 1 << 40)
        #expect(readError(g.bytes) == .implausibleCount(what: "metadata count", value: 1 << 40, offset: 16))

        // A key length larger than Int.max, and one that merely runs past the end.
        g = RawGGUF()
        g.header(tensors: 0, kvs: 1)
        g.u64(UInt64.max); g.zeros(16)
        #expect(readError(g.bytes) == .implausibleCount(what: "length of metadata key", value: UInt64.max, offset: 24))
        g = RawGGUF()
        g.header(tensors: 0, kvs: 1)
        g.u64(1000); g.zeros(16)
        #expect(readError(g.bytes) == .truncated(what: "metadata key", offset: 32, needed: 1000, fileSize: 48))

        // An array length that cannot fit.
        g = RawGGUF()
        g.header(tensors: 0, kvs: 1)
        g.string("k"); g.u32(9); g.u32(4)
        let at = g.bytes.count
        g.u64(1 << 62); g.zeros(8)
        #expect(readError(g.bytes) == .implausibleCount(what: "array length of 'k'", value: 1 << 62, offset: at))
    }

    @Test func dimensionProductOverflow() {
        var g = RawGGUF()
        g.header(tensors: 1, kvs: 0)
        g.string("t"); g.u32(2); g.u64(1 << 32)
        let at = g.bytes.count
        g.u64(1 << 32); g.u32(0); g.u64(0)
        #expect(readError(g.bytes) == .badDimension(tensor: "t", dimension: 1, value: 1 << 32, offset: at))
    }

    @Test func tensorPastTheEnd() {
        var g = RawGGUF()
        g.header(tensors: 1, kvs: 0)
        g.tensorInfo("t", dims: [8], type: 0, offset: 1 << 20)
        g.pad(); g.zeros(32)
        let start = UInt64(g.bytes.count - 32) + (1 << 20)
        #expect(readError(g.bytes) == .tensorOutOfBounds(tensor: "t", start: start, byteCount: 32,
                                                         fileSize: g.bytes.count))
        // An offset so large that data start + offset overflows.
        g = RawGGUF()
        g.header(tensors: 1, kvs: 0)
        g.tensorInfo("t", dims: [8], type: 0, offset: UInt64.max - 31)
        g.pad(); g.zeros(32)
        #expect(readError(g.bytes) == .tensorOutOfBounds(tensor: "t", start: UInt64.max, byteCount: 32,
                                                         fileSize: g.bytes.count))
    }

    @Test func misalignedOffset() {
        var g = RawGGUF()
        g.header(tensors: 1, kvs: 0)
        g.tensorInfo("t", dims: [8], type: 0, offset: 4)
        g.pad(); g.zeros(64)
        #expect(readError(g.bytes) == .misalignedTensor(tensor: "t", offset: 4, alignment: 32))
    }

    @Test func customAlignment() throws {
        var g = RawGGUF()
        g.header(tensors: 1, kvs: 1)
        g.kvU32("general.alignment", 64)
        g.tensorInfo("t", dims: [8], type: 0, offset: 0)
        g.pad(to: 64); g.zeros(32)
        let f = try GGUFFile(bytes: g.bytes)
        #expect(f.alignment == 64 && f.dataOffset % 64 == 0)

        for bad: UInt32 in [0, 3, 48] {
            var h = RawGGUF()
            h.header(tensors: 0, kvs: 1)
            h.kvU32("general.alignment", bad)
            #expect(readError(h.bytes) == .badAlignment(UInt64(bad)))
        }
    }

    @Test func duplicateKeysAndTensors() {
        var g = RawGGUF()
        g.header(tensors: 0, kvs: 2)
        g.kvU32("a", 1)
        let at = g.bytes.count
        g.kvU32("a", 2)
        #expect(readError(g.bytes) == .duplicateKey("a", offset: at))

        g = RawGGUF()
        g.header(tensors: 2, kvs: 0)
        g.tensorInfo("t", dims: [8], type: 0, offset: 0)
        let at2 = g.bytes.count
        g.tensorInfo("t", dims: [8], type: 0, offset: 32)
        g.pad(); g.zeros(64)
        #expect(readError(g.bytes) == .duplicateTensor("t", offset: at2))
    }

    @Test func unknownValueTypes() {
        var g = RawGGUF()
        g.header(tensors: 0, kvs: 1)
        g.string("k")
        let at = g.bytes.count
        g.u32(13); g.u32(0)
        #expect(readError(g.bytes) == .unknownValueType(13, key: "k", offset: at))

        g = RawGGUF()
        g.header(tensors: 0, kvs: 1)
        g.string("k"); g.u32(9)
        let at2 = g.bytes.count
        g.u32(99); g.u64(0)
        #expect(readError(g.bytes) == .unknownValueType(99, key: "k", offset: at2))
    }

    @Test func nestedArray() {
        var g = RawGGUF()
        g.header(tensors: 0, kvs: 1)
        g.string("k"); g.u32(9)
        let at = g.bytes.count
        g.u32(9); g.u64(1); g.u32(4); g.u64(0)
        #expect(readError(g.bytes) == .nestedArray(key: "k", offset: at))
    }

    @Test func invalidUTF8() {
        var g = RawGGUF()
        g.header(tensors: 0, kvs: 1)
        let at = g.bytes.count + 8
        g.rawString([0x61, 0xFF, 0xFE]); g.u32(4); g.u32(1)
        #expect(readError(g.bytes) == .invalidUTF8(what: "metadata key", offset: at))
    }

    @Test(arguments: [4 as UInt32, 5, 31, 40, 1000])
    func unknownTensorType(_ id: UInt32) {
        var g = RawGGUF()
        g.header(tensors: 1, kvs: 0)
        g.string("t"); g.u32(1); g.u64(32)
        let at = g.bytes.count
        g.u32(id); g.u64(0)
        g.pad(); g.zeros(128)
        #expect(readError(g.bytes) == .unknownTensorType(tensor: "t", id: id, offset: at))
    }

    @Test func tooManyDimensions() {
        var g = RawGGUF()
        g.header(tensors: 1, kvs: 0)
        g.string("t")
        let at = g.bytes.count
        g.u32(5); for _ in 0..<5 { g.u64(1) }; g.u32(0); g.u64(0)
        #expect(readError(g.bytes) == .tooManyDimensions(tensor: "t", count: 5, offset: at))
    }

    @Test func rowNotWholeBlocks() {
        var g = RawGGUF()
        g.header(tensors: 1, kvs: 0)
        g.tensorInfo("t", dims: [48, 2], type: 3, offset: 0)  // Q4_1 has 32-element blocks
        g.pad(); g.zeros(64)
        #expect(readError(g.bytes) == .rowNotWholeBlocks(tensor: "t", rowLength: 48, type: "Q4_1", blockSize: 32))
        g = RawGGUF()
        g.header(tensors: 1, kvs: 0)
        g.tensorInfo("t", dims: [128], type: 12, offset: 0)  // Q4_K has 256-element blocks
        g.pad(); g.zeros(144)
        #expect(readError(g.bytes) == .rowNotWholeBlocks(tensor: "t", rowLength: 128, type: "Q4_K", blockSize: 256))
    }

    @Test func overlappingTensors() {
        var g = RawGGUF()
        g.header(tensors: 2, kvs: 0)
        g.tensorInfo("a", dims: [16], type: 0, offset: 0)  // 64 bytes
        g.tensorInfo("b", dims: [8], type: 0, offset: 32)
        g.pad(); g.zeros(96)
        #expect(readError(g.bytes) == .overlappingTensors("a", "b"))
    }

    @Test func errorMessagesNameTheProblem() {
        let e = GGUFError.tensorOutOfBounds(tensor: "blk.0.attn_q.weight", start: 100, byteCount: 50, fileSize: 120)
        #expect(e.description.contains("blk.0.attn_q.weight") && e.description.contains("120"))
        #expect(GGUFError.badMagic(found: 0).description.contains("not a GGUF file"))
    }

    /// Random corruption of a valid file: the reader must either accept the file or throw a
    /// GGUFError; a trap would kill the test process. Fixed seed, so a failure reproduces.
    @Test func randomMutationsNeverTrap() {
        let base = validFile().bytes
        var rng = SplitMix64(seed: 0x5EED)
        var rejected = 0
        for _ in 0..<20_000 {
            var b = base
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let i = Int(rng.next() % UInt64(b.count))
                b[i] = UInt8(truncatingIfNeeded: rng.next())
            }
            if rng.next() % 8 == 0 { b = Array(b.prefix(Int(rng.next() % UInt64(b.count)))) }
            if readError(b) != nil { rejected += 1 }
        }
        #expect(rejected > 10_000)
    }
}
