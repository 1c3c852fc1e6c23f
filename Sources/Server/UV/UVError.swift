// UVError: the one error type of the libuv wrapper. A libuv (or errno) code, the operation that
// failed with its subject ("bind /run/lorad/lorad.sock"), and an optional hint for the operator.
// Its text comes from libuv's own tables (uv_err_name, uv_strerror), so it reads the same as libuv's
// documentation: "bind /run/lorad/lorad.sock: EACCES (permission denied)".
//
// Threading: a plain value, usable anywhere.

internal import CLibUV
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

package struct UVError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A negative libuv error code (on Unix: minus the errno value, e.g. -13 for EACCES).
    package let code: Int32
    /// What failed and on what: "bind /run/lorad/lorad.sock", "listen 127.0.0.1:8080".
    package let operation: String
    /// What to do about it, when there is something more specific to say than the code.
    package let hint: String?

    package init(code: Int32, operation: String, hint: String? = nil) {
        self.code = code
        self.operation = operation
        self.hint = hint
    }

    /// From an errno value left by a failed POSIX call (libuv codes are -errno on Unix).
    package init(errno value: Int32, operation: String, hint: String? = nil) {
        self.init(code: -value, operation: operation, hint: hint)
    }

    /// "EACCES"
    package var name: String { String(cString: uv_err_name(code)) }

    /// "permission denied"
    package var message: String { String(cString: uv_strerror(code)) }

    package var description: String {
        let base = "\(operation): \(name) (\(message))"
        guard let hint else { return base }
        return "\(base): \(hint)"
    }

    /// Throws a UVError when a libuv call returned a negative status.
    static func check(_ status: Int32, _ operation: @autoclosure () -> String) throws(UVError) {
        if status < 0 { throw UVError(code: status, operation: operation()) }
    }
}
