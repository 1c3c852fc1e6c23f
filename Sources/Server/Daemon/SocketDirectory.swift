// The Unix socket's directory, checked before lorad binds there. Whoever may write the directory may
// unlink the socket and bind their own in its place, and clients would then send their tokens and
// prompts to that process. So a directory every user may write (o+w) without the sticky bit is
// refused at start-up. With the sticky bit (/tmp, mode 1777) only the socket's owner may remove or
// rename it, so that is allowed, with a warning: anyone may still take the name while lorad is not
// running. Sockets systemd passes (socket activation) are exempt: systemd created them, in the
// directory its unit names. Only the directory itself is checked, not its parents or its owner.

import Foundation
import SystemCalls

enum SocketDirectory {
    enum Verdict: Equatable {
        /// Only its owner (and maybe its group) may write it; or it is missing, which bind reports.
        case safe
        /// World-writable with the sticky bit: allowed, with this warning.
        case sticky(warning: String)
        /// World-writable without the sticky bit: lorad refuses to start.
        case unsafe(DaemonError)
    }

    /// The directory holding `socketPath` (lexically: "." for a bare name).
    static func directory(of socketPath: String) -> String {
        let dir = (socketPath as NSString).deletingLastPathComponent
        return dir.isEmpty ? "." : dir
    }

    /// The verdict on `socketPath`'s directory, from its mode (stat: a symbolic link is followed to
    /// the directory that will hold the socket).
    static func check(socketPath: String) -> Verdict {
        let dir = directory(of: socketPath)
        guard let st = try? Posix.stat(dir) else { return .safe }
        return verdict(directory: dir, mode: st.st_mode)
    }

    /// S_IWOTH and S_ISVTX, spelled out (the C macros are expressions Swift may not import).
    static let othersMayWrite: mode_t = 0o002
    static let sticky: mode_t = 0o1000

    static func verdict(directory dir: String, mode: mode_t) -> Verdict {
        let permissions = mode & 0o7777
        guard permissions & othersMayWrite != 0 else { return .safe }
        if permissions & sticky != 0 {
            return .sticky(warning: "server.socket: \(dir) (mode \(octal(permissions))) is writable by every user; its sticky bit keeps others from "
                + "replacing the socket while lorad runs, but any user may take the name while it does not: a directory only lorad's user "
                + "can write (such as /run/lorad, systemd's RuntimeDirectory=lorad) is safer")
        }
        return .unsafe(.unsafeSocketDirectory(directory: dir, mode: permissions))
    }

    static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
