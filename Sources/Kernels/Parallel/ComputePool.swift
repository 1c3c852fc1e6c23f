// A fixed set of worker threads reused for every parallel kernel call (matmuls, attention heads).
//
// Why not DispatchQueue.concurrentPerform: a decode step makes ~200 parallel calls of 10-500 µs each;
// Dispatch wakes its workers through the kernel every time and may start more threads than cores. Here
// the workers are created once, spin briefly after each job (so back-to-back calls find them awake),
// then park on a condition variable. The caller runs chunks itself, so a pool of N threads has N-1
// workers plus the caller.
//
// Protocol (one job at a time per pool; `busy` admits one caller):
//   caller: publish body/count, reset `next` and `exited`, open the job in `entry` (generation number
//           + entered count), bump `generation` (release), wake parked workers, claim chunks itself
//           until none are left, then close `entry` (no more workers may enter) and wait until every
//           worker that entered has left (`exited`).
//   worker: wait for `generation` to change (spin, then park), try to enter the job with a CAS on
//           `entry` (fails if the job is already closed or is a newer one), claim chunks with `next`,
//           then count itself out in `exited`.
// A worker that wakes late (descheduled by another process, or slow to unpark) simply misses the job:
// the caller never waits for threads that did no work, so an oversubscribed machine degrades to
// serial execution instead of stalling. `body` is only read by a worker that entered, and is not
// changed until every entered worker has left, so there is no race on it.
// A `parallelFor` issued while the pool is busy (a nested call from inside a body, or a second thread)
// runs serially on its own thread instead of waiting, so nesting cannot deadlock.
//
// Background work (the daemon's trainer thread, `runInBackground(share:)`): at most one thread at a
// time is the pool's background caller. Every other caller (the engine thread: foreground) stamps
// the time of its call; while a stamp is younger than `backgroundYield` (50 ms) serving is busy, and
// the two split the cores instead of taking turns on the whole pool:
//   - the background caller's calls run serially on its own thread, so it holds one core, and only
//     for a fraction d = min(1, share × threads) of the time (a credit that grows at rate d and
//     is spent while it holds; when it runs out, the background caller sleeps in its next call);
//   - while it holds its core, foreground calls let one worker fewer join them (on 2 threads they
//     run serially on the caller), so no core runs two compute threads. Oversubscribing instead (the
//     trainer's thread beside the pool's) stalls every foreground call on its descheduled worker:
//     measured on 2 cores, serving's inter-token latency got worse than on one thread alone.
// Once serving has been idle for 50 ms the background caller takes the whole pool again; a
// foreground call that finds it held runs serially on its caller meanwhile (it never waits).
// share 0: the background caller runs only while serving is idle.

// OpenBLAS threads (the decision, copied to docs/architecture.md): OpenBLAS is put in single-thread
// mode once (`openblas_set_num_threads(1)`, in `ComputePool.init`) and `cblas_sgemm` is only ever
// called from pool chunks on disjoint tiles of output rows. So the process has exactly one set of
// compute threads (this pool); OpenBLAS's own pthreads-based pool never starts work, and two cores
// are never oversubscribed by two thread pools fighting (which on a 2-core machine halves throughput).

