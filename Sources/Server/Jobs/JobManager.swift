// Training jobs inside the running daemon (issue 19): a bounded queue, one job trained at a time on
// the trainer thread, progress back to the loop, the event log, and the watchers of each job's
// progress (SSE).
//
// Threads (docs/architecture.md, "Threads"):
// - the loop thread owns everything below: the records, the queue, the running job's cancellation
//   flag, the watchers. It never reads or writes a file and never trains.
// - the jobs queue (`lorad.jobs`, serial) prepares a submitted job (writes its rows, loads and
//   tokenizes them as the trainer will: bad data is a 400 before anything is queued) and writes
//   every job.json and event line, in order. Uploaded files are read, listed and deleted there too:
//   a job's training and validation files are marked in use (`fileUsers`) in the same step that
//   prepares it, so a deletion, also on that queue, sees every job prepared before it; the mark is
//   let go on the loop when the job ends.
// - the trainer thread (`lorad.trainer`, serial, one job at a time) runs `TrainingJob.run` with the
//   job's `TrainingCancellation`; each step's progress and the end come back to the loop through
//   `inbox` (a locked list and one uv_async). The run marks itself as the compute pool's background
//   caller, so a serving step never waits behind a training product (ComputePool's header).
//
// Cancelling sets the flag; the run stops after its current step and publishes nothing. A result is
// published by the registry's atomic publish, then the registry is rescanned, and only then is the
// job `succeeded`: a client that sees it can use `fine_tuned_model` at once.

import Dispatch
import Foundation
import Generation
import JSON
import Kernels
import Synchronization
import Training

final class JobManager {
    struct Context {
        /// `adapters.dir` and `adapters.import_roots` in effect.
        let root: () -> String
        let importRoots: () -> [String]
        /// `training.max_queued` in effect.
        let maxQueued: () -> Int
        /// `training.max_share` in effect (read at each step, so a reload applies to a running job).
        let maxShare: () -> Double
        let bundle: ModelBundle
        let metrics: ServerMetrics
        /// Rescans the registry, then calls back (loop thread).
        let rescan: (_ reason: String, _ then: @escaping () -> Void) -> Void
        let log: (String) -> Void
    }

    private let context: Context
    /// The registry root the jobs of this run live under (fixed at start: a reload that moves
    /// `adapters.dir` leaves earlier jobs where they are, and new ones go under the new root).
    private var roots: [String: String] = [:]
    private(set) var records: [String: JobRecord] = [:]
    /// Job ids, oldest first.
    private(set) var order: [String] = []
    private var events: [String: [JobEvent]] = [:]
    private var queue: [(id: String, job: PreparedJob)] = []
    /// Submissions being prepared on the jobs queue: they hold a place in the queue's limit.
    private var preparing = 0
    private var running: (id: String, cancellation: TrainingCancellation)?
    private var watchers: [String: [JobEventStream]] = [:]
    /// When each running job's record was last written for a step (`progress`).
    private var progressPersisted: [String: ContinuousClock.Instant] = [:]
    private var draining = false

    /// The trainer's last result, also kept here for `shutdown`, which runs after the loop (and so
    /// the inbox) has stopped.
    private let lastResult = Mutex<(id: String, result: Unchecked<Result<TrainingJobOutcome, Error>>)?>(nil)
    let jobsQueue = DispatchQueue(label: "lorad.jobs")
    /// The uploaded files queued and running jobs read (their training and validation files).
    let fileUsers = FileUsers()
    private let trainerQueue = DispatchQueue(label: "lorad.trainer")
    private let inbox: JobInbox

    init(context: Context, loop: UVLoop, work: LoopWork) throws {
        self.context = context
        self.work = work
        inbox = try JobInbox(loop: loop)
        // Start-up: before any socket exists, so reading the files here keeps the loop's rule.
        let root = context.root()
        let found = JobStore.recover(root: root)
        for r in found.jobs {
            records[r.id] = r
            order.append(r.id)
            roots[r.id] = root
            events[r.id] = JobStore.events(jobID: r.id, root: root)
        }
        for id in found.restarted { context.log("job \(id) (\(records[id]!.adapter)) failed: the daemon restarted before it finished") }
        updateMetrics()
    }

    private let work: LoopWork

    // MARK: Queries (loop thread)

    /// The jobs `owner` may see (nil: every job), oldest first.
    func jobs(visibleTo owner: String?, all: Bool) -> [JobRecord] {
        order.compactMap { records[$0] }.filter { all || $0.owner == owner }
    }

    /// A job `owner` may see; nil for a missing one and for another tenant's alike.
    func job(_ id: String, visibleTo owner: String?, all: Bool) -> JobRecord? {
        guard let r = records[id], all || r.owner == owner else { return nil }
        return r
    }

