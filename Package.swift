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
        // Memory-mapped files, GGUF reader and writer.
        .target(name: "ModelFormats", dependencies: ["Kernels", "SystemCalls"]),
        // Byte-level BPE, streaming detokenizer, chat prompts whose contents cannot forge control tokens.
        .target(name: "Tokenizer", dependencies: ["ModelFormats"]),
        // Chat templates: a Jinja subset interpreter, built-in templates, rendering a chat for a tokenizer.
        .target(name: "ChatTemplate", dependencies: ["ModelFormats", "Tokenizer", "SystemCalls"]),
        // LoRA adapters: PEFT and llama.cpp formats, validation against a base, merge, combine, export.
        .target(name: "LoRA", dependencies: ["Kernels", "ModelFormats"]),
        // Model config from GGUF keys, weights bound by name, forward pass, KV cache, sampler.
        .target(name: "Llama", dependencies: ["Kernels", "ModelFormats", "Tokenizer", "ChatTemplate", "LoRA"]),

        // `lorad bench`: the speed figures (llama-bench's and llama-batched-bench's, adapters, tokenizer).
        .target(name: "Bench", dependencies: ["Kernels", "Tokenizer", "LoRA", "Llama"]),

        // Request queue, continuous-batching scheduler, sequences, prefix cache, token events.
        // Knows nothing of HTTP, JSON wire types or libuv.
        .target(name: "Engine", dependencies: ["Kernels", "Tokenizer", "LoRA", "Llama"]),
        // Pure HTTP/1.1: incremental request parser, response writer, SSE framing. No sockets.
        .target(name: "HTTP"),
        // The daemon: libuv wrapper (the only importer of CLibUV), listeners, router, OpenAI-compatible
        // endpoints, metrics, configuration, systemd notify and socket activation.
        .target(name: "Server", dependencies: [
            "CLibUV", "HTTP", "Engine", "Llama", "LoRA", "Tokenizer", "ChatTemplate", "ModelFormats", "SystemCalls",
            .product(name: "TOMLKit", package: "TOMLKit"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // The blocking client of a running daemon (one request per connection over its Unix socket),
        // for `lorad ask`, chat's daemon backend and the live tests. Foundation, Glibc and SystemCalls only.
        .target(name: "LoradClient", dependencies: ["SystemCalls"]),

        // `lorad chat`: the read-reply loop, line editing (libedit), slash commands, and the two
        // backends (the model in process, or a daemon over its socket).
        .target(name: "ChatREPL", dependencies: ["CLibEdit", "Llama", "Tokenizer", "ChatTemplate", "ModelFormats",
                                                "LoradClient", "SystemCalls"]),

        // The one executable: argument parsing and wiring only.
        .executableTarget(name: "lorad", dependencies: [
            "Kernels", "ModelFormats", "Tokenizer", "ChatTemplate", "LoRA", "Llama", "Bench", "Engine", "Server",
            "LoradClient", "ChatREPL",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], plugins: ["BuildInfo"]),
        // Writes BuildInfo.swift (the git commit) into lorad before each build, for `lorad --version`.
        .plugin(name: "BuildInfo", capability: .buildTool()),

        .testTarget(name: "KernelsTests", dependencies: ["Kernels"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "SystemCallsTests", dependencies: ["SystemCalls"]),
        .testTarget(name: "ModelFormatsTests", dependencies: ["ModelFormats", "Kernels"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "ModelFormats"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "ChatTemplateTests", dependencies: ["ChatTemplate", "Tokenizer", "ModelFormats"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "LoRATests", dependencies: ["LoRA", "ModelFormats", "Kernels"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "LlamaTests", dependencies: ["Llama", "Tokenizer", "ModelFormats", "Kernels"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Llama", "LoRA", "Tokenizer"]),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP"]),
        .testTarget(name: "ServerTests", dependencies: ["Server", "LoradClient", "HTTP", "Engine", "Llama", "ModelFormats"]),
        .testTarget(name: "ChatREPLTests", dependencies: ["ChatREPL"]),
        .testTarget(name: "LoradCLITests", dependencies: ["ModelFormats"]),
    ],
    swiftLanguageModes: [.v6]
)
