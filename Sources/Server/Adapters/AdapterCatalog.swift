// The adapters a daemon serves, found in one directory (`--adapters DIR`): each subdirectory holding
// a PEFT adapter (adapter_config.json) is served under the subdirectory's name, each NAME.gguf LoRA
// file under NAME. Every adapter is validated against the base at scan time; a bad one is reported
// and skipped, and the rest still serve. A rescan (SIGHUP) builds a new catalog on the loader thread
// (AdapterLoader); the loop swaps it in whole, so running sequences keep the adapter objects they
// started with.
//
// Names follow [a-z0-9][a-z0-9._-]{0,63} and the served base name is reserved. A request's `model`
// is only ever looked up in this table: it never becomes a path. `name@v1` names the same adapter,
// since a plain directory is version 1 of the registry layout (DESIGN.md §5); directories holding
// several versions of one adapter are not read yet (the adapter registry will read them).

import Foundation
import LoRA
import SystemCalls

struct AdapterCatalog: @unchecked Sendable {
    // @unchecked: LoRAAdapter is immutable and Sendable; the dictionary is a value.
    struct Entry {
        let name: String
        let adapter: LoRAAdapter
        let path: String
        /// When the adapter was loaded (OpenAI's `created`, seconds since 1970).
        let created: Int
        /// Identity of the files it was loaded from, to tell a changed adapter on a rescan.
        var stamps: [FileTree.Stamp] = []
        /// Loaded, but it declares another base model (BaseModelIdentity.mismatch).
        var warning: String? = nil
    }

    struct Failure: Equatable {
        let name: String
        let path: String
        let reason: String
        /// A loaded copy of this adapter keeps serving (the files changed into something invalid).
        var keptPrevious = false
    }

    private(set) var entries: [String: Entry] = [:]
    private(set) var failures: [Failure] = []
    let directory: String?

    init(directory: String?) {
        self.directory = directory
    }

