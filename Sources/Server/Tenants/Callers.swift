// Who is calling, from the request's bearer token and the connection's peer uid, and what each
// route lets them do. Once `[[tenants]]` exist every API call needs a token: a tenant's, or the
// admin token; a peer uid in `admin.uids` (Unix socket only: a TCP peer has no uid) is admin without
// one. A request that carries a token acts as that token's owner, whatever its uid.
//
// Tokens are only ever hashed (SHA-256) and the hash compared with every configured one in
// constant time, without stopping at a match, so the time taken says nothing about which tenant
// (or whether any) matched. Tokens are never logged: the request log has no headers.

import Crypto
import Foundation

/// The caller of one request, as `authorize` decided.
enum Caller: Equatable {
    /// No tenants are configured: the socket's permissions are the only gate.
    case open
    /// Admin rights: a peer uid in admin.uids, or the admin token (`who` says which, for logs).
    case admin(who: String)
    case tenant(TenantConfig)

    /// The adapters and base this caller may use; nil: everything.
    var permit: Permit {
        switch self {
        case .open, .admin: return Permit(tenant: nil)
        case .tenant(let t): return Permit(tenant: t)
        }
    }

    /// For log lines: "uid 0", "admin token", "tenant acme".
    var description: String {
        switch self {
        case .open: return "open"
        case .admin(let who): return who
        case .tenant(let t): return "tenant \(t.name)"
        }
    }
}

/// What a caller may use, as a value a preparation can carry to the prompt thread.
struct Permit: Sendable {
    let tenant: TenantConfig?

    var mayUseBase: Bool { tenant?.base ?? true }
    func mayUse(adapter name: String) -> Bool { tenant?.mayUse(adapter: name) ?? true }
}

/// How a route is guarded.
enum RouteAccess: Equatable {
    /// Health checks: anyone who can reach the socket.
    case anyone
    /// The serving API: anyone without tenants; a tenant's or the admin token with them.
    case tenants
    /// /metrics: anyone without tenants (as before); admin with them (its labels name every adapter).
    case operators
    /// The registry and residency: admin only.
    case admin
    /// Publishing one adapter (`{name}` in the path): admin, or a tenant with `may_publish` whose
    /// patterns cover the name.
    case publish
    /// Training jobs and their files (the adapter is in the body, or the route lists jobs): admin, or
    /// a tenant with `may_publish`; the handler checks the adapter and shows a tenant its own jobs.
    case publishers
}

/// The configured tokens, hashed.
struct TenantDirectory {
    let tenants: [TenantConfig]
    let adminToken: [UInt8]?

    init(tenants: [TenantConfig], adminToken: [UInt8]?) {
        self.tenants = tenants
        self.adminToken = adminToken
    }

    init(_ config: ServerConfig) {
        self.init(tenants: config.tenants, adminToken: config.admin.tokenSHA256)
    }

    var enabled: Bool { !tenants.isEmpty }

    enum Identity: Equatable {
        case admin
        case tenant(TenantConfig)
        case unknown
    }

    /// The owner of `token`. Every configured hash is compared in full.
    func identify(token: String) -> Identity {
        let hash = Array(SHA256.hash(data: Array(token.utf8)))
        var found = -1
        for (i, t) in tenants.enumerated() where Self.equal(t.tokenSHA256, hash) { found = i }
        let admin = adminToken.map { Self.equal($0, hash) } ?? false
        if admin { return .admin }
        return found >= 0 ? .tenant(tenants[found]) : .unknown
    }

    /// Equal 32-byte digests, in time independent of where they differ.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    /// The token of an `Authorization: Bearer TOKEN` header; nil without one. Another scheme is a
    /// token nobody has ("").
    static func bearer(_ header: String?) -> String? {
        guard let header else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return "" }
        return String(parts[1]).trimmingCharacters(in: .whitespaces)
    }
}
