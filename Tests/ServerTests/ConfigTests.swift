// ServerConfig: defaults, every kind of value, every kind of mistake (each naming its key), flags,
// and what a SIGHUP may change.

import Llama
import Logging
import Testing
@testable import Server

@Suite struct ConfigTests {
    @Test func defaultsAreTheDocumentedOnes() {
        let c = ServerConfig.defaults
        #expect(c.model.path == "/var/lib/lorad/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        #expect(c.model.servedModelName == "base")
        #expect(c.model.threads == 0)
        #expect(c.model.chatTemplate == nil)
        #expect(c.model.context == 4096)
        #expect(c.model.numerics == .f32)
        #expect(c.adapters.dir == "/var/lib/lorad/adapters")
        #expect(c.server.socket == "/run/lorad/lorad.sock")
        #expect(c.server.socketMode == 0o660)
        #expect(c.server.socketGroup == nil)
        #expect(c.server.tcp == nil)
        #expect(c.server.tcpAllowRemote == false)
        #expect(c.server.maxBodyBytes == 8 << 20)
        #expect(c.admin.maxUploadBytes == 256 << 20)
        #expect(c.server.idleTimeout == .seconds(60))
        #expect(c.server.readTimeout == .seconds(30))
        #expect(c.server.writeBufferBytes == 1 << 20)
        #expect(c.server.slowReaderTimeout == .seconds(30))
        #expect(c.server.drainTimeout == .seconds(30))
        #expect(c.engine.maxSequences == 32)
        #expect(c.engine.kvBudgetBytes == 1 << 30)
        #expect(c.engine.queueLimit == 256)
        #expect(c.engine.perAdapterQueueLimit == 64)
        #expect(c.engine.prefillChunk == 256)
        #expect(c.engine.prefixCache == true)
        #expect(c.engine.maxTokensDefault == 512)
        #expect(c.log.level == .info)
    }

    @Test func emptyDocumentIsTheDefaults() throws {
        #expect(try ServerConfig.parse(toml: "", source: "<test>") == .defaults)
        #expect(try ServerConfig.parse(toml: "[server]\n[engine]\n", source: "<test>") == .defaults)
    }