    static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...64).contains(bytes.count) else { return false }
        func alnum(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) }
        guard alnum(bytes[0]) else { return false }
        return bytes.dropFirst().allSatisfy { alnum($0) || $0 == 0x2e || $0 == 0x5f || $0 == 0x2d }
    }

    /// Scans `directory`, loading every adapter found there against `base`. Runs on the loader
    /// thread, never on the loop: it reads files. Only regular files are opened (a FIFO would block
    /// the reader forever), and nothing that resolves outside the directory is read: a symlink may
    /// point within it, not out of it. With `previous`, an adapter whose files are unchanged (same
    /// inode, size and modification time) keeps its loaded copy, and one that fails to load while a
    /// good copy is loaded keeps serving that copy until a valid one appears.
    static func scan(directory: String?, base: BaseModelInfo, reserved: Set<String>,
                     previous: AdapterCatalog? = nil) -> AdapterCatalog {
        var catalog = AdapterCatalog(directory: directory)
        guard let directory else { return catalog }
        guard let root = FileTree(root: directory) else {
            catalog.failures.append(Failure(name: "", path: directory, reason: "the adapters directory does not exist or is not a directory"))
            return catalog
        }
        let items = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        let now = Int(Date().timeIntervalSince1970)
        for item in items where !item.hasPrefix(".") {
            let path = (directory as NSString).appendingPathComponent(item)
            let name: String
            let files: [String]
            switch root.kind(of: path) {
            case .directory:
                name = item
                files = [path + "/adapter_config.json", path + "/adapter_model.safetensors"]
                guard root.kind(of: files[0]) != .missing else {
                    catalog.failures.append(Failure(name: item, path: path,
                                                    reason: "a directory without adapter_config.json (expected a PEFT adapter)"))
                    continue
                }
            case .regularFile where item.hasSuffix(".gguf"), .other where item.hasSuffix(".gguf"),
                 .outside where item.hasSuffix(".gguf"):
                name = String(item.dropLast(5))
                files = [path]
            case .outside:
                catalog.failures.append(Failure(name: item, path: path,
                                                reason: "a symlink that leads outside the adapters directory; adapters must live inside it"))
                continue
            default:
                continue   // README files and the like
            }
            guard isValidName(name) else {
                catalog.failures.append(Failure(name: name, path: path,
                                                reason: "the name must match [a-z0-9][a-z0-9._-]{0,63}"))
                continue
            }
            guard !reserved.contains(name) else {
                catalog.failures.append(Failure(name: name, path: path, reason: "'\(name)' is reserved for the base model"))
                continue
            }
            guard catalog.entries[name] == nil else {
                catalog.failures.append(Failure(name: name, path: path,
                                                reason: "both \(name)/ and \(name).gguf exist; keep one"))
                continue
            }
            let old = previous?.entries[name].flatMap { $0.path == path ? $0 : nil }
            do {
                // Every file the loader will open: inside the directory and a regular file.
                var stamps: [FileTree.Stamp] = []
                for f in files {
                    switch root.kind(of: f) {
                    case .regularFile: if let s = root.stamp(f) { stamps.append(s) }
                    case .outside: throw AdapterFileError("\((f as NSString).lastPathComponent) is a symlink that leads outside the adapters directory")
                    case .missing where f.hasSuffix(".safetensors"): continue   // the loader says what is missing
                    case .missing: throw AdapterFileError("\((f as NSString).lastPathComponent) is missing")
                    case .directory, .other: throw AdapterFileError("\((f as NSString).lastPathComponent) is not a regular file")
                    }
                }
                if let old, old.stamps == stamps {
                    catalog.entries[name] = old
                    continue
                }
                let adapter = try LoRAAdapter.load(path: path, name: name, base: base)
                catalog.entries[name] = Entry(name: name, adapter: adapter, path: path, created: now, stamps: stamps,
                                              warning: base.identity.mismatch(declared: adapter.declaredBase))
            } catch {
                if let old {
                    catalog.entries[name] = old
                    catalog.failures.append(Failure(name: name, path: path, reason: "\(error)", keptPrevious: true))
                } else {
                    catalog.failures.append(Failure(name: name, path: path, reason: "\(error)"))
                }
            }
        }
        return catalog
    }

    /// The adapter a request's `model` names: `name` or `name@v1`.
    func lookup(_ model: String) -> Entry? {
        if let at = model.firstIndex(of: "@") {
            guard model[model.index(after: at)...] == "v1" else { return nil }
            return entries[String(model[..<at])]
        }
        return entries[model]
    }

    var sortedNames: [String] { entries.keys.sorted() }
}

struct AdapterFileError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// What a path inside the adapters directory is, judged without opening it, and with symlinks
/// resolved against the directory's own real path.
struct FileTree {
    enum Kind: Equatable { case missing, directory, regularFile, other, outside }

    /// Identity of a file as far as a rescan cares.
    struct Stamp: Equatable {
        let device: UInt64, inode: UInt64, size: Int64, modifiedNS: Int64
    }

    /// The real path of the root, with a trailing slash.
    private let realRoot: String

    init?(root: String) {
        guard let r = Self.realPath(root), let st = try? Posix.stat(r), (st.st_mode & S_IFMT) == S_IFDIR else {
            return nil
        }
        realRoot = r.hasSuffix("/") ? r : r + "/"
    }

    static func realPath(_ path: String) -> String? {
        try? Posix.realpath(path)
    }

    func kind(of path: String) -> Kind {
        guard var st = try? Posix.lstat(path) else { return .missing }
        if (st.st_mode & S_IFMT) == S_IFLNK {
            guard let target = Self.realPath(path) else { return .missing }   // dangling
            guard target.hasPrefix(realRoot) else { return .outside }
            guard let targetStatus = try? Posix.stat(target) else { return .missing }
            st = targetStatus
        } else if let real = Self.realPath(path), !real.hasPrefix(realRoot) {
            return .outside   // a parent directory is a symlink that leads out
        }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFREG: return .regularFile
        default: return .other
        }
    }

    func stamp(_ path: String) -> Stamp? {
        guard let st = try? Posix.stat(path) else { return nil }
        return Stamp(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
                     modifiedNS: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }
}
