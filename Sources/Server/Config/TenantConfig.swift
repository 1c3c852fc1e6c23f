// `[[tenants]]`: the products that share the daemon, each with a bearer token (kept only as its
// SHA-256), the adapter names it may use (globs such as "acme-*"), whether it may use the bare base,
// and whether it may publish its own adapters. With no tenants the socket's permissions are the only
// gate (local development); with any, every API call needs a token (Tenants.swift).
//
//   [[tenants]]
//   name = "acme"
//   token_sha256 = "<64 hex digits>"   # `lorad tenant add acme` prints a token and this line
//   adapters = ["acme-*"]
//   base = true
//   may_publish = false

import Registry

public struct TenantConfig: Sendable, Equatable {
    public var name: String
    /// SHA-256 of the bearer token, 32 bytes.
    public var tokenSHA256: [UInt8]
    /// Glob patterns (`*` any run of characters, `?` one) over adapter names.
    public var adapters: [String]
    /// May use the base model alone (and `GET /v1/models` lists it).
    public var base: Bool
    /// May publish (import, upload, activate, roll back) adapters its patterns cover, and only those.
    public var mayPublish: Bool
    /// Its sequences running at once (0: only the engine's max_sequences bounds them).
    public var maxRunning = 0
    /// Its requests waiting at once (0: engine.per_adapter_queue_limit); past it, 429.
    public var maxQueued = 0
    /// Prompt and generated tokens it may use per minute (0: no limit); past it, 429 with
    /// Retry-After until the bucket refills.
    public var tokensPerMinute = 0

    public init(name: String, tokenSHA256: [UInt8], adapters: [String], base: Bool = false, mayPublish: Bool = false) {
        self.name = name
        self.tokenSHA256 = tokenSHA256
        self.adapters = adapters
        self.base = base
        self.mayPublish = mayPublish
    }

    public func mayUse(adapter name: String) -> Bool {
        adapters.contains { Self.glob($0, matches: name) }
    }

    static let keys = ["name", "token_sha256", "adapters", "base", "may_publish", "max_running", "max_queued", "tokens_per_minute"]

    /// `*` matches any run of characters (none included), `?` exactly one; everything else itself.
    static func glob(_ pattern: String, matches name: String) -> Bool {
        let p = Array(pattern.utf8), s = Array(name.utf8)
        var pi = 0, si = 0
        var star = -1, mark = 0
        while si < s.count {
            if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == s[si]) {
                pi += 1
                si += 1
            } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
                star = pi
                mark = si
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                si = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }

    /// A pattern over adapter names: their alphabet plus `*` and `?`, at most 64 characters.
    public static func isValidPattern(_ p: String) -> Bool {
        !p.isEmpty && p.utf8.count <= 64 && p.utf8.allSatisfy {
            ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D || $0 == 0x2A || $0 == 0x3F
        }
    }

    /// 64 hex digits (either case) as 32 bytes.
    public static func parseHash(_ hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count == 64 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for i in stride(from: 0, to: 64, by: 2) {
            guard let hi = nibble(digits[i]), let lo = nibble(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
        }
        return out
    }

    /// Decodes the document's `tenants` value (an array of tables); problems name `tenants[i].key`.
    static func decode(_ value: ConfigValue) -> (tenants: [TenantConfig], problems: [ConfigProblem]) {
        guard case .array(let items) = value else {
            return ([], [.badValue(key: "tenants", expected: "an array of tables ([[tenants]] sections)", found: value.rendered)])
        }
        var tenants: [TenantConfig] = []
        var problems: [ConfigProblem] = []
        for (i, item) in items.enumerated() {
            let at = "tenants[\(i)]"
            guard case .table(let entries) = item else {
                problems.append(.badValue(key: at, expected: "a table ([[tenants]] section)", found: item.rendered))
                continue
            }
            var name: String?, hash: [UInt8]?, patterns: [String] = [], base = false, mayPublish = false
            var limits = (running: 0, queued: 0, tokens: 0)
            var bad = false
            func refuse(_ key: String, _ expected: String, _ found: ConfigValue) {
                problems.append(.badValue(key: "\(at).\(key)", expected: expected, found: found.rendered))
                bad = true
            }
            for entry in entries {
                switch entry.key {
                case "name":
                    if case .string(let s) = entry.value, AdapterName.isValid(s) { name = s } else {
                        refuse("name", "a tenant name matching \(AdapterName.rule)", entry.value)
                    }
                case "token_sha256":
                    // The value is a hash, not the token: safe to print in the message.
                    if case .string(let s) = entry.value, let h = parseHash(s) { hash = h } else {
                        refuse("token_sha256", "64 hex digits, the SHA-256 of the tenant's token (lorad tenant add NAME prints it)", entry.value)
                    }
                case "adapters":
                    let expected = "an array of adapter name patterns ([a-z0-9._-] with * and ?, such as \"acme-*\")"
                    guard case .array(let list) = entry.value else { refuse("adapters", expected, entry.value); continue }
                    for p in list {
                        guard case .string(let s) = p, isValidPattern(s) else { refuse("adapters", expected, entry.value); break }
                        patterns.append(s)
                    }
                case "base":
                    if case .boolean(let b) = entry.value { base = b } else { refuse("base", "true or false", entry.value) }
                case "may_publish":
                    if case .boolean(let b) = entry.value { mayPublish = b } else { refuse("may_publish", "true or false", entry.value) }
                case "max_running", "max_queued", "tokens_per_minute":
                    let range = entry.key == "tokens_per_minute" ? 0...1_000_000_000 : 0...1_000_000
                    guard case .integer(let n) = entry.value, range.contains(n) else {
                        refuse(entry.key, "an integer from \(range.lowerBound) to \(range.upperBound) (0: no limit)", entry.value)
                        continue
                    }
                    switch entry.key {
                    case "max_running": limits.running = n
                    case "max_queued": limits.queued = n
                    default: limits.tokens = n
                    }
                default:
                    problems.append(.unknownKey(key: "\(at).\(entry.key)", known: keys,
                                                suggestion: ServerConfig.closest(to: entry.key, among: keys).map { "\(at).\($0)" }))
                    bad = true
                }
            }
            if name == nil && !entries.contains(where: { $0.key == "name" }) {
                problems.append(.badValue(key: "\(at).name", expected: "a tenant name (the key is missing)", found: "nothing"))
                bad = true
            }
            if hash == nil && !entries.contains(where: { $0.key == "token_sha256" }) {
                problems.append(.badValue(key: "\(at).token_sha256", expected: "the SHA-256 of the tenant's token (the key is missing; lorad tenant add NAME prints it)", found: "nothing"))
                bad = true
            }
            guard !bad, let name, let hash else { continue }
            if tenants.contains(where: { $0.name == name }) {
                problems.append(.conflict(key: "\(at).name", message: "tenant \(name) is defined twice"))
                continue
            }
            if let other = tenants.first(where: { $0.tokenSHA256 == hash }) {
                problems.append(.conflict(key: "\(at).token_sha256", message: "tenants \(other.name) and \(name) have the same token; give each its own"))
                continue
            }
            var t = TenantConfig(name: name, tokenSHA256: hash, adapters: patterns, base: base, mayPublish: mayPublish)
            (t.maxRunning, t.maxQueued, t.tokensPerMinute) = limits
            tenants.append(t)
        }
        return (tenants, problems)
    }
}
