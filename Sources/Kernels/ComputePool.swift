// A fixed set of worker threads reused for every parallel kernel call (matmuls, attention heads).
//
// Why not DispatchQueue.concurrentPerform: a decode step makes ~200 parallel calls of 10-500 µs each;
// Dispatch wakes its workers through the kernel every time and may start more threads than cores. Here
// the workers are created once, spin briefly after each job (so back-to-back calls find them awake),
// then park on a condition variable. The caller runs chunks itself, so a pool of N threads has N-1
// workers plus the caller.
//
// Protocol (one job at a time, serialized by `callLock`):
//   caller: publish body/count, reset `next` and `pending`, bump `generation` (release), broadcast,
//           claim chunks, then wait until `pending` (workers still inside this job) is 0.
//   worker: wait for `generation` to change (spin, then park), claim chunks with `next`, decrement
//           `pending` (release). Every worker sees every generation exactly once because the caller
//           never starts job g+1 before all workers finished job g.
// A `parallelFor` issued while the pool is busy (a nested call from inside a body, or a second thread)
// runs serially on its own thread instead of waiting, so nesting cannot deadlock.
//
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

    /// Spin iterations (each a CPU pause hint, ~10-40 ns) before a worker parks: ~50-200 µs, longer
    /// than the gap between two matmuls of one decode step, shorter than a human-visible idle.
    static let spinIterations = 4000

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

    /// Puts OpenBLAS in single-thread mode, once (see the header comment).
    static let singleThreadBLAS: Void = { openblas_set_num_threads(1) }()
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
    // the release-increment of `generation` that workers acquire before reading them, and are not
    // touched again until every worker has released `pending`. `workers` is set before any thread
    // reads it. Everything else is an atomic or a pthread object.
    let generation = Atomic<UInt64>(0)
    let next = Atomic<Int>(0)
    let pending = Atomic<Int>(0)
    let shuttingDown = Atomic<Bool>(false)
    let busy = Atomic<Bool>(false)
    var body: ((Int, Int) -> Void)?
    var count = 0
    var workers = 0
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
        generation.wrappingAdd(1, ordering: .releasing)
        wakeAll()
    }

    func parallelFor(_ count: Int, _ body: (Int, Int) -> Void) {
        if count <= 0 { return }
        if count == 1 || workers == 0
            || !busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            for i in 0..<count { body(i, 0) }
            return
        }
        withoutActuallyEscaping(body) { escapable in
            self.body = escapable
            self.count = count
            next.store(0, ordering: .relaxed)
            pending.store(workers, ordering: .relaxed)
            generation.wrappingAdd(1, ordering: .releasing)
            wakeAll()
            runChunks(escapable, count, thread: 0)
            var spins = 0
            while pending.load(ordering: .acquiring) > 0 {
                spins += 1
                if spins > ComputePool.spinIterations { sched_yield() } else { lorad_cpu_relax() }
            }
            self.body = nil
        }
        busy.store(false, ordering: .releasing)
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
            if let body { runChunks(body, count, thread: id) }
            pending.wrappingSubtract(1, ordering: .releasing)
        }
    }
}