internal import COpenBLAS
internal import CKernels
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public final class ComputePool: Sendable {
    /// Threads that execute chunks, including the caller.
    public let threadCount: Int
    private let core: PoolCore
    private let threads: [PthreadHandle]

    /// Pause instructions a worker spins before parking, and the caller before it starts yielding its
    /// core. A PAUSE measured ~34 ns on the reference machine (Zen 3; it was ~3 ns on Zen 1), so this
    /// is ~0.3 ms: longer than the gap between two matmuls of a decode step (norms, attention) or
    /// between two decode steps, so workers stay awake through generation, and short enough not to
    /// burn a core for long once idle.
    static let spinIterations = 8_000

    /// A pool of `threads` threads including the caller (default: one per online core).
    public init(threads: Int? = nil) {
        let n = max(1, threads ?? ComputePool.coreCount)
        ComputePool.singleThreadBLAS
        let core = PoolCore()
        var started: [PthreadHandle] = []
        for id in 1..<n {
            let box = Unmanaged.passRetained(WorkerStart(core: core, id: id))
            var tid = pthread_t()
            let rc = pthread_create(&tid, nil, { arg in
                let start = Unmanaged<WorkerStart>.fromOpaque(arg!).takeRetainedValue()
                start.core.workerLoop(id: start.id)
                return nil
            }, box.toOpaque())
            if rc != 0 {
                // Out of threads: run with the ones we have (correct, just slower).
                box.release()
                break
            }
            started.append(PthreadHandle(id: tid))
        }
        core.workers = started.count
        self.core = core
        self.threads = started
        threadCount = started.count + 1
    }

    deinit {
        core.shutDown()
        for t in threads { pthread_join(t.id, nil) }
    }

    /// Runs `body` on the calling thread as the pool's background caller (see the header): while
    /// other callers are busy it holds one core for at most `share` of the pool's compute
    /// (`setBackgroundShare` changes it meanwhile), and the whole pool once they are idle. One
    /// background caller at a time.
    public func runInBackground<T>(share: Double, _ body: () throws -> T) rethrows -> T {
        let me = UInt(pthread_self())
        precondition(core.background.compareExchange(expected: 0, desired: me, ordering: .acquiringAndReleasing).exchanged,
                     "ComputePool.runInBackground: another thread is the background caller")
        setBackgroundShare(share)
        core.beginBackground()
        defer {
            core.backgroundHolds.store(false, ordering: .releasing)
            core.background.store(0, ordering: .releasing)
        }
        return try body()
    }

    /// The share of the pool's compute (0...1) the background caller may hold while others are busy.
    public func setBackgroundShare(_ share: Double) {
        let d = share.isFinite ? min(1, max(0, share * Double(threadCount))) : 1
        core.backgroundDuty.store(d.bitPattern, ordering: .relaxed)
    }

    /// Number of online CPUs.
    public static var coreCount: Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }

    /// Runs `body(i)` for every i in 0..<count, spread over the pool's threads (the caller included),
    /// and returns when all have finished. Indices are claimed dynamically, one at a time, so make each
    /// a worthwhile piece of work (≥ a few µs). Bodies must write disjoint memory.
    public func parallelFor(_ count: Int, _ body: (Int) -> Void) {
        core.parallelFor(count) { i, _ in body(i) }
    }

    /// As `parallelFor(_:_:)`, also passing the id (0..<threadCount) of the thread running the index,
    /// for per-thread scratch buffers: two indices with the same id never run at the same time.
    /// The caller is 0. A call that falls back to serial (nested, or while another thread uses the
    /// pool) runs everything as 0 on its own thread, so key scratch by call, not by pool.
    public func parallelFor(_ count: Int, _ body: (_ index: Int, _ thread: Int) -> Void) {
        core.parallelFor(count, body)
    }

    // MARK: Shared pools

    private static let sharedPools = Mutex<[Int: ComputePool]>([:])

    /// A process-wide pool of `threads` threads, created on first use and kept for the process's life.
    public static func shared(threads: Int) -> ComputePool {
        let n = max(1, threads)
        return sharedPools.withLock { pools in
            if let p = pools[n] { return p }
            let p = ComputePool(threads: n)
            pools[n] = p
            return p
        }
    }

    /// The default pool: one thread per core.
    public static var shared: ComputePool { shared(threads: coreCount) }

    /// Puts OpenBLAS in single-thread mode, once (see the header comment), after making it run the
    /// kernels of this CPU's generation when it fell back to old ones (CKernels' openblas_core.c).
    static let singleThreadBLAS: Void = {
        _ = lorad_openblas_prefer_native_core()
        openblas_set_num_threads(1)
    }()

    /// The kernel family OpenBLAS runs (e.g. "SkylakeX"), once any pool or sgemm product has set it up.
    public static var openBLASCore: String {
        _ = singleThreadBLAS
        return String(cString: lorad_openblas_corename())
    }

    /// OpenBLAS's current thread count (1 once any pool or sgemm matmul has run).
    public static var openBLASThreads: Int { Int(openblas_get_num_threads()) }
}

private final class WorkerStart: Sendable {
    let core: PoolCore
    let id: Int
    init(core: PoolCore, id: Int) { self.core = core; self.id = id }
}

private struct PthreadHandle: @unchecked Sendable {
    // @unchecked: a pthread_t is an integer id; only deinit uses it (to join).
    let id: pthread_t
}

