// A program run on a pseudo-terminal, as someone at a terminal runs it: keystrokes in (Ctrl-C is
// the byte 0x03, which the terminal turns into SIGINT for the program), everything it prints out.
// The child is a session leader whose controlling terminal is the pty's slave, as under a shell.
// Waits read until a marker appears, with a generous deadline, never a fixed sleep.

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

struct TerminalError: Error, CustomStringConvertible {
    let description: String
}

final class TerminalSession {
    private let master: Int32
    let pid: pid_t
    /// Everything the program printed; `cursor` marks how far `expect` has read.
    private var output: [UInt8] = []
    private var cursor = 0
    private var status: Int32?

    init(_ argv: [String], environment: [String: String]) throws {
        // posix_openpt, unlockpt and ptsname are hidden from Swift (_XOPEN_SOURCE); on Linux they are
        // /dev/ptmx and two ioctls (TIOCSPTLCK = _IOW('T', 0x31, int), TIOCGPTN = _IOR('T', 0x30, uint)).
        master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        var unlock: Int32 = 0
        var number: UInt32 = 0
        guard master >= 0, ioctl(master, UInt(0x4004_5431), &unlock) == 0, ioctl(master, UInt(0x8004_5430), &number) == 0 else {
            throw TerminalError(description: "/dev/ptmx: \(String(cString: strerror(errno)))")
        }
        let slave = "/dev/pts/\(number)"
        // Wide, so that libedit never wraps a line with cursor movements.
        var size = winsize(ws_row: 40, ws_col: 250, ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(master, UInt(TIOCSWINSZ), &size)

        // Opened (not inherited) after setsid, so the slave becomes the controlling terminal.
        pid = try spawnProcess(argv, environment: environment, newSession: true) { actions in
            posix_spawn_file_actions_addopen(&actions, 0, slave, O_RDWR, 0)
            posix_spawn_file_actions_adddup2(&actions, 0, 1)
            posix_spawn_file_actions_adddup2(&actions, 0, 2)
        }
    }

    deinit {
        if status == nil {
            kill(pid, SIGKILL)
            var s: Int32 = 0
            waitpid(pid, &s, 0)
        }
        close(master)
    }

    /// All output so far, for failure messages.
    var transcript: String { String(decoding: output, as: UTF8.self) }

    func send(_ keys: String) {
        let bytes = Array(keys.utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(master, $0.baseAddress, $0.count) }
            if n > 0 { off += n } else if errno != EINTR { return }
        }
    }

    /// Reads until `marker` appears after what earlier calls consumed; returns the output from there
    /// up to and including the marker, and moves past it. Throws with the transcript at the deadline.
    @discardableResult
    func expect(_ marker: String, timeout: Double = 120) throws -> String {
        let needle = Array(marker.utf8)
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let range = find(needle, from: cursor) {
                let text = String(decoding: output[cursor..<range.upperBound], as: UTF8.self)
                cursor = range.upperBound
                return text
            }
            guard Date() < deadline, readMore() else {
                throw TerminalError(description: "no \(marker.debugDescription) within \(timeout) s; transcript:\n\(transcript.debugDescription)")
            }
        }
    }

    /// Waits for the program to exit; its exit status, or nil at the deadline.
    func waitExit(timeout: Double = 60) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            _ = readMore(pollMilliseconds: 20)  // keep the pty drained so the child never blocks writing
            var s: Int32 = 0
            if waitpid(pid, &s, WNOHANG) == pid {
                status = s & 0x7f == 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f)
                return status
            }
        }
        return nil
    }

    /// One poll and read; false once the terminal is closed (the child exited).
    private func readMore(pollMilliseconds: Int32 = 100) -> Bool {
        var p = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, pollMilliseconds)
        if r == 0 || (r < 0 && errno == EINTR) { return true }
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = read(master, &chunk, chunk.count)
        if n > 0 {
            output += chunk[..<n]
            return true
        }
        return n < 0 && (errno == EINTR || errno == EAGAIN)
    }

    private func find(_ needle: [UInt8], from start: Int) -> Range<Int>? {
        guard !needle.isEmpty, output.count - start >= needle.count else { return nil }
        for i in start...(output.count - needle.count) where output[i] == needle[0] {
            if output[i..<(i + needle.count)].elementsEqual(needle) { return i..<(i + needle.count) }
        }
        return nil
    }
}

/// Starts `argv` with `environment`, no blocked signals and the default action for the ones the
/// test runner may have changed, with standard streams set up by `streams`; `newSession` makes it a
/// session leader (so a terminal opened in `streams` becomes its controlling terminal).
func spawnProcess(_ argv: [String], environment: [String: String], newSession: Bool = false,
                  streams: (inout posix_spawn_file_actions_t) -> Void) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    streams(&actions)
    var attr = posix_spawnattr_t()
    posix_spawnattr_init(&attr)
    defer { posix_spawnattr_destroy(&attr) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attr, &empty)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for s in [SIGINT, SIGTERM, SIGHUP, SIGPIPE] { sigaddset(&defaults, s) }
    posix_spawnattr_setsigdefault(&attr, &defaults)
    let setsid: Int32 = newSession ? 0x80 : 0  // POSIX_SPAWN_SETSID (glibc's spawn.h; not visible to Swift)
    posix_spawnattr_setflags(&attr, Int16(Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) | setsid))
    let cArgs = argv.map { strdup($0) } + [nil]
    let cEnv = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        for p in cArgs { free(p) }
        for p in cEnv { free(p) }
    }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, argv[0], &actions, &attr, cArgs, cEnv)
    guard rc == 0 else { throw TerminalError(description: "posix_spawn \(argv[0]): \(String(cString: strerror(rc)))") }
    return pid
}
