// `--model`, shared by every command that opens a base model.
import ArgumentParser
import Foundation

/// The default model path, relative to the working directory (a checkout after `make model`).
let defaultModelPath = "models/SmolLM2-135M-Instruct.Q4_1.gguf"

struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "GGUF file of the base model (default: $LORAD_MODEL, else \(defaultModelPath)).",
        valueName: "path"))
    var model: String?

    /// The flag, then LORAD_MODEL, then the default.
    var resolvedPath: String {
        if let model { return model }
        if let env = ProcessInfo.processInfo.environment["LORAD_MODEL"], !env.isEmpty { return env }
        return defaultModelPath
    }
}

/// Prints an error to stderr and exits with `code`. Used for failures that are not usage errors
/// (a bad file, a missing model): ArgumentParser reserves exit code 64 for usage errors.
func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("error: \(message)\n".utf8))
    exit(code)
}

/// Writes to stdout unbuffered, so streamed text and line ends keep their order.
func emit(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}
