// Per-tenant token rate limits (`tokens_per_minute`): a bucket per tenant that refills continuously
// at the rate and holds at most one minute's worth. A request is admitted while its tenant's bucket
// is positive, and its prompt and generated tokens are taken out when it ends (its size is unknown
// before), so one large request can drive the bucket negative: the tenant then waits until it
// refills, told how long by Retry-After. Loop thread only.

import Foundation

struct TokenBuckets {
    private var levels: [String: (tokens: Double, at: Double)] = [:]

    /// Seconds until `tenant` may submit again; nil when it may now.
    mutating func wait(_ tenant: String, perMinute: Int, now: Double = Date().timeIntervalSince1970) -> Int? {
        guard perMinute > 0 else { return nil }
        let level = refill(tenant, perMinute: perMinute, now: now)
        guard level < 1 else { return nil }
        return max(1, Int(((1 - level) / (Double(perMinute) / 60)).rounded(.up)))
    }

    /// Takes `tokens` a finished request used.
    mutating func take(_ tenant: String, tokens: Int, perMinute: Int, now: Double = Date().timeIntervalSince1970) {
        guard perMinute > 0 else { return }
        let level = refill(tenant, perMinute: perMinute, now: now)
        levels[tenant] = (level - Double(tokens), now)
    }

    private mutating func refill(_ tenant: String, perMinute: Int, now: Double) -> Double {
        let capacity = Double(perMinute)
        guard let (tokens, at) = levels[tenant] else {
            levels[tenant] = (capacity, now)
            return capacity
        }
        let level = min(capacity, tokens + (now - at) * capacity / 60)
        levels[tenant] = (level, now)
        return level
    }
}
