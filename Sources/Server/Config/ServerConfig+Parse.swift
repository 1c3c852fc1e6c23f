// Reading a configuration: TOML text (through TOMLKit) into ServerConfig, checked key by key against
// the table in ConfigKeys.swift; flags on top (ConfigOverrides); and the checks that involve more
// than one key. Every problem is collected before throwing, and each names its key.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemCalls
import TOMLKit

extension ServerConfig {
    /// Reads and parses a TOML file. Keys it does not set keep their defaults.
    /// Reads `path` over `base` (keys the file does not set keep base's values).
    public static func load(path: String, base: ServerConfig = ServerConfig()) throws(ConfigError) -> ServerConfig {
        let text: String
        switch readTextFile(path) {
        case .success(let t): text = t
        case .failure(let failure): throw ConfigError(source: path, problems: [.unreadable(reason: failure.reason)])
        }
        return try parse(toml: text, source: path, base: base)
    }

    /// Parses TOML text; `source` names it in messages (a path, or "<test>").
    public static func parse(toml: String, source: String, base: ServerConfig = ServerConfig()) throws(ConfigError) -> ServerConfig {
        // toml++ aborts on a few malformed inputs instead of reporting them (TOMLPrecheck.swift).
        if let hazard = TOMLPrecheck.firstHazard(in: toml) {
            // A date or time given to a known key is a bad value of that key, named as such.
            if let path = hazard.key, let value = hazard.value, let key = ConfigKey.all.first(where: { $0.path == path }) {
                var scratch = ServerConfig()
                let expected = key.assign(.dateTime(value), &scratch)?.expected ?? "not a date or time"
                throw ConfigError(source: source, problems: [.badValue(key: path, expected: expected, found: ConfigValue.dateTime(value).rendered)])
            }
            throw ConfigError(source: source, problems: [
                .syntax(line: hazard.line, column: hazard.column, message: hazard.message),
            ])
        }
        let root: ConfigValue
        do {
            root = ConfigValue(table: try TOMLTable(string: toml))
        } catch let error as TOMLParseError {
            throw ConfigError(source: source, problems: [
                .syntax(line: error.source.begin.line, column: error.source.begin.column, message: error.description),
            ])
        } catch {
            throw ConfigError(source: source, problems: [.syntax(line: 1, column: 1, message: "\(error)")])
        }
        var config = base
        var problems = config.assign(root: root)
        problems += config.validationProblems()
        if !problems.isEmpty { throw ConfigError(source: source, problems: problems) }
        return config
    }

    /// Applies command-line flags over the file (or the defaults), with the same checks as the
    /// file's keys, then re-checks the whole configuration.
    public mutating func apply(_ overrides: ConfigOverrides) throws(ConfigError) {
        var problems: [ConfigProblem] = []
        let keys = ConfigKey.all
        for (flag, path, value) in overrides.values {
            guard let key = keys.first(where: { $0.path == path }) else {
                preconditionFailure("ConfigOverrides names \(path), which is not in ConfigKey.all")
            }
            if let mismatch = key.assign(value, &self) {
                problems.append(.badValue(key: "\(flag) (\(path))", expected: mismatch.expected, found: value.rendered))
            }
        }
        problems += validationProblems()
        if !problems.isEmpty { throw ConfigError(source: "command line", problems: problems) }
    }

    /// Checks that involve more than one key; `parse` and `apply` run them, and the command can run
    /// them again after setting fields directly.
    public func validate() throws(ConfigError) {
        let problems = validationProblems()
        if !problems.isEmpty { throw ConfigError(source: "configuration", problems: problems) }
    }

    func validationProblems() -> [ConfigProblem] {
        var problems: [ConfigProblem] = []
        if let tcp = server.tcp, !tcp.isLoopback, !server.tcpAllowRemote {
            problems.append(.conflict(key: "server.tcp", message:
                "\(tcp) is not a loopback address, and the API has no TLS and sends tokens in clear; "
                + "listen on 127.0.0.1 or [::1] behind a TLS proxy, or set server.tcp_allow_remote = true"))
        }
        return problems
    }

