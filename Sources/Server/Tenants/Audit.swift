// The audit trail of access decisions: every refused request (401, 403, 429) gets one log line
// naming who asked (a tenant, "unknown token", "no token"), the peer uid, the action (method and
// route pattern, never the raw path) and the outcome, and is counted per tenant and reason. Admin
// actions are logged where they are done ("admin: tenant acme imported ...", AdminEndpoints), with
// the caller named as `Caller.description` names it.
//
// What a line or a metric label may contain is decided here, once: a tenant's configured name, or
// one of the fixed words below; never a token, a header or anything else the client sent. Tenant
// names are bounded by the configuration, so the per-tenant metrics' cardinality is too.

import Foundation

/// A refusal's reason, the `reason` label of lorad_tenant_refusals_total.
enum RefusalReason: String, CaseIterable {
    /// A call that needs a token came without one (401).
    case noToken = "no_token"
    /// A token nobody has (401).
    case unknownToken = "unknown_token"
    /// A known caller without the right (403).
    case forbidden
    /// The engine's queue (or the tenant's max_queued) is full (429).
    case queueFull = "queue_full"
    /// The tenant used its tokens_per_minute (429).
    case tokenRate = "token_rate"
}

/// A request `authorize` turned away: the answer, and who and why for the audit line and metrics.
struct Refusal: Error {
    let error: OpenAIError
    let reason: RefusalReason
    /// "tenant acme", "unknown token", "no token".
    let who: String
    /// The tenant label (TenantLabel).
    let tenant: String
}

/// The `tenant` label of the per-tenant metrics.
enum TenantLabel {
    /// Callers that are no tenant: no tenants configured, an admin, no token, a request no route took.
    static let none = "(none)"
    /// A bearer token that matched nobody. Parenthesised, like "none", so that no tenant name (which
    /// matches [a-z0-9][a-z0-9._-]*) can be mistaken for either.
    static let unknown = "(unknown)"
}

extension Caller {
    /// This caller's `tenant` label: a configured tenant name, or "(none)".
    var tenantLabel: String {
        if case .tenant(let t) = self { return t.name }
        return TenantLabel.none
    }

    /// For refusal lines: "tenant acme", or "no token" for a caller with no tenant's token.
    var auditName: String {
        switch self {
        case .tenant(let t): return "tenant \(t.name)"
        case .admin(let who): return who
        case .open: return "no token"
        }
    }
}

enum Audit {
    /// `refused: tenant acme, uid 1000: POST /v1/adapters/{name}/versions: 403 forbidden`. `uid` is
    /// nil for a TCP peer. Every part is a configured name, a number or a fixed word.
    static func refusedLine(who: String, uid: Int?, method: String, pattern: String, status: Int, reason: RefusalReason) -> String {
        "refused: \(who), \(uid.map { "uid \($0)" } ?? "tcp"): \(OpenAIError.excerpt(method, limit: 32)) \(pattern): \(status) \(reason.rawValue)"
    }
}
