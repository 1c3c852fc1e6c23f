// UVSignal: a Unix signal delivered as a loop callback (uv_signal_t), for SIGTERM (drain), SIGINT
// and SIGHUP (reload). libuv installs one process-wide handler that forwards to the loops watching
// the signal, so the callback runs on the loop thread, never in signal context.
//
// Threading: loop thread only (see UVLoop).

internal import CLibUV
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

package final class UVSignal: UVHandleOwner {
    private var handle: UnsafeMutablePointer<uv_signal_t>?
    private var callback: (() -> Void)?
    package let signal: Int32

    /// Calls `callback` each time `signal` arrives, until close().
    package init(loop: UVLoop, signal: Int32, _ callback: @escaping () -> Void) throws(UVError) {
        guard !loop.isClosed else {
            throw UVError(errno: EINVAL, operation: "watch signal \(signal)", hint: "the event loop is already closed")
        }
        let handle = UVHandles.allocate(uv_signal_t.self)
        uv_signal_init(loop.raw, handle)
        let status = uv_signal_start(handle, { handle, _ in
            guard let handle, let watcher = UVHandles.owner(of: uvCast(handle)) as? UVSignal else { return }
            watcher.callback?()
        }, signal)
        guard status == 0 else {
            UVHandles.discard(uvCast(handle))
            throw UVError(code: status, operation: "watch signal \(signal)")
        }
        // Nothing can call back before the loop runs again, so adopting after start is safe.
        self.signal = signal
        self.handle = handle
        self.callback = callback
        UVHandles.adopt(uvCast(handle), by: self)
    }

    package var isClosed: Bool { handle == nil || uv_is_closing(uvCast(handle!)) != 0 }

    /// Stops watching (the signal's previous disposition is restored when no loop watches it).
    package func close() {
        guard let handle, !isClosed else { return }
        UVHandles.close(uvCast(handle))
    }

    func handleDidClose() {
        handle = nil
        callback = nil
    }
}
