// Where the model and the socket are when nothing says otherwise: one rule for every command
// (`serve`, `ask`, `chat`, `generate`, ...), so that a checkout, a shell with LORAD_* set and an
// installed system all work without flags:
//
//   model:  --model, else (serve) the configuration's model.path, else $LORAD_MODEL, else
//           models/SmolLM2-135M-Instruct.Q4_1.gguf when it exists in the working directory (a
//           checkout after `make model`), else /var/lib/lorad/models/SmolLM2-135M-Instruct.Q4_1.gguf
//           (an installed system);
//   socket: --socket, else (serve) the configuration's server.socket, else $LORAD_SOCKET, else
//           (clients only) run/lorad.sock when it exists (a checkout running `make run`), else
//           /run/lorad/lorad.sock (systemd's lorad.socket);
//   adapters: --adapters, else the configuration's adapters.dir (serve, or `--config` for the
//           `adapter` commands), else $LORAD_ADAPTERS, else adapters/ when it exists (a checkout),
//           else /var/lib/lorad/adapters.

import Foundation

public enum LocalDefaults {
    public static let modelFileName = "SmolLM2-135M-Instruct.Q4_1.gguf"
    public static let checkoutModel = "models/" + modelFileName
    public static let systemModel = "/var/lib/lorad/models/" + modelFileName
    public static let checkoutSocket = "run/lorad.sock"
    public static let systemSocket = "/run/lorad/lorad.sock"
    public static let checkoutAdapters = "adapters"
    public static let systemAdapters = "/var/lib/lorad/adapters"

    public static func modelPath(environment: [String: String] = ProcessInfo.processInfo.environment,
                                 exists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }) -> String {
        if let env = environment["LORAD_MODEL"], !env.isEmpty { return env }
        return exists(checkoutModel) ? checkoutModel : systemModel
    }

    /// The socket a client (`ask`, `chat --socket`) talks to.
    public static func clientSocket(environment: [String: String] = ProcessInfo.processInfo.environment,
                                    exists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }) -> String {
        if let env = environment["LORAD_SOCKET"], !env.isEmpty { return env }
        return exists(checkoutSocket) ? checkoutSocket : systemSocket
    }

    /// The adapter registry's root when no flag or configuration names one.
    public static func adaptersDirectory(environment: [String: String] = ProcessInfo.processInfo.environment,
                                         exists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }) -> String {
        if let env = environment["LORAD_ADAPTERS"], !env.isEmpty { return env }
        return exists(checkoutAdapters) ? checkoutAdapters : systemAdapters
    }

    /// The defaults `serve` starts from before its configuration file and flags: the environment's
    /// model, socket and adapters.
    public static func serverBase(environment: [String: String] = ProcessInfo.processInfo.environment,
                                  exists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }) -> ServerConfig {
        var c = ServerConfig()
        c.model.path = modelPath(environment: environment, exists: exists)
        if let env = environment["LORAD_SOCKET"], !env.isEmpty { c.server.socket = env }
        c.adapters.dir = adaptersDirectory(environment: environment, exists: exists)
        return c
    }
}
