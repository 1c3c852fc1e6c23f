// Special tokens, BOS/EOS and end-of-generation rules (llama.cpp `llama_vocab::impl::load`) on tiny
// hand-made vocabularies, and the errors for tokenizers lorad does not implement.
import ModelFormats
import Testing
@testable import Tokenizer

@Suite("vocabulary and special tokens")
struct VocabularyTests {
    // Ids: bytes 0-255, then controls from 256.
    static let chatControls = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>"]

    @Test("end of generation: eos, end-marker texts and fim-repo, as llama.cpp computes it")
    func endOfGeneration() throws {
        let t = try tinyTokenizer(controls: Self.chatControls, special: [.bos: 257, .eos: 258])
        // <|endoftext|> and <|im_end|> by text, <reponame> as fim-repo (found by text), eos = <|im_end|>.
        #expect(t.eogTokens == [256, 258, 260])
        #expect(t.isEndOfGeneration(260) && !t.isEndOfGeneration(257) && !t.isEndOfGeneration(259))
        #expect(t.vocabulary.specialIDs[.fimRepo] == 260)
        #expect(t.vocabulary.specialIDs[.eot] == 256)  // lowest id among the end-of-turn texts
        #expect(t.bos == 257 && t.eos == 258)
    }

    @Test("metadata eos joins the set; ids outside the vocabulary are ignored; BPE defaults are 11")
    func specialIDs() throws {
        let t = try tinyTokenizer(controls: ["<stop>"], special: [.eos: 256, .bos: 9999])
        #expect(t.eos == 256)
        #expect(t.bos == 11)  // 9999 is out of range: llama.cpp keeps its BPE default, 11
        #expect(t.eogTokens == [256])
        let none = try tinyTokenizer()
        #expect(none.eos == 11 && none.eogTokens == [11])
        let tiny = try Tokenizer(configuration: TokenizerConfiguration(tokens: ["a", "b"], merges: []))
        #expect(tiny.bos == nil && tiny.eos == nil && tiny.eogTokens.isEmpty)
    }

    @Test("an end-marker text typed normal becomes a control token")
    func forcedControl() throws {
        let t = try tinyTokenizer(extra: ["<|im_end|>"], special: [.eos: 10])
        let id: Int32 = 256
        #expect(t.isControl(id))
        #expect(t.eogTokens == [10, 256])
        #expect(t.encode("a<|im_end|>") == [97, id])
        #expect(t.decode([97, id]) == "a")
        #expect(t.decode([97, id], renderSpecial: true) == "a<|im_end|>")
    }

    @Test("BOS and EOS follow the model's flags unless the caller says otherwise")
    func addBOSAndEOS() throws {
        let plain = try tinyTokenizer(controls: ["<s>", "</s>"], special: [.bos: 256, .eos: 257])
        #expect(plain.encode("a") == [97])
        #expect(plain.encode("a", addBOS: true) == [256, 97])
        let flagged = try tinyTokenizer(controls: ["<s>", "</s>"], special: [.bos: 256, .eos: 257], addBOS: true, addEOS: true)
        #expect(flagged.encode("a") == [256, 97, 257])
        #expect(flagged.encode("") == [256, 257])
        #expect(flagged.encode("a", addBOS: false, addEOS: false) == [97])
    }

    @Test("special tokens are cut longest first, left to right, only when parsing specials")
    func specialSplitting() throws {
        // 256 "<x>", 257 "<x>y", 258 user-defined "@@"
        let t = try tinyTokenizer(controls: ["<x>", "<x>y"], userDefined: ["@@"])
        #expect(t.encode("<x>y<x>") == [257, 256])
        #expect(t.encode("a<x><x>b") == [97, 256, 256, 98])
        #expect(t.encode("<x") == [60, 120])
        #expect(t.encode("<x>", parseSpecial: false) == [60, 120, 62])
        // User-defined tokens are cut even with special parsing off, and always render.
        #expect(t.encode("a@@b", parseSpecial: false) == [97, 258, 98])
        #expect(t.decode([258]) == "@@")
        #expect(t.decode([256]) == "" && t.decode([256], renderSpecial: true) == "<x>")
    }

    @Test("ids outside the vocabulary decode to nothing")
    func outOfRange() throws {
        let t = try tinyTokenizer()
        #expect(t.decode([97, -1, 99999, 98]) == "ab")
        #expect(t.piece(-5).isEmpty && t.tokenText(300) == nil)
    }

    @Test("byte tokens decode to the byte written in their text; unused tokens to nothing")
    func tokenTypes() throws {
        let t = try Tokenizer(configuration: TokenizerConfiguration(
            tokens: ["a", "<0x41>", "<0xe2>", "zz", "<0x"], tokenTypes: [.normal, .byte, .byte, .unused, .byte], merges: []))
        #expect(t.decodeBytes([0, 1, 2, 3, 4]) == [97, 0x41, 0xE2, 0])
    }
}

