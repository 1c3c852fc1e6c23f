// `lorad serve`: the daemon. Reads the configuration (built-in defaults, then --config FILE, then
// flags), loads the model, then hands everything to Server's Daemon, which binds the socket only
// once it can answer. Exit 0 after a drain (SIGTERM/SIGINT), 1 on a start-up failure, 78 (EX_CONFIG)
// on a bad configuration.
import ArgumentParser
import Foundation
import Generation
import Llama
import Server

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon: OpenAI-compatible HTTP on a Unix socket, every adapter of a directory.")

    @Option(name: .long, help: ArgumentHelp("TOML configuration (see config/lorad.toml); built-in defaults without one.", valueName: "file"))
    var config: String?
    @Option(name: .long, help: ArgumentHelp("GGUF file of the base model (model.path).", valueName: "path"))
    var model: String?
    @Option(name: .long, help: ArgumentHelp("Directory of adapters to serve (adapters.dir).", valueName: "dir"))
    var adapters: String?
    @Option(name: .long, help: ArgumentHelp("Unix socket path (server.socket).", valueName: "path"))
    var socket: String?
    @Option(name: .long, help: ArgumentHelp("Compute threads, 0 = all cores (model.threads).", valueName: "n"))
    var threads: Int?
    @Option(name: .long, help: ArgumentHelp("Also listen on TCP, loopback by default (server.tcp).", valueName: "host:port"))
    var tcp: String?
    @Option(name: .customLong("served-model-name"), help: ArgumentHelp("Name of the base model in the API (model.served_model_name).", valueName: "name"))
    var servedModelName: String?
    @Option(name: .long, help: ArgumentHelp("Activation numerics: f32 (exact), q8 (Q8 activations, as llama.cpp; much faster) or llama.cpp (model.numerics).", valueName: "f32|q8|llama.cpp"))
    var numerics: String?
    @Option(name: .customLong("log-level"), help: ArgumentHelp("trace, debug, info, notice, warning, error or critical (log.level).", valueName: "level"))
    var logLevel: String?

    func run() throws {
        var cfg: ServerConfig
        // $LORAD_MODEL, the checkout's models/, $LORAD_SOCKET: the rule every command follows.
        let base = LocalDefaults.serverBase()
        let overrides = ConfigOverrides(model: model, adaptersDir: adapters, socket: socket, threads: threads, tcp: tcp,
                                        servedModelName: servedModelName, logLevel: logLevel, numerics: numerics)
        do {
            cfg = try config.map { try ServerConfig.load(path: $0, base: base) } ?? base
            try cfg.apply(overrides)
        } catch {
            fail("\(error)", code: 78)
        }
        LogSetup.bootstrap(level: cfg.log.level)
        let fds: [Int32]
        do {
            fds = try SocketActivation.listenFDs(environment: ProcessInfo.processInfo.environment).map(\.fd)
        } catch {
            fail("socket activation: \(error)")
        }
        let bundle: ModelBundle
        do {
            bundle = try ModelBundle(path: cfg.model.path, threads: cfg.model.threads == 0 ? nil : cfg.model.threads,
                                     numerics: cfg.model.numerics, chatTemplate: cfg.model.chatTemplate)
        } catch {
            fail("cannot load the model \(cfg.model.path): \(error)")
        }
        do {
            let daemon = try Daemon(config: cfg, bundle: bundle, passedFDs: fds, configPath: config, overrides: overrides,
                                    configBase: base)
            try daemon.run()
        } catch {
            fail("\(error)")
        }
    }
}
