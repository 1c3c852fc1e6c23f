// Where `lorad chat` gets its lines: libedit on a terminal (LineEditor), plain reads otherwise
// (pipes, files, tests), both interruptible by Ctrl-C in the same way.

import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SystemCalls

package enum LineInput: Equatable {
    case line(String)
    /// Ctrl-C: the partly typed line is dropped.
    case interrupted
    /// Ctrl-D on an empty line, or the end of the input.
    case end
}

package protocol LineReader: AnyObject {
    /// Shows the prompt and reads one line (without its line end).
    func readLine() -> LineInput
}

/// Picks the reader: line editing and history when standard input and output are terminals,
/// plain lines otherwise. `historyFile` (terminal only) is loaded now and rewritten after each line.
package func makeLineReader(prompt: String, historyFile: String?) -> LineReader {
    if isatty(0) == 1 && isatty(1) == 1, let editor = LineEditor(prompt: prompt, historyFile: historyFile) {
        return editor
    }
    return PlainLineReader(prompt: prompt)
}

/// Lines from standard input with read(2), so Ctrl-C interrupts a wait for input just as on a
/// terminal. The prompt is printed on stdout (what scripts piping into chat have always seen).
package final class PlainLineReader: LineReader {
    private let prompt: String
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var ended = false

    package init(prompt: String, fd: Int32 = 0) {
        self.prompt = prompt
        self.fd = fd
    }

    package func readLine() -> LineInput {
        FileHandle.standardOutput.write(Data(prompt.utf8))
        while true {
            if let i = buffer.firstIndex(of: 0x0a) {
                var line = Array(buffer[..<i])
                buffer.removeSubrange(...i)
                if line.last == 0x0d { line.removeLast() }
                return .line(String(decoding: line, as: UTF8.self))
            }
            if ended {
                guard !buffer.isEmpty else { return .end }
                defer { buffer.removeAll() }
                return .line(String(decoding: buffer, as: UTF8.self))
            }
            guard Interrupt.waitForInput(fd) else {
                buffer.removeAll()
                return .interrupted
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            do {
                // Interruptible: EINTR (a Ctrl-C) comes back here, and waitForInput sees the flag.
                let n = try chunk.withUnsafeMutableBytes { try Posix.read(fd, into: $0, interruptible: true) }
                if n > 0 { buffer += chunk[..<n] } else { ended = true }
            } catch let error as SystemCallError where error.errno == EINTR || error.errno == EAGAIN {
                continue
            } catch {
                ended = true
            }
        }
    }
}
