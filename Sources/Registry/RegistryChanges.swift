// Every change to the registry: publish a version, activate one, roll back, remove, collect old
// versions. One path for each, used by the CLI, the daemon's admin API and (later) the trainer.
//
// Publish (import, combine, train): under the adapter's lock, copy the files into a temporary
// directory beside the versions (same file system), hash them, fsync them, let the caller validate
// exactly those bytes against the base, write and fsync the manifest and the directory, rename it to
// the next `vN`, fsync the adapter directory, then swap `current` (a new
// symlink renamed over the old) and fsync again. A crash at any instant leaves the old version or
// the new one visible, never a partial one: a partial temporary directory is hidden (its name starts
// with a dot) and removed by the next change; `vN` appears whole, by rename; `current` changes by
// rename. Removing renames out of sight first, then deletes, so a reader never sees half a version.
//
// Kill points: with LORAD_FAILPOINT_PUBLISH_KILL_AT=N in the environment, the process sends itself
// SIGKILL at the N-th step of a change (every write, sync, rename and link), which is how the
// crash tests stop a publish at each step. Unset, a step costs one comparison.

import Foundation
import LoRA
import JSON
import SystemCalls

public struct PublishRequest {
    public var name: String
    /// A PEFT directory (adapter_config.json + adapter_model.safetensors) or a llama.cpp LoRA .gguf file.
    public var source: String
    public var kind: Manifest.Source
    public var parent: Int?
    public var base: BaseFingerprint
    public var stats: [(String, JSONValue)]
    /// Make the new version the active one.
    public var activate: Bool
    /// A daemon serving it builds its merged copy at once (the manifest's `merge`).
    public var merge: Bool
    /// Where the files came from, for the manifest's `origin`; nil: `source` itself. An upload's
    /// source is a temporary directory gone once it is published, so it says what it was instead.
    public var origin: String?

    public init(name: String, source: String, kind: Manifest.Source = .imported, parent: Int? = nil,
                base: BaseFingerprint, stats: [(String, JSONValue)] = [], activate: Bool = true, merge: Bool = false,
                origin: String? = nil) {
        self.name = name
        self.source = source
        self.kind = kind
        self.parent = parent
        self.base = base
        self.stats = stats
        self.activate = activate
        self.merge = merge
        self.origin = origin
    }
}

extension Registry {
    /// Publishes `request.source` as the next version of `request.name`. `validate` gets the path
    /// to load (inside the temporary copy) and throws when the adapter does not fit the base; then
    /// nothing is published.
    @discardableResult
    public func publish(_ request: PublishRequest, validate: (String) throws -> Void) throws(RegistryError) -> Manifest {
        let name = request.name
        guard AdapterName.isValid(name) else { throw .badName(name) }
        let dir = join(root, name)
        let lock = try lockAdapter(name)
        defer { try? Posix.close(lock) }
        removeHidden(in: dir)

        // The plain layout becomes v1 first, so that the new version has somewhere to roll back to.
        let before = try? adapter(name)
        var migrated: Version? = nil
        if let plain = before?.versions.first(where: \.isPlain) {
            _ = try copyIn(name: name, version: 1, source: plain.loadPath, kind: .imported, parent: nil, base: request.base,
                           stats: [], origin: "the unversioned adapter \(plain.loadPath)", validate: { _ in })
            migrated = plain
        }
        let existing = (try? adapter(name))?.versions.map(\.version) ?? []
        let next = (existing.max() ?? 0) + 1
        let parent = request.parent ?? (try? adapter(name))?.active
        let manifest = try copyIn(name: name, version: next, source: request.source, kind: request.kind, parent: parent,
                                  base: request.base, stats: request.stats, origin: request.origin ?? request.source,
                                  merge: request.merge, validate: validate)
        if request.activate || existing.isEmpty { try pointCurrent(name, at: next) }
        if let migrated {
            // The copy in v1 is what serves now; the plain files go.
            for f in migrated.files { try? Posix.unlink(f) }
            step()
        }
        return manifest
    }

    /// Makes `version` the active one.
    public func activate(_ name: String, version: Int) throws(RegistryError) {
        let lock = try lockAdapter(name)
        defer { try? Posix.close(lock) }
        let a = try adapter(name)
        guard a.version(version) != nil else {
            throw .versionNotFound(name: name, version: version, available: a.versions.map(\.version))
        }
        try pointCurrent(name, at: version)
    }

