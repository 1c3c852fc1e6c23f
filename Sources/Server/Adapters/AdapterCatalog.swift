// The adapters a daemon serves, found in one directory (`--adapters DIR`): each subdirectory holding
// a PEFT adapter (adapter_config.json) is served under the subdirectory's name, each NAME.gguf LoRA
// file under NAME. Every adapter is validated against the base at scan time; a bad one is reported
// and skipped, and the rest still serve. A rescan (SIGHUP) builds a new catalog; the server swaps it
// in whole, so running sequences keep the adapter objects they started with.
//
// Names follow [a-z0-9][a-z0-9._-]{0,63} and the served base name is reserved. A request's `model`
// is only ever looked up in this table: it never becomes a path. `name@v1` names the same adapter,
// since a plain directory is version 1 of the registry layout (DESIGN.md §5); versioned registries
// come with the registry issue.

import Foundation
import LoRA

struct AdapterCatalog: @unchecked Sendable {
    // @unchecked: LoRAAdapter is immutable and Sendable; the dictionary is a value.
    struct Entry {
        let name: String
        let adapter: LoRAAdapter
        let path: String
        /// When the adapter was loaded (OpenAI's `created`, seconds since 1970).
        let created: Int
    }

    struct Failure: Equatable {
        let name: String
        let path: String
        let reason: String
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

    /// Scans `directory`, loading every adapter found there against `base`.
    static func scan(directory: String?, base: BaseModelInfo, reserved: Set<String>) -> AdapterCatalog {
        var catalog = AdapterCatalog(directory: directory)
        guard let directory else { return catalog }
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            catalog.failures.append(Failure(name: "", path: directory, reason: "the adapters directory does not exist or is not a directory"))
            return catalog
        }
        let items = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        let now = Int(Date().timeIntervalSince1970)
        for item in items where !item.hasPrefix(".") {
            let path = (directory as NSString).appendingPathComponent(item)
            var name: String
            if fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
                guard fm.fileExists(atPath: (path as NSString).appendingPathComponent("adapter_config.json")) else {
                    catalog.failures.append(Failure(name: item, path: path,
                                                    reason: "a directory without adapter_config.json (expected a PEFT adapter)"))
                    continue
                }
                name = item
            } else if item.hasSuffix(".gguf") {
                name = String(item.dropLast(5))
            } else {
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
            do {
                let adapter = try LoRAAdapter.load(path: path, name: name, base: base)
                catalog.entries[name] = Entry(name: name, adapter: adapter, path: path, created: now)
            } catch {
                catalog.failures.append(Failure(name: name, path: path, reason: "\(error)"))
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
