// The calls an atomic publish into a directory tree needs (the adapter registry's): symbolic links
// made and read, directories removed, an exclusive lock, and the
// entries of a directory. Same policy as Posix.swift.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension Posix {
    package static func symlink(_ target: String, at path: String) throws(SystemCallError) {
        _ = try retrying("symlink", path: path) { Glibc.symlink(target, path) }
    }

    /// The target a symbolic link holds, as written (not resolved).
    package static func readlink(_ path: String) throws(SystemCallError) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = try retrying("readlink", path: path) { Glibc.readlink(path, &buffer, buffer.count - 1) }
        return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    package static func rmdir(_ path: String) throws(SystemCallError) {
        _ = try retrying("rmdir", path: path) { Glibc.rmdir(path) }
    }

    /// Takes an exclusive lock on the file open for writing as `fd`, waiting for it (lockf(3), a
    /// POSIX record lock: held by this process until it closes the file or exits, so a crashed
    /// holder never leaves it taken).
    package static func lockExclusive(_ fd: CInt, path: String? = nil) throws(SystemCallError) {
        _ = try retrying("lockf", path: path, fd: fd) { lockf(fd, F_LOCK, 0) }
    }

    /// The names in directory `path`, without "." and "..", in no particular order.
    package static func directoryEntries(_ path: String) throws(SystemCallError) -> [String] {
        guard let dir = opendir(path) else { throw SystemCallError(call: "opendir", path: path, errno: Glibc.errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while true {
            Glibc.errno = 0
            guard let entry = readdir(dir) else {
                if Glibc.errno != 0 { throw SystemCallError(call: "readdir", path: path, errno: Glibc.errno) }
                return names
            }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
    }

    /// Syncs directory `path` itself (its entries: a rename or a new file in it becomes durable).
    package static func fsyncDirectory(_ path: String) throws(SystemCallError) {
        let fd = try open(path, O_RDONLY | O_DIRECTORY)
        defer { try? close(fd) }
        try fsync(fd, path: path)
    }
}
