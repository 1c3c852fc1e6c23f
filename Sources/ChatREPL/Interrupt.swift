// Ctrl-C for `lorad chat`: SIGINT becomes a flag plus one byte in a pipe (the self-pipe trick), so
// a reader can wait for input *or* Ctrl-C in one poll with no window in which a signal is missed
// (checking a flag and then blocking in read() has one; ppoll is not visible to Swift here).
// The handler is installed without SA_RESTART, so a blocking read elsewhere (the daemon client's
// socket) returns EINTR and the caller sees the flag at once.

#if canImport(Glibc)
import Glibc
#endif

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
        guard pipe(&fds) == 0 else { fatalError("pipe: \(String(cString: strerror(errno)))") }
        for fd in fds {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        }
        state[1] = fds[0]
        state[2] = fds[1]
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            let saved = errno
            state[0] = 1
            var byte: UInt8 = 1
            _ = write(state[2], &byte, 1)  // a full pipe already says "interrupted"
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
        while read(state[1], &buf, buf.count) > 0 {}
    }

    /// Waits until `fd` can be read or Ctrl-C is pressed; false when interrupted.
    package static func waitForInput(_ fd: Int32) -> Bool {
        while true {
            if isSet { return false }
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: state[1], events: Int16(POLLIN), revents: 0)]
            let n = poll(&fds, state[1] >= 0 ? 2 : 1, -1)
            if n < 0 && errno == EINTR { continue }
            if isSet || (fds.count > 1 && fds[1].revents != 0) { return false }
            // Readable, hung up or an error: the read that follows reports which.
            return true
        }
    }
}
