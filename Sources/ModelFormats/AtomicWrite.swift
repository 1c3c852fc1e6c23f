// Atomic file replacement: write a temporary file in the same directory, fsync it, rename it over
// the destination, fsync the directory. A crash leaves either the old file or the new one.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import SystemCalls

public func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    let dir: String
    if let slash = path.lastIndex(of: "/") {
        dir = slash == path.startIndex ? "/" : String(path[..<slash])
    } else {
        dir = "."
    }
    func failure(_ what: String, _ e: SystemCallError) -> GGUFWriterError {
        GGUFWriterError.io(path: path, reason: "\(what): \(e.reason)")
    }
    let tmp = "\(path).tmp.\(getpid())"
    let fd: CInt
    do { fd = try Posix.open(tmp, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o644) } catch { throw failure("create \(tmp)", error) }
    var ok = false
    defer {
        if !ok { try? Posix.unlink(tmp) }
    }
    do { try Posix.writeAll(fd, bytes, path: tmp) } catch { try? Posix.close(fd); throw failure("write", error) }
    do { try Posix.fsync(fd, path: tmp) } catch { try? Posix.close(fd); throw failure("fsync", error) }
    try? Posix.close(fd)
    do { try Posix.rename(tmp, to: path) } catch { throw failure("rename", error) }
    ok = true
    // The rename is durable once the directory is synced; a directory that cannot be opened or
    // synced leaves the new file in place, as before.
    if let dfd = try? Posix.open(dir, O_RDONLY | O_DIRECTORY) {
        try? Posix.fsync(dfd, path: dir)
        try? Posix.close(dfd)
    }
}
