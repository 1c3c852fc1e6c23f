// UVFSEvent: watches a file or directory (uv_fs_event_t, inotify on Linux); RegistryWatch uses it to
// notice new adapter versions on disk. Events are hints, not a log: the callback gets the name of
// the entry that changed when the kernel says, or nil when it does not or the watch failed, and the
// caller rescans what it cares about either way.
//
// Threading: loop thread only (see UVLoop).

internal import CLibUV
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

package final class UVFSEvent: UVHandleOwner {
    private var handle: UnsafeMutablePointer<uv_fs_event_t>?
    private var callback: ((String?) -> Void)?
    package let path: String

    /// Calls `callback` after changes in `path` (a directory: its direct entries; a file: itself).
    package init(loop: UVLoop, path: String, _ callback: @escaping (_ filename: String?) -> Void) throws(UVError) {
        guard !loop.isClosed else {
            throw UVError(errno: EINVAL, operation: "watch \(path)", hint: "the event loop is already closed")
        }
        let handle = UVHandles.allocate(uv_fs_event_t.self)
        uv_fs_event_init(loop.raw, handle)
        let status = uv_fs_event_start(handle, { handle, filename, _, status in
            guard let handle, let watcher = UVHandles.owner(of: uvCast(handle)) as? UVFSEvent else { return }
            watcher.callback?(status == 0 ? filename.map { String(cString: $0) } : nil)
        }, path, 0)
        guard status == 0 else {
            UVHandles.discard(uvCast(handle))
            throw UVError(code: status, operation: "watch \(path)")
        }
        self.path = path
        self.handle = handle
        self.callback = callback
        UVHandles.adopt(uvCast(handle), by: self)
    }

    package var isClosed: Bool { handle == nil || uv_is_closing(uvCast(handle!)) != 0 }

    package func close() {
        guard let handle, !isClosed else { return }
        UVHandles.close(uvCast(handle))
    }

    func handleDidClose() {
        handle = nil
        callback = nil
    }
}
