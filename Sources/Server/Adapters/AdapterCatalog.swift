// The adapters a daemon serves: the active version of every adapter in the registry (`--adapters
// DIR`, Registry's layout: `NAME/vN/` with a `current` link, or a plain PEFT directory or
// NAME.gguf, which is version 1). Every adapter is validated against the base at scan time; a bad
// one is reported and skipped, and the rest still serve. A rescan (SIGHUP) builds a new catalog on
// the loader thread; the loop swaps it in whole, so running sequences keep the adapter objects they
// started with.
//
// A request's `model` is only ever looked up in this table: it never becomes a path. `name@vN`
// names the adapter when N is its active version; another version of a served adapter is loaded on
// demand (Endpoints, on the loader thread) and kept in `pinned` while the cache budget allows.

import Foundation
import Llama
import LoRA
import Registry
import SystemCalls

struct AdapterCatalog: @unchecked Sendable {
    // @unchecked: LoRAAdapter is immutable and Sendable; the dictionary is a value.
    struct Entry {
        let name: String
        let adapter: LoRAAdapter
        let path: String
        /// The registry version being served (its active one).
        let version: Int
        /// When the version was published, or when a plain adapter was loaded (OpenAI's `created`).
        let created: Int
        /// Identity of the files it was loaded from, to tell a changed adapter on a rescan.
        var stamps: [Stamp] = []
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
    /// Versions other than the active one, loaded on demand for `name@vN`; kept across rescans while
    /// the registry still holds them (versions never change once published).
    private(set) var pinned: [AdapterReference: Entry] = [:]
    /// Merged copies of served adapters (`POST /v1/adapters/NAME/merge`), by name; a copy goes when
    /// its adapter's served version changes.
    private(set) var merged: [String: MergedAdapter] = [:]
    /// Adapter versions this scan read and validated (not those kept from `previous`), with seconds.
    private(set) var loads: [(name: String, seconds: Double)] = []
    /// The registry root and every adapter directory in it: what RegistryWatch watches.
    private(set) var directories: Set<String> = []
    let directory: String?

    init(directory: String?) {
        self.directory = directory
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
        let registry: Registry
        let names: [String]
        do {
            registry = try Registry(root: directory)
            names = try registry.entryNames()
        } catch {
            catalog.failures.append(Failure(name: "", path: directory, reason: "the adapters directory does not exist or is not a directory (\(error))"))
            return catalog
        }
        let now = Int(Date().timeIntervalSince1970)
        catalog.directories = [directory]
        for name in names {
            let path = (directory as NSString).appendingPathComponent(name)
            if registry.isAdapterDirectory(name) { catalog.directories.insert(path) }
            guard AdapterName.isValid(name) else {
                catalog.failures.append(Failure(name: name, path: path, reason: "the name must match \(AdapterName.rule)"))
                continue
            }
            guard !reserved.contains(name) else {
                catalog.failures.append(Failure(name: name, path: path, reason: "'\(name)' is reserved for the base model"))
                continue
            }
            let old = previous?.entries[name]
            do {
                let a = try Self.read(registry, name)
                if let previous {
                    for (ref, e) in previous.pinned where ref.name == name && a.version(ref.version ?? 0)?.loadPath == e.path {
                        catalog.pinned[ref] = e
                    }
                }
                guard let v = a.activeVersion else {
                    throw AdapterFileError(a.problems.isEmpty ? "no readable version" : a.problems.joined(separator: "; "))
                }
                // Every file the loader will open is inside the directory and a regular file (Registry
                // checked); its stamps tell an unchanged adapter on a rescan.
                let stamps = v.files.compactMap(Self.stamp)
                if let old, old.path == v.loadPath, old.version == v.version, old.stamps == stamps {
                    catalog.entries[name] = old
                    if let m = previous?.merged[name], m.adapter === old.adapter { catalog.merged[name] = m }
                    continue
                }
                let started = Date()
                let adapter = try LoRAAdapter.load(path: v.loadPath, name: name, base: base)
                catalog.loads.append((name, Date().timeIntervalSince(started)))
                var warnings = a.problems
                if let w = base.identity.mismatch(declared: adapter.declaredBase) { warnings.append(w) }
                catalog.entries[name] = Entry(name: name, adapter: adapter, path: v.loadPath, version: v.version,
                                              created: v.manifest?.created ?? now, stamps: stamps,
                                              warning: warnings.isEmpty ? nil : warnings.joined(separator: "; "))
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

    /// The registry's reading of `name`, with the catalog's words for an escape.
    private static func read(_ registry: Registry, _ name: String) throws -> Registry.Adapter {
        do {
            return try registry.adapter(name)
        } catch {
            if case .outsideRoot = error {
                throw AdapterFileError("a symlink that leads outside the adapters directory; adapters must live inside it")
            }
            throw error
        }
    }

    /// Identity of a file as far as a rescan cares.
    struct Stamp: Equatable {
        let device: UInt64, inode: UInt64, size: Int64, modifiedNS: Int64
    }

    static func stamp(_ path: String) -> Stamp? {
        guard let st = try? Posix.stat(path) else { return nil }
        return Stamp(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
                     modifiedNS: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }

    /// The adapter a request's `model` names: `name`, `name@vN` with N its active version, or a
    /// loaded older version.
    func lookup(_ model: String) -> Entry? {
        guard let ref = AdapterReference(model), let e = entries[ref.name] else { return nil }
        if let v = ref.version, v != e.version { return pinned[ref] }
        return e
    }

    /// `model` when it names a version of a served adapter that is not loaded (it may not exist:
    /// loading says).
    func unloadedVersion(_ model: String) -> AdapterReference? {
        guard let ref = AdapterReference(model), ref.version != nil, entries[ref.name] != nil, lookup(model) == nil else { return nil }
        return ref
    }

    /// Serves `name` from `copy` while it is the merged form of the served version; false otherwise.
    mutating func setMerged(_ name: String, _ copy: MergedAdapter?) -> Bool {
        guard let copy else { return merged.removeValue(forKey: name) != nil }
        guard entries[name]?.adapter === copy.adapter else { return false }
        merged[name] = copy
        return true
    }

    var mergedBytes: Int { merged.values.reduce(0) { $0 + $1.byteCount } }

    mutating func addPinned(_ e: Entry) { pinned[AdapterReference(name: e.name, version: e.version)] = e }
    mutating func removePinned(_ ref: AdapterReference) { pinned[ref] = nil }

    var sortedNames: [String] { entries.keys.sorted() }

    /// Bytes of the served adapters' weights.
    var byteCount: Int { entries.values.reduce(0) { $0 + $1.adapter.byteCount } }
}

struct AdapterFileError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
