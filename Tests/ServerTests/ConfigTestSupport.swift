// Helpers for the ops tests (configuration, systemd, metrics): a temporary directory removed when
// the test ends, and the repository root for the files under config/ and systemd/.

import Foundation

/// A fresh directory under $TMPDIR (mkdtemp), removed with everything in it on deinit.
final class OpsScratchDirectory {
    let path: String

    init() throws {
        let base = (ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp") + "/lorad-ops-XXXXXX"
        var template = Array(base.utf8CString)
        guard mkdtemp(&template) != nil else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: "mkdtemp failed: errno \(errno)"])
        }
        path = String(decoding: template.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Writes `text` to `name` inside the directory.
    func write(_ name: String, _ text: String) throws {
        try text.write(toFile: path + "/" + name, atomically: false, encoding: .utf8)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The checkout this test file belongs to: Tests/ServerTests/<file> is three levels down.
let opsRepositoryRoot: String = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
