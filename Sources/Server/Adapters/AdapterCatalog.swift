// The adapters a daemon serves, as the last registry scan found them: for every adapter in the
// registry (`--adapters DIR`, Registry's layout: `NAME/vN/` with a `current` link, or a plain PEFT
// directory or NAME.gguf, which is version 1) its active version and the versions it has. The
// catalog holds what is known about them, not their weights: those load on first use into the
// resident set (ResidentAdapters.swift), within `adapters.cache_bytes`.
//
// A scan runs on the loader thread (it reads files) and never loads every adapter: a version the
// registry published carries a manifest that says it was validated against a base of these shapes,
// and its files still have the sizes it lists, so it is trusted until used. A plain adapter (no
// manifest) is validated by loading it once when it appears or changes. An adapter that is resident
// (in use lately) or preloaded is loaded at once when its active version changes, so its next
// request finds it warm. A bad version is reported and skipped; when a good one was served before,
// that one keeps serving. The loop swaps the new catalog in whole.
//
// A request's `model` is only ever looked up in this table: it never becomes a path.

import Foundation
import Llama
import LoRA
import Registry
import SystemCalls

struct AdapterCatalog: @unchecked Sendable {
    // @unchecked: LoRAAdapter is immutable and Sendable; the dictionaries are values.
    struct Entry {
        let name: String
        /// What `LoRAAdapter.load(path:)` opens for the served version.
        let path: String
        /// The registry version being served (its active one).
        let version: Int
        /// When the version was published, or when a plain adapter was first seen (OpenAI's `created`).
        let created: Int
        /// Every readable version's load path, the served one included (`name@vN` resolves here).
        var versions: [Int: String] = [:]
        /// Identity of the served version's files, to tell a changed adapter on a rescan.
        var stamps: [Stamp] = []
        /// Bytes of the served version's files.
        var fileBytes = 0
        /// The manifest asks for the version to be served merged.
        var mergeRequested = false
        /// The adapter declares another base model (BaseModelIdentity.mismatch), when it was loaded.
        var baseWarning: String? = nil
        /// Problems worth a warning: another declared base model, unreadable other versions.
        var warning: String? = nil

        var reference: AdapterReference { AdapterReference(name: name, version: version) }
    }

    struct Failure: Equatable {
        let name: String
        let path: String
        let reason: String
        /// The version served before keeps serving (the new one is invalid).
        var keptPrevious = false
    }

    /// An adapter version this scan loaded, for the resident set.
    struct Loaded {
        let reference: AdapterReference
        let adapter: LoRAAdapter
        let stamps: [Stamp]
        let seconds: Double
        /// Preloaded (`adapters.preload`): exempt from eviction.
        let pinned: Bool
    }

    private(set) var entries: [String: Entry] = [:]
    private(set) var failures: [Failure] = []
    /// Versions the scan loaded: new active versions of resident or preloaded adapters.
    private(set) var loaded: [Loaded] = []
    /// Versions the scan read and validated, with seconds (kept or not).
    private(set) var loads: [(name: String, seconds: Double)] = []
    /// The registry root and every adapter directory in it: what RegistryWatch watches.
    private(set) var directories: Set<String> = []
    let directory: String?

    init(directory: String?) {
        self.directory = directory
    }

    /// What a scan needs besides the registry.
    struct ScanContext {
        let base: BaseModelInfo
        /// Names no adapter may take (the base model's).
        var reserved: Set<String> = []
        /// `adapters.preload`: loaded at once and kept resident.
        var preload: Set<String> = []
        /// Resident versions with their files' stamps.
        var resident: [AdapterReference: [Stamp]] = [:]
    }

