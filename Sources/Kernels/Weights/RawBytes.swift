// Little-endian field access inside packed ggml blocks.
//
// Block fields are not aligned (a Q4_0 block is 18 bytes, so the f16 scale of every other block sits
// at an odd address and Q5_0's u32 `qh` at offset 2), so every multi-byte read is an unaligned load.
// GGUF data is little-endian; the conversions below are no-ops on the hosts lorad runs on.

extension UnsafeRawPointer {
    @inline(__always)
    func byte(_ offset: Int) -> UInt8 {
        load(fromByteOffset: offset, as: UInt8.self)
    }

    @inline(__always)
    func int8(_ offset: Int) -> Int8 {
        Int8(bitPattern: load(fromByteOffset: offset, as: UInt8.self))
    }

    @inline(__always)
    func u16(_ offset: Int) -> UInt16 {
        UInt16(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    @inline(__always)
    func u32(_ offset: Int) -> UInt32 {
        UInt32(littleEndian: loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// An IEEE binary16 field widened to f32.
    @inline(__always)
    func f16(_ offset: Int) -> Float {
        f16ToF32(u16(offset))
    }
}

extension UnsafeMutableRawPointer {
    @inline(__always)
    func storeByte(_ value: UInt8, at offset: Int) {
        storeBytes(of: value, toByteOffset: offset, as: UInt8.self)
    }

    @inline(__always)
    func storeU16(_ value: UInt16, at offset: Int) {
        storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt16.self)
    }

    @inline(__always)
    func storeU32(_ value: UInt32, at offset: Int) {
        storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt32.self)
    }
}
