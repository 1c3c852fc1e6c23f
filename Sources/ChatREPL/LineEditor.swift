// Line editing and history on a terminal through the system's libedit (BSD editline), loaded at
// run time (CLibEdit): emacs keys by default, ~/.editrc honoured (`bind -v` for vi keys), Up/Down
// through this session's lines and those of earlier sessions when a history file is given. Without
// libedit2 on the host, init fails and chat reads plain lines.
//
// libedit reads its characters through `readCharacter` below rather than its own read(2) loop, so
// that Ctrl-C is seen even when it arrives between two reads (Interrupt's self-pipe): the read
// fails, el_gets returns no line, and the partly typed line is gone (libedit starts each el_gets
// with an empty buffer). libedit's own signal handling stays off: it would re-raise SIGINT to the
// whole process group.

import Foundation
internal import CLibEdit
import SystemCalls
#if canImport(Glibc)
import Glibc
#endif

/// The prompt as a C string for libedit's prompt callback (a C function pointer cannot capture).
nonisolated(unsafe) private var promptCString: UnsafeMutablePointer<CChar>?

/// One EditLine and its History, created and freed together.
package final class LineEditor: LineReader {
    private let editLine: OpaquePointer
    private let history: OpaquePointer
    private let historyFile: String?
    private var warnedAboutHistory = false

    /// nil when libedit cannot set up the terminal (the caller falls back to plain lines).
    package init?(prompt: String, historyFile: String?) {
        // libedit converts between the terminal's bytes and its wide characters with the C
        // library's locale; in the "C" locale every non-ASCII character would be lost.
        setlocale(LC_CTYPE, "")
        if String(cString: nl_langinfo(nl_item(CODESET))) != "UTF-8" { setlocale(LC_CTYPE, "C.UTF-8") }

        guard lorad_libedit_load() == 1, let editLine = lorad_el_init("lorad") else { return nil }
        guard let history = lorad_history_init() else {
            lorad_el_end(editLine)
            return nil
        }
        self.editLine = editLine
        self.history = history
        self.historyFile = historyFile

        free(promptCString)
        promptCString = strdup(prompt)
        _ = lorad_el_set_prompt(editLine) { _ in promptCString }
        _ = lorad_el_set_editor(editLine, "emacs")
        _ = lorad_el_set_signal(editLine, 0)
        _ = lorad_el_set_getc(editLine) { _, out in readCharacter(out) }
        _ = lorad_history_set_size(history, 1000)
        _ = lorad_history_set_unique(history, 1)
        _ = lorad_el_set_history(editLine, history)
        _ = lorad_el_source(editLine, nil)  // ~/.editrc, if there is one
        if let historyFile { _ = lorad_history_load(history, historyFile) }
    }

    deinit {
        lorad_el_end(editLine)
        lorad_history_end(history)
    }

    package func readLine() -> LineInput {
        var count: Int32 = 0
        _ = lorad_el_prepare_terminal(editLine)
        guard let bytes = lorad_el_gets(editLine, &count) else {
            // No line: Ctrl-C (readCharacter failed on the interrupt), Ctrl-D on an empty line, or
            // the terminal went away.
            return Interrupt.isSet ? .interrupted : .end
        }
        var line = String(cString: bytes)
        while line.hasSuffix("\n") || line.hasSuffix("\r") { line.removeLast() }
        if !line.trimmingCharacters(in: .whitespaces).isEmpty {
            _ = lorad_history_enter(history, line)
            saveHistory()
        }
        return .line(line)
    }

    /// Rewrites the history file (owner-only: chats can be private) after every line, so a killed
    /// session loses nothing.
    private func saveHistory() {
        guard let historyFile else { return }
        let dir = URL(fileURLWithPath: historyFile).deletingLastPathComponent().path
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o700])
        let fd = open(historyFile, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        if fd >= 0 { close(fd) }
        if lorad_history_save(history, historyFile) < 0 && !warnedAboutHistory {
            warnedAboutHistory = true
            FileHandle.standardError.write(Data(
                "Warning: cannot write the history file \(historyFile) (--history-file PATH, or --no-history-file)\n".utf8))
        }
    }
}

/// libedit's character source: one UTF-8 character from standard input as a wide character.
/// Returns 1 with a character, 0 at the end of input, -1 (errno EINTR) on Ctrl-C.
private func readCharacter(_ out: UnsafeMutablePointer<wchar_t>?) -> Int32 {
    var bytes: [UInt8] = []
    while true {
        guard Interrupt.waitForInput(0) else {
            errno = EINTR
            return -1
        }
        var byte: UInt8 = 0
        do {
            // Interruptible: EINTR (a Ctrl-C) goes back to waitForInput, which sees the flag.
            let n = try withUnsafeMutableBytes(of: &byte) { b throws(SystemCallError) in
                try Posix.read(0, into: b, interruptible: true)
            }
            if n == 0 { return 0 }
        } catch where error.errno == EINTR || error.errno == EAGAIN {
            continue
        } catch {
            return -1
        }
        bytes.append(byte)
        let lead = bytes[0]
        let length = lead < 0x80 ? 1 : lead >> 5 == 0b110 ? 2 : lead >> 4 == 0b1110 ? 3 : lead >> 3 == 0b11110 ? 4 : 0
        if length == 0 {  // a stray continuation byte or an invalid lead: skip it
            bytes.removeAll()
            continue
        }
        guard bytes.count == length else { continue }
        if let scalar = String(validating: bytes, as: UTF8.self)?.unicodeScalars.first {
            out?.pointee = wchar_t(bitPattern: scalar.value)
            return 1
        }
        bytes.removeAll()
    }
}
