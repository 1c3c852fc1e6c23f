// lorad's tokenizer: llama.cpp's byte-level BPE with the smollm pre-tokenizer, giving the same ids as
// llama.cpp (golden tests: scripts/goldens/tokenizer.py). The stages live in their own files:
// SpecialTokenSplitter (special tokens) -> PreTokenizer (pieces) -> BPE (ids); PieceTable and
// StreamingDecoder go back. ChatPromptEncoding renders and encodes chat prompts whose message contents
// cannot forge control tokens; TokenCountBound bounds the count from below without encoding.
// Everything is immutable after init, so one Tokenizer serves all threads.
//
// Text and bytes: a Swift String is always valid UTF-8, so encoding never meets invalid input. Decoding
// can: ids may end in the middle of a character, and bytes without a token are dropped on the way in
// (FORMATS.md §6.2 step 5). `decodeBytes` returns llama.cpp's raw bytes; `decode` turns them into a
// String, replacing each invalid sequence with U+FFFD; StreamingDecoder holds back an incomplete
// sequence at the end until the next token completes it (or `flush` replaces it).
import ModelFormats

public final class Tokenizer: Sendable {
    public let vocabulary: Vocabulary
    let splitter: SpecialTokenSplitter
    private let bpe: BPE
    private let pieces: PieceTable
    let countBound: TokenCountBound

    /// The pre-tokenizers lorad implements, by `tokenizer.ggml.pre` value.
    public static let supportedPreTokenizers: Set<String> = ["smollm"]

    /// Builds the tokenizer of a model file; throws `TokenizerError.unsupportedModel` /
    /// `.unsupportedPreTokenizer` for a tokenizer lorad does not implement.
    public convenience init(gguf: GGUFFile) throws {
        try self.init(configuration: TokenizerConfiguration(metadata: gguf.metadata))
    }

    public init(configuration: TokenizerConfiguration) throws {
        guard configuration.model == "gpt2" else { throw TokenizerError.unsupportedModel(configuration.model) }
        guard let pre = configuration.preTokenizer, Self.supportedPreTokenizers.contains(pre) else {
            throw TokenizerError.unsupportedPreTokenizer(configuration.preTokenizer)
        }
        let vocabulary = try Vocabulary(configuration)
        self.vocabulary = vocabulary
        self.splitter = SpecialTokenSplitter(vocabulary: vocabulary)
        self.bpe = BPE(vocabulary: vocabulary, merges: configuration.merges)
        self.pieces = PieceTable(vocabulary: vocabulary)
        self.countBound = TokenCountBound(vocabulary: vocabulary)
    }

    public var vocabularySize: Int { vocabulary.count }
    public var bos: Int32? { vocabulary.specialIDs[.bos] }
    public var eos: Int32? { vocabulary.specialIDs[.eos] }
    /// Tokens that end generation (for SmolLM2: 0, 2 and 4).
    public var eogTokens: Set<Int32> { vocabulary.endOfGeneration }

    public func isEndOfGeneration(_ id: Int32) -> Bool { vocabulary.endOfGeneration.contains(id) }

    /// Whether `id` is a control token (rendered as nothing unless special rendering is asked for).
    public func isControl(_ id: Int32) -> Bool {
        id >= 0 && Int(id) < vocabulary.count && vocabulary.attributes[Int(id)].contains(.control)
    }

    /// Token ids for `text`.
    /// - parseSpecial: cut control tokens written in the text (e.g. "<|im_start|>") as single ids;
    ///   when false they are tokenized as plain text. User-defined tokens are cut either way.
    /// - addBOS / addEOS: nil follows the model (`tokenizer.ggml.add_bos_token` / `add_eos_token`, both
    ///   false for SmolLM2); true adds the token if the model has one.
    public func encode(_ text: String, parseSpecial: Bool = true, addBOS: Bool? = nil, addEOS: Bool? = nil) -> [Int32] {
        var output: [Int32] = []
        if addBOS ?? vocabulary.addBOS, let bos { output.append(bos) }
        var text = text
        text.withUTF8 { bytes in
            output.reserveCapacity(bytes.count / 3 + 2)
            var scratch = EncodeScratch()
            appendIDs(bytes, 0..<bytes.count, SpecialTokenSelection(parseSpecial: parseSpecial), into: &output,
                      scratch: &scratch)
        }
        if addEOS ?? vocabulary.addEOS, let eos { output.append(eos) }
        return output
    }

    /// Appends the ids of `bytes[range]`, cutting the special tokens `selection` names.
    func appendIDs(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ selection: SpecialTokenSelection,
                   into output: inout [Int32], scratch: inout EncodeScratch) {
        let bpeScratch = scratch.bpe
        for fragment in splitter.split(bytes, range, selection) {
            switch fragment {
            case .token(let id):
                output.append(id)
            case .text(let range):
                PreTokenizer.split(bytes, range) { piece in
                    bpe.encode(bytes, piece, into: &output, scratch: bpeScratch)
                }
            }
        }
    }

    /// The raw bytes of `ids`, as llama.cpp's detokenizer gives them (may be invalid UTF-8).
    /// Ids outside the vocabulary contribute nothing.
    public func decodeBytes(_ ids: [Int32], renderSpecial: Bool = false) -> [UInt8] {
        var out: [UInt8] = []
        for id in ids { out += pieces.piece(id, renderSpecial: renderSpecial) }
        return out
    }

    /// The text of `ids`; invalid UTF-8 (a character cut off at the end, a dropped byte) becomes U+FFFD.
    public func decode(_ ids: [Int32], renderSpecial: Bool = false) -> String {
        String(decoding: decodeBytes(ids, renderSpecial: renderSpecial), as: UTF8.self)
    }

    /// The raw bytes of one token (control tokens included unless `renderSpecial` is false).
    public func piece(_ id: Int32, renderSpecial: Bool = true) -> [UInt8] {
        Array(pieces.piece(id, renderSpecial: renderSpecial))
    }

    /// The token's text as stored in the vocabulary (byte-to-unicode spelling), or nil when out of range.
    public func tokenText(_ id: Int32) -> String? {
        id >= 0 && Int(id) < vocabulary.count ? vocabulary.tokens[Int(id)] : nil
    }

    /// A decoder for tokens that arrive one at a time.
    public func streamingDecoder(renderSpecial: Bool = false) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, renderSpecial: renderSpecial)
    }

    /// Reusable buffers of one encode call.
    struct EncodeScratch {
        let bpe = BPEScratch()
    }

    // MARK: Internal hooks for tests

    /// The pieces the pre-tokenizer cuts `text` into (no special-token handling), fast and reference.
    func preTokenize(_ text: String) -> [String] {
        var text = text
        return text.withUTF8 { bytes in
            var out: [String] = []
            PreTokenizer.split(bytes, 0..<bytes.count) { range in
                out.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self))
            }
            return out
        }
    }

    func preTokenizeReference(_ text: String) -> [String] {
        var text = text
        return text.withUTF8 { bytes in
            var scratch = PreTokenizerScratch()
            var out: [String] = []
            PreTokenizer.splitReference(bytes, 0..<bytes.count, scratch: &scratch) { range in
                out.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self))
            }
            return out
        }
    }

    /// BPE of one piece, fast and reference versions.
    func bpeFast(_ piece: [UInt8]) -> [Int32] {
        var out: [Int32] = []
        let scratch = BPEScratch()
        piece.withUnsafeBufferPointer { bpe.encode($0, 0..<$0.count, into: &out, scratch: scratch) }
        return out
    }

    func bpeReference(_ piece: [UInt8]) -> [Int32] { bpe.encodeReference(piece) }
}
