// What GET /metrics reports, in Prometheus text format, through swift-prometheus 2.x. The server
// and the engine call the methods below as things happen; `render()` writes the exposition.
// Names follow Prometheus conventions: a `lorad_` prefix, the unit in the name (_seconds, _bytes,
// _tokens), `_total` on counters. Families are created up front where they have no labels, so a
// scrape shows them at zero before the first request rather than not at all.
//
// Label values: `endpoint` must be a route pattern ("/v1/chat/completions", "other" for anything
// unrouted), never a raw path; `adapter` a resolved adapter name or the served base name (a request
// for an unknown adapter should be counted under "unknown"), so that label cardinality stays
// bounded by what the operator installed, not by what clients send; `tenant` a configured tenant's
// name, "(none)" or "(unknown)" (Audit.swift's TenantLabel), never a token or anything a client sent.
// Values are made printable and short here, and swift-prometheus escapes backslashes, quotes and
// newlines.
//
// Thread-safety: every collector locks internally, so the loop thread, the engine thread and a
// scrape may call in at the same time.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Prometheus
import Synchronization

public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry

    /// Time to first token, per adapter: 5 ms (a cached prefix, an idle engine) to 30 s (a long
    /// prompt behind a full queue).
    static let ttftBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75,
                                        1, 1.5, 2.5, 5, 7.5, 10, 15, 20, 30]
    /// Gap between consecutive tokens of one stream: 1 ms (a small model, one sequence) to 2 s
    /// (a big batch with long prefills interleaved).
    static let itlBuckets: [Double] = [0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05,
                                       0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2]
    /// Sequences in one forward pass; max_sequences is at most 1024, but batches past 64 are rare on CPU.
    /// Adapter loads: a small PEFT adapter takes milliseconds, a rank-64 one on every projection of
    /// a 1B model about a second.
    static let loadBuckets: [Double] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
    static let batchBuckets: [Double] = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]
    /// Whole requests, from the first byte read to the last byte written.
    static let requestBuckets: [Double] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300]

    /// Every family's name and help. swift-prometheus traps if one name is registered with two
    /// help texts, so each family is described in exactly one place. Computed, because
    /// MetricNameDescriptor is not Sendable.
    enum Family {
        static func lorad(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "lorad", metricName: name, unitName: unit, helpText: help)
        }
        static func process(_ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "process", metricName: name, unitName: unit, helpText: help)
        }
        static var requests: MetricNameDescriptor {
            lorad("requests", "total", "HTTP requests answered, by route pattern, status code and adapter.")
        }
        static var requestDuration: MetricNameDescriptor {
            lorad("request_duration", "seconds", "Time from a request's first byte to its response's last, by route pattern.")
        }
        static var promptTokens: MetricNameDescriptor {
            lorad("prompt_tokens", "total", "Prompt tokens processed, by adapter (including tokens reused from the prefix cache).")
        }
        static var generationTokens: MetricNameDescriptor {
            lorad("generation_tokens", "total", "Tokens generated, by adapter.")
        }
        static var tenantRequests: MetricNameDescriptor {
            lorad("tenant_requests", "total", "HTTP requests answered, by tenant ((none) without one, (unknown) for an unknown token) and status class (2xx, 4xx, 5xx).")
        }
        static var tenantPromptTokens: MetricNameDescriptor {
            lorad("tenant_prompt_tokens", "total", "Prompt tokens processed, by tenant.")
        }
        static var tenantGenerationTokens: MetricNameDescriptor {
            lorad("tenant_generation_tokens", "total", "Tokens generated, by tenant.")
        }
        static var tenantRefusals: MetricNameDescriptor {
            lorad("tenant_refusals", "total",
                  "Requests refused, by tenant and reason (no_token, unknown_token, forbidden, queue_full, token_rate).")
        }
        static var ttft: MetricNameDescriptor {
            lorad("time_to_first_token", "seconds", "Time from a request's arrival to its first generated token, by adapter.")
        }
        static var itl: MetricNameDescriptor {
            lorad("inter_token_latency", "seconds", "Time between consecutive generated tokens of one sequence.")
        }
        static var itlTraining: MetricNameDescriptor {
            lorad("inter_token_latency_while_training", "seconds",
                  "Time between consecutive generated tokens of one sequence, counted only while a training job runs.")
        }
        static var trainingJobs: MetricNameDescriptor {
            lorad("training_jobs", "", "Training jobs the daemon knows, by state (queued, running, succeeded, failed, cancelled).")
        }
        static var trainingTokensPerSecond: MetricNameDescriptor {
            lorad("training_tokens_per_second", "", "Tokens (forward and backward) per second of the running training job; 0 when none runs.")
        }
        static var batch: MetricNameDescriptor { lorad("batch_size", "", "Sequences in each batched forward pass.") }
        static var queue: MetricNameDescriptor { lorad("queue_depth", "", "Requests waiting for a batch slot.") }
        static var live: MetricNameDescriptor { lorad("live_sequences", "", "Sequences in the running batch.") }
        static var kv: MetricNameDescriptor {
            lorad("kv_cache", "bytes", "Bytes of KV cache in use, by kind: running sequences or the prefix cache.")
        }
        static var kvBudget: MetricNameDescriptor {
            lorad("kv_cache_budget", "bytes", "Bytes all KV caches may hold together (engine.kv_budget).")
        }
        static var prefixHits: MetricNameDescriptor {
            lorad("prefix_cache_hits", "total", "Prompts that started with a cached prefix.")
        }
        static var prefixMisses: MetricNameDescriptor {
            lorad("prefix_cache_misses", "total", "Prompts that found no usable cached prefix.")
        }
        static var prefixReused: MetricNameDescriptor {
            lorad("prefix_cache_reused_tokens", "total", "Prompt tokens whose KV was copied from the prefix cache instead of computed.")
        }
        static var loadFailures: MetricNameDescriptor {
            lorad("adapter_load_failures", "total", "Adapters that failed to load (at start-up or on a rescan), by adapter.")
        }
        static var adaptersLoaded: MetricNameDescriptor { lorad("adapters_loaded", "", "Adapter versions in memory (adapters.cache_bytes).") }
        static var adaptersRegistered: MetricNameDescriptor { lorad("adapters_registered", "", "Adapters the registry holds that are servable, loaded or not.") }
        static var adapterBytes: MetricNameDescriptor {
            lorad("adapter", "bytes", "Bytes of the loaded adapters' weights (the f32 modules and the kernels' packed copy).")
        }
        static var adapterLoads: MetricNameDescriptor {
            lorad("adapter_loads", "total", "Adapter versions read from the registry and validated, by adapter.")
        }
        static var adapterLoadSeconds: MetricNameDescriptor {
            lorad("adapter_load", "seconds", "Time to read and validate one adapter version.")
        }
        static var evictions: MetricNameDescriptor {
            lorad("adapter_evictions", "total", "Adapter versions dropped from memory to keep within adapters.cache_bytes, by adapter.")
        }
        static var activations: MetricNameDescriptor {
            lorad("adapter_activations", "total", "Times the served version of an adapter changed (a publish, an activation or a rollback), by adapter.")
        }
        static var rejected: MetricNameDescriptor {
            lorad("rejected_requests", "total", "Requests refused without being run, by reason (queue_full, adapter_queue_full, draining, ...).")
        }
        static var connectionsRefused: MetricNameDescriptor {
            lorad("connections_refused", "total",
                  "Connections closed at accept with a 503, by reason (max_connections, max_connections_per_uid).")
        }
        static var connectionsOpen: MetricNameDescriptor { lorad("connections_open", "", "Client connections open now.") }
        static var rss: MetricNameDescriptor { process("resident_memory", "bytes", "Resident memory of the daemon in bytes.") }
        static var openFDs: MetricNameDescriptor { process("open_fds", "", "Open file descriptors.") }
        static var startTime: MetricNameDescriptor {
            process("start_time", "seconds", "Start time of the process since the Unix epoch in seconds.")
        }
        static var cpu: MetricNameDescriptor { process("cpu_seconds", "total", "User and system CPU time spent in seconds.") }
    }

    private let interTokenLatencyHistogram: ValueHistogram
    private let interTokenLatencyTrainingHistogram: ValueHistogram
    private let trainingTokensGauge: Gauge
    /// A training job runs (the job manager sets it): ITL is then recorded in the training family too.
    private let trainingActive = Atomic<Bool>(false)
    private let batchSizeHistogram: ValueHistogram
    private let queueDepthGauge: Gauge
    private let liveSequencesGauge: Gauge
    private let kvSequencesGauge: Gauge
    private let kvPrefixCacheGauge: Gauge
    private let kvBudgetGauge: Gauge
    private let prefixHits: Counter
    private let prefixMisses: Counter
    private let prefixReusedTokens: Counter
    private let adaptersLoadedGauge: Gauge
    private let adaptersRegisteredGauge: Gauge
    private let adapterBytesGauge: Gauge
    private let adapterLoadHistogram: ValueHistogram
    private let connectionsOpenGauge: Gauge
    private let residentMemory: Gauge
    private let openFDs: Gauge
    private let cpuSeconds: Counter
    /// CPU seconds already added to `cpuSeconds` (a counter only goes up by increments).
    private let cpuSecondsReported = Mutex<Double>(0)

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        interTokenLatencyHistogram = registry.makeValueHistogram(descriptor: Family.itl, buckets: Self.itlBuckets)
        interTokenLatencyTrainingHistogram = registry.makeValueHistogram(descriptor: Family.itlTraining, buckets: Self.itlBuckets)
        trainingTokensGauge = registry.makeGauge(descriptor: Family.trainingTokensPerSecond)
        batchSizeHistogram = registry.makeValueHistogram(descriptor: Family.batch, buckets: Self.batchBuckets)
        queueDepthGauge = registry.makeGauge(descriptor: Family.queue)
        liveSequencesGauge = registry.makeGauge(descriptor: Family.live)
        kvSequencesGauge = registry.makeGauge(descriptor: Family.kv, labels: [("kind", "sequences")])
        kvPrefixCacheGauge = registry.makeGauge(descriptor: Family.kv, labels: [("kind", "prefix_cache")])
        kvBudgetGauge = registry.makeGauge(descriptor: Family.kvBudget)
        prefixHits = registry.makeCounter(descriptor: Family.prefixHits)
        prefixMisses = registry.makeCounter(descriptor: Family.prefixMisses)
        prefixReusedTokens = registry.makeCounter(descriptor: Family.prefixReused)
        adaptersLoadedGauge = registry.makeGauge(descriptor: Family.adaptersLoaded)
        adaptersRegisteredGauge = registry.makeGauge(descriptor: Family.adaptersRegistered)
        adapterBytesGauge = registry.makeGauge(descriptor: Family.adapterBytes)
        adapterLoadHistogram = registry.makeValueHistogram(descriptor: Family.adapterLoadSeconds, buckets: Self.loadBuckets)
        connectionsOpenGauge = registry.makeGauge(descriptor: Family.connectionsOpen)
        residentMemory = registry.makeGauge(descriptor: Family.rss)
        openFDs = registry.makeGauge(descriptor: Family.openFDs)
        cpuSeconds = registry.makeCounter(descriptor: Family.cpu)
        let startTime = registry.makeGauge(descriptor: Family.startTime)
        if let start = ProcessStats.startTimeSeconds() { startTime.set(start) }
    }

    // MARK: - Requests

    /// A response was sent (or the connection failed after the request was routed). `duration`, when
    /// given, feeds lorad_request_duration_seconds. Per tenant only the status class is kept, so the
    /// tenant family grows with tenants, not with tenants times routes times adapters.
    public func requestFinished(endpoint: String, status: Int, adapter: String, tenant: String, duration: Double? = nil) {
        registry.makeCounter(descriptor: Family.requests,
                             labels: [("endpoint", Self.label(endpoint)), ("status", String(status)),
                                      ("adapter", Self.label(adapter))]).increment()
        registry.makeCounter(descriptor: Family.tenantRequests,
                             labels: [("tenant", Self.label(tenant)), ("class", Self.statusClass(status))]).increment()
        if let duration {
            registry.makeValueHistogram(descriptor: Family.requestDuration, labels: [("endpoint", Self.label(endpoint))],
                                        buckets: Self.requestBuckets).record(duration)
        }
    }

    /// "2xx" for 200..299 and so on; "other" outside 100..599.
    static func statusClass(_ status: Int) -> String {
        (100...599).contains(status) ? "\(status / 100)xx" : "other"
    }

    /// A request refused by `authorize` or a tenant's limits (401, 403, 429): `reason` is a
    /// RefusalReason's word.
    public func refused(tenant: String, reason: String) {
        registry.makeCounter(descriptor: Family.tenantRefusals,
                             labels: [("tenant", Self.label(tenant)), ("reason", Self.label(reason))]).increment()
    }

    /// A request was refused before running (429, 503 while draining): `reason` is a short fixed word.
    public func rejected(reason: String) {
        registry.makeCounter(descriptor: Family.rejected, labels: [("reason", Self.label(reason))]).increment()
    }

    // MARK: - Connections

    /// A connection was turned away at accept: `reason` is the limit it hit.
    public func connectionRefused(reason: String) {
        registry.makeCounter(descriptor: Family.connectionsRefused, labels: [("reason", Self.label(reason))]).increment()
    }

    public func setConnectionsOpen(_ n: Int) {
        connectionsOpenGauge.set(Int64(n))
    }

    // MARK: - Tokens and latency

    /// A finished sequence's token counts, by adapter and by tenant.
    public func tokens(prompt: Int, generated: Int, adapter: String, tenant: String) {
        let adapter = Self.label(adapter), tenant = Self.label(tenant)
        let promptCounter = registry.makeCounter(descriptor: Family.promptTokens, labels: [("adapter", adapter)])
        let generatedCounter = registry.makeCounter(descriptor: Family.generationTokens, labels: [("adapter", adapter)])
        let tenantPrompt = registry.makeCounter(descriptor: Family.tenantPromptTokens, labels: [("tenant", tenant)])
        let tenantGenerated = registry.makeCounter(descriptor: Family.tenantGenerationTokens, labels: [("tenant", tenant)])
        if prompt > 0 {
            promptCounter.increment(by: Int64(prompt))
            tenantPrompt.increment(by: Int64(prompt))
        }
        if generated > 0 {
            generatedCounter.increment(by: Int64(generated))
            tenantGenerated.increment(by: Int64(generated))
        }
    }

    public func timeToFirstToken(seconds: Double, adapter: String) {
        registry.makeValueHistogram(descriptor: Family.ttft, labels: [("adapter", Self.label(adapter))],
                                    buckets: Self.ttftBuckets).record(seconds)
    }

    public func interTokenLatency(seconds: Double) {
        interTokenLatencyHistogram.record(seconds)
        if trainingActive.load(ordering: .relaxed) { interTokenLatencyTrainingHistogram.record(seconds) }
    }

    // MARK: - Training jobs

    public func setTrainingActive(_ active: Bool) {
        trainingActive.store(active, ordering: .relaxed)
    }

    public func setTrainingTokensPerSecond(_ rate: Double) {
        trainingTokensGauge.set(rate)
    }

    /// Jobs in `state` (a JobStatus word: five values, so the family stays small).
    public func setTrainingJobs(state: String, count: Int) {
        registry.makeGauge(descriptor: Family.trainingJobs, labels: [("state", Self.label(state))]).set(Int64(count))
    }

    // MARK: - Engine state

    /// Sequences in one forward pass (the engine calls this once per step).
    public func batchSize(_ n: Int) {
        batchSizeHistogram.record(Double(n))
    }

    public func setQueueDepth(_ n: Int) {
        queueDepthGauge.set(Int64(n))
    }

    public func setLiveSequences(_ n: Int) {
        liveSequencesGauge.set(Int64(n))
    }

    public func setKVBytes(sequences: Int, prefixCache: Int) {
        kvSequencesGauge.set(Int64(sequences))
        kvPrefixCacheGauge.set(Int64(prefixCache))
    }

    public func setKVBudget(bytes: Int) {
        kvBudgetGauge.set(Int64(bytes))
    }

    /// One prompt's prefix-cache lookup: a hit with the tokens it saved, or a miss.
    public func prefixCache(hit: Bool, reusedTokens: Int) {
        if hit {
            prefixHits.increment()
            if reusedTokens > 0 { prefixReusedTokens.increment(by: Int64(reusedTokens)) }
        } else {
            prefixMisses.increment()
        }
    }

    // MARK: - Adapters

    public func adapterLoadFailed(name: String) {
        registry.makeCounter(descriptor: Family.loadFailures, labels: [("adapter", Self.label(name))]).increment()
    }

    public func setAdaptersRegistered(_ n: Int) {
        adaptersRegisteredGauge.set(Int64(n))
    }

    public func setAdaptersLoaded(_ n: Int, bytes: Int) {
        adaptersLoadedGauge.set(Int64(n))
        adapterBytesGauge.set(Int64(bytes))
    }

    public func adapterLoaded(name: String, seconds: Double) {
        registry.makeCounter(descriptor: Family.adapterLoads, labels: [("adapter", Self.label(name))]).increment()
        adapterLoadHistogram.record(seconds)
    }

    public func adapterEvicted(name: String) {
        registry.makeCounter(descriptor: Family.evictions, labels: [("adapter", Self.label(name))]).increment()
    }

    public func adapterActivated(name: String) {
        registry.makeCounter(descriptor: Family.activations, labels: [("adapter", Self.label(name))]).increment()
    }

    // MARK: - Exposition

    /// The Prometheus text exposition (Content-Type: text/plain; version=0.0.4), with the process
    /// figures read just now.
    public func render() -> String {
        updateProcessStats()
        return registry.emitToString()
    }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private func updateProcessStats() {
        if let rss = ProcessStats.residentBytes() { residentMemory.set(Int64(rss)) }
        if let fds = ProcessStats.openDescriptors() { openFDs.set(Int64(fds)) }
        let cpu = ProcessStats.cpuSeconds()
        let delta = cpuSecondsReported.withLock { reported -> Double in
            let d = max(0, cpu - reported)
            reported = max(reported, cpu)
            return d
        }
        if delta > 0 { cpuSeconds.increment(by: delta) }
    }

    /// A label value as given, with control characters replaced and the length capped at 128 bytes:
    /// names reaching here are validated already, this only keeps a bug from producing a broken or
    /// huge exposition.
    static func label(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars {
            if out.utf8.count + String(scalar).utf8.count > 128 { break }
            out.unicodeScalars.append(scalar.value < 0x20 || scalar.value == 0x7F ? "\u{FFFD}" : scalar)
        }
        return out
    }
}
