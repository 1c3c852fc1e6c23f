// `lorad inspect [PATH]`: a GGUF file's metadata and tensor table.
import ArgumentParser
import JSON
import ModelFormats

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a GGUF file's metadata and tensor table.")

    @Argument(help: ArgumentHelp("GGUF file to inspect (default: the --model path).", valueName: "path"))
    var path: String?

    @OptionGroup var modelOptions: ModelOptions

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    @Option(help: "Show at most this many elements of each metadata array (0: all).")
    var arrayLimit = 8

    func validate() throws {
        guard arrayLimit >= 0 else { throw ValidationError("--array-limit must be 0 or more") }
    }

    func run() throws {
        let file = path ?? modelOptions.resolvedPath
        let gguf: GGUFFile
        do {
            gguf = try GGUFFile(path: file)
        } catch {
            fail("\(file): \(error)")
        }
        let limit = arrayLimit == 0 ? nil : arrayLimit
        if json {
            print(gguf.describeJSON(arrayLimit: limit).serialized())
        } else {
            print(gguf.describe(arrayLimit: limit ?? Int.max), terminator: "")
        }
    }
}
