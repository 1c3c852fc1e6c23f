// UVLoop: the daemon's event loop, one private uv_loop_t (never libuv's default loop, so tests and
// tools can run several side by side) and the 64 KiB buffer that every read on it lands in.
//
// Lifecycle: init, create handles, run() (blocks until stop() or until no active handle is left),
// then closeAll(), which closes every handle still open, runs the loop until their close callbacks
// have run, and closes the uv_loop_t. deinit does the same for a loop that was never closed.
// Handles do not retain their loop (an open handle retains only itself, see UVHandle.swift), so a
// loop whose callbacks do not capture it strongly is freed when its owner lets go.
//
// Threading: a UVLoop and every handle on it belong to the one thread that runs it (the loop
// thread); none of their methods may be called from elsewhere. The single exception is
// UVAsync.send(), which other threads use to wake this loop. No model code ever runs here.

internal import CLibUV
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

package final class UVLoop {
    /// Size of the shared read buffer: each read(2) on a stream of this loop reads at most this much.
    static let readBufferSize = 64 * 1024

    /// The libuv loop; its `data` points at the shared read buffer. Invalid once `isClosed`.
    let raw: UnsafeMutablePointer<uv_loop_t>
    /// Shared by all streams of the loop: libuv calls alloc, read(2), then the read callback, one
    /// stream at a time, and UVConnection copies the bytes out before its callback returns.
    private let readBuffer: UnsafeMutableRawPointer
    private var isRunning = false
    /// closeAll() was called from inside run(): finish closing when uv_run returns.
    private var closeRequested = false
    package private(set) var isClosed = false

    package init() throws(UVError) {
        let raw = UVHandles.allocate(uv_loop_t.self)
        let status = uv_loop_init(raw)
        guard status == 0 else {
            free(raw)
            throw UVError(code: status, operation: "uv_loop_init")
        }
        guard let buffer = malloc(UVLoop.readBufferSize) else {
            fatalError("malloc of the \(UVLoop.readBufferSize)-byte read buffer failed")
        }
        raw.pointee.data = buffer
        self.raw = raw
        self.readBuffer = buffer
    }

    deinit {
        // A safety net: the owner should call closeAll() itself. Callbacks that run while the
        // remaining handles close (onClose, write completions) must not reach this loop through an
        // unowned reference any more.
        closeAll()
    }

    /// Runs callbacks until stop() is called or no active (referenced) handle or request is left.
    package func run() {
        guard !isClosed, !isRunning else { return }
        isRunning = true
        uv_run(raw, UV_RUN_DEFAULT)
        isRunning = false
        if closeRequested { closeAll() }
    }

    /// Makes run() return after the current iteration. Loop thread only (other threads: send a
    /// UVAsync whose callback calls stop()).
    package func stop() {
        guard !isClosed else { return }
        uv_stop(raw)
    }

    /// Closes every handle still open (listeners, connections, timers, …), runs the loop until all
    /// their close callbacks have run, then closes the loop. Afterwards every handle object of this
    /// loop reports closed, and any that the program no longer references has been deallocated.
    /// Called from inside run() it closes the handles, stops the loop and finishes when run returns.
    package func closeAll() {
        guard !isClosed else { return }
        if isRunning {
            closeRequested = true
            closeOpenHandles()
            uv_stop(raw)
            return
        }
        // A callback that runs during closing (a write completion, onClose) may open a new handle;
        // each round closes whatever is open, so this ends unless callbacks keep opening handles.
        var rounds = 0
        while uv_loop_close(raw) == UV_EBUSY.rawValue {
            rounds += 1
            if rounds > 1000 {
                // Something keeps the loop busy forever: leak the loop rather than free memory that
                // libuv still uses.
                isClosed = true
                return
            }
            closeOpenHandles()
            uv_run(raw, UV_RUN_NOWAIT)
        }
        isClosed = true
        free(readBuffer)
        free(raw)
    }

    private func closeOpenHandles() {
        uv_walk(raw, { handle, _ in
            guard let handle, uv_is_closing(handle) == 0 else { return }
            if let owner = UVHandles.owner(of: handle) {
                owner.close()
            } else {
                UVHandles.discard(handle)
            }
        }, nil)
    }

    /// Ignores SIGPIPE for the whole process. Writes to a Unix socket whose peer has gone would
    /// otherwise kill the daemon (libuv does not use MSG_NOSIGNAL for pipes); with SIGPIPE ignored they
    /// fail with EPIPE, which UVConnection reports. Call once at startup, before serving.
    package static func ignoreSIGPIPE() {
        signal(SIGPIPE, SIG_IGN)
    }
}
