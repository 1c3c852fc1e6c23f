// UVTimer: a libuv timer (uv_timer_t): one-shot or repeating callbacks on the loop, e.g. idle
// timeouts, drain deadlines and the systemd watchdog ping. Times are in milliseconds of the loop's
// clock, which libuv updates once per iteration.
//
// Threading: loop thread only (see UVLoop).

internal import CLibUV
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

package final class UVTimer: UVHandleOwner {
    private var handle: UnsafeMutablePointer<uv_timer_t>?
    private var callback: (() -> Void)?

    /// A stopped timer. Throws only if the loop is already closed.
    package init(loop: UVLoop) throws(UVError) {
        guard !loop.isClosed else {
            throw UVError(errno: EINVAL, operation: "create timer", hint: "the event loop is already closed")
        }
        let handle = UVHandles.allocate(uv_timer_t.self)
        uv_timer_init(loop.raw, handle)   // cannot fail: it only links the handle into the loop
        self.handle = handle
        UVHandles.adopt(uvCast(handle), by: self)
    }

    package var isClosed: Bool { handle == nil || uv_is_closing(uvCast(handle!)) != 0 }

    /// Calls `callback` after `after` ms, then every `repeat` ms if that is not 0, until stop() or
    /// close(). Starting a running timer restarts it with the new callback.
    package func start(after: UInt64, repeat interval: UInt64 = 0, _ callback: @escaping () -> Void) {
        guard let handle, !isClosed else { return }
        self.callback = callback
        uv_timer_start(handle, { handle in
            guard let handle, let timer = UVHandles.owner(of: uvCast(handle)) as? UVTimer else { return }
            timer.callback?()
        }, after, interval)
    }

    package func stop() {
        guard let handle, !isClosed else { return }
        uv_timer_stop(handle)
    }

    package func close() {
        guard let handle, !isClosed else { return }
        UVHandles.close(uvCast(handle))
    }

    func handleDidClose() {
        handle = nil
        callback = nil
    }
}
