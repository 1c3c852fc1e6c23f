// Atomic file replacement: write a temporary file in the same directory, fsync it, rename it over
// the destination, fsync the directory. A crash leaves either the old file or the new one.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

public func writeFileAtomically(_ bytes: [UInt8], to path: String) throws {
    let dir: String
    if let slash = path.lastIndex(of: "/") {
        dir = slash == path.startIndex ? "/" : String(path[..<slash])
    } else {
        dir = "."
    }
    func failure(_ what: String) -> GGUFWriterError {
        GGUFWriterError.io(path: path, reason: "\(what): \(String(cString: strerror(errno)))")
    }
    let tmp = "\(path).tmp.\(getpid())"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw failure("create \(tmp)") }
    var ok = false
    defer {
        if !ok { unlink(tmp) }
    }
    var written = 0
    while written < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
        if n < 0 {
            if errno == EINTR { continue }
            close(fd)
            throw failure("write")
        }
        written += n
    }
    guard fsync(fd) == 0 else { close(fd); throw failure("fsync") }
    close(fd)
    guard rename(tmp, path) == 0 else { throw failure("rename") }
    ok = true
    let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if dfd >= 0 {
        fsync(dfd)
        close(dfd)
    }
}
