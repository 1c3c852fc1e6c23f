// The table of every configuration key: its section and name, how its value is decoded and checked,
// where it goes in ServerConfig, and whether SIGHUP can apply a change to it. Parsing, unknown-key
// detection, flag overrides, reload classification and the test that config/lorad.toml documents
// every key all read this one table, so a key added here is known everywhere at once.

import Llama
import LoRA
import Logging
import Registry

/// How a SIGHUP treats a changed key.
enum ConfigReloadBehaviour {
    /// The new value takes effect for new requests and connections.
    case live
    /// Bound at start-up (the model, the listeners, allocations): a change waits for a restart.
    case restart
}

/// A key's decoder: what it accepts, for the message, and the conversion.
struct ConfigDecoder<T> {
    let decode: (ConfigValue) -> Result<T, ConfigMismatch>
}

/// Why a value was refused: the "expected ..." part of the message.
struct ConfigMismatch: Error { let expected: String }

struct ConfigKey {
    let section: String
    let name: String
    let reload: ConfigReloadBehaviour
    /// Decodes `value` into `config`; the mismatch on a bad value.
    let assign: (ConfigValue, inout ServerConfig) -> ConfigMismatch?
    /// True when the two configurations hold different values for this key.
    let differs: (ServerConfig, ServerConfig) -> Bool
    /// Copies this key's value from the first configuration into the second.
    let copy: (ServerConfig, inout ServerConfig) -> Void

    var path: String { "\(section).\(name)" }

    init<T: Equatable>(_ section: String, _ name: String, _ reload: ConfigReloadBehaviour,
                       _ keyPath: WritableKeyPath<ServerConfig, T>, _ decoder: ConfigDecoder<T>) {
        self.section = section
        self.name = name
        self.reload = reload
        assign = { value, config in
            switch decoder.decode(value) {
            case .success(let decoded): config[keyPath: keyPath] = decoded; return nil
            case .failure(let mismatch): return mismatch
            }
        }
        differs = { $0[keyPath: keyPath] != $1[keyPath: keyPath] }
        copy = { from, to in to[keyPath: keyPath] = from[keyPath: keyPath] }
    }

    /// An optional key: absent means nil; present, the decoded value.
    init<T: Equatable>(_ section: String, _ name: String, _ reload: ConfigReloadBehaviour,
                       _ keyPath: WritableKeyPath<ServerConfig, T?>, _ decoder: ConfigDecoder<T>) {
        self.init(section, name, reload, keyPath, ConfigDecoder<T?> { value in decoder.decode(value).map { $0 } })
    }
}

extension ConfigKey {
    /// Sections in the order the example file presents them.
    static let sections = ["model", "adapters", "server", "engine", "admin", "training", "log"]