    /// Walks the parsed document: known sections and keys are decoded into self, the rest reported.
    mutating func assign(root: ConfigValue) -> [ConfigProblem] {
        guard case .table(let entries) = root else { return [] }
        let keys = ConfigKey.all
        var problems: [ConfigProblem] = []
        for entry in entries {
            if entry.key == "tenants" {
                let (tenants, found) = TenantConfig.decode(entry.value)
                self.tenants = tenants
                problems += found
                continue
            }
            guard ConfigKey.sections.contains(entry.key) else {
                let suggestion = Self.closest(to: entry.key, among: ConfigKey.sections + ["tenants"])
                    ?? keys.first(where: { $0.name == entry.key })?.path
                problems.append(.unknownKey(key: entry.key, known: ConfigKey.sections, suggestion: suggestion))
                continue
            }
            guard case .table(let sectionEntries) = entry.value else {
                problems.append(.badValue(key: entry.key, expected: "a table ([\(entry.key)])", found: entry.value.rendered))
                continue
            }
            let sectionKeys = keys.filter { $0.section == entry.key }
            for item in sectionEntries {
                let path = "\(entry.key).\(item.key)"
                if let key = sectionKeys.first(where: { $0.name == item.key }) {
                    if let mismatch = key.assign(item.value, &self) {
                        problems.append(.badValue(key: path, expected: mismatch.expected, found: item.value.rendered))
                    }
                } else {
                    let names = sectionKeys.map(\.name)
                    let suggestion = Self.closest(to: item.key, among: names).map { "\(entry.key).\($0)" }
                        ?? keys.first(where: { $0.name == item.key })?.path
                    problems.append(.unknownKey(key: path, known: names, suggestion: suggestion))
                }
            }
        }
        return problems
    }

    /// The candidate within a small edit distance of `word` (transpositions count as one edit), if
    /// exactly one is closest.
    static func closest(to word: String, among candidates: [String]) -> String? {
        // No key is this long; and the distance table is quadratic.
        guard word.count <= 64 else { return nil }
        let limit = word.count >= 5 ? 2 : 1
        let scored = candidates.map { ($0, editDistance(word, $0)) }.filter { $0.1 <= limit }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
        return scored.filter({ $0.1 == best.1 }).count == 1 ? best.0 : nil
    }

    /// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
        for i in 0...a.count { d[i][0] = i }
        for j in 0...b.count { d[0][j] = j }
        for i in 1...a.count {
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[a.count][b.count]
    }
}

/// The flags `lorad serve` offers for the common keys. Each is checked exactly like its key in the
/// file; nil leaves the file's (or the default) value.
public struct ConfigOverrides: Sendable, Equatable {
    /// --model: model.path
    public var model: String?
    /// --adapters: adapters.dir
    public var adaptersDir: String?
    /// --socket: server.socket
    public var socket: String?
    /// --threads: model.threads
    public var threads: Int?
    /// --tcp: server.tcp
    public var tcp: String?
    /// --served-model-name: model.served_model_name
    public var servedModelName: String?
    /// --log-level: log.level
    public var logLevel: String?
    /// --numerics: model.numerics
    public var numerics: String?

    public init(model: String? = nil, adaptersDir: String? = nil, socket: String? = nil, threads: Int? = nil,
                tcp: String? = nil, servedModelName: String? = nil, logLevel: String? = nil, numerics: String? = nil) {
        self.model = model
        self.adaptersDir = adaptersDir
        self.socket = socket
        self.threads = threads
        self.tcp = tcp
        self.servedModelName = servedModelName
        self.logLevel = logLevel
        self.numerics = numerics
    }

    /// (flag, key path, value) for each flag given.
    var values: [(String, String, ConfigValue)] {
        var out: [(String, String, ConfigValue)] = []
        if let model { out.append(("--model", "model.path", .string(model))) }
        if let adaptersDir { out.append(("--adapters", "adapters.dir", .string(adaptersDir))) }
        if let socket { out.append(("--socket", "server.socket", .string(socket))) }
        if let threads { out.append(("--threads", "model.threads", .integer(threads))) }
        if let tcp { out.append(("--tcp", "server.tcp", .string(tcp))) }
        if let servedModelName { out.append(("--served-model-name", "model.served_model_name", .string(servedModelName))) }
        if let logLevel { out.append(("--log-level", "log.level", .string(logLevel))) }
        if let numerics { out.append(("--numerics", "model.numerics", .string(numerics))) }
        return out
    }
}

/// The whole file as UTF-8 text, or why not (strerror's words). Plain POSIX so that the reason is
/// the system's ("No such file or directory", "Permission denied", "Is a directory").
func readTextFile(_ path: String) -> Result<String, FileReadFailure> {
    let bytes: [UInt8]
    do {
        let fd = try Posix.open(path, O_RDONLY)
        defer { try? Posix.close(fd) }
        // One byte past the limit tells a file over it from one exactly at it.
        bytes = try Posix.readAll(fd, upTo: (1 << 20) + 1, path: path)
    } catch {
        return .failure(FileReadFailure(reason: error.reason))
    }
    // A configuration this large is a wrong path (a model file, a log), not a configuration.
    if bytes.count > 1 << 20 {
        return .failure(FileReadFailure(reason: "larger than 1 MiB; is this the right file?"))
    }
    guard let text = String(validating: bytes, as: UTF8.self) else {
        return .failure(FileReadFailure(reason: "not UTF-8 text"))
    }
    return .success(text)
}

struct FileReadFailure: Error {
    var reason: String
}
