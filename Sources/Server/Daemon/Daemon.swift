// The daemon's life cycle on the loop thread (DESIGN.md §2): start, listeners and accepted
// connections, signals, drain and reload. What requests are answered with lives elsewhere: the
// router (Routing/) dispatches them to the endpoints (API/), which hand generations to the engine
// thread; this type wakes them when the engine's outbox has events. It never computes or reads
// files: forward passes run on the engine thread, adapter and configuration files are read on the
// loader thread, large prompts are tokenized on the prompt thread (API/Preparation.swift).
//
// Life cycle: the model is loaded and the adapters scanned BEFORE any socket exists (or before a
// passed socket is adopted), so a client never connects to a daemon that cannot answer; then READY
// goes to systemd. SIGTERM/SIGINT drain: listeners close, new requests are refused, running ones
// finish until `drainTimeout`, then the rest are cut and `run()` returns. SIGHUP re-reads the
// configuration and rescans the adapters, both on the loader thread (the loop never reads a file).

import Foundation
import Generation
import HTTP
import Engine
import Llama
import LoRA
import Logging
import ModelFormats
import SystemCalls
import Tokenizer

package final class Daemon {
    /// The configuration in effect: the start-up one, with live keys replaced by each SIGHUP reload.
    package private(set) var config: ServerConfig {
        didSet { tenantDirectory = TenantDirectory(config) }
    }
    /// The tokens `authorize` knows, made once per configuration (start-up and each reload).
    private var tenantDirectory: TenantDirectory
    let bundle: ModelBundle
    let loop: UVLoop
    package private(set) var engine: Engine!
    let metrics = ServerMetrics()
    var logger: Logger
    /// The catalog in effect lives in `endpoints`; the daemon replaces it on a rescan.
    private var catalog: AdapterCatalog {
        get { endpoints.catalog }
        set { endpoints.catalog = newValue }
    }
    private(set) var router: Router!
    private var endpoints: Endpoints!
    /// Training jobs (Jobs/): their queue and the trainer thread.
    private var jobs: JobManager!
    let baseInfo: BaseModelInfo
    var httpLimits: HTTPLimits {
        HTTPLimits(maxHeaderBytes: config.server.maxHeaderBytes, maxBodyBytes: config.server.maxBodyBytes,
                   maxBodyBytesSetting: "server.max_body_bytes")
    }
    var idleTimeoutMS: UInt64 { Self.milliseconds(config.server.idleTimeout) }
    var readTimeoutMS: UInt64 { Self.milliseconds(config.server.readTimeout) }
    var slowReaderTimeoutMS: UInt64 { Self.milliseconds(config.server.slowReaderTimeout) }
    var writeBufferBytes: Int { config.server.writeBufferBytes }
    let servedName: String

    private var listeners: [UVListener] = []
    private var connections = OpenConnections()
    private var refusalLog = RefusalLog()
    var connectionLimits: ConnectionLimits {
        ConnectionLimits(maxConnections: config.server.maxConnections, maxConnectionsPerUID: config.server.maxConnectionsPerUID)
    }
    private var wake: UVAsync!
    /// Results of off-loop work (adapter rescans, large prompts) come back through this.
    private(set) var work: LoopWork!
    /// The loader thread: every file read after start-up (DESIGN.md §2).
    let loaderQueue = DispatchQueue(label: "lorad.loader")
    private var rescanning = false
    private var rescanAgain: String?
    /// Callers waiting for the running rescan, and for the next one (they changed the registry
    /// after the running one had started reading it).
    private var afterThisRescan: [() -> Void] = []
    private var afterNextRescan: [() -> Void] = []
    /// Notices registry changes (file-system events, a periodic rescan) and asks for a rescan.
    private var registryWatch: RegistryWatch?
    private var signals: [UVSignal] = []
    private var watchdog: UVTimer?
    private var drainTimer: UVTimer?
    private let notifier: SystemdNotifier?
    private let passedFDs: [Int32]
    private let configPath: String?
    private let overrides: ConfigOverrides
    /// What the configuration file is read over on a reload (the environment's defaults).
    private let configBase: ServerConfig

    enum State { case starting, serving, draining }
    private(set) var state = State.starting

    /// Loads nothing itself: `bundle` is the loaded model. `passedFDs` are listening sockets from
    /// systemd (LISTEN_FDS); without them the daemon binds `config.server.socket` (and `tcp`).
    package init(config: ServerConfig, bundle: ModelBundle, passedFDs: [Int32] = [], configPath: String? = nil,
                 overrides: ConfigOverrides = ConfigOverrides(), configBase: ServerConfig = ServerConfig(),
                 environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.config = config
        tenantDirectory = TenantDirectory(config)
        self.overrides = overrides
        self.configBase = configBase
        self.bundle = bundle
        self.passedFDs = passedFDs
        self.configPath = configPath
        logger = Logger(label: "lorad")
        logger.logLevel = config.log.level
        loop = try UVLoop()
        baseInfo = try bundle.baseInfo()
        servedName = config.model.servedModelName
        let catalog = AdapterCatalog.scan(directory: config.adapters.dir,
                                          AdapterCatalog.ScanContext(base: baseInfo, reserved: [config.model.servedModelName, "base"],
                                                                     preload: Set(config.adapters.preload)))
        notifier = SystemdNotifier(environment: environment)
        metrics.setKVBudget(bytes: config.engine.kvBudgetBytes)

        var ec = EngineConfig()
        ec.maxSequences = config.engine.maxSequences
        ec.kvBudgetBytes = config.engine.kvBudgetBytes
        ec.contextLimit = config.model.context
        ec.queueLimit = config.engine.queueLimit
        ec.perAdapterQueueLimit = config.engine.perAdapterQueueLimit
        ec.prefillChunk = config.engine.prefillChunk
        ec.prefillFirst = config.engine.prefillFirst
        ec.prefixCache = config.engine.prefixCache
        wake = try UVAsync(loop: loop) { [unowned self] in engineWoke() }
        work = try LoopWork(loop: loop)
        let wakeHandle = wake!
        engine = Engine(model: bundle.model, tokenizer: bundle.tokenizer, config: ec, wake: { wakeHandle.send() })
        let responder = Responder(metrics: metrics, isServing: { [unowned self] in state == .serving },
                                  log: { [unowned self] level, line in log(level, line) })
        endpoints = Endpoints(bundle: bundle, engine: engine, responder: responder, servedName: servedName, catalog: catalog,
                              maxTokensDefault: config.engine.maxTokensDefault, cacheBudget: config.adapters.cacheBytes, work: work,
                              isServing: { [unowned self] in state == .serving })
        endpoints.mergedBudget = config.adapters.mergedBytes
        endpoints.mergedType = config.adapters.mergedType
        router = Router(responder: responder)
        endpoints.register(on: router)
        endpoints.registerAdmin(on: router, AdminContext(
            root: { [unowned self] in self.config.adapters.dir },
            importRoots: { [unowned self] in self.config.adapters.importRoots },
            base: baseInfo, loaderQueue: loaderQueue,
            rescan: { [unowned self] reason, then in rescanAdapters(reason: reason, then: then) },
            log: { [unowned self] line in log(.notice, line) },
            maxUploadBytes: { [unowned self] in self.config.admin.maxUploadBytes }))
        jobs = try JobManager(context: JobManager.Context(
            root: { [unowned self] in self.config.adapters.dir },
            importRoots: { [unowned self] in self.config.adapters.importRoots },
            maxQueued: { [unowned self] in self.config.training.maxQueued },
            maxShare: { [unowned self] in self.config.training.maxShare },
            bundle: bundle, metrics: metrics,
            rescan: { [unowned self] reason, then in rescanAdapters(reason: reason, then: then) },
            log: { [unowned self] line in log(.notice, line) }), loop: loop, work: work)
        endpoints.registerJobs(on: router, jobs, maxUploadBytes: { [unowned self] in self.config.admin.maxUploadBytes })
        router.authorize = { [unowned self] request, route in authorize(request, route) }
        adopt(catalog)
        reportCatalog()
    }

    /// A daemon started by a parent that blocks signals (some test runners and supervisors do, and
    /// posix_spawn passes the mask on) would never see SIGTERM or SIGHUP: unblock them.
    static func unblockSignals() {
        Posix.signalMask(.unblock, [SIGTERM, SIGINT, SIGHUP])
    }

    static func milliseconds(_ d: Duration) -> UInt64 {
        let (s, atto) = d.components
        return UInt64(max(0, s)) * 1000 + UInt64(max(0, atto) / 1_000_000_000_000_000)
    }

    func log(_ level: Logger.Level, _ message: @autoclosure () -> String) {
        logger.log(level: level, "\(message())")
    }

    /// Logs and counts what a scan found. With `onlyChanges` (a rescan nobody asked for), only what
    /// changed since `previous` is logged: a failure or a warning already reported is not repeated
    /// every periodic rescan, and the list of served adapters is logged when it differs.
    private func reportCatalog(previous: AdapterCatalog? = nil, onlyChanges: Bool = false) {
        let seen = onlyChanges ? previous : nil
        let oldFailures = Set((seen?.failures ?? []).map { "\($0.name)\u{0}\($0.reason)" })
        for f in catalog.failures where !oldFailures.contains("\(f.name)\u{0}\(f.reason)") {
            let what = f.keptPrevious ? "not reloaded, still serving the copy loaded before" : "skipped"
            log(.error, "adapter \(f.name.isEmpty ? f.path : f.name) \(what): \(f.reason) (\(f.path))")
            metrics.adapterLoadFailed(name: f.name.isEmpty ? "(directory)" : f.name)
        }
        for name in catalog.sortedNames {
            if let w = catalog.entries[name]?.warning, w != seen?.entries[name]?.warning {
                log(.warning, "adapter \(name): \(w)")
            }
        }
        metrics.setAdaptersRegistered(catalog.entries.count)
        endpoints.updateGauges()
        for load in catalog.loads { metrics.adapterLoaded(name: load.name, seconds: load.seconds) }
        if let previous {
            for name in catalog.sortedNames {
                let now = catalog.entries[name]!, before = previous.entries[name]
                if let before, before.version != now.version { metrics.adapterActivated(name: name) }
            }
        }
        let served = catalog.sortedNames.map { "\($0)@v\(catalog.entries[$0]!.version)" }
        let before = seen.map { p in p.sortedNames.map { "\($0)@v\(p.entries[$0]!.version)" } }
        // Entries the scan did not reload keep their objects, so `loads` is exactly what changed.
        if served != before || !catalog.loads.isEmpty {
            log(.info, "serving \(served.count) adapter(s)\(served.isEmpty ? "" : ": " + served.joined(separator: ", "))")
        }
    }

    // MARK: - Running

    /// Binds (or adopts) the sockets, starts the engine, tells systemd READY and runs the loop until
    /// a drain completes. Throws when a socket cannot be set up (nothing is left running then).
    package func run() throws {
        UVLoop.ignoreSIGPIPE()
        Self.unblockSignals()
        let fileLimit = ConnectionLimits.raiseOpenFileLimit()
        let limits = connectionLimits
        log(.info, "open-file limit \(fileLimit); at most \(limits.total) connections, \(limits.perUID) per local user")
        engine.start()
        do {
            try openListeners()
        } catch {
            engine.shutdown()
            wake.close()
            work.close()
            loop.closeAll()
            throw error
        }
        SignalSentinel.install()
        for (sig, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            signals.append(try UVSignal(loop: loop, signal: sig) { [unowned self] in beginDrain(reason: name) })
        }
        signals.append(try UVSignal(loop: loop, signal: SIGHUP) { [unowned self] in reload() })
        let watch = try RegistryWatch(loop: loop, log: { [unowned self] line in log(.warning, line) },
                                      rescan: { [unowned self] reason in rescanAdapters(reason: reason) })
        watch.watch(catalog.directories)
        watch.setPeriod(seconds: Self.milliseconds(config.adapters.rescanInterval) / 1000)
        registryWatch = watch
        if let interval = SystemdNotifier.watchdogPingInterval(environment: ProcessInfo.processInfo.environment), let notifier {
            let t = try UVTimer(loop: loop)
            let ms = Self.milliseconds(interval)
            t.start(after: ms, repeat: ms) { _ = notifier.watchdog() }
            watchdog = t
        }
        state = .serving
        let where_ = listeners.map(\.description).joined(separator: ", ")
        let m = bundle.model, c = m.config
        log(.notice, "lorad ready on \(where_): model \(servedName) = \(bundle.gguf.path ?? "?") (llama, \(c.layerCount) layers, "
            + "\(c.embeddingLength) wide, vocabulary \(c.vocabularySize)), context \(engine.contextLimit) of \(c.trainedContextLength) trained, "
            + "\(m.pool.threadCount) thread(s), numerics \(m.numerics.rawValue), KV budget \(ByteSize.format(config.engine.kvBudgetBytes)), "
            + "\(catalog.entries.count) adapter(s)\(catalog.entries.isEmpty ? "" : " (" + catalog.sortedNames.joined(separator: ", ") + ")")")
        _ = notifier?.ready(status: "serving \(catalog.entries.count) adapter(s) on \(where_)")
        mergeConfigured()
        loop.run()
        // Drained (or stopped): close whatever is left. The trainer stops after its step first.
        jobs.shutdown()
        engine.shutdown()
        loop.closeAll()
        log(.notice, "lorad stopped")
    }

    private func openListeners() throws {
        if !passedFDs.isEmpty {
            for fd in passedFDs {
                let l = try UVListener.adopt(loop: loop, fd: fd)
                listeners.append(l)
            }
        } else {
            let mode = mode_t(config.server.socketMode)
            var gid: gid_t? = nil
            if let group = config.server.socketGroup {
                if let g = try? Posix.groupID(named: group) {
                    gid = g
                } else if let numeric = gid_t(group) {
                    gid = numeric
                } else {
                    throw DaemonError.badGroup(group)
                }
            }
            // Sockets systemd passes are its own; one lorad creates must not sit where anyone can replace it.
            switch SocketDirectory.check(socketPath: config.server.socket) {
            case .safe: break
            case .sticky(let warning): log(.warning, warning)
            case .unsafe(let error): throw error
            }
            listeners.append(try UVListener.unix(loop: loop, path: config.server.socket, mode: mode, group: gid))
            if let tcp = config.server.tcp {
                listeners.append(try UVListener.tcp(loop: loop, host: tcp.host, port: Int(tcp.port)))
            }
        }
        for l in listeners {
            l.onConnection = { [unowned self] stream in accept(stream) }
            l.onError = { [unowned self] e in log(.error, "listener \(l): \(e)") }
            try l.start()
        }
    }

    private func accept(_ stream: UVConnection) {
        guard state == .serving else {
            stream.close()
            return
        }
        if let refusal = connections.refusal(for: stream, limits: connectionLimits) {
            metrics.connectionRefused(reason: refusal.reason)
            if let line = refusalLog.note("\(refusal.message) [\(stream)]") { log(.warning, line) }
            stream.write(ConnectionLimits.refusal(refusal.message))
            stream.shutdownAndClose()
            return
        }
        do {
            let c = try HTTPConnection(id: connections.nextID(), stream: stream, daemon: self)
            connections.add(c)
            metrics.setConnectionsOpen(connections.count)
            c.start()
        } catch {
            log(.error, "connection setup failed: \(error)")
            stream.close()
        }
    }

    func connectionClosed(_ c: HTTPConnection) {
        connections.remove(c)
        metrics.setConnectionsOpen(connections.count)
        if state == .draining { finishDrainIfIdle() }
    }

    // MARK: - Engine events

    private func engineWoke() {
        endpoints.deliverEngineEvents()
        if state == .draining { finishDrainIfIdle() }
    }

    // MARK: - Signals

    package func beginDrain(reason: String) {
        guard state != .draining else { return }
        state = .draining
        log(.notice, "\(reason): draining \(endpoints.streams.count) running request(s), at most \(config.server.drainTimeout)")
        _ = notifier?.stopping(status: "draining")
        for l in listeners { l.close() }
        listeners.removeAll()
        engine.beginDrain()
        jobs.beginDrain()
        // Connections that are not answering anything have nothing to finish.
        for c in connections.all where !c.busy { c.abort() }
        let t = try? UVTimer(loop: loop)
        t?.start(after: Self.milliseconds(config.server.drainTimeout)) { [unowned self] in
            log(.warning, "drain deadline passed with \(endpoints.streams.count) request(s) running; stopping them")
            stopNow()
        }
        drainTimer = t
        finishDrainIfIdle()
    }

    private func finishDrainIfIdle() {
        guard state == .draining, endpoints.streams.isEmpty, connections.all.allSatisfy({ !$0.busy }) else { return }
        stopNow()
    }

    private func stopNow() {
        for c in connections.all { c.abort() }
        drainTimer?.stop()
        watchdog?.stop()
        // A repeated SIGTERM (or SIGINT) while the process winds down must not kill it with status
        // 143: the drain already bounds how long stopping takes. Closing these watchers does not
        // restore the default action (`SignalSentinel` keeps libuv's handler installed), and the
        // signals are ignored from here on.
        for s in signals { s.close() }
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        signals.removeAll()
        registryWatch?.close()
        work.close()
        loop.stop()
    }

    /// SIGHUP: re-read the configuration file (when there is one) and apply its live keys, then
    /// rescan the adapters. A file that no longer parses changes nothing: the running
    /// configuration stays, and the log says why.
    private func reload() {
        _ = notifier?.reloading()
        guard let configPath else { return rescanAdapters(reason: "SIGHUP") }
        // The file is read on the loader thread like every other file after start-up; on a reload it
        // must be a regular file (a FIFO would block the reader, and an empty read would look like
        // an empty configuration).
        let overrides = self.overrides, base = configBase
        work.run(on: loaderQueue, { () -> Result<ServerConfig, ConfigReloadFailure> in
            guard let st = try? Posix.stat(configPath), (st.st_mode & S_IFMT) == S_IFREG else {
                return .failure(ConfigReloadFailure(description: "not a regular file (a reload re-reads the file given at start-up)"))
            }
            do {
                var fresh = try ServerConfig.load(path: configPath, base: base)
                // Flags given at start-up still win over the file.
                try fresh.apply(overrides)
                return .success(fresh)
            } catch {
                return .failure(ConfigReloadFailure(description: "\(error)"))
            }
        }, then: { [unowned self] result in
            guard state != .draining else { return }
            switch result {
            case .success(let fresh): applyReloaded(fresh)
            case .failure(let e):
                log(.error, "SIGHUP: \(configPath) not reloaded, keeping the running configuration: \(e)")
            }
            rescanAdapters(reason: "SIGHUP")
        })
    }

    private func applyReloaded(_ fresh: ServerConfig) {
        let diff = config.reloadableDifferences(from: fresh)
        if !diff.needRestart.isEmpty {
            log(.warning, "SIGHUP: these changes need a restart and were not applied: \(diff.needRestart.joined(separator: ", "))")
        }
        if !diff.applied.isEmpty {
            config = config.applyingReloadable(from: fresh)
            endpoints.maxTokensDefault = config.engine.maxTokensDefault
            endpoints.resident.budget = config.adapters.cacheBytes
            endpoints.letGo(endpoints.resident.evict())
            endpoints.mergedBudget = config.adapters.mergedBytes
            endpoints.mergedType = config.adapters.mergedType
            registryWatch?.setPeriod(seconds: Self.milliseconds(config.adapters.rescanInterval) / 1000)
            engine.setQueueLimits(total: config.engine.queueLimit, perAdapter: config.engine.perAdapterQueueLimit)
            LogSetup.setLevel(config.log.level)
            logger.logLevel = config.log.level
            log(.notice, "SIGHUP: applied \(diff.applied.joined(separator: ", "))")
        }
    }

    /// Rescans the registry on the loader thread and swaps the new catalog in when it is done; the
    /// loop keeps serving meanwhile. A trigger during a rescan queues one more. `reason`: SIGHUP, a
    /// file-system event, the periodic rescan.
    func rescanAdapters(reason: String, then: (() -> Void)? = nil) {
        guard !rescanning else {
            // A SIGHUP wins over a queued event: its rescan is the one that reports READY.
            if rescanAgain == nil || reason == "SIGHUP" { rescanAgain = reason }
            if let then { afterNextRescan.append(then) }
            return
        }
        rescanning = true
        afterThisRescan = afterNextRescan + (then.map { [$0] } ?? [])
        afterNextRescan = []
        let directory = config.adapters.dir, previous = catalog
        let context = AdapterCatalog.ScanContext(base: baseInfo, reserved: [servedName, "base"], preload: Set(config.adapters.preload),
                                                 resident: endpoints.resident.items.mapValues(\.stamps))
        log(reason == "SIGHUP" ? .notice : .debug, "\(reason): rescanning \(directory)")
        work.run(on: loaderQueue, {
            AdapterCatalog.scan(directory: directory, context, previous: previous)
        }, then: { [unowned self] fresh in
            rescanning = false
            let waiting = afterThisRescan
            afterThisRescan = []
            defer { for w in waiting { w() } }
            guard state != .draining else { return }
            adopt(fresh)
            // A SIGHUP reports everything, as an operator who sent it expects; events and the periodic
            // rescan report only what changed.
            reportCatalog(previous: previous, onlyChanges: reason != "SIGHUP")
            registryWatch?.watch(fresh.directories)
            mergeConfigured()
            if reason == "SIGHUP" { _ = notifier?.ready(status: "serving \(catalog.entries.count) adapter(s)") }
            if let again = rescanAgain {
                rescanAgain = nil
                rescanAdapters(reason: again)
            }
        })
    }
}

