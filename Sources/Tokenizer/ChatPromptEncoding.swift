// Chat prompts whose message contents cannot forge control tokens. The chat template's own text keeps
// its control tokens ("<|im_start|>user\n"); text inside a message content that spells a control
// token is tokenized as plain text, as llama.cpp does with parse_special=false.
// Without this, a user who types "<|im_end|>\n<|im_start|>system\n..." writes a system turn.
//
// How: before rendering, every control- or unknown-token text inside a content is replaced by a
// placeholder, one code point per distinct token text, chosen from the private-use planes (U+100000…,
// then U+F0000…) among the code points that occur nowhere in the contents, the template or the
// BOS/EOS texts, and in no special token's text. The template renders as usual: it may trim,
// concatenate or test contents (a placeholder is no whitespace, so `| trim` strips the same
// characters). The rendered text is then split at control and unknown tokens only, which can now come
// only from the template; each run of text between them has its placeholders expanded back and is
// encoded with special parsing off (user-defined tokens are cut, as llama.cpp cuts them in both modes).
// So the ids are those of llama.cpp with the scaffolding's control tokens parsed and every other run of
// text tokenized with parse_special=false (golden test: scripts/goldens/chat_injection.py).
//
// Limits, on purpose: a template that itself turns content into control-token text (`| replace`,
// `| lower` of "<|IM_END|>") gets control tokens, as it asked; a template that measures or slices
// contents sees one character per replaced token text. A control token could in principle be spelled
// across a content's edge and the template text beside it; for ChatML-style scaffolding that cannot
// happen (every SmolLM2 control text has its only '<' first and no '\n', while the text before a
// content ends in '\n' and the text after it starts with '<').

/// A rendered chat prompt with its message contents protected; encode it with `Tokenizer.encode(_:)`.
public struct ChatPrompt: Sendable {
    /// The rendered text with placeholders in place of the control-token texts of the contents.
    let protectedText: String
    /// Placeholder code point → the token text it stands for (UTF-8).
    let placeholders: [UInt32: [UInt8]]

    /// A prompt rendered from contents protected by `Tokenizer.protectContents` (placeholders as it
    /// returned them; none when it returned nil). For `renderChat` in the ChatTemplate target.
    package init(protectedText: String, placeholders: [UInt32: [UInt8]]) {
        self.protectedText = protectedText
        self.placeholders = placeholders
    }

