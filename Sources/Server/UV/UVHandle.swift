// Lifetime plumbing shared by every class that owns a libuv handle (UVListener, UVConnection,
// UVTimer, UVSignal, UVAsync, UVFSEvent).
//
// The rule, from libuv's docs: a handle's memory must stay valid from uv_*_init until its close
// callback runs, one loop iteration after uv_close. So each owner
//   - allocates its handle with calloc, and initializes it before it stores `self` anywhere (a failed
//     init or start is undone with `discard`, which closes the bare handle and frees it);
//   - then puts a +1 reference to itself in handle->data (`adopt`), so that an open handle keeps its
//     owner alive even if the program drops every Swift reference to it;
//   - closes with `close`, whose callback calls the owner's `handleDidClose` (drop callbacks there:
//     they usually capture the owner, and clearing them breaks that cycle), releases the reference
//     and frees the memory. Nothing touches the handle after that callback.
// UVLoop.closeAll finds every still-open handle with uv_walk and closes it through its owner, so
// stopping the loop leaks nothing.
//
// Threading: loop thread only.

internal import CLibUV
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A class that owns one libuv handle.
protocol UVHandleOwner: AnyObject {
    /// Starts closing the handle; idempotent. Called by UVLoop.closeAll for handles still open.
    func close()
    /// libuv is done with the handle: clear the pointer to it and drop callbacks. The handle's memory
    /// is freed right after this returns, and the owner's self-reference is released.
    func handleDidClose()
}

/// Views a libuv handle or request as another of libuv's structs with the same leading fields
/// (uv_tcp_t as uv_stream_t as uv_handle_t): libuv's C API is built on that layout rule.
@inline(__always)
func uvCast<From, To>(_ pointer: UnsafeMutablePointer<From>, to: To.Type = To.self) -> UnsafeMutablePointer<To> {
    UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: To.self)
}

enum UVHandles {
    /// Zeroed memory for one handle or request; calloc so that free() is the matching release.
    static func allocate<T>(_: T.Type) -> UnsafeMutablePointer<T> {
        guard let raw = calloc(1, MemoryLayout<T>.stride) else {
            fatalError("calloc of \(MemoryLayout<T>.stride) bytes for a libuv \(T.self) failed")
        }
        return raw.assumingMemoryBound(to: T.self)
    }

    /// Stores a +1 reference to `owner` in handle->data; released by the close callback.
    static func adopt(_ handle: UnsafeMutablePointer<uv_handle_t>, by owner: some UVHandleOwner) {
        handle.pointee.data = Unmanaged<AnyObject>.passRetained(owner).toOpaque()
    }

    /// The owner of an open handle (nil for a handle being discarded). Unretained: the handle holds
    /// its owner until the close callback, which is always later than any other callback.
    static func owner(of handle: UnsafeMutablePointer<uv_handle_t>) -> (any UVHandleOwner)? {
        guard let data = handle.pointee.data else { return nil }
        return Unmanaged<AnyObject>.fromOpaque(data).takeUnretainedValue() as? any UVHandleOwner
    }

    /// uv_close with the callback that ends the owner's lifetime and frees the handle.
    static func close(_ handle: UnsafeMutablePointer<uv_handle_t>) {
        guard uv_is_closing(handle) == 0 else { return }
        uv_close(handle, ownedHandleClosed)
    }

    /// Closes and frees an initialized handle that no owner adopted (its init or start failed).
    static func discard(_ handle: UnsafeMutablePointer<uv_handle_t>) {
        handle.pointee.data = nil
        uv_close(handle) { free($0) }
    }
}

/// The close callback of every owned handle.
private func ownedHandleClosed(_ handle: UnsafeMutablePointer<uv_handle_t>?) {
    guard let handle else { return }
    if let data = handle.pointee.data {
        handle.pointee.data = nil
        // Balances the passRetained in `adopt`; the owner may be deallocated when this goes out of
        // scope, which is fine: it no longer points at the handle.
        let owner = Unmanaged<AnyObject>.fromOpaque(data).takeRetainedValue()
        (owner as? any UVHandleOwner)?.handleDidClose()
    }
    free(handle)
}
