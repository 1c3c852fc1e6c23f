// The lorad command: a root that only lists subcommands. Logic lives in the libraries.
import ArgumentParser

@main
struct Lorad: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lorad",
        abstract: "Serve one shared base language model to many LoRA tenants.",
        version: LoradVersion.line,
        subcommands: [
            Inspect.self,
            Tokenize.self,
            Generate.self,
            Chat.self,
            Bench.self,
            Adapter.self,
            Train.self,
            Eval.self,
            Tenant.self,
            Serve.self,
            Ask.self,
        ]
    )
}