    /// Activates the newest version older than the active one; returns it.
    @discardableResult
    public func rollback(_ name: String) throws(RegistryError) -> Int {
        let a = try adapter(name)
        guard let active = a.active else { throw .badManifest(path: join(join(root, name), Self.activeLink), reason: a.problems.first ?? "no active version") }
        guard let previous = a.versions.map(\.version).filter({ $0 < active }).max() else {
            throw .nothingToRollBackTo(name: name, active: active)
        }
        try activate(name, version: previous)
        return previous
    }

    /// Removes one version (never the active one), or with `version` nil the whole adapter.
    public func remove(_ name: String, version: Int? = nil) throws(RegistryError) {
        guard AdapterName.isValid(name) else { throw .badName(name) }
        let a = try adapter(name)
        let dir = join(root, name)
        guard let version else {
            let lock = try lockAdapter(name)
            let trash = join(root, ".removed-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
            if kind(of: dir) == .directory {
                do { try Posix.rename(dir, to: trash) } catch { try? Posix.close(lock); throw .io(error, doing: "removing \(dir)") }
            }
            try? Posix.close(lock)
            if kind(of: dir + ".gguf") == .regularFile {
                do { try Posix.unlink(dir + ".gguf") } catch { throw .io(error, doing: "removing \(dir).gguf") }
            }
            try? Posix.fsyncDirectory(root)
            try? FileManager.default.removeItem(atPath: trash)
            return
        }
        let lock = try lockAdapter(name)
        defer { try? Posix.close(lock) }
        guard let v = a.version(version) else {
            throw .versionNotFound(name: name, version: version, available: a.versions.map(\.version))
        }
        guard version != a.active else { throw .activeVersion(name: name, version: version) }
        if v.isPlain {
            for f in v.files { try? Posix.unlink(f) }
        } else {
            let trash = join(dir, ".removed-v\(version)-\(getpid())")
            do { try Posix.rename(join(dir, "v\(version)"), to: trash) } catch { throw .io(error, doing: "removing \(name)@v\(version)") }
            try? Posix.fsyncDirectory(dir)
            try? FileManager.default.removeItem(atPath: trash)
        }
    }

    /// Removes every version of `name` (or of every adapter) but the active one and the `keep`
    /// newest; returns what it removed.
    @discardableResult
    public func collectGarbage(keep: Int, only name: String? = nil) throws(RegistryError) -> [AdapterReference] {
        var removed: [AdapterReference] = []
        let names: [String]
        if let name { names = [name] } else { names = try entryNames() }
        for n in names {
            guard let a = try? adapter(n), let active = a.active else { continue }
            let newest = Set(a.versions.map(\.version).sorted().suffix(max(0, keep)))
            for v in a.versions where v.version != active && !newest.contains(v.version) {
                try remove(n, version: v.version)
                removed.append(v.reference)
            }
        }
        return removed
    }

    // MARK: Steps

    /// Copies `source` into a hidden directory, validates, writes the manifest and renames it to `vN`.
    private func copyIn(name: String, version: Int, source: String, kind sourceKind: Manifest.Source, parent: Int?,
                        base: BaseFingerprint, stats: [(String, JSONValue)], origin: String, merge: Bool = false,
                        validate: (String) throws -> Void) throws(RegistryError) -> Manifest {
        let dir = join(root, name)
        let files: [(from: String, to: String)]
        var st = FileStatus()
        guard let s = try? Posix.stat(source) else { throw .badSource(path: source, reason: "it does not exist") }
        st = s
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            let config = join(source, Self.pefConfig), weights = join(source, Self.peftWeights)
            guard (try? Posix.stat(config)) != nil else {
                throw .badSource(path: source, reason: "a directory without \(Self.pefConfig) (expected a PEFT adapter directory)")
            }
            guard (try? Posix.stat(weights)) != nil else {
                throw .badSource(path: source, reason: "a directory without \(Self.peftWeights) (expected a PEFT adapter directory)")
            }
            files = [(config, Self.pefConfig), (weights, Self.peftWeights)]
        case S_IFREG where source.hasSuffix(".gguf"):
            files = [(source, Self.ggufFile)]
        default:
            throw .badSource(path: source, reason: "expected a PEFT adapter directory or a llama.cpp LoRA .gguf file")
        }
        let tmp = join(dir, ".publishing-v\(version)-\(getpid())")
        do { try Posix.mkdir(tmp, mode: 0o755) } catch { throw .io(error, doing: "creating \(tmp)") }
        step()
        var published = false
        defer { if !published { try? FileManager.default.removeItem(atPath: tmp) } }
        var entries: [Manifest.File] = []
        for f in files {
            let (bytes, sha) = try FileDigest.copy(f.from, to: join(tmp, f.to), step: step)
            entries.append(Manifest.File(name: f.to, bytes: bytes, sha256: sha))
        }
        let loadPath = files.count == 1 ? join(tmp, Self.ggufFile) : tmp
        do { try validate(loadPath) } catch let e as RegistryError { throw e } catch { throw .invalid(reason: "\(error)") }
        let manifest = Manifest(name: name, version: version, source: sourceKind, parent: parent,
                                created: Int(Date().timeIntervalSince1970), files: entries, base: base, origin: origin, stats: stats,
                                merge: merge)
        try FileDigest.write(Array((manifest.json.serialized() + "\n").utf8), to: join(tmp, Manifest.fileName))
        step()
        do { try Posix.fsyncDirectory(tmp) } catch { throw .io(error, doing: "syncing \(tmp)") }
        step()
        // Publishers of one adapter are serialized by its lock, and rename(2) never puts a directory
        // over a non-empty one, so no version is ever replaced.
        do { try Posix.rename(tmp, to: join(dir, "v\(version)")) } catch {
            throw .io(error, doing: "publishing \(name)@v\(version)")
        }
        published = true
        step()
        do { try Posix.fsyncDirectory(dir) } catch { throw .io(error, doing: "syncing \(dir)") }
        step()
        return manifest
    }

