// How many client connections the daemon holds at once, in total and per local user, and what
// happens to the one past the limit. Without a cap, idle connections use up the process's file
// descriptors, and then every new client, /healthz included, fails at accept with no log line.
//
// The total defaults to the open-file limit less a reserve for what the daemon itself opens (the
// model, adapters read on a rescan, the listeners, libuv's own descriptors). At start the soft limit
// is raised to the hard one, as nginx and Go's runtime do, since the soft default (often 1024) is a
// relic of select(2). A connection past a limit is accepted, answered with a short 503 and closed:
// the client learns why instead of hanging in the backlog. Refusals are counted by reason and
// logged at most once per `logInterval` seconds, so a flood cannot flood the log too.
//
// Threading: loop thread only.

import Foundation
import HTTP
#if canImport(Glibc)
import Glibc
#endif

struct ConnectionLimits: Equatable {
    /// Descriptors kept for the daemon's own files when the total is derived from the fd limit.
    static let reservedDescriptors = 256
    /// The derived total never exceeds this: beyond it memory, not descriptors, is the limit.
    static let automaticCeiling = 16384

    let total: Int
    let perUID: Int

    /// The limits from the configuration (0 meaning automatic) and the open-file limit.
    init(maxConnections: Int, maxConnectionsPerUID: Int, fileLimit: Int = ConnectionLimits.openFileLimit()) {
        total = maxConnections > 0
            ? maxConnections
            : max(16, min(Self.automaticCeiling, fileLimit - Self.reservedDescriptors))
        perUID = maxConnectionsPerUID > 0 ? maxConnectionsPerUID : max(1, total * 3 / 4)
    }

    /// The soft RLIMIT_NOFILE.
    static func openFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return limit.rlim_cur >= rlim_t(Int.max / 2) ? Int.max / 2 : Int(limit.rlim_cur)   // RLIM_INFINITY is all ones
    }

    /// Raises the soft open-file limit to the hard one (capped at 1 << 20); returns the new soft limit.
    @discardableResult
    static func raiseOpenFileLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return openFileLimit() }
        let wanted = min(limit.rlim_max, rlim_t(1 << 20))
        if limit.rlim_cur < wanted {
            limit.rlim_cur = wanted
            _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        return openFileLimit()
    }

    /// The whole answer to a connection turned away: 503, a reason, Retry-After, then close.
    static func refusal(_ message: String) -> [UInt8] {
        var h = HTTPHeaders()
        h.add("Content-Type", "application/json")
        h.add("Retry-After", "1")
        var e = OpenAIError.unavailable(message, retryAfter: 1)
        e.code = "too_many_connections"
        return HTTPResponse(status: 503, headers: h, body: e.body()).serialized(keepAlive: false, requestVersion: .http11)
    }
}

/// Logs refusals at most once per interval, with the count since the last line.
struct RefusalLog {
    static let logInterval: TimeInterval = 10
    private var last: Date?
    private var suppressed = 0

    /// The line to log now for one more refusal, or nil while within the interval.
    mutating func note(_ reason: String, now: Date = Date()) -> String? {
        if let last, now.timeIntervalSince(last) < Self.logInterval {
            suppressed += 1
            return nil
        }
        let more = suppressed > 0 ? " (\(suppressed) more since the last such line)" : ""
        last = now
        suppressed = 0
        return "refusing connections: \(reason)\(more)"
    }
}

/// The open client connections, counted in total and per peer uid (Unix socket only).
struct OpenConnections {
    private var byID: [UInt64: HTTPConnection] = [:]
    private var byUID: [UInt32: Int] = [:]
    private var lastID: UInt64 = 0

    var count: Int { byID.count }
    var all: Dictionary<UInt64, HTTPConnection>.Values { byID.values }

    mutating func nextID() -> UInt64 {
        lastID += 1
        return lastID
    }

    /// Why `stream` may not be accepted under `limits`, or nil to accept it.
    func refusal(for stream: UVConnection, limits: ConnectionLimits) -> (reason: String, message: String)? {
        if byID.count >= limits.total {
            return ("max_connections",
                    "the server has \(byID.count) connections open, its limit (server.max_connections); retry shortly")
        }
        if let uid = stream.peerCredentials?.uid, byUID[uid, default: 0] >= limits.perUID {
            return ("max_connections_per_uid",
                    "uid \(uid) has \(limits.perUID) connections open, the limit for one user (server.max_connections_per_uid); close idle ones or reuse them")
        }
        return nil
    }

    mutating func add(_ c: HTTPConnection) {
        byID[c.id] = c
        if let uid = c.stream.peerCredentials?.uid { byUID[uid, default: 0] += 1 }
    }

    mutating func remove(_ c: HTTPConnection) {
        guard byID.removeValue(forKey: c.id) != nil, let uid = c.stream.peerCredentials?.uid else { return }
        let n = byUID[uid, default: 1] - 1
        byUID[uid] = n > 0 ? n : nil
    }
}
