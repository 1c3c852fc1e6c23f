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

/// Reusable buffers for `PreTokenizer.split`, so that encoding a long text does not allocate per piece.
struct PreTokenizerScratch {
    var offsets: [Int] = []          // byte offset of each scalar, then the end offset
    var values: [UInt32] = []
    var classes: [ScalarClass] = []
}

enum PreTokenizer {
    /// Calls `body` with the byte range of each piece of `bytes[range]` (valid UTF-8), in order.
    static func split(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, scratch: inout PreTokenizerScratch,
                      _ body: (Range<Int>) -> Void) {
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
        s.offsets.reserveCapacity(range.count + 1)
        s.values.reserveCapacity(range.count)
        s.classes.reserveCapacity(range.count)
        var i = range.lowerBound
        let end = range.upperBound
        while i < end {
            let b0 = UInt32(bytes[i])
            if b0 < 0x80 {  // most text: no decoding, class from the ASCII table
                s.offsets.append(i)
                s.values.append(b0)
                s.classes.append(ScalarClass.ascii[Int(b0)])
                i += 1
                continue
            }
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
