// `lorad adapter import|list|show|activate|rollback|rm|gc`: the versioned registry from the command
// line, over the Registry library (the same code the daemon's admin API uses). They work with or
// without a daemon running on the same root: every change is atomic on disk, and a running daemon
// picks it up on its next rescan. Usage errors exit 64; a refused change exits 1 with the reason.

import ArgumentParser
import Foundation
import LoRA
import JSON
import ModelFormats
import Registry
import Server

/// `--adapters DIR` and `--config FILE`, shared by the registry commands.
struct RegistryOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The adapter registry (default: --config's adapters.dir, else $LORAD_ADAPTERS, else \(LocalDefaults.checkoutAdapters)/ if it exists, "
            + "else \(LocalDefaults.systemAdapters)).", valueName: "dir"))
    var adapters: String?

    @Option(name: .long, help: ArgumentHelp("A lorad.toml whose adapters.dir names the registry.", valueName: "file"))
    var config: String?

    var root: String {
        if let adapters { return adapters }
        if let config {
            do {
                return try ServerConfig.load(path: config, base: LocalDefaults.serverBase()).adapters.dir
            } catch {
                fail("\(error)", code: 78)
            }
        }
        return LocalDefaults.adaptersDirectory()
    }

    func open(create: Bool = false) -> Registry {
        do { return try Registry(root: root, create: create) } catch { fail("\(error)") }
    }
}

func registryFail(_ error: Error) -> Never { fail("\(error)") }

struct AdapterImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Publish an adapter as the next version of NAME and make it active.",
        discussion: """
            PATH is a PEFT directory (adapter_config.json + adapter_model.safetensors) or a llama.cpp \
            LoRA .gguf file. It is validated against the base model (--model) first; the copy, its \
            manifest (sha256 of every file) and the switch of NAME's active version are atomic, so a \
            crash leaves the previous version serving.
            """)

    @OptionGroup var registry: RegistryOptions
    @OptionGroup var modelOptions: ModelOptions
    @Argument(help: ArgumentHelp("The adapter's name, \(AdapterName.rule).", valueName: "name"))
    var name: String
    @Argument(help: ArgumentHelp("A PEFT directory or a llama.cpp LoRA .gguf file.", valueName: "path"))
    var path: String
    @Flag(name: .customLong("no-activate"), help: "Publish without making it the active version.")
    var noActivate = false
    @Flag(help: "Mark the version to be served merged into the base weights (a daemon merges it when it serves it).")
    var merge = false

    func validate() throws {
        guard AdapterName.isValid(name) else { throw ValidationError(RegistryError.badName(name).description) }
    }

    func run() throws {
        let r = registry.open(create: true)
        let base = openBase(modelOptions)
        let request = PublishRequest(name: name, source: path, base: BaseFingerprint(base.info), activate: !noActivate,
                                     merge: merge)
        do {
            let m = try r.publish(request) { loadPath in
                let adapter = try LoRAAdapter.load(path: loadPath, name: name, base: base.info)
                if let w = base.info.identity.mismatch(declared: adapter.declaredBase) {
                    FileHandle.standardError.write(Data("warning: \(name): \(w)\n".utf8))
                }
            }
            print("\(name)@v\(m.version)\(noActivate ? "" : " (active)")  sha256 \(m.digest.prefix(16))…  \(m.files.map { "\($0.name) \($0.bytes) B" }.joined(separator: ", "))")
        } catch {
            registryFail(error)
        }
    }
}

struct AdapterList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the registry's adapters: versions and the active one.")

    @OptionGroup var registry: RegistryOptions
    @Flag(help: "Print one JSON array instead of the table.")
    var json = false

    func run() throws {
        let r = registry.open()
        let found: (adapters: [Registry.Adapter], failures: [(name: String, error: RegistryError)])
        do { found = try r.adapters() } catch { registryFail(error) }
        if json {
            var items = found.adapters.map(\.json)
            items += found.failures.map { .object([("name", .string($0.name)), ("error", .string("\($0.error)"))]) }
            print(JSONValue.array(items).serialized())
            return
        }
        print("NAME".padding(toLength: 24, withPad: " ", startingAt: 0) + " ACTIVE  VERSIONS")
        for a in found.adapters {
            let active = a.active.map { "v\($0)" } ?? "-"
            let versions = a.versions.map { "v\($0.version)" }.joined(separator: " ")
            print(a.name.padding(toLength: 24, withPad: " ", startingAt: 0) + " " + active.padding(toLength: 7, withPad: " ", startingAt: 0)
                  + " " + versions + (a.problems.isEmpty ? "" : "  (\(a.problems.count) problem(s): lorad adapter show \(a.name))"))
        }
        for f in found.failures { print("\(f.name): \(f.error)") }
    }
}

