// Adapter uploads: `POST /v1/adapters/NAME/versions` with the adapter's files in the request body
// instead of a path on the server, as
//
//   JSON       {"files": {"adapter_config.json": {...} or "<base64>",
//                         "adapter_model.safetensors": "<base64>"}, "activate": true}
//              {"files": {"adapter.gguf": "<base64>"}}
//   multipart  curl -F adapter_model.safetensors=@x -F adapter_config.json=@y [-F activate=false]
//
// Only those file names are taken, never a path, so an upload cannot name a place on disk. The
// body may be up to `admin.max_upload_bytes` (the route's own limit, for admitted callers only;
// Router.bodyLimit). Everything here runs on the loader thread: parsing a large JSON body and
// decoding 50 MB of base64 would stall every client on the loop. The files go into a temporary
// directory, the registry publishes from it exactly as it does an import (copy, hash, validate
// against the base with the same loader, rename), and the directory is removed whatever happens:
// an upload that does not load is a 400 with the loader's message and the registry is unchanged.

import Foundation
import HTTP
import JSON
import LoRA
import Registry
import SystemCalls

/// An uploaded adapter, decoded: its files by name and whether to make it the active version.
struct AdapterUpload: Sendable {
    static let peftConfig = "adapter_config.json"
    static let peftWeights = "adapter_model.safetensors"
    static let gguf = "adapter.gguf"
    static let allowedNames = [peftConfig, peftWeights, gguf]
    static let layouts = "adapter_config.json and adapter_model.safetensors (a PEFT adapter), or adapter.gguf alone (a llama.cpp LoRA)"
    static let usage = "expected {\"files\": {\"adapter_config.json\": {...}, \"adapter_model.safetensors\": \"<base64>\"}, \"activate\": true}, "
        + "{\"files\": {\"adapter.gguf\": \"<base64>\"}}, or multipart/form-data with parts named adapter_config.json and "
        + "adapter_model.safetensors, or adapter.gguf (curl -F adapter.gguf=@FILE); or {\"path\": ...} under adapters.import_roots"

    let files: [(name: String, bytes: [UInt8])]
    let activate: Bool

    var byteCount: Int { files.reduce(0) { $0 + $1.bytes.count } }
    var isGGUF: Bool { files.count == 1 && files[0].name == Self.gguf }

    /// Decodes a request body: multipart/form-data when `contentType` says so, JSON otherwise.
    init(body: [UInt8], contentType: String?) throws(OpenAIError) {
        let boundary: String?
        do { boundary = try contentType.flatMap(Multipart.boundary(contentType:)) } catch {
            throw .badRequest(param: nil, message: error.message)
        }
        var files: [(name: String, bytes: [UInt8])] = []
        var activate = true
        if let boundary {
            let parts: [MultipartPart]
            do { parts = try Multipart.parse(body, boundary: boundary, maxParts: Self.allowedNames.count + 1) } catch {
                throw .badRequest(param: "files", message: "bad multipart/form-data body: \(error.message)")
            }
            for part in parts {
                if part.name == "activate" {
                    activate = try Self.flag(String(decoding: part.content, as: UTF8.self))
                    continue
                }
                try Self.checkName(part.name)
                files.append((part.name, Array(part.content)))
            }
        } else {
            let json: JSONValue
            do { json = try JSONValue.parse(body) } catch {
                throw .badRequest(param: nil, message: "the body is not JSON (\(error)); \(Self.usage)")
            }
            guard let members = json.objectMembers else { throw .badRequest(param: nil, message: Self.usage) }
            for (key, _) in members where key != "files" && key != "activate" {
                throw .badRequest(param: key, message: "unexpected field \(OpenAIError.excerpt(key)) in an upload; \(Self.usage)")
            }
            guard case .object(let entries)? = json["files"] else { throw .badRequest(param: "files", message: Self.usage) }
            if let a = json["activate"] {
                guard let b = a.boolValue else { throw .badRequest(param: "activate", message: "expected true or false") }
                activate = b
            }
            for (name, value) in entries {
                try Self.checkName(name)
                switch value {
                case .string(let text):
                    do { files.append((name, try Base64.decode(text))) } catch {
                        throw .badRequest(param: "files.\(name)", message: "\(name) is not valid base64: \(error.message)")
                    }
                case .object where name == Self.peftConfig:
                    // The configuration may come as the JSON object itself rather than encoded.
                    files.append((name, Array(value.serialized().utf8)))
                default:
                    throw .badRequest(param: "files.\(name)", message: "expected \(name) as a base64 string\(name == Self.peftConfig ? " or a JSON object" : "")")
                }
            }
        }
        try Self.checkLayout(files.map(\.name))
        self.files = files
        self.activate = activate
    }