    /// Every key. Ranges are wide enough for any sane deployment and narrow enough to catch a
    /// unit mistake (bytes for MiB, milliseconds for seconds).
    static var all: [ConfigKey] {
        [
            ConfigKey("model", "path", .restart, \.model.path, .nonEmptyString),
            ConfigKey("model", "served_model_name", .restart, \.model.servedModelName, .modelName),
            ConfigKey("model", "threads", .restart, \.model.threads, .integer(0...1024)),
            ConfigKey("model", "chat_template", .restart, \.model.chatTemplate, .nonEmptyString),
            ConfigKey("model", "context", .restart, \.model.context, .integer(16...1 << 20)),
            ConfigKey("model", "numerics", .restart, \.model.numerics,
                      .choice([("f32", .f32), ("llama.cpp", .llamaCpp), ("llamacpp", .llamaCpp), ("q8", .q8)])),

            ConfigKey("adapters", "dir", .live, \.adapters.dir, .nonEmptyString),
            ConfigKey("adapters", "rescan_seconds", .live, \.adapters.rescanInterval, .seconds(0...86400)),
            ConfigKey("adapters", "import_roots", .live, \.adapters.importRoots, .absolutePaths),
            ConfigKey("adapters", "cache_bytes", .live, \.adapters.cacheBytes, .byteSize(0...(1 << 40))),
            ConfigKey("adapters", "preload", .live, \.adapters.preload, .adapterNames),
            ConfigKey("adapters", "merged_bytes", .live, \.adapters.mergedBytes, .byteSize(0...(1 << 40))),
            ConfigKey("adapters", "merged_type", .live, \.adapters.mergedType, .choice([("base", .baseType), ("f16", .f16), ("f32", .f32)])),
            ConfigKey("adapters", "merge", .live, \.adapters.merge, .adapterNames),

            ConfigKey("server", "socket", .restart, \.server.socket, .socketPath),
            ConfigKey("server", "socket_mode", .restart, \.server.socketMode, .octalMode),
            ConfigKey("server", "socket_group", .restart, \.server.socketGroup, .nonEmptyString),
            ConfigKey("server", "tcp", .restart, \.server.tcp, .tcpAddress),
            ConfigKey("server", "tcp_allow_remote", .restart, \.server.tcpAllowRemote, .boolean),
            ConfigKey("server", "max_body_bytes", .live, \.server.maxBodyBytes, .byteSize(1 << 10...1 << 30)),
            ConfigKey("server", "max_header_bytes", .live, \.server.maxHeaderBytes, .byteSize(1 << 10...1 << 20)),
            ConfigKey("server", "idle_timeout_seconds", .live, \.server.idleTimeout, .seconds(1...86400)),
            ConfigKey("server", "read_timeout_seconds", .live, \.server.readTimeout, .seconds(1...3600)),
            ConfigKey("server", "write_buffer_bytes", .live, \.server.writeBufferBytes, .byteSize(4 << 10...1 << 30)),
            ConfigKey("server", "slow_reader_timeout_seconds", .live, \.server.slowReaderTimeout, .seconds(1...3600)),
            ConfigKey("server", "drain_timeout_seconds", .live, \.server.drainTimeout, .seconds(0...3600)),
            ConfigKey("server", "max_connections", .live, \.server.maxConnections, .integer(0...1_000_000)),
            ConfigKey("server", "max_connections_per_uid", .live, \.server.maxConnectionsPerUID, .integer(0...1_000_000)),

            ConfigKey("engine", "max_sequences", .restart, \.engine.maxSequences, .integer(1...1024)),
            ConfigKey("engine", "kv_budget", .restart, \.engine.kvBudgetBytes, .byteSize(1 << 20...1 << 40)),
            ConfigKey("engine", "queue_limit", .live, \.engine.queueLimit, .integer(0...1_000_000)),
            ConfigKey("engine", "per_adapter_queue_limit", .live, \.engine.perAdapterQueueLimit, .integer(0...1_000_000)),
            ConfigKey("engine", "prefill_chunk", .restart, \.engine.prefillChunk, .integer(16...65536)),
            ConfigKey("engine", "prefill_first", .restart, \.engine.prefillFirst, .boolean),
            ConfigKey("engine", "prefix_cache", .restart, \.engine.prefixCache, .boolean),
            ConfigKey("engine", "max_tokens_default", .live, \.engine.maxTokensDefault, .integer(0...1 << 20)),

            ConfigKey("admin", "uids", .live, \.admin.uids, .integers(0...Int(UInt32.max))),
            ConfigKey("admin", "token_sha256", .live, \.admin.tokenSHA256, .sha256Hex),
            ConfigKey("admin", "max_upload_bytes", .live, \.admin.maxUploadBytes, .byteSize(1 << 10...1 << 32)),

            ConfigKey("training", "max_queued", .live, \.training.maxQueued, .integer(0...10_000)),
            ConfigKey("training", "max_share", .live, \.training.maxShare, .fraction),

            ConfigKey("log", "level", .live, \.log.level,
                      .choice(Logger.Level.allCases.map { ($0.rawValue, $0) })),
        ]
    }
}

// MARK: - Decoders

extension ConfigDecoder where T == String {
    static var nonEmptyString: ConfigDecoder<String> {
        ConfigDecoder<String> { value in
            if case .string(let s) = value, !s.isEmpty { return .success(s) }
            return .failure(ConfigMismatch(expected: "a non-empty string"))
        }
    }

}