@Suite("unsupported tokenizers")
struct UnsupportedTokenizerTests {
    /// A GGUF holding a SmolLM2-like tokenizer (tiny), with `model` and `pre` as given.
    static func gguf(model: String?, pre: String?) throws -> GGUFFile {
        var w = GGUFWriter()
        w.set("general.architecture", .string("llama"))
        if let model { w.set("tokenizer.ggml.model", .string(model)) }
        if let pre { w.set("tokenizer.ggml.pre", .string(pre)) }
        w.set("tokenizer.ggml.tokens", .array(.string(["a", "b", "ab", "<|im_end|>"])))
        w.set("tokenizer.ggml.token_type", .array(.int32([1, 1, 1, 3])))
        w.set("tokenizer.ggml.merges", .array(.string(["a b"])))
        w.set("tokenizer.ggml.eos_token_id", .uint32(3))
        return try GGUFFile(bytes: w.bytes())
    }

    @Test("a hand-made GGUF with a supported tokenizer loads")
    func supported() throws {
        let t = try Tokenizer(gguf: Self.gguf(model: "gpt2", pre: "smollm"))
        #expect(t.encode("ab<|im_end|>") == [2, 3])
        #expect(t.eogTokens == [3])
    }

    @Test("tokenizer.ggml.model other than gpt2 is refused, naming the value",
          arguments: ["llama", "bert", "t5", "rwkv", "GPT2"])
    func unsupportedModel(model: String) throws {
        let file = try Self.gguf(model: model, pre: "smollm")
        let error = #expect(throws: TokenizerError.self) { try Tokenizer(gguf: file) }
        #expect(error == .unsupportedModel(model))
        #expect(error?.description.contains("unsupported tokenizer") == true)
        #expect(error?.description.contains("'\(model)'") == true)
    }

    @Test("tokenizer.ggml.pre other than smollm is refused, naming the value",
          arguments: ["qwen2", "llama3", "gpt-2", "starcoder", "default", ""])
    func unsupportedPre(pre: String) throws {
        let file = try Self.gguf(model: "gpt2", pre: pre)
        let error = #expect(throws: TokenizerError.self) { try Tokenizer(gguf: file) }
        #expect(error == .unsupportedPreTokenizer(pre))
        #expect(error?.description.contains("unsupported tokenizer: tokenizer.ggml.pre is '\(pre)'") == true)
    }

    @Test("a missing pre-tokenizer or model key is an error, not a guess")
    func missingKeys() throws {
        let noPre = try Self.gguf(model: "gpt2", pre: nil)
        #expect(throws: TokenizerError.unsupportedPreTokenizer(nil)) { try Tokenizer(gguf: noPre) }
        let noModel = try Self.gguf(model: nil, pre: "smollm")
        #expect(throws: TokenizerError.missingKey("tokenizer.ggml.model")) { try Tokenizer(gguf: noModel) }
    }

    @Test("malformed tokenizer metadata gives typed errors")
    func malformed() throws {
        var metadata: [String: GGUFValue] = [
            "tokenizer.ggml.model": .string("gpt2"), "tokenizer.ggml.pre": .string("smollm"),
            "tokenizer.ggml.tokens": .array(.int32([1, 2])), "tokenizer.ggml.merges": .array(.string([])),
        ]
        #expect(throws: TokenizerError.wrongValueType(key: "tokenizer.ggml.tokens", expected: "an array of strings",
                                                      found: "an array of i32")) {
            try Tokenizer(configuration: TokenizerConfiguration(metadata: metadata))
        }
        metadata["tokenizer.ggml.tokens"] = .array(.string(["a", "b", "a"]))
        #expect(throws: TokenizerError.duplicateToken(text: "a", first: 0, second: 2)) {
            try Tokenizer(configuration: TokenizerConfiguration(metadata: metadata))
        }
        metadata["tokenizer.ggml.tokens"] = .array(.string(["a", "b"]))
        metadata["tokenizer.ggml.token_type"] = .array(.int32([1]))
        #expect(throws: TokenizerError.tooFewTokenTypes(tokens: 2, types: 1)) {
            try Tokenizer(configuration: TokenizerConfiguration(metadata: metadata))
        }
        metadata["tokenizer.ggml.token_type"] = nil
        metadata["tokenizer.ggml.add_bos_token"] = .uint8(1)
        #expect(throws: TokenizerError.wrongValueType(key: "tokenizer.ggml.add_bos_token", expected: "a bool", found: "u8")) {
            try Tokenizer(configuration: TokenizerConfiguration(metadata: metadata))
        }
        metadata["tokenizer.ggml.add_bos_token"] = nil
        metadata["tokenizer.ggml.tokens"] = .array(.string([]))
        #expect(throws: TokenizerError.emptyVocabulary) {
            try Tokenizer(configuration: TokenizerConfiguration(metadata: metadata))
        }
    }
}
