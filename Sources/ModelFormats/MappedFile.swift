// Read-only memory-mapped files, or owned byte buffers with the same interface.
//
// Base weights stay mapped in their stored types (DESIGN.md §4): the kernel pages them in on demand
// and shares them between every process that maps the same file. A region is immutable once
// created, which is what lets every thread read the weights without locks.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemCalls

public struct MappedFileError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let reason: String
    public var description: String { "cannot map \(path): \(reason)" }
}

/// Immutable bytes, either mapped from a file or owned in memory.
public final class ByteRegion: @unchecked Sendable {
    // @unchecked: the bytes are never written after init, and deinit runs once no reference is
    // left, so sharing the region across threads is safe.
    public let base: UnsafeRawPointer
    public let count: Int
    private let mapped: Bool
    public let path: String?

    /// Maps `path` read-only. An empty file gives an empty region (mmap refuses length 0). Anything
    /// but a regular file is refused without blocking: O_NONBLOCK makes opening a FIFO return at
    /// once (a plain open waits for a writer, forever), and fstat then rejects it.
    public init(path: String) throws {
        let (fd, st) = try Self.openRegularFile(path)
        defer { try? Posix.close(fd) }
        let size = Int(st.st_size)
        self.path = path
        if size == 0 {
            base = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64))
            count = 0
            mapped = false
            return
        }
        // Direct: mmap never waits (no EINTR), and its failure becomes MappedFileError, with
        // SystemCallError's words for errno.
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw MappedFileError(path: path, reason: SystemCallError(call: "mmap", path: path, errno: errno).reason)
        }
        base = UnsafeRawPointer(p)
        count = size
        mapped = true
    }

    /// The whole content of the regular file `path`, at most `maxBytes`; anything else (a FIFO, a
    /// device, a directory) is refused without blocking, as in init(path:).
    public static func contents(ofRegularFile path: String, maxBytes: Int = 64 << 20) throws -> [UInt8] {
        let (fd, st) = try openRegularFile(path)
        defer { try? Posix.close(fd) }
        guard Int(st.st_size) <= maxBytes else {
            throw MappedFileError(path: path, reason: "\(st.st_size) bytes, more than the \(maxBytes) allowed")
        }
        // At most st_size bytes: fewer if the file shrank while being read.
        do {
            return try Posix.readAll(fd, upTo: Int(st.st_size), expected: Int(st.st_size), path: path)
        } catch {
            throw MappedFileError(path: path, reason: error.reason)
        }
    }

    /// Opens `path` read-only and without blocking (O_NONBLOCK: a FIFO would otherwise wait for a
    /// writer, forever) and refuses anything but a regular file. The caller closes the descriptor.
    private static func openRegularFile(_ path: String) throws(MappedFileError) -> (CInt, FileStatus) {
        let fd: CInt
        do { fd = try Posix.open(path, O_RDONLY | O_NONBLOCK) } catch {
            throw MappedFileError(path: path, reason: error.reason)
        }
        let st: FileStatus
        do { st = try Posix.fstat(fd, path: path) } catch {
            try? Posix.close(fd)
            throw MappedFileError(path: path, reason: error.reason)
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            try? Posix.close(fd)
            throw MappedFileError(path: path, reason: "not a regular file")
        }
        return (fd, st)
    }

    /// Copies `bytes` into an owned, 64-byte aligned buffer.
    public init(bytes: [UInt8]) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        bytes.withUnsafeBytes { src in
            if let s = src.baseAddress { p.copyMemory(from: s, byteCount: bytes.count) }
        }
        base = UnsafeRawPointer(p)
        count = bytes.count
        mapped = false
        path = nil
    }

    deinit {
        if mapped {
            munmap(UnsafeMutableRawPointer(mutating: base), count)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }

    public var buffer: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Tells the kernel this process no longer needs the whole pages inside `range` (part of this
    /// region): they leave the resident set, and a later read maps them in again from the page cache,
    /// so the bytes stay valid. For a tensor that was copied elsewhere (e.g. repacked weights). Does
    /// nothing for owned buffers or outside the region.
    public func releaseResidentPages(_ range: UnsafeRawBufferPointer) {
        guard mapped, let start = range.baseAddress, start >= base, start + range.count <= base + count else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let lo = (Int(bitPattern: start) + page - 1) / page * page
        let hi = (Int(bitPattern: start) + range.count) / page * page
        guard hi > lo, let p = UnsafeMutableRawPointer(bitPattern: lo) else { return }
        _ = madvise(p, hi - lo, Int32(MADV_DONTNEED))
    }
}
