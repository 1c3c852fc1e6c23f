// The on-disk adapter registry (DESIGN.md §5): one directory per adapter under a root, one
// directory per version, a `current` symlink naming the active one.
//
//     <root>/<name>/v1/adapter_config.json, adapter_model.safetensors, lorad.json
//     <root>/<name>/v2/adapter_model.gguf, lorad.json          (a llama.cpp LoRA file)
//     <root>/<name>/current -> v2
//
// What came before versions still reads: a plain PEFT directory `<root>/<name>/` or a file
// `<root>/<name>.gguf` is version 1 of `<name>`; the first publish into it copies it to `v1/` and
// removes the plain files once the new version is active. Without `current` (a new adapter in the
// instant before its link is made, or a plain one), the lowest version is active, so a publish cut
// short never activates a version by accident.
//
// Reading never writes, never follows a symlink out of the root, and judges a whole adapter at once:
// a broken version is reported with its reason and the others still read. Everything here reads
// files: call it from the loader thread or a command, never from the loop.

import Foundation
import LoRA
import ModelFormats
import SystemCalls

public struct Registry: Sendable {
    /// The root as given.
    public let root: String
    /// Its real path with a trailing slash: what every path read must stay under.
    private let realRoot: String

    public static let activeLink = "current"
    static let pefConfig = "adapter_config.json"
    static let peftWeights = "adapter_model.safetensors"
    static let ggufFile = "adapter_model.gguf"

    /// Opens the registry at `root`; with `create`, makes the directory when it is missing.
    public init(root: String, create: Bool = false) throws(RegistryError) {
        self.root = root
        if create, (try? Posix.lstat(root)) == nil {
            do { try Posix.mkdir(root, mode: 0o755) } catch where error.errno == EEXIST {} catch {
                throw .io(error, doing: "creating the adapters directory")
            }
        }
        let real: String
        do { real = try Posix.realpath(root) } catch {
            throw .notARegistry(path: root, reason: "it does not exist (\(error.reason)); create it or give --adapters DIR")
        }
        guard let st = try? Posix.stat(real), (st.st_mode & S_IFMT) == S_IFDIR else {
            throw .notARegistry(path: root, reason: "not a directory")
        }
        realRoot = real.hasSuffix("/") ? real : real + "/"
    }

    // MARK: Reading

    /// One version as found on disk.
    public struct Version: Sendable {
        public let name: String
        public let version: Int
        /// What `LoRAAdapter.load(path:)` opens: the version directory (PEFT) or its GGUF file.
        public let loadPath: String
        /// The files that make it, inside the registry.
        public let files: [String]
        /// nil for a plain (unversioned) adapter, which has none.
        public let manifest: Manifest?
        /// A plain PEFT directory or NAME.gguf read as version 1.
        public let isPlain: Bool

        public var reference: AdapterReference { AdapterReference(name: name, version: version) }
    }

    public struct Adapter: Sendable {
        public let name: String
        /// Readable versions, oldest first.
        public let versions: [Version]
        /// The active version's number; nil when `current` names no readable version.
        public let active: Int?
        /// Versions (or the `current` link) that could not be read, with why.
        public let problems: [String]

        public var activeVersion: Version? { versions.first { $0.version == active } }
        public func version(_ n: Int) -> Version? { versions.first { $0.version == n } }
    }

    /// Names of everything under the root that looks like an adapter (valid or not), sorted.
    public func entryNames() throws(RegistryError) -> [String] {
        let items: [String]
        do { items = try Posix.directoryEntries(root) } catch { throw .io(error, doing: "listing \(root)") }
        var names = Set<String>()
        for item in items where !item.hasPrefix(".") {
            let path = join(root, item)
            switch kind(of: path) {
            case .directory: names.insert(item)
            case .regularFile where item.hasSuffix(".gguf"), .outside where item.hasSuffix(".gguf"), .other where item.hasSuffix(".gguf"):
                names.insert(String(item.dropLast(5)))
            case .outside: names.insert(item)
            default: continue
            }
        }
        return names.sorted()
    }