    @Test func everyKeySetToANonDefaultValue() throws {
        let toml = """
            [model]
            path = "/srv/m.gguf"
            served_model_name = "HuggingFaceTB/SmolLM2-135M-Instruct"
            threads = 6
            chat_template = "/etc/lorad/t.jinja"
            context = 2048
            numerics = "llama.cpp"
            [adapters]
            dir = "/srv/adapters"
            rescan_seconds = 0
            import_roots = ["/srv/incoming", "/tmp/x"]
            cache_bytes = "1GiB"
            merged_bytes = "2GiB"
            merged_type = "f16"
            merge = ["acme-support"]
            preload = ["acme-support"]
            [server]
            socket = "/tmp/l.sock"
            socket_mode = "0600"
            socket_group = "www-data"
            tcp = "[::1]:8081"
            tcp_allow_remote = true
            max_body_bytes = 1048576
            max_header_bytes = "16KiB"
            idle_timeout_seconds = 5
            read_timeout_seconds = 2.5
            write_buffer_bytes = "256KiB"
            slow_reader_timeout_seconds = 10
            drain_timeout_seconds = 0
            max_connections = 500
            max_connections_per_uid = 50
            [engine]
            max_sequences = 8
            kv_budget = "256MiB"
            queue_limit = 0
            per_adapter_queue_limit = 4
            prefill_chunk = 512
            prefill_first = false
            prefix_cache = false
            max_tokens_default = 128
            [admin]
            uids = [0, 1000]
            token_sha256 = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
            max_upload_bytes = "1GiB"
            [training]
            max_queued = 2
            max_share = 0.25
            [log]
            level = "debug"
            """
        let c = try ServerConfig.parse(toml: toml, source: "<test>")
        var e = ServerConfig()
        e.model.path = "/srv/m.gguf"
        e.model.servedModelName = "HuggingFaceTB/SmolLM2-135M-Instruct"
        e.model.threads = 6
        e.model.chatTemplate = "/etc/lorad/t.jinja"
        e.model.context = 2048
        e.model.numerics = .llamaCpp
        e.adapters.dir = "/srv/adapters"
        e.adapters.rescanInterval = .seconds(0)
        e.adapters.importRoots = ["/srv/incoming", "/tmp/x"]
        e.adapters.cacheBytes = 1 << 30
        e.adapters.mergedBytes = 2 << 30
        e.adapters.mergedType = .f16
        e.adapters.merge = ["acme-support"]
        e.adapters.preload = ["acme-support"]
        e.admin.uids = [0, 1000]
        e.admin.tokenSHA256 = TenantConfig.parseHash("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
        e.admin.maxUploadBytes = 1 << 30
        e.server.socket = "/tmp/l.sock"
        e.server.socketMode = 0o600
        e.server.socketGroup = "www-data"
        e.server.tcp = TCPAddress(host: "::1", port: 8081, family: .ipv6)
        e.server.tcpAllowRemote = true
        e.server.maxBodyBytes = 1 << 20
        e.server.maxHeaderBytes = 16 << 10
        e.server.idleTimeout = .seconds(5)
        e.server.readTimeout = .milliseconds(2500)
        e.server.writeBufferBytes = 256 << 10
        e.server.slowReaderTimeout = .seconds(10)
        e.server.drainTimeout = .zero
        e.server.maxConnections = 500
        e.server.maxConnectionsPerUID = 50
        e.engine.maxSequences = 8
        e.engine.kvBudgetBytes = 256 << 20
        e.engine.queueLimit = 0
        e.engine.perAdapterQueueLimit = 4
        e.engine.prefillChunk = 512
        e.engine.prefillFirst = false
        e.engine.prefixCache = false
        e.engine.maxTokensDefault = 128
        e.training.maxQueued = 2
        e.training.maxShare = 0.25
        e.log.level = .debug
        #expect(c == e)
        // Every key of the table was exercised: each differs from its default.
        let (applied, needRestart) = ServerConfig.defaults.reloadableDifferences(from: c)
        #expect(Set(applied + needRestart) == Set(ConfigKey.all.map(\.path)))
    }

    /// One wrong value per line: the message names the key, says what was expected and shows what
    /// was found, exactly.
    @Test(arguments: [
        ("[engine]\nmax_sequences = \"many\"", "engine.max_sequences: expected an integer from 1 to 1024, found \"many\""),
        ("[engine]\nmax_sequences = 0", "engine.max_sequences: expected an integer from 1 to 1024, found 0"),
        ("[engine]\nmax_sequences = 2.5", "engine.max_sequences: expected an integer from 1 to 1024, found 2.5"),
        ("[model]\nthreads = -1", "model.threads: expected an integer from 0 to 1024, found -1"),
        ("[model]\nnumerics = \"f16\"", "model.numerics: expected one of \"f32\", \"llama.cpp\", \"q8\", found \"f16\""),
        ("[model]\npath = \"\"", "model.path: expected a non-empty string, found \"\""),
        ("[model]\nserved_model_name = \"my model\"",
         "model.served_model_name: expected a name of 1 to 128 bytes without spaces, control characters or \"@\", found \"my model\""),
        ("[engine]\nprefix_cache = \"yes\"", "engine.prefix_cache: expected true or false, found \"yes\""),
        ("[log]\nlevel = \"verbose\"",
         "log.level: expected one of \"trace\", \"debug\", \"info\", \"notice\", \"warning\", \"error\", \"critical\", found \"verbose\""),
        ("[server]\nidle_timeout_seconds = 0", "server.idle_timeout_seconds: expected a number of seconds from 1 to 86400, found 0"),
        ("[server]\nread_timeout_seconds = \"30\"", "server.read_timeout_seconds: expected a number of seconds from 1 to 3600, found \"30\""),
        ("[server]\ntcp_allow_remote = 1", "server.tcp_allow_remote: expected true or false, found 1"),
        ("[adapters]\ndir = [\"/a\", \"/b\"]", "adapters.dir: expected a non-empty string, found an array of 2"),
        ("[adapters]\ndir = 1979-05-27", "adapters.dir: expected a non-empty string, found a date/time (1979-05-27)"),
        ("[model]\nchat_template = \"\"", "model.chat_template: expected a non-empty string, found \"\""),
        ("[server]\nidle_timeout_seconds = 1:30",
         "server.idle_timeout_seconds: expected a number of seconds from 1 to 86400, found a date/time (1:30)"),
        ("model = 3", "model: expected a table ([model]), found 3"),
    ])
    func badValueNamesItsKey(toml: String, message: String) throws {
        let error = try #require(throws: ConfigError.self) { try ServerConfig.parse(toml: toml, source: "x.toml") }
        #expect(error.problems.count == 1)
        #expect(error.description == "x.toml: " + message)
    }

    /// The same kinds of mistakes, checked by key and by the gist of the expectation.
    @Test(arguments: [
        ("[server]\nsocket_mode = 660", "server.socket_mode", "quoted"),
        ("[server]\nsocket_mode = \"0999\"", "server.socket_mode", "octal"),
        ("[server]\nsocket_mode = \"01000\"", "server.socket_mode", "at most \"0777\""),
        ("[server]\nsocket_mode = \"rw-rw----\"", "server.socket_mode", "octal"),
        ("[server]\nsocket = \"\"", "server.socket", "non-empty path"),
        ("[server]\nsocket = \"/run/\(String(repeating: "x", count: 120)).sock\"", "server.socket", "107 bytes"),
        ("[admin]\nuids = [\"root\"]", "admin.uids", "array of integers"),
        ("[admin]\nuids = 0", "admin.uids", "array of integers"),
        ("[admin]\nmax_upload_bytes = \"1TiB\"", "admin.max_upload_bytes", "from 1KiB to 4GiB"),
        ("[adapters]\nimport_roots = [\"relative/dir\"]", "adapters.import_roots", "absolute paths"),
        ("[adapters]\nmerge = [\"../x\"]", "adapters.merge", "adapter names"),
        ("[server]\ntcp = \"example.com:80\"", "server.tcp", "IP address"),
        ("[server]\ntcp = \"127.0.0.1\"", "server.tcp", "HOST:PORT"),
        ("[server]\ntcp = \"[::1]\"", "server.tcp", "HOST:PORT"),
        ("[server]\ntcp = \"::1:8080\"", "server.tcp", "brackets"),
        ("[server]\ntcp = \"127.0.0.1:70000\"", "server.tcp", "0 to 65535"),
        ("[server]\ntcp = \"127.0.0.1:-1\"", "server.tcp", "0 to 65535"),
        ("[server]\ntcp = \"0.0.0.0:8080\"", "server.tcp", "tcp_allow_remote = true"),
        ("[server]\ntcp = \"[::]:8080\"", "server.tcp", "not a loopback"),
        ("[server]\nmax_body_bytes = 10", "server.max_body_bytes", "from 1KiB to 1GiB"),
        ("[engine]\nkv_budget = \"1GB\"", "engine.kv_budget", "KiB, MiB, GiB"),
        ("[engine]\nkv_budget = \"1.5GiB\"", "engine.kv_budget", "512MiB"),
        ("[engine]\nkv_budget = -1", "engine.kv_budget", "from 1MiB to 1TiB"),
        ("[engine]\nkv_budget = \"2TiB\"", "engine.kv_budget", "from 1MiB to 1TiB"),
        ("[engine]\nkv_budget = 4096", "engine.kv_budget", "from 1MiB"),
        ("[engine]\nmax_tokens_default = -1", "engine.max_tokens_default", "from 0 to"),
        ("[engine]\nprefill_chunk = 1", "engine.prefill_chunk", "from 16 to 65536"),
    ])
    func badValueByKey(toml: String, key: String, gist: String) throws {
        let error = try #require(throws: ConfigError.self) { try ServerConfig.parse(toml: toml, source: "x.toml") }
        #expect(error.keys == [key])
        #expect(error.description.contains(gist), "\(error)")
    }

    @Test func unknownKeyWithDidYouMean() throws {
        let error = try #require(throws: ConfigError.self) {
            try ServerConfig.parse(toml: "[server]\nsockett = \"/tmp/x\"", source: "x.toml")
        }
        #expect(error.problems == [.unknownKey(
            key: "server.sockett",
            known: ["socket", "socket_mode", "socket_group", "tcp", "tcp_allow_remote", "max_body_bytes",
                    "max_header_bytes", "idle_timeout_seconds", "read_timeout_seconds", "write_buffer_bytes",
                    "slow_reader_timeout_seconds", "drain_timeout_seconds", "max_connections",
                    "max_connections_per_uid"],
            suggestion: "server.socket")])
        #expect(error.description.hasPrefix(
            "x.toml: unknown key server.sockett (did you mean server.socket? known keys in [server]: socket, socket_mode, "))
    }

    @Test(arguments: [
        ("[servre]\nsocket = \"/x\"", "servre", "server"),               // misspelt section
        ("socket = \"/x\"", "socket", "server.socket"),                  // key outside its section
        ("[engine]\nlevel = \"debug\"", "engine.level", "log.level"),    // key in the wrong section
        ("[engine]\nkv_bugdet = \"1GiB\"", "engine.kv_bugdet", "engine.kv_budget"),  // transposition
        ("[log]\nlevle = \"debug\"", "log.levle", "log.level"),
    ])
    func unknownKeySuggestions(toml: String, key: String, suggestion: String) throws {
        let error = try #require(throws: ConfigError.self) { try ServerConfig.parse(toml: toml, source: "x.toml") }
        guard case .unknownKey(let k, _, let s) = try #require(error.problems.first) else {
            Issue.record("expected an unknown key, got \(error)")
            return
        }
        #expect(k == key)
        #expect(s == suggestion)
    }

    @Test func unknownKeysWithoutCloseMatchAndNestedTables() throws {
        let error = try #require(throws: ConfigError.self) {
            try ServerConfig.parse(toml: "[server.tls]\ncert = \"/x\"\n[engine]\nwarp_drive = true\n[auth]\n", source: "x.toml")
        }
        #expect(error.keys == ["auth", "engine.warp_drive", "server.tls"])
        #expect(error.problems.allSatisfy {
            if case .unknownKey(_, _, nil) = $0 { true } else { false }
        })
        #expect(error.description.contains("unknown key auth (known sections at the top level: model, adapters, server, engine, admin, training, log)"))
    }

    @Test func everyProblemIsReportedAtOnce() throws {
        let toml = "[engine]\nmax_sequences = 0\nqueue_limit = \"lots\"\n[server]\nsockett = 1\n"
        let error = try #require(throws: ConfigError.self) { try ServerConfig.parse(toml: toml, source: "x.toml") }
        #expect(Set(error.keys) == ["engine.max_sequences", "engine.queue_limit", "server.sockett"])
        #expect(error.description.split(separator: "\n").count == 3)
    }

    @Test func syntaxErrorHasLineAndColumn() throws {
        let error = try #require(throws: ConfigError.self) {
            try ServerConfig.parse(toml: "[server]\nsocket = \"/x\"\nsocket_mode = \n", source: "x.toml")
        }
        guard case .syntax(let line, let column, _) = try #require(error.problems.first) else {
            Issue.record("expected a syntax error, got \(error)")
            return
        }
        #expect(line == 3)
        #expect(column > 1)
        #expect(error.description.hasPrefix("x.toml: line 3, column "))
        // A key given twice is a TOML error too.
        #expect(throws: ConfigError.self) { try ServerConfig.parse(toml: "[log]\nlevel = \"info\"\nlevel = \"debug\"", source: "x") }
    }

    @Test(arguments: [
        ("1073741824", 1 << 30), ("\"1GiB\"", 1 << 30), ("\"512MiB\"", 512 << 20), ("\"64 MiB\"", 64 << 20),
        ("\"2048KiB\"", 2 << 20), ("\"1TiB\"", 1 << 40), ("\"1048576B\"", 1 << 20), ("\"1048576\"", 1 << 20),
    ])
    func kvBudgetAcceptsBytesAndSuffixes(value: String, bytes: Int) throws {
        let c = try ServerConfig.parse(toml: "[engine]\nkv_budget = \(value)", source: "x")
        #expect(c.engine.kvBudgetBytes == bytes)
    }

    @Test func byteSizeParserIsStrict() {
        for bad in ["", "Ki", "GiB", "4Ki", "1.5GiB", "-1", "+1", "1  GiB", " 1GiB", "1gib", "1GB", "1kB",
                    "99999999999TiB", "0x10", "1_000"] {
            #expect(ByteSize.parse(bad) == nil, "\(bad)")
        }
        #expect(ByteSize.parse("0") == 0)
        #expect(ByteSize.parse("3 KiB") == 3072)
        #expect(ByteSize.format(1 << 30) == "1GiB")
        #expect(ByteSize.format(1536) == "1536B")
        #expect(ByteSize.format(3 << 20) == "3MiB")
        #expect(ByteSize.format(0) == "0B")
    }

    @Test func socketModeForms() throws {
        for (text, mode) in [("0660", 0o660), ("660", 0o660), ("0o640", 0o640), ("0777", 0o777), ("0", 0)] {
            let c = try ServerConfig.parse(toml: "[server]\nsocket_mode = \"\(text)\"", source: "x")
            #expect(c.server.socketMode == UInt32(mode), "\(text)")
        }
    }

    @Test func tcpAddresses() throws {
        let v4 = try #require(TCPAddress.parse("127.0.0.1:8080"))
        #expect(v4.family == .ipv4 && v4.port == 8080 && v4.isLoopback && v4.description == "127.0.0.1:8080")
        #expect(TCPAddress.parse("localhost:0") == TCPAddress(host: "127.0.0.1", port: 0, family: .ipv4))
        #expect(TCPAddress.parse("127.8.9.10:1")?.isLoopback == true)
        let v6 = try #require(TCPAddress.parse("[::1]:9000"))
        #expect(v6.family == .ipv6 && v6.host == "::1" && v6.isLoopback && v6.description == "[::1]:9000")
        #expect(TCPAddress.parse("[::ffff:127.0.0.1]:1")?.isLoopback == true)
        #expect(TCPAddress.parse("[::]:80")?.isLoopback == false)
        #expect(TCPAddress.parse("10.0.0.1:80")?.isLoopback == false)
        #expect(TCPAddress.parse("[fe80::1]:80")?.isLoopback == false)
        for bad in ["", ":80", "127.0.0.1:", "127.0.0.1:8o", "1.2.3:80", "256.0.0.1:80", "[::1:80", "[]:80",
                    "[127.0.0.1]:80", "localhost", "host:80", "127.0.0.1:123456", " 127.0.0.1:80"] {
            #expect(TCPAddress.parse(bad) == nil, "\(bad)")
        }
        // A remote address is accepted when asked for.
        let c = try ServerConfig.parse(toml: "[server]\ntcp = \"0.0.0.0:8080\"\ntcp_allow_remote = true", source: "x")
        #expect(c.server.tcp == TCPAddress(host: "0.0.0.0", port: 8080, family: .ipv4))
    }

    @Test func secondsKeepMilliseconds() throws {
        let c = try ServerConfig.parse(toml: "[server]\nidle_timeout_seconds = 1.5\ndrain_timeout_seconds = 0.25", source: "x")
        #expect(c.server.idleTimeout == .milliseconds(1500))
        #expect(c.server.drainTimeout == .milliseconds(250))
    }

    @Test func loadReadsAFileAndReportsWhyItCannot() throws {
        let dir = try OpsScratchDirectory()
        let path = dir.path + "/lorad.toml"
        try dir.write("lorad.toml", "[engine]\nmax_sequences = 4\n")
        #expect(try ServerConfig.load(path: path).engine.maxSequences == 4)

        let missing = try #require(throws: ConfigError.self) { try ServerConfig.load(path: dir.path + "/none.toml") }
        #expect(missing.problems == [.unreadable(reason: "No such file or directory")])
        #expect(missing.description == "\(dir.path)/none.toml: cannot read the configuration: No such file or directory")
        let directory = try #require(throws: ConfigError.self) { try ServerConfig.load(path: dir.path) }
        #expect(directory.problems == [.unreadable(reason: "Is a directory")])

        try dir.write("bad.toml", "[engine]\nmax_sequences = 4000\n")
        let bad = try #require(throws: ConfigError.self) { try ServerConfig.load(path: dir.path + "/bad.toml") }
        #expect(bad.description.hasPrefix("\(dir.path)/bad.toml: engine.max_sequences: "))
    }

    @Test func flagsGoThroughTheSameChecks() throws {
        var c = ServerConfig.defaults
        try c.apply(ConfigOverrides(model: "/m.gguf", adaptersDir: "/a", socket: "/tmp/s.sock", threads: 3,
                                    tcp: "[::1]:8080", servedModelName: "smol", logLevel: "warning", numerics: "q8"))
        #expect(c.model.path == "/m.gguf" && c.adapters.dir == "/a" && c.server.socket == "/tmp/s.sock")
        #expect(c.model.threads == 3 && c.server.tcp?.port == 8080 && c.model.servedModelName == "smol")
        #expect(c.log.level == .warning && c.model.numerics == .q8)

        var d = ServerConfig.defaults
        let error = try #require(throws: ConfigError.self) {
            try d.apply(ConfigOverrides(threads: -2, tcp: "localhost", numerics: "int4"))
        }
        #expect(error.source == "command line")
        #expect(error.description.contains("command line: --threads (model.threads): expected an integer from 0 to 1024, found -2"))
        #expect(error.keys == ["--threads (model.threads)", "--tcp (server.tcp)", "--numerics (model.numerics)"])

        var e = ServerConfig.defaults
        let remote = try #require(throws: ConfigError.self) { try e.apply(ConfigOverrides(tcp: "192.168.1.2:80")) }
        #expect(remote.keys == ["server.tcp"])
        // Every flag maps to a key of the table.
        let all = ConfigOverrides(model: "m", adaptersDir: "a", socket: "s", threads: 1, tcp: "t",
                                  servedModelName: "n", logLevel: "l", numerics: "q8")
        #expect(all.values.allSatisfy { v in ConfigKey.all.contains { $0.path == v.1 } })
    }

    @Test func reloadSplitsLiveKeysFromRestartKeys() throws {
        let old = ServerConfig.defaults
        let new = try ServerConfig.parse(toml: """
            [model]
            path = "/other.gguf"
            [server]
            socket = "/tmp/other.sock"
            read_timeout_seconds = 5
            [engine]
            queue_limit = 10
            [log]
            level = "debug"
            """, source: "x")
        let (applied, needRestart) = old.reloadableDifferences(from: new)
        #expect(applied == ["server.read_timeout_seconds", "engine.queue_limit", "log.level"])
        #expect(needRestart == ["model.path", "server.socket"])
        let effective = old.applyingReloadable(from: new)
        #expect(effective.log.level == .debug && effective.engine.queueLimit == 10)
        #expect(effective.server.readTimeout == .seconds(5))
        #expect(effective.model.path == old.model.path && effective.server.socket == old.server.socket)
        #expect(old.reloadableDifferences(from: old) == ([], []))
        // The example's classification: what is documented as live and as restart-only.
        let live = Set(ConfigKey.all.filter { $0.reload == .live }.map(\.path))
        for key in ["log.level", "adapters.dir", "engine.queue_limit", "engine.per_adapter_queue_limit",
                    "server.idle_timeout_seconds", "server.read_timeout_seconds"] {
            #expect(live.contains(key), "\(key)")
        }
        for key in ["model.path", "model.threads", "server.socket", "server.tcp", "engine.kv_budget"] {
            #expect(!live.contains(key), "\(key)")
        }
    }

    @Test func editDistanceAndSuggestions() {
        #expect(ServerConfig.editDistance("socket", "sockett") == 1)
        #expect(ServerConfig.editDistance("budget", "bugdet") == 1)
        #expect(ServerConfig.editDistance("", "abc") == 3)
        #expect(ServerConfig.closest(to: "lvl", among: ["level"]) == nil)
        #expect(ServerConfig.closest(to: "tcp", among: ["tcp_allow_remote", "socket"]) == nil)
        // Two equally close candidates: no guess.
        #expect(ServerConfig.closest(to: "ab", among: ["ac", "ad"]) == nil)
    }
}