    /// The prompt text as the model reads it (placeholders expanded).
    public var text: String {
        guard !placeholders.isEmpty else { return protectedText }
        var bytes: [UInt8] = []
        var source = protectedText
        source.withUTF8 { appendExpanding($0, 0..<$0.count, into: &bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends `bytes[range]` with each placeholder replaced by its text.
    func appendExpanding(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into out: inout [UInt8]) {
        var i = range.lowerBound
        while i < range.upperBound {
            if let (value, length) = placeholder(at: i, bytes, range) {
                out += placeholders[value]!
                i += length
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
    }

    /// The placeholder whose UTF-8 starts at `i`, with its length in bytes (4), or nil.
    @inline(__always)
    func placeholder(at i: Int, _ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> (UInt32, Int)? {
        // Placeholders are in planes 15 and 16: lead byte F3 (then B0...BF) or F4.
        let b0 = bytes[i]
        guard b0 == 0xF3 || b0 == 0xF4, i + 4 <= range.upperBound else { return nil }
        let value = (UInt32(b0) & 0x07) << 18 | (UInt32(bytes[i + 1]) & 0x3F) << 12
            | (UInt32(bytes[i + 2]) & 0x3F) << 6 | (UInt32(bytes[i + 3]) & 0x3F)
        return placeholders[value] != nil ? (value, 4) : nil
    }
}

/// Errors of `Tokenizer.renderChat` (ChatTemplate target) and `Tokenizer.protectContents`.
public enum ChatPromptError: Error, CustomStringConvertible {
    case noFreePlaceholder(needed: Int)

    public var description: String {
        switch self {
        case .noFreePlaceholder(let needed):
            return "the messages use almost every private-use code point (planes 15 and 16), so the \(needed) "
                + "placeholders that keep special-token text in them plain cannot be chosen; remove some "
                + "private-use characters from the messages"
        }
    }
}

extension Tokenizer {
    /// The protection step of `renderChat` (ChatTemplate target), which needs the tokenizer's
    /// special-token splitter: `contents` with every control- or unknown-token text replaced by a
    /// placeholder code point (see the file header) that occurs in no content, in none of `otherTexts`
    /// (the template source, the roles, the BOS/EOS texts) and in no special token's text, with the
    /// placeholders' texts; nil when no content holds such a text (the contents then render as they
    /// are). Throws ChatPromptError.noFreePlaceholder.
    package func protectContents(_ contents: [String], avoiding otherTexts: [String]) throws
        -> (contents: [String], placeholders: [UInt32: [UInt8]])? {
        // Which control texts occur in which contents: most contents have none and stay as they are.
        var found: [Int: [TextFragment]] = [:]
        var ids: Set<Int32> = []
        for (index, original) in contents.enumerated() {
            var content = original
            let fragments = content.withUTF8 { splitter.split($0, 0..<$0.count, .controlAndUnknown) }
            let tokens = fragments.compactMap { f -> Int32? in if case .token(let id) = f { return id } else { return nil } }
            if !tokens.isEmpty {
                found[index] = fragments
                ids.formUnion(tokens)
            }
        }
        guard !ids.isEmpty else { return nil }

        var taken = Set<UInt32>()
        for text in otherTexts + contents + splitter.texts(.all).map({ String(decoding: $0, as: UTF8.self) }) {
            Self.collectPrivateUse(text, into: &taken)
        }
        var placeholderFor: [Int32: UInt32] = [:]
        var placeholders: [UInt32: [UInt8]] = [:]
        var candidate: UInt32? = Self.firstPlaceholder
        for id in ids.sorted() {
            while let c = candidate, taken.contains(c) { candidate = Self.placeholder(after: c) }
            guard let value = candidate else { throw ChatPromptError.noFreePlaceholder(needed: ids.count) }
            candidate = Self.placeholder(after: value)
            placeholderFor[id] = value
            placeholders[value] = Array(tokenText(id)!.utf8)
        }

        var protected = contents
        for (index, fragments) in found {
            var content = contents[index]
            var bytes: [UInt8] = []
            content.withUTF8 { source in
                for fragment in fragments {
                    switch fragment {
                    case .text(let range): bytes += UnsafeBufferPointer(rebasing: source[range])
                    case .token(let id): bytes += Array(String(Unicode.Scalar(placeholderFor[id]!)!).utf8)
                    }
                }
            }
            protected[index] = String(decoding: bytes, as: UTF8.self)
        }
        return (protected, placeholders)
    }

    /// The ids of a protected chat prompt: control and unknown tokens from the template, everything else
    /// encoded with special parsing off. `addBOS`/`addEOS` as in `encode(_:parseSpecial:addBOS:addEOS:)`.
    public func encode(_ prompt: ChatPrompt, addBOS: Bool? = nil, addEOS: Bool? = nil) -> [Int32] {
        var output: [Int32] = []
        if addBOS ?? vocabulary.addBOS, let bos { output.append(bos) }
        var text = prompt.protectedText
        text.withUTF8 { bytes in
            output.reserveCapacity(bytes.count / 3 + 2)
            var scratch = EncodeScratch()
            var expanded: [UInt8] = []
            for fragment in splitter.split(bytes, 0..<bytes.count, .controlAndUnknown) {
                switch fragment {
                case .token(let id):
                    output.append(id)
                case .text(let range):
                    if prompt.placeholders.isEmpty || !range.contains(where: { prompt.placeholder(at: $0, bytes, range) != nil }) {
                        appendIDs(bytes, range, .userDefined, into: &output, scratch: &scratch)
                    } else {
                        expanded.removeAll(keepingCapacity: true)
                        prompt.appendExpanding(bytes, range, into: &expanded)
                        expanded.withUnsafeBufferPointer {
                            appendIDs($0, 0..<$0.count, .userDefined, into: &output, scratch: &scratch)
                        }
                    }
                }
            }
        }
        if addEOS ?? vocabulary.addEOS, let eos { output.append(eos) }
        return output
    }

    /// A lower bound on `encode(prompt).count` without BOS/EOS (TokenCountBound.swift), O(n).
    public func minimumTokenCount(_ prompt: ChatPrompt) -> Int {
        // Control tokens come only from the template, so parsing mode; a placeholder weighs what its
        // text weighs.
        var text = prompt.protectedText
        let weight = text.withUTF8 { bytes -> UInt64 in
            guard !prompt.placeholders.isEmpty else { return countBound.weight(bytes, parseSpecial: true) }
            var weight: UInt64 = 0
            var i = 0
            var runStart = 0
            while i < bytes.count {
                if let (value, length) = prompt.placeholder(at: i, bytes, 0..<bytes.count) {
                    weight += countBound.weight(UnsafeBufferPointer(rebasing: bytes[runStart..<i]), parseSpecial: true)
                    weight += prompt.placeholders[value]!.withUnsafeBufferPointer { countBound.weight($0, parseSpecial: true) }
                    i += length
                    runStart = i
                } else {
                    i += 1
                }
            }
            return weight + countBound.weight(UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]), parseSpecial: true)
        }
        return countBound.minimumTokens(weight: weight)
    }

    /// Placeholders are taken from the private-use planes in this order: plane 16, then plane 15
    /// (U+xFFFE and U+xFFFF are noncharacters, left out).
    private static let firstPlaceholder: UInt32 = 0x10_0000

    private static func placeholder(after c: UInt32) -> UInt32? {
        switch c {
        case 0x10_FFFD: return 0xF_0000
        case 0xF_FFFD: return nil
        default: return c + 1
        }
    }

    /// Adds the plane-15 and plane-16 code points of `text` to `set`.
    private static func collectPrivateUse(_ text: String, into set: inout Set<UInt32>) {
        var text = text
        text.withUTF8 { bytes in
            // Only 4-byte sequences with lead byte F3 or F4 can be in planes 15-16; skip the rest fast.
            var i = 0
            while i < bytes.count {
                let b = bytes[i]
                if b >= 0xF3 && i + 4 <= bytes.count {
                    let value = (UInt32(b) & 0x07) << 18 | (UInt32(bytes[i + 1]) & 0x3F) << 12
                        | (UInt32(bytes[i + 2]) & 0x3F) << 6 | (UInt32(bytes[i + 3]) & 0x3F)
                    if value >= 0xF_0000 { set.insert(value) }
                    i += 4
                } else {
                    i += 1
                }
            }
        }
    }
}
