// The smollm pre-tokenizer: splits text (with special tokens already cut out) into the pieces BPE
// works on (FORMATS.md §6.2 step 2). llama.cpp applies two regexes in sequence, keeping both matches
// and the gaps between them (llama-vocab.cpp, LLAMA_VOCAB_PRE_TYPE_SMOLLM):
//   1. \p{N}  - every number code point becomes a piece of its own;
//   2. 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)  - on each piece of 1.
// Regex 2 is not run as a regex in llama.cpp but by the hand-written matcher
// `unicode_regex_split_custom_gpt2` (unicode.cpp); this is a port of that matcher, so its few
// departures from a true regex engine are kept on purpose:
// - a piece from step 1 is a closed world: lookahead and ` ?` never see past its ends;
// - `\s+(?!\S)`: a whitespace run of n > 1 followed by a non-space gives n-1 (the last one goes with
//   what follows if it is a space before a letter/number/symbol, else becomes a piece of its own); a
//   run that reaches the end of the piece is taken whole; a single whitespace before a non-space is a
//   piece of its own (what a regex leaves as a gap, and llama.cpp keeps gaps);
// - ` ?` is the ASCII space only, and contractions are lowercase ASCII with the ASCII apostrophe;
// - code points of no class llama.cpp knows (unassigned, or newer than its tables) count as symbols.
// Code point classes come from ScalarClass.swift.

/// Buffers for `PreTokenizer.splitReference`.
struct PreTokenizerScratch {
    var offsets: [Int] = []          // byte offset of each scalar, then the end offset
    var values: [UInt32] = []
    var classes: [ScalarClass] = []
}

enum PreTokenizer {
    /// Calls `body` with the byte range of each piece of `bytes[range]` (valid UTF-8), in order.
    ///
    /// One pass over the bytes, decoding each scalar where the matcher looks at it, with no buffer:
    /// memory stays flat however long the text (a buffer of every scalar cost 13 bytes per input byte,
    /// and caches missed once a large prompt's buffers outgrew them). A number scalar is a piece of
    /// its own (step 1) and, for step 2, ends the stretch it is in: `cls` answers nil there, exactly as
    /// at the end of the text. `splitReference` is the two-step version over decoded arrays that
    /// this one must agree with (tests compare them).
    static func split(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ body: (Range<Int>) -> Void) {
        let end = range.upperBound
        let space: UInt8 = 0x20, apostrophe: UInt8 = 0x27
        /// The class and byte length of the scalar at `i`.
        @inline(__always) func scalar(_ i: Int) -> (cls: ScalarClass, length: Int) {
            let b0 = bytes[i]
            if b0 < 0x80 { return (ScalarClass.ascii[Int(b0)], 1) }
            let (value, length) = decode(bytes, i, end)
            return (Unicode.Scalar(value).map(ScalarClass.init) ?? .other, length)
        }
        /// The class at `i` inside the current stretch: nil at the end and at a number.
        @inline(__always) func cls(_ i: Int) -> ScalarClass? {
            guard i < end else { return nil }
            let c = scalar(i).cls
            return c == .number ? nil : c
        }

        var pos = range.lowerBound
        while pos < end {
            let start = pos
            let (first, firstLength) = scalar(pos)
            if first == .number {  // step 1
                pos += firstLength
                body(start..<pos)
                continue
            }
            let b = bytes[pos]
            // 's|'t|'re|'ve|'m|'ll|'d (ASCII letters, so bytes can be compared directly)
            if b == apostrophe && pos + 1 < end {
                switch bytes[pos + 1] {
                case 0x73, 0x74, 0x6D, 0x64:  // s t m d
                    pos += 2; body(start..<pos); continue
                case let next where pos + 2 < end:
                    let next2 = bytes[pos + 2]
                    if (next == 0x72 && next2 == 0x65) || (next == 0x76 && next2 == 0x65) || (next == 0x6C && next2 == 0x6C) {
                        pos += 3; body(start..<pos); continue  // re ve ll
                    }
                default: break
                }
            }
            // The class of the first character after an optional leading space.
            let lead = b == space ? cls(pos + 1) : first
            switch lead {
            case .letter?, .number?, .other?:
                // ` ?\p{L}+`, ` ?\p{N}+` or ` ?[^\s\p{L}\p{N}]+`: a run of the same class.
                if b == space { pos += 1 }
                while pos < end {
                    let (c, length) = scalar(pos)
                    guard c == lead else { break }
                    pos += length
                }
                body(start..<pos)
            case .whitespace?, nil:
                // \s+(?!\S), then the single-whitespace case: a run of n > 1 before a non-space
                // (not the stretch's end) gives its first n-1.
                var run = 0, last = pos, after = pos
                while after < end {
                    let (c, length) = scalar(after)
                    guard c == .whitespace else { break }
                    last = after
                    after += length
                    run += 1
                }
                if run > 1 && cls(after) != nil {
                    pos = last
                } else {
                    pos = run > 0 ? after : pos + firstLength
                }
                body(start..<pos)
            }
        }
    }