extension Daemon {
    /// Serves a scanned catalog: resident versions it no longer lists go (a running sequence keeps
    /// its object), and the versions the scan loaded (new versions of busy adapters, preloads) move in.
    func adopt(_ fresh: AdapterCatalog) {
        catalog = fresh
        endpoints.letGo(endpoints.resident.reconcile(with: fresh), evicted: false)
        for l in fresh.loaded {
            endpoints.letGo(endpoints.resident.insert(l.reference, l.adapter, stamps: l.stamps, pinned: l.pinned))
        }
        endpoints.updateGauges()
    }

    /// `adapters.merge` and versions whose manifest asks for it: merges those served without a
    /// merged copy.
    func mergeConfigured() {
        let flagged = catalog.sortedNames.filter { catalog.entries[$0]!.mergeRequested && !config.adapters.merge.contains($0) }
        endpoints.mergeConfigured(config.adapters.merge + flagged, log: { [unowned self] line in log(.notice, line) })
    }

    /// Who is calling (Callers.swift), and whether `route` lets them: 401 for a missing or unknown
    /// token where one is needed, 403 for a known caller without the right. Without tenants the
    /// serving API is open (the socket's permissions are the gate) and admin routes need a uid in
    /// `admin.uids` or the admin token; a TCP peer never has a uid. A refusal says who and why, for
    /// the audit line and metrics (Audit.swift); the router logs and counts it.
    func authorize(_ r: RoutedRequest, _ route: Route) -> Result<Caller, Refusal> {
        let directory = tenantDirectory
        let uid = r.connection.stream.peerCredentials.map { Int($0.uid) }
        let adminUIDs = config.admin.uids ?? [Int(getuid()), 0]
        let caller: Caller
        func refuse(_ e: OpenAIError, _ reason: RefusalReason, _ who: Caller) -> Result<Caller, Refusal> {
            .failure(Refusal(error: e, reason: reason, who: who.auditName, tenant: who.tenantLabel))
        }
        // With no tenants and no admin token, tokens mean nothing (OpenAI's clients send one always).
        let tokensKnown = directory.enabled || directory.adminToken != nil
        if tokensKnown, let token = TenantDirectory.bearer(r.http.headers["authorization"]) {
            switch directory.identify(token: token) {
            case .admin: caller = .admin(who: "admin token")
            case .tenant(let t): caller = .tenant(t)
            case .unknown:
                if route.access == .anyone { return .success(.open) }
                // An unknown token is refused, never taken for no token.
                return .failure(Refusal(error: Self.unauthorized("the bearer token is not known"), reason: .unknownToken,
                                        who: "unknown token", tenant: TenantLabel.unknown))
            }
        } else if let uid, adminUIDs.contains(uid) {
            caller = .admin(who: "uid \(uid)")
        } else {
            caller = .open
        }
        switch route.access {
        case .anyone:
            return .success(caller)
        case .tenants:
            if directory.enabled, caller == .open {
                return refuse(Self.unauthorized("this daemon serves tenants: send Authorization: Bearer <token>"), .noToken, caller)
            }
            return .success(caller)
        case .operators:
            if directory.enabled, case .tenant = caller {
                return refuse(Self.forbidden("\(route.pattern) is for operators (admin.uids or the admin token)"), .forbidden, caller)
            }
            if directory.enabled, caller == .open {
                return refuse(Self.unauthorized("send the admin token, or call from a uid in admin.uids"), .noToken, caller)
            }
            return .success(caller)
        case .admin, .publish, .publishers:
            if case .admin = caller { return .success(caller) }
            if route.access == .publish, case .tenant(let t) = caller, t.mayPublish,
               let name = r.parameters["name"], t.mayUse(adapter: name) {
                return .success(caller)
            }
            if route.access == .publishers, case .tenant(let t) = caller, t.mayPublish { return .success(caller) }
            switch caller {
            case .tenant(let t):
                return refuse(Self.forbidden("tenant \(t.name) may not \(route.access == .publish && t.mayPublish ? "publish this adapter" : route.access == .publishers ? "train adapters (may_publish is off)" : "use the admin API")"),
                              .forbidden, caller)
            default:
                if uid == nil {
                    return refuse(Self.forbidden("the admin API is served on the Unix socket to the uids in admin.uids, or with the admin token"),
                                  .forbidden, caller)
                }
                return refuse(Self.forbidden("uid \(uid!) may not use the admin API (admin.uids: \(adminUIDs.map(String.init).joined(separator: ", ")))"),
                              .forbidden, caller)
            }
        }
    }

