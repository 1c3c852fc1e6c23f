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

    /// Maps `path` read-only. An empty file gives an empty region (mmap refuses length 0).
    public init(path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw MappedFileError(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw MappedFileError(path: path, reason: String(cString: strerror(errno)))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw MappedFileError(path: path, reason: "not a regular file")
        }
        let size = Int(st.st_size)
        self.path = path
        if size == 0 {
            base = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64))
            count = 0
            mapped = false
            return
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else {
            throw MappedFileError(path: path, reason: String(cString: strerror(errno)))
        }
        base = UnsafeRawPointer(p)
        count = size
        mapped = true
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
}