    /// The scalar value and byte length of the UTF-8 sequence at `i` (never reading at or past `end`).
    @inline(__always)
    private static func decode(_ bytes: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> (UInt32, Int) {
        let b0 = UInt32(bytes[i])
        var value: UInt32
        var length: Int
        switch b0 {
        case 0..<0x80: return (b0, 1)
        case 0xC0..<0xE0: value = b0 & 0x1F; length = 2
        case 0xE0..<0xF0: value = b0 & 0x0F; length = 3
        default: value = b0 & 0x07; length = 4
        }
        length = min(length, end - i)
        for k in 1..<max(length, 1) { value = (value << 6) | (UInt32(bytes[i + k]) & 0x3F) }
        return (value, length)
    }

    /// The reference: step 1 and step 2 over arrays of every decoded scalar.
    static func splitReference(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                               scratch: inout PreTokenizerScratch, _ body: (Range<Int>) -> Void) {
        decodeScalars(bytes, range, into: &scratch)
        let n = scratch.values.count
        // Step 1: number code points are pieces of their own; step 2 runs on the stretches between them.
        var stretchStart = 0
        for i in 0..<n where scratch.classes[i] == .number {
            if stretchStart < i { splitGPT2(stretchStart..<i, scratch, body) }
            body(scratch.offsets[i]..<scratch.offsets[i + 1])
            stretchStart = i + 1
        }
        if stretchStart < n { splitGPT2(stretchStart..<n, scratch, body) }
    }

    /// Step 2 on the scalars `stretch` (which holds no number): port of `unicode_regex_split_custom_gpt2`.
    private static func splitGPT2(_ stretch: Range<Int>, _ s: PreTokenizerScratch, _ body: (Range<Int>) -> Void) {
        let end = stretch.upperBound
        let space: UInt32 = 0x20, apostrophe: UInt32 = 0x27
        @inline(__always) func value(_ i: Int) -> UInt32? { i < end ? s.values[i] : nil }
        @inline(__always) func cls(_ i: Int) -> ScalarClass? { i < end ? s.classes[i] : nil }
        @inline(__always) func emit(_ from: Int, _ to: Int) { body(s.offsets[from]..<s.offsets[to]) }

        var pos = stretch.lowerBound
        while pos < end {
            let start = pos
            let v = s.values[pos]
            // 's|'t|'re|'ve|'m|'ll|'d
            if v == apostrophe, let next = value(pos + 1) {
                switch next {
                case 0x73, 0x74, 0x6D, 0x64:  // s t m d
                    emit(start, pos + 2); pos += 2; continue
                default:
                    if let next2 = value(pos + 2),
                       (next == 0x72 && next2 == 0x65) || (next == 0x76 && next2 == 0x65)
                        || (next == 0x6C && next2 == 0x6C) {  // re ve ll
                        emit(start, pos + 3); pos += 3; continue
                    }
                }
            }
            // The class of the first character after an optional leading space.
            let lead = v == space ? cls(pos + 1) : s.classes[pos]
            switch lead {
            case .letter?, .number?, .other?:
                // ` ?\p{L}+`, ` ?\p{N}+` or ` ?[^\s\p{L}\p{N}]+`: a run of the same class.
                if v == space { pos += 1 }
                while cls(pos) == lead { pos += 1 }
                emit(start, pos)
            case .whitespace?, nil:
                // \s+(?!\S), then the single-whitespace case.
                var run = 0
                while cls(pos + run) == .whitespace { run += 1 }
                if run > 1 && pos + run < end {
                    pos += run - 1
                } else {
                    pos += max(run, 1)  // run is at least 1 here: this scalar is whitespace or a lone space
                }
                emit(start, pos)
            }
        }
    }

    /// Fills scratch with the scalars of `bytes[range]`. The bytes come from a Swift String, so they are
    /// valid UTF-8; the decoder still never reads past `range` (a short sequence just ends early).
    private static func decodeScalars(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                                      into s: inout PreTokenizerScratch) {
        s.offsets.removeAll(keepingCapacity: true)
        s.values.removeAll(keepingCapacity: true)
        s.classes.removeAll(keepingCapacity: true)
        var i = range.lowerBound
        let end = range.upperBound
        while i < end {
            let b0 = UInt32(bytes[i])
            var value: UInt32
            var length: Int
            switch b0 {
            case 0..<0x80: value = b0; length = 1
            case 0xC0..<0xE0: value = b0 & 0x1F; length = 2
            case 0xE0..<0xF0: value = b0 & 0x0F; length = 3
            default: value = b0 & 0x07; length = 4
            }
            length = min(length, end - i)
            for k in 1..<max(length, 1) { value = (value << 6) | (UInt32(bytes[i + k]) & 0x3F) }
            s.offsets.append(i)
            s.values.append(value)
            s.classes.append(Unicode.Scalar(value).map(ScalarClass.init) ?? .other)
            i += length
        }
        s.offsets.append(end)
    }
}
