// `--model`, shared by every command that opens a base model.
import ArgumentParser
import Foundation
import Server

struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "GGUF file of the base model (default: $LORAD_MODEL, else \(LocalDefaults.checkoutModel) if it exists, "
            + "else \(LocalDefaults.systemModel)).",
        valueName: "path"))
    var model: String?

    /// The flag, then the rule every command follows (LocalDefaults).
    var resolvedPath: String { model ?? LocalDefaults.modelPath() }
}

/// Prints an error to stderr and exits with `code`. Used for failures that are not usage errors
/// (a bad file, a missing model): ArgumentParser reserves exit code 64 for usage errors. The prefix
/// is ArgumentParser's own ("Error: "), so every failure of every command reads the same.
func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("Error: \(message)\n".utf8))
    exit(code)
}

/// Writes to stdout unbuffered, so streamed text and line ends keep their order.
func emit(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}