struct AdapterShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show one adapter: every version with its manifest, and any problem.")

    @OptionGroup var registry: RegistryOptions
    @Argument(help: ArgumentHelp("NAME", valueName: "name"))
    var name: String
    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        let a: Registry.Adapter
        do { a = try registry.open().adapter(name) } catch { registryFail(error) }
        if json {
            print(a.json.serialized())
            return
        }
        print("\(a.name): active \(a.active.map { "v\($0)" } ?? "none")")
        for v in a.versions {
            var line = "  v\(v.version)\(v.version == a.active ? " *" : "  ") \(v.loadPath)"
            if let m = v.manifest {
                let when = Date(timeIntervalSince1970: TimeInterval(m.created)).ISO8601Format()
                line += "  \(m.source.rawValue)\(m.parent.map { " from v\($0)" } ?? "")  \(when)  sha256 \(m.digest.prefix(16))…"
                line += "  \(m.files.reduce(0) { $0 + $1.bytes }) B"
                if !m.stats.isEmpty { line += "  " + JSONValue.object(m.stats).serialized() }
            } else {
                line += "  (unversioned: no manifest)"
            }
            print(line)
        }
        for p in a.problems { print("  problem: \(p)") }
    }
}

struct AdapterActivate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "activate", abstract: "Make VERSION the active version of NAME (roll forward or back).")

    @OptionGroup var registry: RegistryOptions
    @Argument(help: ArgumentHelp("NAME", valueName: "name"))
    var name: String
    @Argument(help: ArgumentHelp("A version number: 3 or v3.", valueName: "version"))
    var version: String

    func validate() throws {
        guard AdapterReference.parseVersion(version) != nil else {
            throw ValidationError("'\(version)' is not a version: expected a number such as 3 or v3")
        }
    }

    func run() throws {
        let v = AdapterReference.parseVersion(version)!
        do { try registry.open().activate(name, version: v) } catch { registryFail(error) }
        print("\(name)@v\(v) is active")
    }
}

struct AdapterRollback: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback", abstract: "Activate the newest version of NAME older than the active one.")

    @OptionGroup var registry: RegistryOptions
    @Argument(help: ArgumentHelp("NAME", valueName: "name"))
    var name: String

    func run() throws {
        do {
            let v = try registry.open().rollback(name)
            print("\(name)@v\(v) is active")
        } catch {
            registryFail(error)
        }
    }
}

struct AdapterRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove an adapter (NAME) or one of its versions (NAME@vN, never the active one).")

    @OptionGroup var registry: RegistryOptions
    @Argument(help: ArgumentHelp("NAME or NAME@vN.", valueName: "reference"))
    var reference: String

    func validate() throws {
        guard AdapterReference(reference) != nil else { throw ValidationError(RegistryError.badReference(reference).description) }
    }

    func run() throws {
        let ref = AdapterReference(reference)!
        do { try registry.open().remove(ref.name, version: ref.version) } catch { registryFail(error) }
        print("removed \(ref)")
    }
}

struct AdapterCollect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc", abstract: "Remove old versions: all but the active one and the --keep newest.")

    @OptionGroup var registry: RegistryOptions
    @Option(help: ArgumentHelp("Versions to keep per adapter besides the active one.", valueName: "n"))
    var keep: Int = 2
    @Argument(help: ArgumentHelp("Only this adapter.", valueName: "name"))
    var name: String?

    func validate() throws {
        guard keep >= 0 else { throw ValidationError("--keep must be 0 or more") }
    }

    func run() throws {
        do {
            let removed = try registry.open().collectGarbage(keep: keep, only: name)
            print(removed.isEmpty ? "nothing to remove" : "removed " + removed.map(\.description).joined(separator: ", "))
        } catch {
            registryFail(error)
        }
    }
}