    /// Replaces `current` with a link to `vN`, atomically.
    private func pointCurrent(_ name: String, at version: Int) throws(RegistryError) {
        let dir = join(root, name)
        let tmp = join(dir, ".current-\(getpid())")
        try? Posix.unlink(tmp)
        do { try Posix.symlink("v\(version)", at: tmp) } catch { throw .io(error, doing: "linking \(tmp)") }
        step()
        do { try Posix.rename(tmp, to: join(dir, Self.activeLink)) } catch {
            try? Posix.unlink(tmp)
            throw .io(error, doing: "activating \(name)@v\(version)")
        }
        step()
        do { try Posix.fsyncDirectory(dir) } catch { throw .io(error, doing: "syncing \(dir)") }
        step()
    }

    /// Takes the adapter's lock (creating its directory when needed), held until the descriptor closes.
    private func lockAdapter(_ name: String) throws(RegistryError) -> CInt {
        guard AdapterName.isValid(name) else { throw .badName(name) }
        let dir = join(root, name)
        switch kind(of: dir) {
        case .missing:
            do { try Posix.mkdir(dir, mode: 0o755) } catch where error.errno == EEXIST {} catch {
                throw .io(error, doing: "creating \(dir)")
            }
        case .directory: break
        case .outside: throw .outsideRoot(path: dir)
        default: throw .badSource(path: dir, reason: "not a directory")
        }
        let path = join(dir, ".lock")
        let fd: CInt
        do { fd = try Posix.open(path, O_RDWR | O_CREAT, mode: 0o644) } catch { throw .io(error, doing: "locking \(name)") }
        do { try Posix.lockExclusive(fd, path: path) } catch {
            try? Posix.close(fd)
            throw .io(error, doing: "locking \(name)")
        }
        return fd
    }

    /// Leftovers of changes cut short (only lock holders make them, and we hold the lock).
    private func removeHidden(in dir: String) {
        for item in (try? Posix.directoryEntries(dir)) ?? [] where item.hasPrefix(".publishing-") || item.hasPrefix(".removed-") || item.hasPrefix(".current-") {
            try? FileManager.default.removeItem(atPath: join(dir, item))
        }
    }
}

/// The kill points of LORAD_FAILPOINT_PUBLISH_KILL_AT (see the top of this file).
private let killAtStep: Int? = ProcessInfo.processInfo.environment["LORAD_FAILPOINT_PUBLISH_KILL_AT"].flatMap { Int($0) }
nonisolated(unsafe) private var stepsTaken = 0

func step() {
    guard let killAtStep else { return }
    stepsTaken += 1
    if stepsTaken == killAtStep { kill(getpid(), SIGKILL) }
}
