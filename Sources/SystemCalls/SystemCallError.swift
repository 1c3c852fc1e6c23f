// The one error a failed system call becomes: which call, on which path or descriptor, errno and
// the system's words for it, and an optional hint from the caller. Callers that have their own
// error type (MappedFileError, GGUFWriterError, ...) keep their messages by taking `reason`.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

package struct SystemCallError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The call's name as the caller knows it ("open", "write", "getgrnam_r").
    package let call: String
    /// The path the call was about, if any.
    package let path: String?
    /// The descriptor the call was about, if any and no path is known.
    package let fd: CInt?
    /// errno (or the error number a pthread-style call returned).
    package let errno: CInt
    /// strerror's text for `errno`, captured when the error was made.
    package let reason: String
    /// What to try, when the caller knows better than errno.
    package let hint: String?

    package init(call: String, path: String? = nil, fd: CInt? = nil, errno: CInt, hint: String? = nil) {
        self.call = call
        self.path = path
        self.fd = fd
        self.errno = errno
        self.reason = String(cString: strerror(errno))
        self.hint = hint
    }

    /// "open /etc/lorad.toml: No such file or directory (hint: ...)".
    package var description: String {
        var s = call
        if let path { s += " \(path)" } else if let fd { s += " fd \(fd)" }
        s += ": \(reason)"
        if let hint { s += " (hint: \(hint))" }
        return s
    }
}
