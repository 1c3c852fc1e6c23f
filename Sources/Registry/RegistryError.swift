// What can go wrong with the registry, each saying what was expected and what to do.

import SystemCalls

public enum RegistryError: Error, CustomStringConvertible, Equatable {
    case badName(String)
    case badReference(String)
    case notFound(name: String)
    case versionNotFound(name: String, version: Int, available: [Int])
    case notARegistry(path: String, reason: String)
    case badSource(path: String, reason: String)
    case badManifest(path: String, reason: String)
    /// A file of a version: missing, or not a regular file.
    case badFile(path: String, reason: String)
    case digestMismatch(path: String, expected: String, found: String)
    case activeVersion(name: String, version: Int)
    case nothingToRollBackTo(name: String, active: Int)
    case outsideRoot(path: String)
    case invalid(reason: String)
    /// A system call failed: what lorad was doing, the call, the path and the system's reason.
    case system(String)

    static func io(_ e: SystemCallError, doing: String) -> RegistryError { .system("\(doing): \(e)") }

    public var description: String {
        switch self {
        case .badName(let n):
            return "'\(n)' is not an adapter name: names match \(AdapterName.rule) (lowercase letters, digits, '.', '_', '-')"
        case .badReference(let r):
            return "'\(r)' is not an adapter reference: expected NAME or NAME@vN (N a version number such as 3)"
        case .notFound(let n):
            return "no adapter named '\(n)' in the registry"
        case .versionNotFound(let n, let v, let available):
            let list = available.isEmpty ? "none" : available.map { "v\($0)" }.joined(separator: ", ")
            return "\(n) has no version v\(v) (versions: \(list))"
        case .notARegistry(let p, let reason):
            return "\(p) is not a usable adapters directory: \(reason)"
        case .badSource(let p, let reason):
            return "\(p) cannot be imported: \(reason)"
        case .badManifest(let p, let reason):
            return "\(p): \(reason) (expected the lorad.json lorad writes: version, files with sha256, base, source, created)"
        case .badFile(let p, let reason):
            return "\(p.split(separator: "/").last.map(String.init) ?? p) \(reason) (\(p))"
        case .digestMismatch(let p, let expected, let found):
            return "\(p) changed after it was published: sha256 \(found), the manifest says \(expected)"
        case .activeVersion(let n, let v):
            return "v\(v) is \(n)'s active version; activate another version first (lorad adapter activate \(n) N), or remove the whole adapter"
        case .nothingToRollBackTo(let n, let v):
            return "\(n) has no version older than its active v\(v) to roll back to"
        case .outsideRoot(let p):
            return "\(p) leads outside the registry (a symlink out of it, or '..'); adapters must live inside it"
        case .invalid(let reason):
            return "the adapter does not fit the base model: \(reason)"
        case .system(let s):
            return s
        }
    }
}