    /// Scans `directory` against `context.base` (loader thread). Only regular files are opened (a
    /// FIFO would block the reader forever), and nothing that resolves outside the directory is
    /// read: a symlink may point within it, not out of it. With `previous`, an adapter whose served
    /// version and files are unchanged keeps its entry without being read again.
    static func scan(directory: String?, _ context: ScanContext, previous: AdapterCatalog? = nil) -> AdapterCatalog {
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
        let fingerprint = BaseFingerprint(context.base)
        let now = Int(Date().timeIntervalSince1970)
        catalog.directories = [directory]
        for name in names {
            let path = (directory as NSString).appendingPathComponent(name)
            if registry.isAdapterDirectory(name) { catalog.directories.insert(path) }
            guard AdapterName.isValid(name) else {
                catalog.failures.append(Failure(name: name, path: path, reason: "the name must match \(AdapterName.rule)"))
                continue
            }
            guard !context.reserved.contains(name) else {
                catalog.failures.append(Failure(name: name, path: path, reason: "'\(name)' is reserved for the base model"))
                continue
            }
            let old = previous?.entries[name]
            do {
                let a = try Self.read(registry, name)
                guard let v = a.activeVersion else {
                    throw AdapterFileError(a.problems.isEmpty ? "no readable version" : a.problems.joined(separator: "; "))
                }
                // Every file the loader will open is inside the directory and a regular file (Registry
                // checked); its stamps tell an unchanged adapter on a rescan.
                let stamps = v.files.compactMap(Self.stamp)
                var versions: [Int: String] = [:]
                for other in a.versions { versions[other.version] = other.loadPath }
                let unchanged = old.map { $0.path == v.loadPath && $0.version == v.version && $0.stamps == stamps } ?? false
                let ref = v.reference
                // Load now: a new version of an adapter whose served version was resident (busy: its
                // next request should find the new one warm), a preloaded one when it is new or
                // changed (not again after an unload), and one no manifest vouches for (to validate it).
                let wasResident = old.map { context.resident[$0.reference] != nil } ?? false
                let preload = context.preload.contains(name) && !unchanged
                let validate = !unchanged && Self.untrusted(v, fingerprint) != nil
                var baseWarning = unchanged ? old?.baseWarning : nil
                if context.resident[ref] != stamps && (preload || (wasResident && !unchanged) || validate) {
                    let started = Date()
                    let adapter = try LoRAAdapter.load(path: v.loadPath, name: name, base: context.base,
                                                       options: Self.loadOptions(v, stamps: stamps))
                    let seconds = Date().timeIntervalSince(started)
                    catalog.loads.append((name, seconds))
                    baseWarning = context.base.identity.mismatch(declared: adapter.declaredBase)
                    if preload || wasResident {
                        catalog.loaded.append(Loaded(reference: ref, adapter: adapter, stamps: stamps, seconds: seconds, pinned: preload))
                    }
                }
                let warnings = a.problems + (baseWarning.map { [$0] } ?? [])
                let bytes = v.files.reduce(0) { $0 + ((try? Posix.stat($1)).map { Int($0.st_size) } ?? 0) }
                catalog.entries[name] = Entry(name: name, path: v.loadPath, version: v.version,
                                              created: v.manifest?.created ?? (unchanged ? old?.created : nil) ?? now,
                                              versions: versions, stamps: stamps, fileBytes: bytes,
                                              mergeRequested: v.manifest?.merge ?? false,
                                              baseWarning: baseWarning,
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

    /// Why `v` must be validated by loading it: nil when the registry published it for a base of
    /// these shapes and its files still have the sizes its manifest lists.
    static func untrusted(_ v: Registry.Version, _ base: BaseFingerprint) -> String? {
        guard let m = v.manifest else { return "it has no manifest" }
        guard m.base.sameShapes(as: base) else { return "its manifest names another base (\(m.base))" }
        let dir = (v.loadPath as NSString).deletingLastPathComponent
        for f in m.files {
            let inVersion = v.files.first { ($0 as NSString).lastPathComponent == f.name }
                ?? (dir as NSString).appendingPathComponent(f.name)
            guard let st = try? Posix.stat(inVersion), Int(st.st_size) == f.bytes else {
                return "\(f.name) is not the \(f.bytes) bytes its manifest lists"
            }
        }
        return nil
    }

    /// How a version is loaded: a published one takes its content identity from the manifest's
    /// sha256 of the files (the prefix cache's key) instead of hashing the weights again, with the
    /// files' stamps, so that files rewritten in place (which a published version never is) cannot
    /// pass for the content the manifest describes.
    static func loadOptions(_ v: Registry.Version, stamps: [Stamp]) -> LoRALoadOptions {
        guard let m = v.manifest else { return LoRALoadOptions() }
        let files = stamps.map { "\($0.device):\($0.inode):\($0.size):\($0.modifiedNS)" }.joined(separator: ",")
        return LoRALoadOptions(contentDigest: "files \(m.digest) \(files)")
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

    /// The version a request's `model` names: `name` (the served version) or `name@vN` (any version
    /// the registry holds); nil for an unknown adapter or version.
    func resolve(_ model: String) -> AdapterReference? {
        guard let ref = AdapterReference(model), let e = entries[ref.name] else { return nil }
        let version = ref.version ?? e.version
        guard e.versions[version] != nil else { return nil }
        return AdapterReference(name: e.name, version: version)
    }

    var sortedNames: [String] { entries.keys.sorted() }
}

struct AdapterFileError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