extension ConfigDecoder where T == [UInt8] {
    /// 64 hex digits: the SHA-256 of a token (never the token itself).
    static var sha256Hex: ConfigDecoder<[UInt8]> {
        ConfigDecoder<[UInt8]> { value in
            if case .string(let s) = value, let h = TenantConfig.parseHash(s) { return .success(h) }
            return .failure(ConfigMismatch(expected: "64 hex digits, the SHA-256 of the token (lorad tenant add --admin prints one)"))
        }
    }
}

extension ConfigDecoder where T == [Int] {
    /// An array of integers, each in `range`.
    static func integers(_ range: ClosedRange<Int>) -> ConfigDecoder<[Int]> {
        ConfigDecoder<[Int]> { value in
            let expected = "an array of integers from \(range.lowerBound) to \(range.upperBound)"
            guard case .array(let items) = value else { return .failure(ConfigMismatch(expected: expected)) }
            var out: [Int] = []
            for item in items {
                guard case .integer(let i) = item, range.contains(i) else { return .failure(ConfigMismatch(expected: expected)) }
                out.append(i)
            }
            return .success(out)
        }
    }
}

extension ConfigDecoder where T == [String] {
    /// An array of adapter names ([a-z0-9][a-z0-9._-]{0,63}).
    static var adapterNames: ConfigDecoder<[String]> {
        ConfigDecoder<[String]> { value in
            let expected = "an array of adapter names (each matching [a-z0-9][a-z0-9._-]{0,63})"
            guard case .array(let items) = value else { return .failure(ConfigMismatch(expected: expected)) }
            var out: [String] = []
            for item in items {
                guard case .string(let s) = item, AdapterName.isValid(s) else { return .failure(ConfigMismatch(expected: expected)) }
                out.append(s)
            }
            return .success(out)
        }
    }

    /// An array of absolute paths (no NUL).
    static var absolutePaths: ConfigDecoder<[String]> {
        ConfigDecoder<[String]> { value in
            let expected = "an array of absolute paths (strings starting with /)"
            guard case .array(let items) = value else { return .failure(ConfigMismatch(expected: expected)) }
            var out: [String] = []
            for item in items {
                guard case .string(let s) = item, s.hasPrefix("/"), !s.contains("\u{0}") else {
                    return .failure(ConfigMismatch(expected: expected))
                }
                out.append(s)
            }
            return .success(out)
        }
    }
}

extension ConfigDecoder where T == Int {
    static func integer(_ range: ClosedRange<Int>) -> ConfigDecoder<Int> {
        ConfigDecoder<Int> { value in
            if case .integer(let i) = value, range.contains(i) { return .success(i) }
            return .failure(ConfigMismatch(expected: "an integer from \(range.lowerBound) to \(range.upperBound)"))
        }
    }

}

extension ConfigDecoder where T == Double {
    /// A number from 0 to 1 (an integer 0 or 1 too).
    static var fraction: ConfigDecoder<Double> {
        ConfigDecoder<Double> { value in
            switch value {
            case .integer(let i) where i == 0 || i == 1: return .success(Double(i))
            case .float(let d) where d >= 0 && d <= 1: return .success(d)
            default: return .failure(ConfigMismatch(expected: "a number from 0 to 1"))
            }
        }
    }
}

extension ConfigDecoder where T == Bool {
    static var boolean: ConfigDecoder<Bool> {
        ConfigDecoder<Bool> { value in
            if case .boolean(let b) = value { return .success(b) }
            return .failure(ConfigMismatch(expected: "true or false"))
        }
    }

}

extension ConfigDecoder where T: Equatable {
    /// One of a fixed set of strings. Listed in the message without aliases that map to a value
    /// already listed.
    static func choice(_ choices: [(String, T)]) -> ConfigDecoder<T> {
        var shown: [String] = []
        var seen: [T] = []
        for (name, v) in choices where !seen.contains(v) {
            shown.append("\"\(name)\"")
            seen.append(v)
        }
        let expected = "one of " + shown.joined(separator: ", ")
        return ConfigDecoder<T> { value in
            if case .string(let s) = value, let match = choices.first(where: { $0.0 == s }) {
                return .success(match.1)
            }
            return .failure(ConfigMismatch(expected: expected))
        }
    }

}