    /// Every adapter, and what could not be read (by name).
    public func adapters() throws(RegistryError) -> (adapters: [Adapter], failures: [(name: String, error: RegistryError)]) {
        var found: [Adapter] = []
        var failures: [(String, RegistryError)] = []
        for name in try entryNames() {
            do {
                let a = try adapter(name)
                if !a.versions.isEmpty || !a.problems.isEmpty { found.append(a) }
            } catch {
                failures.append((name, error))
            }
        }
        return (found, failures)
    }

    /// One adapter with its versions. Throws for a bad name, a missing adapter or one that cannot
    /// be read at all; a broken version is listed in `problems`.
    public func adapter(_ name: String) throws(RegistryError) -> Adapter {
        guard AdapterName.isValid(name) else { throw .badName(name) }
        let dir = join(root, name)
        let gguf = dir + ".gguf"
        let dirKind = kind(of: dir), ggufKind = kind(of: gguf)
        if dirKind == .outside || ggufKind == .outside { throw .outsideRoot(path: dirKind == .outside ? dir : gguf) }
        var versions: [Version] = []
        var problems: [String] = []
        var numbered: [Int: String] = [:]
        var plainPEFT = false
        if dirKind == .directory {
            let items: [String]
            do { items = try Posix.directoryEntries(dir) } catch { throw .io(error, doing: "listing \(dir)") }
            for item in items {
                if item.hasPrefix("v"), let n = AdapterReference.parseVersion(item), "v\(n)" == item { numbered[n] = join(dir, item) }
                if item == Self.pefConfig { plainPEFT = true }
            }
        } else if dirKind != .missing && ggufKind == .missing {
            throw .notFound(name: name)
        }
        for (n, path) in numbered.sorted(by: { $0.key < $1.key }) {
            do { versions.append(try readVersion(name: name, version: n, directory: path)) } catch { problems.append("v\(n): \(error)") }
        }
        // The plain layout is version 1 only while no v1 directory exists (a publish copies it there).
        if numbered[1] == nil {
            if plainPEFT && ggufKind == .regularFile {
                problems.append("both \(name)/ and \(name).gguf hold an adapter; keep one")
            } else if plainPEFT {
                do {
                    let files = [join(dir, Self.pefConfig), join(dir, Self.peftWeights)]
                    try checkFiles(files, optional: [files[1]])
                    versions.insert(Version(name: name, version: 1, loadPath: dir, files: files, manifest: nil, isPlain: true), at: 0)
                } catch { problems.append("v1 (\(name)/): \(error)") }
            } else if ggufKind == .regularFile {
                versions.insert(Version(name: name, version: 1, loadPath: gguf, files: [gguf], manifest: nil, isPlain: true), at: 0)
            } else if ggufKind == .directory || ggufKind == .other {
                problems.append("\(name).gguf is not a regular file")
            }
        }
        // A directory with nothing in it yet: a first publish under way (or cut short).
        if versions.isEmpty && problems.isEmpty { throw .notFound(name: name) }
        let active: Int?
        let link = join(dir, Self.activeLink)
        switch kind(of: link, followLast: false) {
        case .missing:
            active = versions.first?.version
        case .symlink:
            let target = (try? Posix.readlink(link)) ?? ""
            if let n = target.hasPrefix("v") ? AdapterReference.parseVersion(target) : nil, "v\(n)" == target,
               versions.contains(where: { $0.version == n }) {
                active = n
            } else {
                active = nil
                problems.append("current -> \(target.debugDescription) names no readable version (expected vN)")
            }
        default:
            active = nil
            problems.append("current is not a symlink to a version (expected current -> vN)")
        }
        return Adapter(name: name, versions: versions, active: active, problems: problems)
    }

    /// The version `reference` names: the pinned one, or the active one.
    public func resolve(_ reference: AdapterReference) throws(RegistryError) -> Version {
        let a = try adapter(reference.name)
        if let v = reference.version {
            guard let found = a.version(v) else {
                if let p = a.problems.first(where: { $0.hasPrefix("v\(v):") || $0.hasPrefix("v\(v) ") }) {
                    throw .badManifest(path: join(join(root, reference.name), "v\(v)"), reason: p)
                }
                throw .versionNotFound(name: a.name, version: v, available: a.versions.map(\.version))
            }
            return found
        }
        guard let active = a.activeVersion else {
            throw .badManifest(path: join(join(root, reference.name), Self.activeLink),
                               reason: a.problems.first ?? "no readable version")
        }
        return active
    }

