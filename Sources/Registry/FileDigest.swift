// Reading and copying files for the registry, with their sha256 computed on the way through.
// Only regular files are opened (O_NONBLOCK, then fstat: a FIFO must never block the reader).

#if canImport(Glibc)
import Glibc
#endif
import Crypto
import SystemCalls

enum FileDigest {
    static let chunk = 1 << 16

    /// Opens `path` for reading if it is a regular file.
    static func openRegular(_ path: String) throws(RegistryError) -> CInt {
        let fd: CInt
        do { fd = try Posix.open(path, O_RDONLY | O_NONBLOCK) } catch { throw .io(error, doing: "opening \(path)") }
        let st: FileStatus
        do { st = try Posix.fstat(fd, path: path) } catch {
            try? Posix.close(fd)
            throw .io(error, doing: "reading \(path)")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            try? Posix.close(fd)
            throw .badSource(path: path, reason: "not a regular file")
        }
        return fd
    }

    static func sha256(ofFile path: String) throws(RegistryError) -> String {
        let fd = try openRegular(path)
        defer { try? Posix.close(fd) }
        var h = SHA256()
        var buffer = [UInt8](repeating: 0, count: chunk)
        while true {
            let n: Int
            do { n = try readChunk(fd, into: &buffer, path: path) } catch { throw .io(error, doing: "reading \(path)") }
            if n == 0 { break }
            h.update(data: buffer[..<n])
        }
        return Manifest.hex(h.finalize())
    }

    private static func readChunk(_ fd: CInt, into buffer: inout [UInt8], path: String) throws(SystemCallError) -> Int {
        try buffer.withUnsafeMutableBytes { b in
            Result { () throws(SystemCallError) in try Posix.read(fd, into: b, path: path) }
        }.get()
    }

    static func readSmallFile(_ path: String, limit: Int) throws(SystemCallError) -> [UInt8] {
        let fd = try Posix.open(path, O_RDONLY | O_NONBLOCK)
        defer { try? Posix.close(fd) }
        return try Posix.readAll(fd, upTo: limit, path: path)
    }

    /// Copies `source` to a new file `destination`, fsyncs it, and returns its size and sha256.
    /// `step` runs after every write and sync (the publish's kill points).
    static func copy(_ source: String, to destination: String, step: () -> Void) throws(RegistryError) -> (bytes: Int, sha256: String) {
        let input = try openRegular(source)
        defer { try? Posix.close(input) }
        let output: CInt
        do { output = try Posix.open(destination, O_WRONLY | O_CREAT | O_EXCL, mode: 0o644) } catch {
            throw .io(error, doing: "creating \(destination)")
        }
        defer { try? Posix.close(output) }
        var h = SHA256()
        var total = 0
        var buffer = [UInt8](repeating: 0, count: chunk)
        while true {
            let n: Int
            do { n = try readChunk(input, into: &buffer, path: source) } catch { throw .io(error, doing: "reading \(source)") }
            if n == 0 { break }
            h.update(data: buffer[..<n])
            do { try Posix.writeAll(output, Array(buffer[..<n]), path: destination) } catch {
                throw .io(error, doing: "writing \(destination)")
            }
            total += n
            step()
        }
        do { try Posix.fsync(output, path: destination) } catch { throw .io(error, doing: "syncing \(destination)") }
        step()
        return (total, Manifest.hex(h.finalize()))
    }

    /// Writes `bytes` to a new file and fsyncs it.
    static func write(_ bytes: [UInt8], to path: String) throws(RegistryError) {
        do {
            let fd = try Posix.open(path, O_WRONLY | O_CREAT | O_EXCL, mode: 0o644)
            defer { try? Posix.close(fd) }
            try Posix.writeAll(fd, bytes, path: path)
            try Posix.fsync(fd, path: path)
        } catch {
            throw .io(error, doing: "writing \(path)")
        }
    }
}
