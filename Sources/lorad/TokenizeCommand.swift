// `lorad tokenize [--model PATH] TEXT`: the token ids of a text, as llama.cpp's tokenizer gives them.
// Special-token parsing is on by default, as in llama.cpp's own tokenize tool.
import ArgumentParser
import ModelFormats
import Tokenizer

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the token ids of a text.",
        discussion: """
            Prints the ids on one line, separated by spaces. Texts of control tokens such as <|im_start|> \
            become their single ids unless --no-special is given. BOS/EOS are added only if the model asks \
            for them (SmolLM2 does not).
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: "The text to tokenize.")
    var text: String

    @Flag(help: "Print a JSON array of ids.")
    var json = false

    @Flag(help: "Print one 'id<TAB>piece' line per token (pieces escaped: \\n, \\t, \\\\, \\xHH).")
    var pieces = false

    @Flag(name: .customLong("no-special"), help: "Tokenize control-token texts as plain text.")
    var noSpecial = false

    func validate() throws {
        if json && pieces { throw ValidationError("--json and --pieces cannot be used together") }
    }

    func run() throws {
        let path = modelOptions.resolvedPath
        let tokenizer: Tokenizer
        do {
            tokenizer = try Tokenizer(gguf: GGUFFile(path: path))
        } catch {
            fail("\(path): \(error)")
        }
        let ids = tokenizer.encode(text, parseSpecial: !noSpecial)
        if json {
            print("[" + ids.map(String.init).joined(separator: ",") + "]")
        } else if pieces {
            for id in ids { print("\(id)\t\(tokenizer.displayPiece(id))") }
        } else {
            print(ids.map(String.init).joined(separator: " "))
        }
    }
}