    func events(of id: String) -> [JobEvent] { events[id] ?? [] }

    // MARK: Submitting

    /// Parses (`parse`: the request's body, which may be large) and prepares a job on the jobs queue
    /// and queues it; `done` gets the queued record, or the error to answer (429 past
    /// `training.max_queued`, 400 for a bad request or bad data).
    func submit(_ parse: @escaping @Sendable () throws -> JobSpec, _ done: @escaping (Result<JobRecord, OpenAIError>) -> Void) {
        guard !draining else { return done(.failure(.unavailable("the server is shutting down", retryAfter: 5))) }
        let limit = context.maxQueued()
        guard queue.count + preparing < limit else {
            context.metrics.rejected(reason: "training_queue_full")
            return done(.failure(.tooManyRequests(retryAfter: 30, message: "\(queue.count + preparing) training job(s) are waiting and training.max_queued is \(limit); try again when one has started")))
        }
        preparing += 1
        let id = JobStore.newID(prefix: "ftjob-")
        let root = context.root(), roots = context.importRoots(), bundle = context.bundle, users = fileUsers
        work.run(on: jobsQueue, { () -> Result<PreparedJob, OpenAIError> in
            do {
                let spec = try parse()
                let prepared = try JobPreparation.prepare(spec, id: id, root: root, importRoots: roots, bundle: bundle)
                users.add(prepared.record)
                return .success(prepared)
            } catch {
                return .failure(error as? OpenAIError ?? .internal("\(error)"))
            }
        }, then: { [unowned self] result in
            preparing -= 1
            switch result {
            case .failure(let e): done(.failure(e))
            case .success(let prepared):
                let r = prepared.record
                records[id] = r
                order.append(id)
                self.roots[id] = root
                queue.append((id, prepared))
                context.log("job \(id): \(r.adapter) queued (\(r.examples) examples, \(r.evalExamples) eval, activate \(r.activate))")
                note(id, "Job created: \(r.adapter), \(r.examples) training examples, \(r.evalExamples) eval examples", type: "message", data: .null)
                updateMetrics()
                done(.success(r))
                startNext()
            }
        })
    }

    // MARK: Cancelling

    /// Cancels a queued job at once; a running one stops after its current step (its record says
    /// `running` until then). A finished job is returned unchanged.
    func cancel(_ id: String) -> JobRecord? {
        guard var r = records[id] else { return nil }
        if let i = queue.firstIndex(where: { $0.id == id }) {
            queue.remove(at: i)
            r.status = .cancelled
            r.finishedAt = Date().timeIntervalSince1970
            records[id] = r
            fileUsers.remove(job: id)
            note(id, "Job cancelled before it started", type: "message", data: .null)
            persist(id)
            updateMetrics()
            endWatchers(id)
        } else if let running, running.id == id, !running.cancellation.isCancelled {
            running.cancellation.cancel()
            note(id, "Cancellation requested: stopping after the current step", type: "message", data: .null)
        }
        return records[id]
    }

    // MARK: Running

    private func startNext() {
        guard running == nil, !draining, !queue.isEmpty else { return }
        let (id, prepared) = queue.removeFirst()
        let cancellation = TrainingCancellation()
        running = (id, cancellation)
        records[id]!.status = .running
        records[id]!.startedAt = Date().timeIntervalSince1970
        note(id, "Training started", type: "message", data: .null)
        persist(id)
        updateMetrics()
        context.metrics.setTrainingActive(true)
        let inbox = self.inbox, pool = context.bundle.model.pool, share = context.maxShare()
        // The manager is the loop's; the trainer only hands it closures that the loop runs.
        let me = Unchecked(self)
        trainerQueue.async {
            // The trainer shares the pool with serving (ComputePool.runInBackground).
            let result: Result<TrainingJobOutcome, Error> = pool.runInBackground(share: share) {
                Result {
                    try prepared.job.run(cancellation: cancellation) { p in inbox.post { me.value.progress(id, p) } }
                }
            }
            let sendable = Unchecked(result)
            me.value.lastResult.withLock { $0 = (id, sendable) }
            inbox.post { me.value.finished(id, sendable.value) }
        }
    }

