// UVConnection: one accepted stream (a Unix socket or a TCP connection) with callbacks for what
// arrives and an ordered write queue.
//
// Reads land in the loop's shared 64 KiB buffer (see UVLoop) and are handed to `onRead` as a fresh
// [UInt8], so nothing the callback keeps can be overwritten by the next read. Back-pressure is
// stopReading()/startReading().
// Writes copy the caller's bytes into a malloc'd buffer owned by a WriteRequest, which libuv keeps
// (through uv_write_t.data) until the write callback; libuv runs the callbacks of a stream's writes in
// the order they were queued, also when closing cancels them (then with UV_ECANCELED), so every
// completion is called exactly once. `pendingWriteBytes` is what libuv has queued but not yet handed
// to the kernel; the server uses it to stop producing for a peer that does not read.
// End of stream and errors: UV_EOF calls onEOF, any other read error (ECONNRESET, …) or a failed write
// calls onError; then the connection closes, and onClose runs once the handle is gone, whatever the
// cause (EOF, error, close(), shutdownAndClose(), UVLoop.closeAll()). After the connection starts
// closing, writes are ignored and complete with false; nothing traps.
//
// Threading: loop thread only (see UVLoop).

internal import CLibUV
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

package final class UVConnection: UVHandleOwner, CustomStringConvertible {
    private enum State {
        case open
        /// shutdownAndClose(): waiting for queued writes to flush.
        case shuttingDown
        /// uv_close called (or done).
        case closing
    }

    /// A uv_pipe_t or uv_tcp_t; nil once closed.
    private var handle: UnsafeMutablePointer<uv_stream_t>?
    private var state = State.open
    private var isReading = false

    /// True for a Unix-socket connection, false for TCP.
    package let isUnix: Bool
    /// The peer process of a Unix-socket connection as the kernel saw it at connect time
    /// (SO_PEERCRED); nil for TCP.
    package let peerCredentials: (pid: Int32, uid: UInt32, gid: UInt32)?
    /// "unix peer pid 123 uid 1000" or "tcp peer 127.0.0.1:50312", for logs.
    package let description: String

    /// Bytes as they arrive, in order.
    package var onRead: (([UInt8]) -> Void)?
    /// The peer closed its side. Afterwards the connection is closed, unless the handler set
    /// `closeOnEOF` to false (a half-close: the peer still reads what is written) or called
    /// shutdownAndClose() (which flushes queued writes first) or close().
    package var onEOF: (() -> Void)?
    /// Whether EOF closes the connection after onEOF returns. HTTP lets a client shut down its
    /// sending side after a complete request and still read the answer; the owner then closes when
    /// it is done.
    package var closeOnEOF = true
    /// A read or write failed ("read: ECONNRESET (connection reset by peer)"); the connection closes.
    package var onError: ((String) -> Void)?
    /// The connection is closed and its resources are released; called once, asynchronously.
    package var onClose: (() -> Void)?

    /// True once the connection is closing (close(), shutdownAndClose(), EOF, error): writes are no
    /// longer accepted.
    package var isClosed: Bool { state != .open }

    /// Bytes passed to write() that are not yet handed to the kernel.
    package var pendingWriteBytes: Int {
        guard let handle else { return 0 }
        return Int(uv_stream_get_write_queue_size(handle))
    }

    /// True when the peer of a Unix-socket connection has closed entirely (not only its sending
    /// side); see POSIXSockets.peerHungUp. Always false for TCP.
    package var peerHungUp: Bool {
        guard isUnix, let handle else { return false }
        var fd: uv_os_fd_t = -1
        guard uv_fileno(uvCast(handle), &fd) == 0 else { return false }
        return POSIXSockets.peerHungUp(fd)
    }

    /// Takes ownership of a stream that uv_accept just filled.
    init(accepted handle: UnsafeMutablePointer<uv_stream_t>, isUnix: Bool) {
        self.handle = handle
        self.isUnix = isUnix
        var fd: uv_os_fd_t = -1
        if uv_fileno(uvCast(handle), &fd) != 0 { fd = -1 }
        if isUnix {
            let credentials = POSIXSockets.peerCredentials(of: fd)
            peerCredentials = credentials
            description = credentials.map { "unix peer pid \($0.pid) uid \($0.uid)" } ?? "unix peer"
        } else {
            peerCredentials = nil
            description = "tcp peer " + (POSIXSockets.peerAddress(of: fd) ?? "(unknown)")
        }
        UVHandles.adopt(uvCast(handle), by: self)
    }

    // MARK: Reading

    /// Starts (or resumes) delivering bytes to onRead.
    package func startReading() {
        guard state == .open, !isReading, let handle else { return }
        let status = uv_read_start(handle, { handle, _, buffer in
            // The loop's shared buffer; its address is in uv_loop_t.data (UVLoop.init).
            guard let handle, let buffer, let shared = handle.pointee.loop.pointee.data else { return }
            buffer.pointee = uv_buf_init(shared.assumingMemoryBound(to: CChar.self), UInt32(UVLoop.readBufferSize))
        }, { stream, count, buffer in
            guard let stream, let connection = UVHandles.owner(of: uvCast(stream)) as? UVConnection else { return }
            connection.didRead(count: count, from: buffer?.pointee.base)
        })
        if status == 0 {
            isReading = true
        } else {
            fail(UVError(code: status, operation: "read"))
        }
    }

    /// Stops delivering bytes (the kernel buffers what the peer sends, then the peer blocks).
    package func stopReading() {
        guard isReading, let handle else { return }
        uv_read_stop(handle)
        isReading = false
    }

    private func didRead(count: Int, from base: UnsafeMutablePointer<CChar>?) {
        if count > 0, let base {
            guard state != .closing else { return }
            onRead?(Array(UnsafeRawBufferPointer(start: base, count: count)))
        } else if count == Int(UV_EOF.rawValue) {
            isReading = false   // libuv stopped reading at EOF
            onEOF?()
            if state == .open && closeOnEOF { close() }
        } else if count < 0 {
            fail(UVError(code: Int32(clamping: count), operation: "read"))
        }
        // count == 0: nothing was read this time (EAGAIN); libuv calls again later.
    }

    /// Reports an I/O failure once and closes.
    private func fail(_ error: UVError) {
        guard state != .closing else { return }
        isReading = false
        onError?(error.description)
        close()
    }

    // MARK: Writing

    /// Queues `bytes` after everything written before. `completion` gets true once the kernel has
    /// them all, false if the connection failed or closed first. On a closed connection nothing is
    /// sent and `completion(false)` is called right away, before write returns.
    package func write(_ bytes: [UInt8], completion: ((Bool) -> Void)? = nil) {
        guard state == .open, let handle, bytes.count <= Int(UInt32.max) else {
            completion?(false)
            return
        }
        let request = WriteRequest(bytes, completion: completion)
        var buffer = uv_buf_init(request.bytes, UInt32(bytes.count))   // libuv copies the uv_buf_t itself
        request.request.pointee.data = Unmanaged.passRetained(request).toOpaque()
        let status = uv_write(request.request, handle, &buffer, 1) { request, status in
            guard let request, let data = request.pointee.data else { return }
            let box = Unmanaged<WriteRequest>.fromOpaque(data).takeRetainedValue()
            if status < 0, status != UV_ECANCELED.rawValue, let stream = request.pointee.handle,
               let connection = UVHandles.owner(of: uvCast(stream)) as? UVConnection {
                connection.fail(UVError(code: status, operation: "write"))
            }
            box.completion?(status == 0)
        }
        if status < 0 {
            // libuv did not take the request: its callback will not run.
            Unmanaged<WriteRequest>.fromOpaque(request.request.pointee.data!).release()
            fail(UVError(code: status, operation: "write"))
            completion?(false)
        }
    }

    /// Stops reading, lets queued writes flush, shuts down the sending side (the peer sees EOF after
    /// the last byte), then closes. close() still closes at once, e.g. when the peer never reads.
    package func shutdownAndClose() {
        guard state == .open, let handle else { return }
        stopReading()
        state = .shuttingDown
        let request = UVHandles.allocate(uv_shutdown_t.self)
        let status = uv_shutdown(request, handle) { request, _ in
            // Runs before the stream's close callback even when closing cancels it, so the owner is
            // still there.
            guard let request else { return }
            let stream = request.pointee.handle
            free(request)
            if let stream, let connection = UVHandles.owner(of: uvCast(stream)) as? UVConnection,
               connection.state == .shuttingDown {
                connection.close()
            }
        }
        if status < 0 {
            free(request)
            close()
        }
    }

    // MARK: Closing

    /// Closes now: queued writes are dropped (their completions get false), onClose follows.
    package func close() {
        guard state != .closing else { return }
        state = .closing
        isReading = false
        if let handle { UVHandles.close(uvCast(handle)) }
    }

    func handleDidClose() {
        handle = nil
        state = .closing
        isReading = false
        let onClose = self.onClose
        onRead = nil
        onEOF = nil
        onError = nil
        self.onClose = nil
        onClose?()
    }
}

/// One uv_write: the request and its own copy of the bytes, alive until the write callback.
private final class WriteRequest {
    let request: UnsafeMutablePointer<uv_write_t>
    let bytes: UnsafeMutablePointer<CChar>
    let completion: ((Bool) -> Void)?

    init(_ source: [UInt8], completion: ((Bool) -> Void)?) {
        request = UVHandles.allocate(uv_write_t.self)
        guard let memory = malloc(max(source.count, 1)) else {
            fatalError("malloc of a \(source.count)-byte write buffer failed")
        }
        source.withUnsafeBytes { memory.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        bytes = memory.assumingMemoryBound(to: CChar.self)
        self.completion = completion
    }

    deinit {
        free(bytes)
        free(request)
    }
}
