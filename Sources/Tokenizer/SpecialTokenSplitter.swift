// Cuts special tokens out of text before pre-tokenization (FORMATS.md §6.2 step 1; llama.cpp
// llama-vocab.cpp `tokenizer_st_partition`): for each control, user-defined or unknown token, longest
// text first, every occurrence in the text not yet cut becomes that token, left to right without
// overlaps. With special parsing off, control and unknown tokens are not cut (they are tokenized as
// plain text) but user-defined ones still are.
// The search is on UTF-8 bytes; since token texts are valid UTF-8, a match always starts and ends on a
// character boundary.

enum TextFragment: Equatable {
    case text(Range<Int>)
    case token(Int32)
}

struct SpecialTokenSplitter: Sendable {
    private struct Special: Sendable {
        let id: Int32
        let bytes: [UInt8]
        /// Cut only when special parsing is on (control and unknown tokens).
        let onlyWhenParsingSpecial: Bool
    }
    private let specials: [Special]

    init(vocabulary: Vocabulary) {
        specials = vocabulary.specialTokensLongestFirst.map { id in
            let attributes = vocabulary.attributes[Int(id)]
            return Special(id: id, bytes: Array(vocabulary.tokens[Int(id)].utf8),
                           onlyWhenParsingSpecial: !attributes.isDisjoint(with: [.control, .unknown]))
        }
    }

    func split(_ bytes: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [TextFragment] {
        guard !bytes.isEmpty else { return [] }
        var fragments: [TextFragment] = [.text(0..<bytes.count)]
        var next: [TextFragment] = []
        for special in specials where parseSpecial || !special.onlyWhenParsingSpecial {
            guard let first = special.bytes.first else { continue }
            next.removeAll(keepingCapacity: true)
            var changed = false
            for fragment in fragments {
                guard case .text(let range) = fragment else { next.append(fragment); continue }
                var rest = range.lowerBound
                var i = range.lowerBound
                let lastStart = range.upperBound - special.bytes.count
                while i <= lastStart {
                    if bytes[i] == first && matches(special.bytes, bytes, at: i) {
                        if rest < i { next.append(.text(rest..<i)) }
                        next.append(.token(special.id))
                        i += special.bytes.count
                        rest = i
                        changed = true
                    } else {
                        i += 1
                    }
                }
                if rest < range.upperBound { next.append(.text(rest..<range.upperBound)) }
            }
            if changed { swap(&fragments, &next) }
        }
        return fragments
    }

    @inline(__always)
    private func matches(_ needle: [UInt8], _ bytes: UnsafeBufferPointer<UInt8>, at start: Int) -> Bool {
        for k in 1..<needle.count where bytes[start + k] != needle[k] { return false }
        return true
    }
}