    private func progress(_ id: String, _ p: TrainingProgress) {
        guard var r = records[id], r.status == .running else { return }
        context.bundle.model.pool.setBackgroundShare(context.maxShare())
        r.step = p.step
        r.totalSteps = p.totalSteps
        r.epoch = p.epoch
        r.tokensPerSecond = p.tokensPerSecond
        r.etaSeconds = p.etaSeconds
        var data: [(String, JSONValue)] = [("step", .int(p.step)), ("total_steps", .int(p.totalSteps)), ("epoch", .double(p.epoch))]
        let message: String
        if let loss = p.loss {
            r.losses.append(loss)
            data += [("train_loss", .double(loss)), ("learning_rate", .double(p.learningRate))]
            message = "Step \(p.step)/\(p.totalSteps): training loss=\(String(format: "%.4f", loss))"
        } else if let e = p.evalLoss {
            r.evalLoss = e
            data.append(("eval_loss", .double(e)))
            message = "Step \(p.step)/\(p.totalSteps): eval loss=\(String(format: "%.4f", e))"
        } else {
            return
        }
        data += [("tokens_per_second", .double(p.tokensPerSecond)), ("eta_seconds", .double(p.etaSeconds))]
        records[id] = r
        context.metrics.setTrainingTokensPerSecond(p.tokensPerSecond)
        note(id, message, type: "metrics", data: .object(data))
        // job.json holds every loss so far, so writing it at each step is quadratic in the steps
        // (a tiny model's millisecond steps put the jobs queue seconds behind, delaying uploads):
        // a step's record is written at most once a second; state changes are written at once.
        let now = ContinuousClock.now
        if let last = progressPersisted[id], now - last < .seconds(1) { return }
        progressPersisted[id] = now
        persist(id)
    }

    private func finished(_ id: String, _ result: Result<TrainingJobOutcome, Error>) {
        running = nil
        progressPersisted[id] = nil
        context.metrics.setTrainingActive(false)
        context.metrics.setTrainingTokensPerSecond(0)
        guard var r = records[id] else { return startNext() }
        let now = Date().timeIntervalSince1970
        switch result {
        case .failure(let error):
            r.status = .failed
            r.finishedAt = now
            r.errorCode = draining ? "daemon_stopped" : "training_failed"
            r.errorMessage = draining ? "the daemon stopped before the job finished; nothing was published" : "\(error)"
            records[id] = r
            context.log("job \(id): \(r.adapter) failed: \(error)")
            note(id, "Job failed: \(r.errorMessage!)", type: "message", data: .null, level: "error")
        case .success(let outcome):
            r.trainedTokens = outcome.result.state.tokens
            r.tokensPerSecond = outcome.result.tokensPerSecond
            r.etaSeconds = nil
            guard let manifest = outcome.manifest else {
                r.status = draining ? .failed : .cancelled
                if draining {
                    r.errorCode = "daemon_stopped"
                    r.errorMessage = "the daemon stopped before the job finished; nothing was published"
                }
                r.finishedAt = now
                records[id] = r
                context.log("job \(id): \(r.adapter) \(r.status.rawValue) after step \(outcome.result.steps); nothing published")
                note(id, "Job \(r.status.rawValue) after step \(outcome.result.steps); nothing was published", type: "message", data: .null)
                break
            }
            r.resultVersion = manifest.version
            r.activated = outcome.activated
            r.evalLoss = outcome.result.evalLossAfter ?? r.evalLoss
            r.parentEvalLoss = outcome.parentEvalLoss
            records[id] = r
            let what = "\(r.adapter)@v\(manifest.version) published\(outcome.activated ? " and activated" : " (not activated)")"
            context.log("job \(id): \(what)")
            // Succeeded once the daemon serves the new version.
            context.rescan("training job \(id)") { [unowned self] in
                guard var r = records[id] else { return }
                r.status = .succeeded
                r.finishedAt = Date().timeIntervalSince1970
                records[id] = r
                fileUsers.remove(job: id)
                var data: [(String, JSONValue)] = [("version", .int(manifest.version)), ("activated", .bool(outcome.activated))]
                if let e = r.evalLoss { data.append(("eval_loss", .double(e))) }
                if let p = r.parentEvalLoss { data.append(("parent_eval_loss", .double(p))) }
                note(id, "Job succeeded: \(what)", type: "message", data: .object(data))
                persist(id)
                updateMetrics()
                endWatchers(id)
            }
            persist(id)
            return startNext()
        }
        fileUsers.remove(job: id)
        persist(id)
        updateMetrics()
        endWatchers(id)
        startNext()
    }

    // MARK: Events and watchers

    private func note(_ id: String, _ message: String, type: String, data: JSONValue, level: String = "info") {
        guard let r = records[id] else { return }
        let e = JobEvent(sequence: events[id, default: []].count, createdAt: Date().timeIntervalSince1970, level: level,
                         message: message, type: type, data: data, status: r.status)
        events[id, default: []].append(e)
        let root = roots[id] ?? context.root()
        jobsQueue.async { try? JobStore.append(e, jobID: id, root: root) }
        for w in watchers[id] ?? [] { w.send(e, jobID: id) }
    }

    /// Writes the job's record (jobs queue).
    private func persist(_ id: String) {
        guard let r = records[id] else { return }
        let root = roots[id] ?? context.root()
        // The failure is logged on the loop (the log closure is the loop's).
        let log = Unchecked(context.log), inbox = self.inbox
        jobsQueue.async {
            do { try JobStore.write(r, root: root) } catch {
                let message = "job \(id): job.json not written: \(error)"
                inbox.post { log.value(message) }
            }
        }
    }

