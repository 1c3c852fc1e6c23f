// Work the loop thread must not do itself (DESIGN.md §2: file and adapter I/O on the loader thread,
// large prompts tokenized off the loop) runs on a dispatch queue, and its result comes back to the
// loop through one uv_async: the worker appends the completion to a locked inbox and wakes the
// loop, which runs every pending completion (sends coalesce, so it drains them all).
//
// Threading: run(on:_:then:) and the completions belong to the loop thread; `work` runs on `queue`
// and must touch only what it was given (values, immutable shared objects).

import Dispatch
import Synchronization

final class LoopWork: @unchecked Sendable {
    // @unchecked: `inbox` is behind its Mutex; `wake` is only sent to from other threads, which
    // UVAsync allows; completions are created and run on the loop thread.
    private let inbox = Mutex<[Unchecked<() -> Void>]>([])
    private var wake: UVAsync?

    init(loop: UVLoop) throws {
        wake = try UVAsync(loop: loop) { [unowned self] in drain() }
    }

    /// Runs `work` on `queue`, then `done` with its result on the loop thread.
    func run<T>(on queue: DispatchQueue, _ work: @escaping @Sendable () -> T, then done: @escaping (T) -> Void) {
        let done = Unchecked(done)
        queue.async { [self] in
            let result = Unchecked(work())
            inbox.withLock { $0.append(Unchecked({ done.value(result.value) })) }
            wake?.send()
        }
    }

    private func drain() {
        let pending = inbox.withLock { items in
            defer { items.removeAll() }
            return items
        }
        for completion in pending { completion.value() }
    }

    /// No completion runs after this (work still queued finishes and is dropped).
    func close() {
        wake?.close()
    }
}

/// A value handed between the loop and a worker that the compiler cannot prove safe to send: a
/// completion made and run on the loop thread, or a result produced once and read once.
struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