    static func unauthorized(_ message: String) -> OpenAIError {
        var e = OpenAIError(status: 401, message: message, type: "invalid_request_error")
        e.code = "invalid_api_key"
        return e
    }

    static func forbidden(_ message: String) -> OpenAIError {
        OpenAIError(status: 403, message: message, type: "permission_error")
    }
}

struct ConfigReloadFailure: Error, CustomStringConvertible {
    let description: String
}

package enum DaemonError: Error, CustomStringConvertible, Equatable {
    case badGroup(String)
    /// The socket's directory, or one of its parents (`component`), is writable by every user and has no
    /// sticky bit (SocketDirectory.swift).
    case unsafeSocketDirectory(directory: String, component: String, mode: mode_t)
    /// The socket's directory, or one of its parents, belongs to a user who is neither root nor lorad's.
    case socketDirectoryOwner(directory: String, component: String, owner: uid_t, user: uid_t)

    package var description: String {
        switch self {
        case .badGroup(let g): return "server.socket_group: no group named '\(g)' on this system"
        case .unsafeSocketDirectory(let dir, let component, let mode):
            let which = component == dir ? "the directory's mode is" : "its parent \(component) has mode"
            return "server.socket: refusing to create the socket in \(dir): \(which) \(SocketDirectory.octal(mode)), "
                + "writable by every user without the sticky bit, so any local user could replace the socket with their own and "
                + "receive clients' tokens and prompts; put the socket in a directory only lorad's user (and its group) can write, "
                + "such as /run/lorad (systemd: RuntimeDirectory=lorad), or run chmod o-w \(component)"
        case .socketDirectoryOwner(let dir, let component, let owner, let user):
            let which = component == dir ? "the directory" : "its parent \(component)"
            return "server.socket: refusing to create the socket in \(dir): \(which) belongs to uid \(owner), neither root nor "
                + "lorad's uid \(user), and its owner could replace the socket with their own and receive clients' tokens and prompts; "
                + "put the socket in a directory owned by lorad's user or root, such as /run/lorad (systemd: RuntimeDirectory=lorad)"
        }
    }
}
