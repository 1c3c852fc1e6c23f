// swift-tools-version:6.0
// lorad: one shared base model, many LoRA tenants. Module graph and threading: docs/architecture.md.
import PackageDescription

let package = Package(
    name: "lorad",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "lorad", targets: ["lorad"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // C libraries, found through pkg-config. Only the libuv wrapper imports CLibUV and only
        // Kernels imports COpenBLAS, both as `internal import`.
        .systemLibrary(name: "CLibUV", path: "Sources/CLibUV", pkgConfig: "libuv",
                       providers: [.apt(["libuv1-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // libedit for `lorad chat`'s line editing, dlopen'ed at run time (only its header is needed
        // to build, so no pkg-config link flags); only ChatREPL's LineEditor imports it.
        .systemLibrary(name: "CLibEdit", path: "Sources/CLibEdit", providers: [.apt(["libedit-dev"])]),

        // SIMD kernels in C: AVX2/FMA/F16C functions (per-function target attributes, chosen at run
        // time from CPUID) beside portable ones, so one binary runs on any x86-64.
        .target(name: "CKernels"),
        // Element types, quantized block formats and the math on them.
        .target(name: "Kernels", dependencies: ["COpenBLAS", "CKernels"]),
        // One policy for POSIX calls (EINTR retried, failures thrown with the call, path and errno).
        .target(name: "SystemCalls"),
        // JSON: the one strict reader (JSONParser → JSONValue) and writer (JSONValue, one string escaper)
        // for all the JSON lorad reads or writes: OpenAI bodies, safetensors headers, adapter_config.json.
        .target(name: "JSON"),
        // Memory-mapped files, GGUF reader and writer, safetensors reader and writer.
        .target(name: "ModelFormats", dependencies: ["Kernels", "SystemCalls", "JSON"]),
        // Byte-level BPE, streaming detokenizer, chat prompts whose contents cannot forge control tokens.
        .target(name: "Tokenizer", dependencies: ["ModelFormats"]),
        // Structured output's lexer layer (issue 20; Sampling's TokenConstraint wires it for regexes,
        // JSON Schema not yet): regex → UTF-8 byte DFA, the vocabulary's token trie, per-state token
        // masks, and JSON Schema → regex. Takes token byte strings; depends only on JSON (schemas
        // arrive as JSONValue).
        .target(name: "Grammar", dependencies: ["JSON"]),
        // Chat templates: a Jinja subset interpreter, built-in templates, rendering a chat for a tokenizer.
        .target(name: "ChatTemplate", dependencies: ["ModelFormats", "Tokenizer", "JSON", "SystemCalls"]),
        // LoRA adapters: PEFT and llama.cpp formats, validation against a base, merge, combine, export.
        .target(name: "LoRA", dependencies: ["Kernels", "ModelFormats", "JSON", .product(name: "Crypto", package: "swift-crypto")]),
        // Model config from GGUF keys, weights bound by name, forward pass (with adapters), KV cache.
        .target(name: "Llama", dependencies: ["Kernels", "ModelFormats", "LoRA"]),
        // Choosing tokens (llama.cpp's sampling chain, a regex constraint's mask first), stop strings,
        // limits, and one sequence's token-by-token decision of what to show and when to end, shared by
        // the commands and the engine.
        .target(name: "Sampling", dependencies: ["Tokenizer", "Grammar", "JSON"]),
        // A model opened for use (GGUF, forward pass, tokenizer, chat template) and the
        // single-sequence generation loop the commands run.
        .target(name: "Generation", dependencies: ["ModelFormats", "Tokenizer", "ChatTemplate", "LoRA", "Llama", "Sampling"]),

        // The versioned adapter registry on disk: layout, manifests with sha256, one atomic publish
        // path, activation, rollback, removal. Reads and writes files: never on the loop thread.
        .target(name: "Registry", dependencies: ["LoRA", "ModelFormats", "JSON", "SystemCalls",
                                                 .product(name: "Crypto", package: "swift-crypto")]),

        // The embedded trainer: LoRA fine-tuning through the frozen (quantized) base: training data
        // (chat JSONL rendered as serving renders it, loss masks, packing), the backward pass for the
        // LoRA parameters, the optimizer and the loop. Shares the forward pass's layers with Llama.
        .target(name: "Training", dependencies: ["Kernels", "ModelFormats", "JSON", "LoRA", "Llama", "Tokenizer", "ChatTemplate",
                                                 "Generation", "Registry", "Sampling", .product(name: "Crypto", package: "swift-crypto")]),

        // `lorad bench`: the speed figures (llama-bench's and llama-batched-bench's, adapters, tokenizer).
        .target(name: "Bench", dependencies: ["Kernels", "Tokenizer", "LoRA", "Llama", "Sampling", "Grammar", "JSON"]),

        // Request queue, continuous-batching scheduler, sequences, prefix cache, token events.
        // Knows nothing of HTTP, JSON wire types or libuv.
        .target(name: "Engine", dependencies: ["Kernels", "Tokenizer", "LoRA", "Llama", "Sampling"]),
        // Pure HTTP/1.1: incremental request parser, response writer, SSE framing. No sockets.
        .target(name: "HTTP"),
        // The daemon: libuv wrapper (the only importer of CLibUV), listeners, router, OpenAI-compatible
        // endpoints, metrics, configuration, systemd notify and socket activation.
        .target(name: "Server", dependencies: [
            "CLibUV", "HTTP", "Engine", "Kernels", "Training", "Llama", "Sampling", "Grammar", "Generation", "Registry", "LoRA", "Tokenizer", "ChatTemplate", "ModelFormats", "SystemCalls", "JSON",
            .product(name: "TOMLKit", package: "TOMLKit"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),

        // The blocking client of a running daemon (one request per connection over its Unix socket),
        // for `lorad ask`, chat's daemon backend and the live tests. Foundation, Glibc and SystemCalls only.
        .target(name: "LoradClient", dependencies: ["SystemCalls"]),

        // `lorad chat`: the read-reply loop, line editing (libedit), slash commands, and the two
        // backends (the model in process, or a daemon over its socket).
        .target(name: "ChatREPL", dependencies: ["CLibEdit", "Llama", "Sampling", "Generation", "Tokenizer", "ChatTemplate", "ModelFormats",
                                                "JSON", "LoradClient", "SystemCalls"]),

        // The one executable: argument parsing and wiring only.
        .executableTarget(name: "lorad", dependencies: [
            "Kernels", "JSON", "ModelFormats", "Tokenizer", "ChatTemplate", "LoRA", "Llama", "Sampling", "Generation", "Registry", "Bench", "Engine", "Server",
            "LoradClient", "ChatREPL", "Training",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Crypto", package: "swift-crypto"),
        ], plugins: ["BuildInfo"]),
        // Writes BuildInfo.swift (the git commit) into lorad before each build, for `lorad --version`.
        .plugin(name: "BuildInfo", capability: .buildTool()),

        .testTarget(name: "KernelsTests", dependencies: ["Kernels"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "SystemCallsTests", dependencies: ["SystemCalls"]),
        .testTarget(name: "JSONTests", dependencies: ["JSON", "Kernels"]),
        .testTarget(name: "ModelFormatsTests", dependencies: ["ModelFormats", "Kernels", "JSON"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "ModelFormats"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "GrammarTests", dependencies: ["Grammar", "JSON", "Tokenizer", "ModelFormats"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "ChatTemplateTests", dependencies: ["ChatTemplate", "Tokenizer", "ModelFormats", "JSON"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "LoRATests", dependencies: ["LoRA", "ModelFormats", "Kernels"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "LlamaTests", dependencies: ["Llama", "Tokenizer", "ModelFormats", "Kernels"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "RegistryTests", dependencies: ["Registry", "LoRA", "ModelFormats", "JSON"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Llama", "LoRA", "ModelFormats", "Kernels", "JSON",
                                                       "Tokenizer", "ChatTemplate", "Generation", "Registry"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "SamplingTests", dependencies: ["Sampling"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Llama", "Sampling", "Generation", "LoRA", "Tokenizer"]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP"]),
        .testTarget(name: "ServerTests", dependencies: ["Server", "LoradClient", "HTTP", "Engine", "Llama", "Sampling", "ModelFormats",
                                                     "JSON", "LoRA", "Registry", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "ChatREPLTests", dependencies: ["ChatREPL"]),
        .testTarget(name: "LoradCLITests", dependencies: ["ModelFormats", "JSON"]),
    ],
    swiftLanguageModes: [.v6]
)
