// Ctrl-C for `lorad chat`: SIGINT becomes a flag plus one byte in a pipe (the self-pipe trick), so
// a reader can wait for input *or* Ctrl-C in one poll with no window in which a signal is missed
// (checking a flag and then blocking in read() has one; ppoll is not visible to Swift here).
// The handler is installed without SA_RESTART, so a blocking read elsewhere (the daemon client's
// socket) returns EINTR and the caller sees the flag at once.

#if canImport(Glibc)
import Glibc
#endif
import SystemCalls

/// Written by the signal handler only; read and cleared by the chat thread. [0]: the flag, [1]: the
/// pipe's read end, [2]: its write end.
nonisolated(unsafe) private let state: UnsafeMutablePointer<Int32> = {
    let p = UnsafeMutablePointer<Int32>.allocate(capacity: 3)
    p.initialize(repeating: -1, count: 3)
    p[0] = 0
    return p
}()

package enum Interrupt {
    /// Routes SIGINT to the flag and the pipe. Call once, before any reader waits.
    package static func install() {
        guard state[1] < 0 else { return }
        var fds: [Int32] = [-1, -1]
        // Direct: Swift's Glibc module has no pipe2, so CLOEXEC is set just after (the chat has no
        // other thread that could fork in between). pipe does not sleep, so there is no EINTR.
        guard pipe(&fds) == 0 else { fatalError("pipe: \(SystemCallError(call: "pipe", errno: errno).reason)") }
        for fd in fds {
            do {
                try Posix.setStatusFlags(fd, try Posix.statusFlags(fd) | O_NONBLOCK)
                try Posix.setDescriptorFlags(fd, FD_CLOEXEC)
            } catch {
                fatalError("\(error)")  // fcntl on a pipe we just made: only our bug could fail it
            }
        }
        state[1] = fds[0]
        state[2] = fds[1]
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            let saved = errno
            state[0] = 1
            var byte: UInt8 = 1
            // Direct: a signal handler may only make async-signal-safe calls, and a Swift error is
            // not one. A full pipe already says "interrupted".
            _ = write(state[2], &byte, 1)
            errno = saved
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0  // no SA_RESTART: blocking reads return EINTR
        sigaction(SIGINT, &action, nil)
    }

    /// Ctrl-C was pressed since the last `clear()`.
    package static var isSet: Bool { state[0] != 0 }

    /// Forgets earlier Ctrl-Cs (before a new prompt or a new reply).
    package static func clear() {
        state[0] = 0
        guard state[1] >= 0 else { return }
        var buf = [UInt8](repeating: 0, count: 64)
        // Non-blocking: EAGAIN (empty) throws and ends the loop.
        while ((try? buf.withUnsafeMutableBytes { try Posix.read(state[1], into: $0) }) ?? 0) > 0 {}
    }

    /// Waits until `fd` can be read or Ctrl-C is pressed; false when interrupted.
    package static func waitForInput(_ fd: Int32) -> Bool {
        while true {
            if isSet { return false }
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
            if state[1] >= 0 { fds.append(pollfd(fd: state[1], events: Int16(POLLIN), revents: 0)) }
            do {
                // Interruptible: EINTR (a Ctrl-C) goes back to the flag check above.
                _ = try Posix.poll(&fds, timeout: -1, interruptible: true)
            } catch where error.errno == EINTR {
                continue
            } catch {
                return true  // the read that follows reports the error
            }
            if isSet || (fds.count > 1 && fds[1].revents != 0) { return false }
            // Readable, hung up or an error: the read that follows reports which.
            return true
        }
    }
}
