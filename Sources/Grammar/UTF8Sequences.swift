// A range of Unicode scalars as a short list of byte-range sequences whose union matches exactly the
// UTF-8 encodings of the scalars in it, and nothing else (no overlong forms, no surrogates). The
// algorithm is Rust regex-syntax's `utf8::Utf8Sequences`: split the range at the encoding-length
// boundaries (U+007F, U+07FF, U+FFFF) and around the surrogates, then split it until every byte
// position of the encodings of its two ends spans one contiguous byte range.

enum UTF8Sequences {
    /// Each element is one sequence: byte i must lie in element[i].
    static func sequences(_ range: ClosedRange<UInt32>) -> [[ClosedRange<UInt8>]] {
        var result: [[ClosedRange<UInt8>]] = []
        var stack: [(UInt32, UInt32)] = [(range.lowerBound, min(range.upperBound, ScalarSet.maxScalar))]
        outer: while let (s, e) = stack.popLast() {
            guard s <= e else { continue }
            if s <= 0xDFFF && e >= 0xD800 {
                if e > 0xDFFF { stack.append((0xE000, e)) }
                if s < 0xD800 { stack.append((s, 0xD7FF)) }
                continue
            }
            for boundary: UInt32 in [0x7F, 0x7FF, 0xFFFF] where s <= boundary && boundary < e {
                stack.append((boundary + 1, e))
                stack.append((s, boundary))
                continue outer
            }
            if e <= 0x7F {
                result.append([UInt8(s)...UInt8(e)])
                continue
            }
            // Split until the continuation bytes below position i span whole 6-bit blocks.
            for i: UInt32 in 1..<4 {
                let m: UInt32 = (1 << (6 * i)) - 1
                if s & ~m != e & ~m {
                    if s & m != 0 {
                        stack.append(((s | m) + 1, e))
                        stack.append((s, s | m))
                        continue outer
                    }
                    if e & m != m {
                        stack.append((e & ~m, e))
                        stack.append((s, (e & ~m) - 1))
                        continue outer
                    }
                }
            }
            let sb = encode(s), eb = encode(e)
            result.append(zip(sb, eb).map { $0...$1 })
        }
        return result
    }

    /// The UTF-8 encoding of a scalar value (the caller never passes a surrogate).
    static func encode(_ v: UInt32) -> [UInt8] {
        switch v {
        case 0..<0x80:
            return [UInt8(v)]
        case 0x80..<0x800:
            return [UInt8(0xC0 | v >> 6), UInt8(0x80 | v & 0x3F)]
        case 0x800..<0x10000:
            return [UInt8(0xE0 | v >> 12), UInt8(0x80 | v >> 6 & 0x3F), UInt8(0x80 | v & 0x3F)]
        default:
            return [UInt8(0xF0 | v >> 18), UInt8(0x80 | v >> 12 & 0x3F), UInt8(0x80 | v >> 6 & 0x3F), UInt8(0x80 | v & 0x3F)]
        }
    }
}
