// UVAsync: the one way into the loop from other threads (uv_async_t). The engine thread calls send()
// after posting token events to its outbox; the loop thread then runs the callback, which drains the
// outbox. Several sends before the loop wakes may run the callback only once (libuv coalesces them),
// so the callback must drain everything that is pending, not one item.
//
// Threading: send() may be called from any thread, also concurrently with close(); everything else
// (init, close, the callback) belongs to the loop thread (see UVLoop).

internal import CLibUV
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// @unchecked Sendable: other threads reach only send(), which checks `isOpen` under its lock before
// touching the handle; close() clears `isOpen` under the same lock before it closes the handle, so a
// send either completes before the close starts or does nothing, and never touches freed memory.
// `callback` is only touched on the loop thread.
package final class UVAsync: UVHandleOwner, @unchecked Sendable {
    /// Valid while `isOpen` (freed by the close callback, after `isOpen` went false).
    private let raw: UnsafeMutablePointer<uv_async_t>
    private let isOpen = Mutex(true)
    private var callback: (() -> Void)?

    /// Runs `callback` on the loop thread after send() (coalesced), until close().
    package init(loop: UVLoop, _ callback: @escaping () -> Void) throws(UVError) {
        guard !loop.isClosed else {
            throw UVError(errno: EINVAL, operation: "create async wakeup", hint: "the event loop is already closed")
        }
        let raw = UVHandles.allocate(uv_async_t.self)
        let status = uv_async_init(loop.raw, raw) { raw in
            guard let raw, let async = UVHandles.owner(of: uvCast(raw)) as? UVAsync else { return }
            async.callback?()
        }
        guard status == 0 else {
            free(raw)   // uv_async_init failed before linking the handle into the loop
            throw UVError(code: status, operation: "create async wakeup")
        }
        self.raw = raw
        self.callback = callback
        UVHandles.adopt(uvCast(raw), by: self)
    }

    /// Wakes the loop; the callback runs there soon. Any thread; does nothing once closed.
    package func send() {
        isOpen.withLock { isOpen in
            if isOpen { _ = uv_async_send(raw) }
        }
    }

    package var isClosed: Bool { !isOpen.withLock { $0 } }

    package func close() {
        let wasOpen = isOpen.withLock { isOpen in
            defer { isOpen = false }
            return isOpen
        }
        if wasOpen { UVHandles.close(uvCast(raw)) }
    }

    func handleDidClose() {
        callback = nil
    }
}
