// ServerMetrics: after a known sequence of calls the exposition holds every family with the right
// type, labels and values, and is valid Prometheus text format line by line.

import Foundation
import Testing
@testable import Server

/// A strict reader of the Prometheus text exposition format (0.0.4): HELP and TYPE comments, and
/// samples `name{label="value",...} number`. Records the first malformed line.
struct Exposition {
    var types: [String: String] = [:]
    var samples: [String: Double] = [:]  // "name{labels}" exactly as written -> value
    var order: [String] = []
    var malformed: [String] = []

    init(_ text: String) {
        #expect(text.hasSuffix("\n"))
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            if let m = line.wholeMatch(of: /# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)/) {
                if types[String(m.1)] != nil { malformed.append("duplicate TYPE: \(line)") }
                types[String(m.1)] = String(m.2)
            } else if line.wholeMatch(of: /# HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*/) != nil {
                continue
            } else if let m = line.wholeMatch(
                of: /([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*")*\})? ([-+]?(?:[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|Inf|NaN))/)
            {
                let key = String(m.1) + String(m.2 ?? "")
                let value = m.3 == "+Inf" || m.3 == "Inf" ? Double.infinity : Double(m.3)
                guard let value else { malformed.append(String(line)); continue }
                // A sample's family (histogram series drop their suffix) must have been typed first.
                let family = String(m.1).replacing(/_(bucket|sum|count)$/, with: "")
                if types[String(m.1)] == nil && types[family] != "histogram" { malformed.append("untyped: \(line)") }
                if samples[key] != nil { malformed.append("duplicate sample: \(line)") }
                samples[key] = value
                order.append(key)
            } else {
                malformed.append(String(line))
            }
        }
    }
}

@Suite struct MetricsTests {
    @Test func freshMetricsShowEveryUnlabelledFamilyAtZero() {
        let exposition = Exposition(ServerMetrics().render())
        #expect(exposition.malformed == [])
        let expectedTypes = [
            "lorad_queue_depth": "gauge", "lorad_live_sequences": "gauge", "lorad_kv_cache_bytes": "gauge",
            "lorad_kv_cache_budget_bytes": "gauge", "lorad_adapters_loaded": "gauge",
            "lorad_prefix_cache_hits_total": "counter", "lorad_prefix_cache_misses_total": "counter",
            "lorad_prefix_cache_reused_tokens_total": "counter",
            "lorad_inter_token_latency_seconds": "histogram", "lorad_batch_size": "histogram",
            "process_resident_memory_bytes": "gauge", "process_open_fds": "gauge",
            "process_start_time_seconds": "gauge", "process_cpu_seconds_total": "counter",
        ]
        for (name, type) in expectedTypes {
            #expect(exposition.types[name] == type, "\(name)")
        }
        #expect(exposition.samples["lorad_queue_depth"] == 0)
        #expect(exposition.samples["lorad_kv_cache_bytes{kind=\"sequences\"}"] == 0)
        #expect(exposition.samples["lorad_kv_cache_bytes{kind=\"prefix_cache\"}"] == 0)
        #expect(exposition.samples["lorad_batch_size_count"] == 0)
        #expect(exposition.samples["lorad_inter_token_latency_seconds_bucket{le=\"+Inf\"}"] == 0)
    }

    @Test func recordedEventsAppearWithTheirLabels() throws {
        let metrics = ServerMetrics()
        metrics.requestFinished(endpoint: "/v1/chat/completions", status: 200, adapter: "acme-support", tenant: "acme")
        metrics.requestFinished(endpoint: "/v1/chat/completions", status: 200, adapter: "acme-support", tenant: "acme", duration: 0.3)
        metrics.requestFinished(endpoint: "/v1/chat/completions", status: 429, adapter: "acme-support", tenant: "acme")
        metrics.requestFinished(endpoint: "/metrics", status: 200, adapter: "base", tenant: "(none)")
        metrics.tokens(prompt: 12, generated: 30, adapter: "acme-support", tenant: "acme")
        metrics.tokens(prompt: 8, generated: 0, adapter: "acme-support", tenant: "acme")
        metrics.tokens(prompt: 5, generated: 7, adapter: "base", tenant: "(none)")
        metrics.timeToFirstToken(seconds: 0.02, adapter: "acme-support")
        metrics.timeToFirstToken(seconds: 45, adapter: "acme-support")
        for _ in 0..<3 { metrics.interTokenLatency(seconds: 0.004) }
        metrics.batchSize(5)
        metrics.batchSize(64)
        metrics.setQueueDepth(7)
        metrics.setLiveSequences(3)
        metrics.setKVBytes(sequences: 1000, prefixCache: 2000)
        metrics.setKVBudget(bytes: 1 << 30)
        metrics.prefixCache(hit: true, reusedTokens: 64)
        metrics.prefixCache(hit: true, reusedTokens: 32)
        metrics.prefixCache(hit: false, reusedTokens: 0)
        metrics.adapterLoadFailed(name: "broken")
        metrics.setAdaptersLoaded(4, bytes: 123_456)
        metrics.adapterLoaded(name: "acme-support", seconds: 0.004)
        metrics.adapterActivated(name: "acme-support")
        metrics.rejected(reason: "queue_full")
        metrics.rejected(reason: "queue_full")

        let e = Exposition(metrics.render())
        #expect(e.malformed == [])
        let expected: [String: Double] = [
            #"lorad_requests_total{endpoint="/v1/chat/completions",status="200",adapter="acme-support"}"#: 2,
            #"lorad_requests_total{endpoint="/v1/chat/completions",status="429",adapter="acme-support"}"#: 1,
            #"lorad_requests_total{endpoint="/metrics",status="200",adapter="base"}"#: 1,
            #"lorad_request_duration_seconds_count{endpoint="/v1/chat/completions"}"#: 1,
            #"lorad_request_duration_seconds_bucket{endpoint="/v1/chat/completions",le="0.25"}"#: 0,
            #"lorad_request_duration_seconds_bucket{endpoint="/v1/chat/completions",le="0.5"}"#: 1,
            #"lorad_prompt_tokens_total{adapter="acme-support"}"#: 20,
            #"lorad_generation_tokens_total{adapter="acme-support"}"#: 30,
            #"lorad_prompt_tokens_total{adapter="base"}"#: 5,
            #"lorad_generation_tokens_total{adapter="base"}"#: 7,
            #"lorad_time_to_first_token_seconds_bucket{adapter="acme-support",le="0.01"}"#: 0,
            #"lorad_time_to_first_token_seconds_bucket{adapter="acme-support",le="0.025"}"#: 1,
            #"lorad_time_to_first_token_seconds_bucket{adapter="acme-support",le="30.0"}"#: 1,
            #"lorad_time_to_first_token_seconds_bucket{adapter="acme-support",le="+Inf"}"#: 2,
            #"lorad_time_to_first_token_seconds_count{adapter="acme-support"}"#: 2,
            #"lorad_inter_token_latency_seconds_bucket{le="0.0025"}"#: 0,
            #"lorad_inter_token_latency_seconds_bucket{le="0.005"}"#: 3,
            "lorad_inter_token_latency_seconds_count": 3,
            #"lorad_batch_size_bucket{le="4.0"}"#: 0,
            #"lorad_batch_size_bucket{le="6.0"}"#: 1,
            #"lorad_batch_size_bucket{le="64.0"}"#: 2,
            "lorad_batch_size_sum": 69,
            "lorad_queue_depth": 7,
            "lorad_live_sequences": 3,
            #"lorad_kv_cache_bytes{kind="sequences"}"#: 1000,
            #"lorad_kv_cache_bytes{kind="prefix_cache"}"#: 2000,
            "lorad_kv_cache_budget_bytes": Double(1 << 30),
            "lorad_prefix_cache_hits_total": 2,
            "lorad_prefix_cache_misses_total": 1,
            "lorad_prefix_cache_reused_tokens_total": 96,
            #"lorad_adapter_load_failures_total{adapter="broken"}"#: 1,
            "lorad_adapters_loaded": 4,
            "lorad_adapter_bytes": 123_456,
            #"lorad_adapter_loads_total{adapter="acme-support"}"#: 1,
            #"lorad_adapter_load_seconds_bucket{le="0.0025"}"#: 0,
            #"lorad_adapter_load_seconds_bucket{le="0.005"}"#: 1,
            #"lorad_adapter_activations_total{adapter="acme-support"}"#: 1,
            #"lorad_rejected_requests_total{reason="queue_full"}"#: 2,
        ]
        for (key, value) in expected {
            #expect(e.samples[key] == value, "\(key)")
        }
        let itlSum = try #require(e.samples["lorad_inter_token_latency_seconds_sum"])
        #expect(abs(itlSum - 0.012) < 1e-9)
        // Histogram buckets are cumulative and end at the count.
        let ttftBuckets = e.order.filter { $0.hasPrefix(#"lorad_time_to_first_token_seconds_bucket{adapter="acme-support""#) }
        #expect(ttftBuckets.count == ServerMetrics.ttftBuckets.count + 1)
        let counts = ttftBuckets.map { e.samples[$0]! }
        #expect(counts == counts.sorted())

        #expect(e.types["lorad_requests_total"] == "counter")
        #expect(e.types["lorad_time_to_first_token_seconds"] == "histogram")
        #expect(e.types["lorad_rejected_requests_total"] == "counter")
    }

    @Test func processFiguresAreRead() throws {
        let e = Exposition(ServerMetrics().render())
        let rss = try #require(e.samples["process_resident_memory_bytes"])
        #expect(rss > Double(1 << 20))
        let fds = try #require(e.samples["process_open_fds"])
        #expect(fds >= 3)
        let start = try #require(e.samples["process_start_time_seconds"])
        let now = Date().timeIntervalSince1970
        #expect(start > 1.6e9 && start <= now + 1)
        #expect(try #require(e.samples["process_cpu_seconds_total"]) > 0)
    }

    /// Per-tenant families: requests by status class, tokens, refusals by reason; the tenant label is
    /// only ever a configured name or one of TenantLabel's two words.
    @Test func perTenantCountersByClassTokensAndRefusals() {
        let metrics = ServerMetrics()
        metrics.requestFinished(endpoint: "/v1/chat/completions", status: 200, adapter: "acme-support", tenant: "acme")
        metrics.requestFinished(endpoint: "/v1/completions", status: 201, adapter: "acme-other", tenant: "acme")
        metrics.requestFinished(endpoint: "/v1/models", status: 401, adapter: "", tenant: TenantLabel.unknown)
        metrics.requestFinished(endpoint: "/v1/adapters", status: 403, adapter: "", tenant: "acme")
        metrics.tokens(prompt: 12, generated: 30, adapter: "acme-support", tenant: "acme")
        metrics.tokens(prompt: 3, generated: 4, adapter: "base", tenant: TenantLabel.none)
        metrics.refused(tenant: "acme", reason: RefusalReason.forbidden.rawValue)
        metrics.refused(tenant: TenantLabel.unknown, reason: RefusalReason.unknownToken.rawValue)
        metrics.refused(tenant: "acme", reason: RefusalReason.tokenRate.rawValue)
        metrics.refused(tenant: "acme", reason: RefusalReason.tokenRate.rawValue)
        let e = Exposition(metrics.render())
        #expect(e.malformed == [])
        let expected: [String: Double] = [
            #"lorad_tenant_requests_total{tenant="acme",class="2xx"}"#: 2,
            #"lorad_tenant_requests_total{tenant="acme",class="4xx"}"#: 1,
            #"lorad_tenant_requests_total{tenant="(unknown)",class="4xx"}"#: 1,
            #"lorad_tenant_prompt_tokens_total{tenant="acme"}"#: 12,
            #"lorad_tenant_generation_tokens_total{tenant="acme"}"#: 30,
            #"lorad_tenant_prompt_tokens_total{tenant="(none)"}"#: 3,
            #"lorad_tenant_refusals_total{tenant="acme",reason="forbidden"}"#: 1,
            #"lorad_tenant_refusals_total{tenant="acme",reason="token_rate"}"#: 2,
            #"lorad_tenant_refusals_total{tenant="(unknown)",reason="unknown_token"}"#: 1,
        ]
        for (k, v) in expected { #expect(e.samples[k] == v, "\(k)") }
        #expect(ServerMetrics.statusClass(599) == "5xx" && ServerMetrics.statusClass(42) == "other")
        #expect(RefusalReason.allCases.map(\.rawValue) == ["no_token", "unknown_token", "forbidden", "queue_full", "token_rate"])
    }

    @Test func labelValuesAreEscapedAndBounded() {
        let metrics = ServerMetrics()
        metrics.tokens(prompt: 1, generated: 1, adapter: "we\"ird\\name\nwith newline", tenant: "(none)")
        metrics.adapterLoadFailed(name: String(repeating: "a", count: 500))
        let text = metrics.render()
        let e = Exposition(text)
        #expect(e.malformed == [])
        #expect(e.samples[#"lorad_prompt_tokens_total{adapter="we\"ird\\name\#u{FFFD}with newline"}"#] == 1)
        #expect(e.samples["lorad_adapter_load_failures_total{adapter=\"\(String(repeating: "a", count: 128))\"}"] == 1)
    }

    @Test func concurrentCallersAreCounted() async {
        let metrics = ServerMetrics()
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<8 {
                group.addTask {
                    for _ in 0..<500 {
                        metrics.requestFinished(endpoint: "/v1/completions", status: 200, adapter: "a\(i % 2)", tenant: "(none)")
                        metrics.interTokenLatency(seconds: 0.01)
                    }
                }
            }
        }
        let e = Exposition(metrics.render())
        #expect(e.samples[#"lorad_requests_total{endpoint="/v1/completions",status="200",adapter="a0"}"#] == 2000)
        #expect(e.samples[#"lorad_requests_total{endpoint="/v1/completions",status="200",adapter="a1"}"#] == 2000)
        #expect(e.samples["lorad_inter_token_latency_seconds_count"] == 4000)
    }

    @Test func bucketsAreIncreasingAndSpanTheIssue() {
        for buckets in [ServerMetrics.ttftBuckets, ServerMetrics.itlBuckets, ServerMetrics.batchBuckets,
                        ServerMetrics.requestBuckets] {
            #expect(buckets == buckets.sorted() && Set(buckets).count == buckets.count)
        }
        #expect(ServerMetrics.ttftBuckets.first == 0.005 && ServerMetrics.ttftBuckets.last == 30)
        #expect(ServerMetrics.itlBuckets.first == 0.001 && ServerMetrics.itlBuckets.last == 2)
        #expect(ServerMetrics.batchBuckets.first == 1 && ServerMetrics.batchBuckets.last == 64)
    }
}
