// The Unix socket's directory, checked before lorad binds there. Whoever may write the directory may
// unlink the socket and bind their own in its place, and clients would then send their tokens and
// prompts to that process; whoever may write one of its parents may rename the directory away and put
// their own under the same name; whoever owns any of them may chmod it and do either. So, from the
// socket's directory up to /, every directory (symbolic links resolved) must be owned by root or by
// lorad's own user, and none may be writable by every user (o+w) without the sticky bit. A
// world-writable parent with the sticky bit (/tmp) is fine: only the owner of an entry may rename or
// remove it there, and the entry below it is owned by root or lorad (checked). The socket's own
// directory with the sticky bit is allowed with a warning: anyone may still take the socket's name
// while lorad is not running. Group-writable directories are the group's business (a deployment
// chooses its group). Sockets systemd passes (socket activation) are exempt: systemd created them,
// in the directory its unit names.

import Foundation
import SystemCalls

enum SocketDirectory {
    enum Verdict: Equatable {
        /// Only root or lorad's user own the path, and nobody else may write it; or it is missing,
        /// which bind reports.
        case safe
        /// The socket's directory is world-writable with the sticky bit: allowed, with this warning.
        case sticky(warning: String)
        /// Someone else could replace the socket: lorad refuses to start.
        case unsafe(DaemonError)
    }

    /// One directory of the path, as stat(2) describes it.
    struct Component: Equatable {
        var path: String
        var owner: uid_t
        var mode: mode_t
    }

    /// The directory holding `socketPath` (lexically: "." for a bare name).
    static func directory(of socketPath: String) -> String {
        let dir = (socketPath as NSString).deletingLastPathComponent
        return dir.isEmpty ? "." : dir
    }

    /// The verdict on `socketPath`'s directory and its parents, for a daemon running as `user`.
    static func check(socketPath: String, user: uid_t = geteuid()) -> Verdict {
        guard let components = components(of: directory(of: socketPath)) else { return .safe }
        return verdict(components, user: user)
    }

    /// The socket's directory (symbolic links resolved) and each of its parents up to /, in that order;
    /// nil when the directory does not exist (bind then says so).
    static func components(of dir: String) -> [Component]? {
        guard let resolved = try? Posix.realpath(dir) else { return nil }
        var out: [Component] = []
        var path = resolved
        while true {
            guard let st = try? Posix.stat(path) else { return nil }
            out.append(Component(path: path, owner: st.st_uid, mode: st.st_mode))
            if path == "/" { break }
            let parent = (path as NSString).deletingLastPathComponent
            path = parent.isEmpty ? "/" : parent
        }
        return out
    }

    /// S_IWOTH and S_ISVTX, spelled out (the C macros are expressions Swift may not import).
    static let othersMayWrite: mode_t = 0o002
    static let sticky: mode_t = 0o1000

    /// `components[0]` is the socket's directory, the rest its parents up to /.
    static func verdict(_ components: [Component], user: uid_t) -> Verdict {
        var warning: String?
        for (i, c) in components.enumerated() {
            let permissions = c.mode & 0o7777
            if c.owner != 0 && c.owner != user {
                return .unsafe(.socketDirectoryOwner(directory: components[0].path, component: c.path, owner: c.owner, user: user))
            }
            guard permissions & othersMayWrite != 0 else { continue }
            if permissions & sticky == 0 {
                return .unsafe(.unsafeSocketDirectory(directory: components[0].path, component: c.path, mode: permissions))
            }
            if i == 0 {
                warning = "server.socket: \(c.path) (mode \(octal(permissions))) is writable by every user; its sticky bit keeps others from "
                    + "replacing the socket while lorad runs, but any user may take the name while it does not: a directory only lorad's user "
                    + "can write (such as /run/lorad, systemd's RuntimeDirectory=lorad) is safer"
            }
        }
        return warning.map { .sticky(warning: $0) } ?? .safe
    }

    static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
