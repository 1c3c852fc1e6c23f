// Cuts special tokens out of text before pre-tokenization (FORMATS.md §6.2 step 1; llama.cpp
// llama-vocab.cpp `tokenizer_st_partition`): for each control, user-defined or unknown token, longest
// text first, every occurrence in the text not yet cut becomes that token, left to right without
// overlaps. With special parsing off, control and unknown tokens are not cut (they are tokenized as
// plain text) but user-defined ones still are. A third selection, control and unknown tokens only,
// serves chat prompts (ChatPromptEncoding.swift), whose text runs are then encoded with parsing off.
// The search is on UTF-8 bytes; since token texts are valid UTF-8, a match always starts and ends on a
// character boundary. Each token's pass jumps between occurrences of its first byte with memchr, so a
// pass costs little more than reading the text.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

enum TextFragment: Equatable {
    case text(Range<Int>)
    case token(Int32)
}

/// Which special tokens a split cuts out.
enum SpecialTokenSelection {
    /// Control, unknown and user-defined tokens (`parseSpecial: true`).
    case all
    /// User-defined tokens only (`parseSpecial: false`).
    case userDefined
    /// Control and unknown tokens only.
    case controlAndUnknown

    init(parseSpecial: Bool) { self = parseSpecial ? .all : .userDefined }
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

    /// The texts of the tokens `selection` cuts (longest first).
    func texts(_ selection: SpecialTokenSelection) -> [[UInt8]] {
        specials.filter { Self.selects(selection, $0) }.map(\.bytes)
    }

    private static func selects(_ selection: SpecialTokenSelection, _ special: Special) -> Bool {
        switch selection {
        case .all: return true
        case .userDefined: return !special.onlyWhenParsingSpecial
        case .controlAndUnknown: return special.onlyWhenParsingSpecial
        }
    }

    func split(_ bytes: UnsafeBufferPointer<UInt8>, parseSpecial: Bool) -> [TextFragment] {
        split(bytes, 0..<bytes.count, SpecialTokenSelection(parseSpecial: parseSpecial))
    }

    /// The fragments of `bytes[range]`: cut tokens and the text between them.
    func split(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ selection: SpecialTokenSelection)
        -> [TextFragment] {
        guard !range.isEmpty, let base = bytes.baseAddress else { return [] }
        var fragments: [TextFragment] = [.text(range)]
        var next: [TextFragment] = []
        for special in specials where Self.selects(selection, special) {
            guard let first = special.bytes.first else { continue }
            next.removeAll(keepingCapacity: true)
            var changed = false
            for fragment in fragments {
                guard case .text(let range) = fragment else { next.append(fragment); continue }
                var rest = range.lowerBound
                var i = range.lowerBound
                let lastStart = range.upperBound - special.bytes.count
                while i <= lastStart {
                    // The next occurrence of the first byte at or after i that leaves room for the token.
                    guard let hit = memchr(base + i, Int32(first), lastStart - i + 1) else { break }
                    i = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                    if matches(special.bytes, bytes, at: i) {
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