extension ConfigDecoder where T == Int {
    /// An integer number of bytes, or a string with a binary suffix (ByteSize).
    static func byteSize(_ range: ClosedRange<Int>) -> ConfigDecoder<Int> {
        let expected = "a size from \(ByteSize.format(range.lowerBound)) to \(ByteSize.format(range.upperBound)): "
            + "bytes as an integer, or a string such as \"512MiB\" (suffixes B, KiB, MiB, GiB, TiB)"
        return ConfigDecoder<Int> { value in
            let bytes: Int?
            switch value {
            case .integer(let i): bytes = i
            case .string(let s): bytes = ByteSize.parse(s)
            default: bytes = nil
            }
            if let bytes, range.contains(bytes) { return .success(bytes) }
            return .failure(ConfigMismatch(expected: expected))
        }
    }

}

extension ConfigDecoder where T == Duration {
    /// Seconds as an integer or a float, kept to the millisecond (the loop's timer resolution).
    static func seconds(_ range: ClosedRange<Int>) -> ConfigDecoder<Duration> {
        let expected = "a number of seconds from \(range.lowerBound) to \(range.upperBound)"
        return ConfigDecoder<Duration> { value in
            let seconds: Double
            switch value {
            case .integer(let i): seconds = Double(i)
            case .float(let d): seconds = d
            default: return .failure(ConfigMismatch(expected: expected))
            }
            guard seconds.isFinite, seconds >= Double(range.lowerBound), seconds <= Double(range.upperBound) else {
                return .failure(ConfigMismatch(expected: expected))
            }
            return .success(.milliseconds(Int64((seconds * 1000).rounded())))
        }
    }

}

extension ConfigDecoder where T == String {
    /// A Unix socket path: non-empty and short enough for sockaddr_un (108 bytes with the NUL).
    static var socketPath: ConfigDecoder<String> {
        ConfigDecoder<String> { value in
            if case .string(let s) = value, !s.isEmpty, s.utf8.count <= 107, !s.utf8.contains(0) {
                return .success(s)
            }
            return .failure(ConfigMismatch(expected: "a non-empty path of at most 107 bytes (the limit of a Unix socket address)"))
        }
    }

}

extension ConfigDecoder where T == UInt32 {
    /// Permission bits as an octal string ("0660", "660", "0o660"). An integer is refused: TOML
    /// reads a bare 660 as decimal, which is not what anyone writing a mode means.
    static var octalMode: ConfigDecoder<UInt32> {
        ConfigDecoder<UInt32> { value in
            if case .string(var s) = value {
                if s.hasPrefix("0o") { s.removeFirst(2) }
                if !s.isEmpty, s.count <= 4, s.allSatisfy({ ("0"..."7").contains($0) }),
                   let mode = UInt32(s, radix: 8), mode <= 0o777 {
                    return .success(mode)
                }
            }
            return .failure(ConfigMismatch(expected: "permission bits as an octal string, such as \"0660\", at most \"0777\" "
                                     + "(quoted: TOML would read a bare 660 as decimal)"))
        }
    }

}

extension ConfigDecoder where T == TCPAddress {
    static var tcpAddress: ConfigDecoder<TCPAddress> {
        ConfigDecoder<TCPAddress> { value in
            if case .string(let s) = value, let address = TCPAddress.parse(s) { return .success(address) }
            return .failure(ConfigMismatch(expected: TCPAddress.expected))
        }
    }

}

extension ConfigDecoder where T == String {
    /// The base model's public name. Anything a client can send in "model" except whitespace,
    /// control characters and "@", which separates an adapter's name from its version.
    static var modelName: ConfigDecoder<String> {
        ConfigDecoder<String> { value in
            if case .string(let s) = value, !s.isEmpty, s.utf8.count <= 128,
               s.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F && $0 != "@" }) {
                return .success(s)
            }
            return .failure(ConfigMismatch(expected: "a name of 1 to 128 bytes without spaces, control characters or \"@\""))
        }
    }
}