    /// A watcher gets every event so far, then each new one, until the job ends.
    func watch(_ id: String, _ stream: JobEventStream) {
        for e in events[id] ?? [] { stream.send(e, jobID: id) }
        if records[id]?.status.isTerminal ?? true { return stream.end() }
        watchers[id, default: []].append(stream)
    }

    func unwatch(_ id: String, _ stream: JobEventStream) {
        watchers[id]?.removeAll { $0 === stream }
    }

    private func endWatchers(_ id: String) {
        let ws = watchers.removeValue(forKey: id) ?? []
        for w in ws { w.end() }
    }

    private func updateMetrics() {
        var counts: [JobStatus: Int] = [:]
        for r in records.values { counts[r.status, default: 0] += 1 }
        for s in JobStatus.allCases { context.metrics.setTrainingJobs(state: s.rawValue, count: counts[s] ?? 0) }
    }

    // MARK: Stopping

    /// The daemon drains: nothing new starts, the running job is stopped after its current step
    /// (and recorded as failed: the daemon stopped), watchers are let go so their connections can
    /// close.
    func beginDrain() {
        draining = true
        running?.cancellation.cancel()
        let queued = queue.map(\.id)
        queue.removeAll()
        for id in queued {
            records[id]?.status = .failed
            records[id]?.finishedAt = Date().timeIntervalSince1970
            records[id]?.errorCode = "daemon_stopped"
            records[id]?.errorMessage = "the daemon stopped before the job started; nothing was published (submit it again)"
            fileUsers.remove(job: id)
            note(id, "Job failed: the daemon stopped", type: "message", data: .null, level: "error")
            persist(id)
        }
        for id in Array(watchers.keys) { endWatchers(id) }
        updateMetrics()
    }

    /// After the loop has stopped (the main thread, once `run` returns): waits for the trainer to
    /// stop and for every record to be written. A running job is recorded as failed.
    func shutdown() {
        running?.cancellation.cancel()
        trainerQueue.sync {}
        // The job that ran last, if the loop did not see its end: a version it published before
        // the flag was seen is recorded (the next start serves it), else it failed.
        for id in order where records[id]?.status == .running {
            var r = records[id]!
            r.finishedAt = Date().timeIntervalSince1970
            if let (last, result) = lastResult.withLock({ $0 }), last == id, case .success(let outcome) = result.value,
               let manifest = outcome.manifest {
                r.status = .succeeded
                r.resultVersion = manifest.version
                r.activated = outcome.activated
            } else {
                r.status = .failed
                r.errorCode = "daemon_stopped"
                r.errorMessage = "the daemon stopped before the job finished; nothing was published"
            }
            records[id] = r
            persist(id)
        }
        jobsQueue.sync {}
        inbox.close()
    }
}

/// Which unfinished jobs read each uploaded file: added on the jobs queue when a job is prepared,
/// removed on the loop when it ends, read on the jobs queue by a deletion.
final class FileUsers: Sendable {
    private let users = Mutex<[String: [(job: String, owner: String?)]]>([:])

    func add(_ record: JobRecord) {
        let files = Set([record.trainingFile, record.validationFile].compactMap { $0 })
        users.withLock { for f in files { $0[f, default: []].append((record.id, record.owner)) } }
    }

    func remove(job: String) {
        users.withLock { all in
            for (f, list) in all where list.contains(where: { $0.job == job }) {
                let rest = list.filter { $0.job != job }
                all[f] = rest.isEmpty ? nil : rest
            }
        }
    }

    /// The unfinished jobs that read `file`, with their owners.
    func jobs(using file: String) -> [(job: String, owner: String?)] {
        users.withLock { $0[file] ?? [] }
    }
}

/// Progress from the trainer thread to the loop: a locked list and one uv_async (sends coalesce;
/// the loop runs every pending item in order).
final class JobInbox: @unchecked Sendable {
    // @unchecked: `items` is behind its Mutex; `wake` is only sent to from other threads, which
    // UVAsync allows; the items are made on the trainer thread and run once on the loop.
    private let items = Mutex<[Unchecked<() -> Void>]>([])
    private var wake: UVAsync?

    init(loop: UVLoop) throws {
        wake = try UVAsync(loop: loop) { [unowned self] in drain() }
    }

    func post(_ item: @escaping () -> Void) {
        items.withLock { $0.append(Unchecked(item)) }
        wake?.send()
    }

    private func drain() {
        let pending = items.withLock { list in
            defer { list.removeAll() }
            return list
        }
        for item in pending { item.value() }
    }

    func close() { wake?.close() }
}