    /// Checks every file of `version` against its manifest's sha256 (reads them whole).
    public func verify(_ version: Version) throws(RegistryError) {
        guard let m = version.manifest else { return }
        let dir = (version.files.first.map { ($0 as NSString).deletingLastPathComponent }) ?? ""
        for f in m.files {
            let path = join(dir, f.name)
            let digest = try FileDigest.sha256(ofFile: path)
            if digest != f.sha256 { throw .digestMismatch(path: path, expected: f.sha256, found: digest) }
        }
    }

    private func readVersion(name: String, version: Int, directory: String) throws(RegistryError) -> Version {
        let manifestPath = join(directory, Manifest.fileName)
        guard kind(of: manifestPath) == .regularFile else {
            throw .badManifest(path: manifestPath, reason: "missing or not a regular file")
        }
        let bytes: [UInt8]
        do { bytes = try ByteRegion.contents(ofRegularFile: manifestPath, maxBytes: 1 << 20) } catch {
            throw .badManifest(path: manifestPath, reason: "\(error)")
        }
        let m = try Manifest(json: bytes, path: manifestPath)
        guard m.name == name, m.version == version else {
            throw .badManifest(path: manifestPath, reason: "it describes \(m.name)@v\(m.version), not \(name)@v\(version)")
        }
        let files = m.files.map { join(directory, $0.name) }
        try checkFiles(files)
        for (f, path) in zip(m.files, files) {
            if let st = try? Posix.stat(path), Int(st.st_size) != f.bytes {
                throw .digestMismatch(path: path, expected: "\(f.bytes) bytes", found: "\(st.st_size) bytes")
            }
        }
        let loadPath: String
        if m.files.contains(where: { $0.name == Self.pefConfig }) {
            loadPath = directory
        } else if m.files.contains(where: { $0.name == Self.ggufFile }) {
            loadPath = join(directory, Self.ggufFile)
        } else {
            throw .badManifest(path: manifestPath, reason: "its files hold neither \(Self.pefConfig) nor \(Self.ggufFile)")
        }
        return Version(name: name, version: version, loadPath: loadPath, files: files, manifest: m, isPlain: false)
    }

    /// Every file is a regular file inside the root (`optional` ones may be missing: the loader
    /// says what it misses).
    private func checkFiles(_ files: [String], optional: [String] = []) throws(RegistryError) {
        for f in files {
            switch kind(of: f) {
            case .regularFile: continue
            case .missing where optional.contains(f): continue
            case .missing: throw .badFile(path: f, reason: "is missing")
            case .outside: throw .outsideRoot(path: f)
            default: throw .badFile(path: f, reason: "is not a regular file")
            }
        }
    }

    // MARK: Paths

    /// Whether `<root>/<name>` is a directory inside the root (what a watcher may watch).
    public func isAdapterDirectory(_ name: String) -> Bool {
        AdapterName.isValid(name) && kind(of: join(root, name)) == .directory
    }

    enum Kind: Equatable { case missing, directory, regularFile, symlink, other, outside }

    /// What `path` is, judged without opening it; a symlink is followed only when it stays inside
    /// the root (`followLast: false` reports the link itself).
    func kind(of path: String, followLast: Bool = true) -> Kind {
        guard var st = try? Posix.lstat(path) else { return .missing }
        if (st.st_mode & S_IFMT) == S_IFLNK {
            if !followLast { return .symlink }
            guard let target = try? Posix.realpath(path) else { return .missing }   // dangling
            guard target.hasPrefix(realRoot) else { return .outside }
            guard let s = try? Posix.stat(target) else { return .missing }
            st = s
        } else if let real = try? Posix.realpath(path), !(real + "/").hasPrefix(realRoot) {
            return .outside   // a parent directory is a symlink that leads out
        }
        switch st.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFREG: return .regularFile
        default: return .other
        }
    }

    func join(_ a: String, _ b: String) -> String { a.hasSuffix("/") ? a + b : a + "/" + b }
}