/// The state shared by the caller and the workers (a separate object so that workers do not keep the
/// ComputePool alive: its deinit shuts them down).
private final class PoolCore: @unchecked Sendable {
    // @unchecked Sendable: `body` and `count` are written only by the thread that won `busy`, before
    // the release-store that opens the job in `entry`; workers read them only after entering the job
    // with an acquiring CAS on `entry`, and the caller changes them only after every worker that
    // entered has counted itself out in `exited`. `workers` is set before any thread reads it.
    // Everything else is an atomic or a pthread object.
    let generation = Atomic<UInt64>(0)
    let next = Atomic<Int>(0)
    /// Bits 32-63: low 32 bits of the job's generation; bit 31: closed; bits 0-30: workers entered.
    let entry = Atomic<UInt64>(0)
    let exited = Atomic<Int>(0)
    let shuttingDown = Atomic<Bool>(false)
    let busy = Atomic<Bool>(false)
    /// The background caller's pthread id (0: none), and the last other call's monotonic time (ns).
    let background = Atomic<UInt>(0)
    let lastForeground = Atomic<UInt64>(0)
    static let backgroundYield: UInt64 = 50_000_000
    /// Whether the background caller holds its core now (foreground calls then take one worker
    /// fewer), and the fraction of the time it may (a Double's bits).
    let backgroundHolds = Atomic<Bool>(false)
    let backgroundDuty = Atomic<UInt64>(1.0.bitPattern)
    /// The background caller's credit (ns it may still hold) and when it was last counted: read
    /// and written only by the background caller's thread.
    var backgroundCredit: Int64 = 0
    var backgroundCounted: UInt64 = 0
    var backgroundWasShared = false
    /// Most credit saved while serving is busy, so the background caller holds its core for at most
    /// burst / (1 - duty) in one go. Short: with 10 ms (holds of ~20 ms between sleeps as long) a
    /// share of 0.25 on 2 cores gave serving a p99 inter-token latency of 3.9x its value without
    /// training, with 2 ms 1.7x, for about the same training rate (docs/BENCHMARKS.md).
    static let backgroundBurst: Int64 = 2_000_000
    var body: ((Int, Int) -> Void)?
    var count = 0
    var workers = 0
    /// Workers that may join the current job (set before the job opens; atomic because a worker
    /// late for an earlier job may read it while the next caller sets it).
    let maxEntered = Atomic<Int>(0)
    let mutex: UnsafeMutablePointer<pthread_mutex_t>
    let cond: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(cond, nil)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        cond.deallocate()
    }

    func wakeAll() {
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(cond)
        pthread_mutex_unlock(mutex)
    }

    func shutDown() {
        shuttingDown.store(true, ordering: .releasing)
        generation.wrappingAdd(1, ordering: .releasing)  // no job is running: deinit excludes callers
        wakeAll()
    }

    func parallelFor(_ count: Int, _ body: (Int, Int) -> Void) {
        if count <= 0 { return }
        var serial = false
        var joiners = workers
        let bg = background.load(ordering: .relaxed)
        if bg != 0 {
            let now = PoolCore.monotonicNanoseconds()
            if bg == UInt(pthread_self()) {
                serial = shareWithForeground(now: now)
            } else {
                lastForeground.store(now, ordering: .relaxed)
                if backgroundHolds.load(ordering: .acquiring) { joiners -= 1 }
            }
        }
        if count == 1 || joiners <= 0 || serial
            || !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            for i in 0..<count { body(i, 0) }
            return
        }
        maxEntered.store(joiners, ordering: .relaxed)
        withoutActuallyEscaping(body) { escapable in
            self.body = escapable
            self.count = count
            next.store(0, ordering: .relaxed)
            exited.store(0, ordering: .relaxed)
            let gen = generation.load(ordering: .relaxed) &+ 1
            entry.store((gen & 0xFFFF_FFFF) << 32, ordering: .releasing)
            generation.store(gen, ordering: .releasing)
            wakeAll()
            runChunks(escapable, count, thread: 0)
            // Close the job; the entered count at that moment is final.
            var v = entry.load(ordering: .relaxed)
            while true {
                let (done, now) = entry.compareExchange(expected: v, desired: v | PoolCore.closed,
                                                        ordering: .acquiringAndReleasing)
                if done { break }
                v = now
            }
            let entered = Int(v & PoolCore.countMask)
            var spins = 0
            while exited.load(ordering: .acquiring) < entered {
                spins += 1
                if spins > ComputePool.spinIterations { sched_yield() } else { lorad_cpu_relax() }
            }
            self.body = nil
        }
        busy.store(false, ordering: .releasing)
    }

    /// Whether another caller used the pool within `backgroundYield` of `now` (signed: a stamp made
    /// after `now` was read is later than it, not 584 years earlier).
    func foregroundIsBusy(at now: UInt64) -> Bool {
        Int64(bitPattern: now &- lastForeground.load(ordering: .relaxed)) < Int64(PoolCore.backgroundYield)
    }

    /// Resets the background caller's accounting (on its thread, before it becomes the caller).
    func beginBackground() {
        backgroundCredit = PoolCore.backgroundBurst
        backgroundCounted = PoolCore.monotonicNanoseconds()
        backgroundWasShared = false
    }

    /// The background caller's side of sharing (see the header), at each of its calls: whether it
    /// runs this one serially, after waiting for credit if serving is busy and it has none.
    func shareWithForeground(now: UInt64) -> Bool {
        let busyServing = foregroundIsBusy(at: now)
        guard busyServing else {
            // The whole pool: not counted against the share.
            backgroundHolds.store(false, ordering: .releasing)
            backgroundCredit = PoolCore.backgroundBurst
            backgroundCounted = now
            backgroundWasShared = false
            return false
        }
        var duty = Double(bitPattern: backgroundDuty.load(ordering: .relaxed))
        let elapsed = Int64(clamping: now &- backgroundCounted)
        backgroundCounted = now
        if backgroundWasShared {
            // Held for `elapsed` while earning duty × elapsed.
            backgroundCredit -= elapsed - Int64(Double(elapsed) * duty)
        }
        backgroundCredit = min(backgroundCredit, PoolCore.backgroundBurst)
        backgroundWasShared = true
        if duty >= 1 || (duty > 0 && backgroundCredit > 0) {
            backgroundHolds.store(true, ordering: .releasing)
            return true
        }
        // Out of credit: give the core back until it has earned a burst's worth (or serving idles).
        backgroundHolds.store(false, ordering: .releasing)
        while true {
            let need = PoolCore.backgroundBurst - backgroundCredit
            let d = max(duty, 1e-3)
            let wait = min(Int64(Double(need) / d), 20_000_000)
            var ts = timespec(tv_sec: 0, tv_nsec: Int(wait))
            nanosleep(&ts, nil)
            let t = PoolCore.monotonicNanoseconds()
            duty = Double(bitPattern: backgroundDuty.load(ordering: .relaxed))
            backgroundCredit += Int64(Double(Int64(clamping: t &- backgroundCounted)) * duty)
            backgroundCounted = t
            if !foregroundIsBusy(at: t) {
                backgroundCredit = PoolCore.backgroundBurst
                backgroundWasShared = false
                return false
            }
            if duty >= 1 || (duty > 0 && backgroundCredit >= PoolCore.backgroundBurst) {
                backgroundCredit = PoolCore.backgroundBurst
                backgroundHolds.store(true, ordering: .releasing)
                return true
            }
        }
    }

    /// CLOCK_MONOTONIC (a vDSO read, tens of nanoseconds): the background caller's share is counted
    /// in slices of milliseconds, finer than the coarse clock's ticks.
    static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    static let closed: UInt64 = 1 << 31
    static let countMask: UInt64 = (1 << 31) - 1

    /// Enters the job of generation `g` unless it is closed or superseded.
    func enter(_ g: UInt64) -> Bool {
        var v = entry.load(ordering: .relaxed)
        while true {
            if v >> 32 != g & 0xFFFF_FFFF || v & PoolCore.closed != 0 || Int(v & PoolCore.countMask) >= maxEntered.load(ordering: .relaxed) {
                return false
            }
            let (done, now) = entry.compareExchange(expected: v, desired: v + 1, ordering: .acquiring)
            if done { return true }
            v = now
        }
    }

    func runChunks(_ body: (Int, Int) -> Void, _ count: Int, thread: Int) {
        while true {
            let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
            if i >= count { return }
            body(i, thread)
        }
    }

    func workerLoop(id: Int) {
        var seen: UInt64 = 0
        while true {
            var g = generation.load(ordering: .acquiring)
            var spins = 0
            while g == seen {
                if spins < ComputePool.spinIterations {
                    spins += 1
                    lorad_cpu_relax()
                } else {
                    pthread_mutex_lock(mutex)
                    while generation.load(ordering: .acquiring) == seen {
                        pthread_cond_wait(cond, mutex)
                    }
                    pthread_mutex_unlock(mutex)
                }
                g = generation.load(ordering: .acquiring)
            }
            seen = g
            if shuttingDown.load(ordering: .acquiring) { return }
            if enter(g) {
                if let body { runChunks(body, count, thread: id) }
                exited.wrappingAdd(1, ordering: .releasing)
            }
        }
    }
}
