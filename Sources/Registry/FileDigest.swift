// Reading and copying files for the registry, with their sha256 computed on the way through. Files
// are read through ByteRegion, which opens only regular files (a FIFO is refused without blocking)
// and maps them.

#if canImport(Glibc)
import Glibc
#endif
import Crypto
import ModelFormats
import SystemCalls

enum FileDigest {
    /// Bytes written between kill points (see RegistryChanges.swift).
    static let chunk = 1 << 16

    static func sha256(ofFile path: String) throws(RegistryError) -> String {
        let region: ByteRegion
        do { region = try ByteRegion(path: path) } catch { throw .badFile(path: path, reason: "cannot be read: \(reason(error))") }
        return Manifest.hex(SHA256.hash(data: region.buffer))
    }

    /// Copies `source` to a new file `destination`, fsyncs it, and returns its size and sha256.
    /// `step` runs after every write and the sync (the publish's kill points).
    static func copy(_ source: String, to destination: String, step: () -> Void) throws(RegistryError) -> (bytes: Int, sha256: String) {
        let region: ByteRegion
        do { region = try ByteRegion(path: source) } catch { throw .badSource(path: source, reason: reason(error)) }
        let output: CInt
        do { output = try Posix.open(destination, O_WRONLY | O_CREAT | O_EXCL, mode: 0o644) } catch {
            throw .io(error, doing: "creating \(destination)")
        }
        defer { try? Posix.close(output) }
        var h = SHA256()
        var offset = 0
        while offset < region.count {
            let slice = UnsafeRawBufferPointer(rebasing: region.buffer[offset..<min(offset + chunk, region.count)])
            h.update(bufferPointer: slice)
            do { try Posix.writeAll(output, slice, path: destination) } catch { throw .io(error, doing: "writing \(destination)") }
            offset += slice.count
            step()
        }
        do { try Posix.fsync(output, path: destination) } catch { throw .io(error, doing: "syncing \(destination)") }
        step()
        return (region.count, Manifest.hex(h.finalize()))
    }

    /// ByteRegion's words for why a file cannot be read, without repeating the path.
    private static func reason(_ error: Error) -> String { (error as? MappedFileError)?.reason ?? "\(error)" }

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