    /// A file name from the client: one of the allowed names, exactly; anything else (a path, `..`,
    /// another file) is refused before a byte is written.
    static func checkName(_ name: String) throws(OpenAIError) {
        guard allowedNames.contains(name) else {
            throw .badRequest(param: "files", message: "an uploaded file may only be named \(layouts), never a path; found \(OpenAIError.excerpt(name))")
        }
    }

    static func checkLayout(_ names: [String]) throws(OpenAIError) {
        let set = Set(names)
        guard set.count == names.count else { throw .badRequest(param: "files", message: "a file appears twice; send each once") }
        if set == [gguf] || set == [peftConfig, peftWeights] { return }
        let found = names.isEmpty ? "no files" : names.joined(separator: ", ")
        throw .badRequest(param: "files", message: "expected \(layouts); found \(found)")
    }

    static func flag(_ text: String) throws(OpenAIError) -> Bool {
        switch text {
        case "true", "1": return true
        case "false", "0": return false
        default: throw .badRequest(param: "activate", message: "expected activate=true or activate=false, found \(OpenAIError.excerpt(text))")
        }
    }

    /// Writes the files into `directory` (created, private to this user); returns what the registry
    /// publishes from: the directory (PEFT) or the .gguf file in it.
    func write(into directory: String) throws(SystemCallError) -> String {
        try Posix.mkdir(directory, mode: 0o700)
        for f in files {
            let path = directory + "/" + f.name
            let fd = try Posix.open(path, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
            do {
                try Posix.writeAll(fd, f.bytes, path: path)
                try Posix.close(fd)
            } catch {
                try? Posix.close(fd)
                throw error
            }
        }
        return isGGUF ? directory + "/" + Self.gguf : directory
    }
}

extension Endpoints {
    /// Decodes an upload, writes it to a temporary directory and publishes it as `name`'s next
    /// version; the answer's JSON. Loader thread (inside `change`, which logs and rescans).
    static func publishUpload(_ body: [UInt8], contentType: String?, name: String, base: BaseModelInfo, who: String,
                              registry: Registry) throws -> JSONValue {
        // The name first: decoding a large body for a name that cannot be published is wasted work.
        guard AdapterName.isValid(name) else { throw RegistryError.badName(name) }
        let upload = try AdapterUpload(body: body, contentType: contentType)
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("lorad-upload-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let source: String
        do { source = try upload.write(into: tmp) } catch {
            throw OpenAIError.internal("writing the upload to \(tmp) failed: \(error)")
        }
        let m: Manifest
        do {
            m = try registry.publish(PublishRequest(name: name, source: source, base: BaseFingerprint(base), activate: upload.activate,
                                                    origin: "upload of \(upload.byteCount) bytes by \(who)")) {
                _ = try LoRAAdapter.load(path: $0, name: name, base: base)
            }
        } catch .invalid(let reason) {
            // The loader's own message (bad safetensors, a shape that does not fit the base, ...).
            throw OpenAIError.badRequest(param: "files", message: "the uploaded adapter does not load against the base model: \(reason)")
        }
        return .object([("name", .string(name)), ("version", .int(m.version)), ("digest", .string(m.digest)),
                        ("active", .bool(upload.activate)), ("bytes", .int(upload.byteCount))])
    }
}
