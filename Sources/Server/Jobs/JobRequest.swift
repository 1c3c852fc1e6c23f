// What a training request asks for, checked field by field before anything is queued: lorad's
// `POST /v1/adapters/{name}/train` body and OpenAI's `POST /v1/fine_tuning/jobs` body both become
// one `JobSpec`. Every refusal is a 400 naming the field and what was expected; the data itself is
// checked afterwards, on the jobs queue, by loading it exactly as the trainer will (JobPreparation).
//
// OpenAI's `model` and `suffix`: `model` names either an adapter (the job trains that adapter's next
// version, starting from its active version when it has one) or the base's served name (then
// `suffix` is required and names the new adapter, trained from scratch). A suffix with an adapter
// as `model` is refused: a run continues one adapter's own history and cannot start a new name
// from another adapter. The result is `fine_tuned_model` = `name@vN`, servable at once.

import Foundation
import JSON
import LoRA
import Registry
import Training

/// Where a job's rows come from.
enum JobData: Sendable {
    /// Rows sent in the request (chat rows as in the JSONL), written to the job's directory.
    case rows([JSONValue])
    /// A JSONL file on the daemon's host under `adapters.import_roots` (admins only).
    case path(String)
    /// An uploaded file (`POST /v1/files`), by id.
    case file(String)
}

/// A checked training request.
struct JobSpec: Sendable {
    var adapter: String
    var owner: String?
    var activation: TrainingJobOptions.Activation
    var config = TrainerConfig()
    /// For a new adapter; nil: the defaults (8, 16, every projection, no rsLoRA), or the existing
    /// adapter's own rank and targets.
    var rank: Int?
    var alpha: Double?
    var targets: [LoRATarget]?
    var rsLoRA = false
    var evalFraction = 0.1
    var maxSequence = 512
    var evalEvery: Int?
    var data: JobData
    var evalData: JobData?
    /// As OpenAI's object reports them.
    var model: String
    var suffix: String?

    /// The activation as the API spells it.
    var activationName: String {
        switch activation {
        case .never: return "never"
        case .always: return "always"
        case .ifBetter: return "if_better"
        }
    }

    /// The hyperparameters with every default filled in (the job record's copy). Rank, alpha and
    /// targets appear once the run has decided them (a continued adapter keeps its own).
    var hyperparametersJSON: JSONValue {
        var out: [(String, JSONValue)] = [
            ("epochs", .int(config.epochs)), ("batch_size", .int(config.batchSize)),
            ("learning_rate", .double(config.learningRate)),
            ("learning_rate_multiplier", .double(config.learningRate / JobSpec.baseLearningRate)),
            ("grad_accum", .int(config.gradientAccumulation)), ("seed", .int(Int(truncatingIfNeeded: config.seed))),
            ("warmup", .int(config.warmupSteps)), ("schedule", .string(config.schedule.rawValue)),
            ("weight_decay", .double(config.weightDecay)), ("lora_plus", .double(config.loraPlusRatio)),
            ("eval_fraction", .double(evalFraction)), ("max_seq", .int(maxSequence)),
        ]
        if let s = config.steps { out.append(("steps", .int(s))) }
        if let m = config.maxGradNorm { out.append(("max_grad_norm", .double(m))) }
        if let p = config.patience { out.append(("patience", .int(p))) }
        if let e = evalEvery { out.append(("eval_every", .int(e))) }
        if let rank { out.append(("rank", .int(rank))) }
        if let alpha { out.append(("alpha", .double(alpha))) }
        if let targets { out.append(("targets", .array(targets.map { .string($0.rawValue) }))) }
        if rsLoRA { out.append(("rslora", .bool(true))) }
        return .object(out)
    }

    /// OpenAI's learning_rate_multiplier multiplies this (lorad train's default --lr).
    static let baseLearningRate = TrainerConfig().learningRate

    static let hyperparameterNames = ["epochs", "steps", "learning_rate", "learning_rate_multiplier", "batch_size", "grad_accum",
                                      "rank", "alpha", "targets", "rslora", "seed", "warmup", "schedule", "weight_decay",
                                      "max_grad_norm", "lora_plus", "eval_every", "patience", "eval_fraction", "max_seq"]

    // MARK: lorad's body

    static let usage = #"expected {"examples": [chat rows], "eval_examples": [...], "hyperparameters": {...}, "activate": "never"|"always"|"if_better"} or "data_path" instead of "examples""#

    /// `POST /v1/adapters/{name}/train`. `mayUsePaths`: the caller is an admin (paths name the
    /// daemon's files).
    static func parse(adapter: String, body: [UInt8], owner: String?, mayUsePaths: Bool) throws -> JobSpec {
        guard AdapterName.isValid(adapter) else {
            throw OpenAIError.badRequest(param: "name", message: "the adapter name \(OpenAIError.excerpt(adapter)) does not match \(AdapterName.rule)")
        }
        let json: JSONValue
        do { json = try JSONValue.parse(body) } catch {
            throw OpenAIError.badRequest(param: nil, message: "the body is not JSON (\(error)); \(usage)")
        }
        guard let members = json.objectMembers else { throw OpenAIError.badRequest(param: nil, message: usage) }
        let known: Set<String> = ["examples", "data_path", "eval_examples", "eval_data_path", "hyperparameters", "activate"]
        if let unknown = members.first(where: { !known.contains($0.0) }) {
            throw OpenAIError.badRequest(param: unknown.0, message: "unknown field \(OpenAIError.excerpt(unknown.0)); known: \(known.sorted().joined(separator: ", "))")
        }
        let data = try dataField(json, rows: "examples", path: "data_path", mayUsePaths: mayUsePaths, required: true)!
        let evalData = try dataField(json, rows: "eval_examples", path: "eval_data_path", mayUsePaths: mayUsePaths, required: false)
        var spec = JobSpec(adapter: adapter, owner: owner, activation: try activation(json["activate"], default: .never),
                           data: data, evalData: evalData, model: adapter)
        try spec.apply(hyperparameters: json["hyperparameters"], param: "hyperparameters")
        try spec.checkActivation()
        return spec
    }

    private static func dataField(_ json: JSONValue, rows: String, path: String, mayUsePaths: Bool, required: Bool) throws -> JobData? {
        switch (json[rows], json[path]) {
        case (.some, .some):
            throw OpenAIError.badRequest(param: rows, message: "give either \"\(rows)\" or \"\(path)\", not both")
        case (.some(let v), nil):
            guard let list = v.arrayValue, !list.isEmpty else {
                throw OpenAIError.badRequest(param: rows, message: "expected a non-empty array of chat rows ({\"messages\": [{\"role\": ..., \"content\": ...}, ...]})")
            }
            if let i = list.firstIndex(where: { $0.objectMembers == nil }) {
                throw OpenAIError.badRequest(param: "\(rows)[\(i)]", message: "expected a JSON object (a chat row {\"messages\": [...]} or {\"prompt\": ..., \"completion\": ...})")
            }
            return .rows(list)
        case (nil, .some(let v)):
            guard let p = v.stringValue, p.hasPrefix("/") else {
                throw OpenAIError.badRequest(param: path, message: "expected an absolute path to a JSONL file under adapters.import_roots")
            }
            guard mayUsePaths else {
                throw OpenAIError(status: 403, message: "\"\(path)\" names a file on the server: admins only; a tenant sends its rows (\"\(rows)\")",
                                  type: "permission_error", param: path)
            }
            return .path(p)
        case (nil, nil):
            if required { throw OpenAIError.badRequest(param: rows, message: usage) }
            return nil
        }
    }

    static func activation(_ v: JSONValue?, default d: TrainingJobOptions.Activation) throws -> TrainingJobOptions.Activation {
        guard let v else { return d }
        switch v.stringValue {
        case "never": return .never
        case "always": return .always
        case "if_better": return .ifBetter
        default: throw OpenAIError.badRequest(param: "activate", message: "expected \"never\", \"always\" or \"if_better\"")
        }
    }

    func checkActivation() throws {
        if activation == .ifBetter && evalData == nil && evalFraction == 0 {
            throw OpenAIError.badRequest(param: "activate", message: "\"if_better\" compares eval losses: give eval rows, or an eval_fraction above 0")
        }
    }

    // MARK: Hyperparameters

    /// Reads `hyperparameters` into the spec: every key known, every value in range.
    mutating func apply(hyperparameters: JSONValue?, param: String, openAINames: Bool = false) throws {
        guard let hp = hyperparameters, !hp.isNull else { return }
        guard let members = hp.objectMembers else {
            throw OpenAIError.badRequest(param: param, message: "expected an object of hyperparameters (\(Self.hyperparameterNames.joined(separator: ", ")))")
        }
        func name(_ k: String) -> String { "\(param).\(k)" }
        func int(_ k: String, _ v: JSONValue, _ range: ClosedRange<Int>) throws -> Int {
            guard let i = v.intValue, range.contains(i) else {
                throw OpenAIError.badRequest(param: name(k), message: "expected an integer from \(range.lowerBound) to \(range.upperBound)")
            }
            return i
        }
        func number(_ k: String, _ v: JSONValue, _ ok: (Double) -> Bool, _ expected: String) throws -> Double {
            guard let d = v.doubleValue, d.isFinite, ok(d) else { throw OpenAIError.badRequest(param: name(k), message: "expected \(expected)") }
            return d
        }
        var multiplier: Double?
        for (key, value) in members {
            // OpenAI's "auto" leaves lorad's default.
            if openAINames && value.stringValue == "auto" { continue }
            switch key {
            case "epochs", "n_epochs": config.epochs = try int(key, value, 1...1000)
            case "steps": config.steps = try int(key, value, 1...1_000_000)
            case "learning_rate": config.learningRate = try number(key, value, { $0 > 0 && $0 < 1 }, "a number between 0 and 1")
            case "learning_rate_multiplier": multiplier = try number(key, value, { $0 > 0 && $0 <= 100 }, "a positive number up to 100")
            case "batch_size": config.batchSize = try int(key, value, 1...256)
            case "grad_accum": config.gradientAccumulation = try int(key, value, 1...256)
            case "rank": rank = try int(key, value, 1...256)
            case "alpha": alpha = try number(key, value, { $0 > 0 }, "a positive number")
            case "rslora":
                guard let b = value.boolValue else { throw OpenAIError.badRequest(param: name(key), message: "expected true or false") }
                rsLoRA = b
            case "targets":
                let all = LoRATarget.allCases.map(\.rawValue).joined(separator: ", ")
                if value.stringValue == "all" { targets = LoRATarget.allCases; continue }
                guard let list = value.arrayValue, !list.isEmpty else {
                    throw OpenAIError.badRequest(param: name(key), message: "expected \"all\" or a non-empty array of projections (\(all))")
                }
                targets = try list.map { item in
                    guard let t = item.stringValue.flatMap(LoRATarget.init(rawValue:)) else {
                        throw OpenAIError.badRequest(param: name(key), message: "unknown projection \(OpenAIError.excerpt(item.serialized())); expected one of \(all)")
                    }
                    return t
                }
            case "seed": config.seed = UInt64(try int(key, value, 0...Int(Int32.max)))
            case "warmup": config.warmupSteps = try int(key, value, 0...1_000_000)
            case "schedule":
                guard let s = value.stringValue.flatMap(TrainerConfig.Schedule.init(rawValue:)) else {
                    throw OpenAIError.badRequest(param: name(key), message: "expected \"cosine\", \"linear\" or \"constant\"")
                }
                config.schedule = s
            case "weight_decay": config.weightDecay = try number(key, value, { $0 >= 0 }, "a number ≥ 0")
            case "max_grad_norm": config.maxGradNorm = try number(key, value, { $0 > 0 }, "a positive number")
            case "lora_plus": config.loraPlusRatio = try number(key, value, { $0 > 0 }, "a positive ratio (1: off)")
            case "eval_every": evalEvery = try int(key, value, 1...1_000_000)
            case "patience": config.patience = try int(key, value, 1...1000)
            case "eval_fraction": evalFraction = try number(key, value, { $0 >= 0 && $0 < 1 }, "a fraction in [0, 1)")
            case "max_seq": maxSequence = try int(key, value, 16...65536)
            default:
                let names = openAINames ? ["n_epochs", "batch_size", "learning_rate_multiplier"] + Self.hyperparameterNames : Self.hyperparameterNames
                throw OpenAIError.badRequest(param: name(key), message: "unknown hyperparameter \(OpenAIError.excerpt(key)); known: \(names.joined(separator: ", "))")
            }
        }
        if let multiplier { config.learningRate = Self.baseLearningRate * multiplier }
        if config.steps != nil && members.contains(where: { $0.0 == "epochs" || $0.0 == "n_epochs" }) {
            throw OpenAIError.badRequest(param: name("steps"), message: "give epochs or steps, not both")
        }
    }

    // MARK: OpenAI's body

    /// `POST /v1/fine_tuning/jobs`. `servedName`: the base's name; `mayUse`: the adapter names the
    /// caller may publish (a 403 otherwise).
    static func parseFineTuning(body: [UInt8], owner: String?, servedName: String, mayPublish: (String) -> Bool) throws -> JobSpec {
        let json: JSONValue
        do { json = try JSONValue.parse(body) } catch {
            throw OpenAIError.badRequest(param: nil, message: "the body is not JSON (\(error))")
        }
        guard json.objectMembers != nil else {
            throw OpenAIError.badRequest(param: nil, message: #"expected {"training_file": "file-...", "model": ADAPTER or the base, "suffix": NEW_NAME, "hyperparameters": {...}}"#)
        }
        guard let training = json["training_file"]?.stringValue, !training.isEmpty else {
            throw OpenAIError.badRequest(param: "training_file", message: "expected the id of a file uploaded with POST /v1/files (purpose fine-tune)")
        }
        guard let model = json["model"]?.stringValue, !model.isEmpty else {
            throw OpenAIError.badRequest(param: "model", message: "expected an adapter's name (its next version is trained) or \"\(servedName)\" with a suffix (a new adapter)")
        }
        let suffix = json["suffix"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        let adapter: String
        if model == servedName || model == "base" {
            guard let suffix else {
                throw OpenAIError.badRequest(param: "suffix", message: "training from the base model needs a suffix: the new adapter's name (\(AdapterName.rule))")
            }
            adapter = suffix
        } else {
            if suffix != nil {
                throw OpenAIError.badRequest(param: "suffix", message: "suffix names a new adapter trained from \"\(servedName)\"; to train the next version of \(OpenAIError.excerpt(model)), leave suffix out")
            }
            adapter = AdapterReference(model)?.name ?? model
        }
        guard AdapterName.isValid(adapter) else {
            throw OpenAIError.badRequest(param: suffix != nil ? "suffix" : "model", message: "\(OpenAIError.excerpt(adapter)) is not an adapter name (\(AdapterName.rule))")
        }
        guard mayPublish(adapter) else {
            throw OpenAIError(status: 403, message: "this caller may not publish \(adapter)", type: "permission_error", param: "model")
        }
        let validation = json["validation_file"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 }
        var spec = JobSpec(adapter: adapter, owner: owner, activation: try activation(json["activate"], default: .ifBetter),
                           data: .file(training), evalData: validation.map(JobData.file), model: model, suffix: suffix)
        if let method = json["method"], !method.isNull {
            guard method["type"]?.stringValue ?? "supervised" == "supervised" else {
                throw OpenAIError.badRequest(param: "method.type", message: "lorad trains LoRA adapters by supervised fine-tuning: expected \"supervised\"")
            }
            try spec.apply(hyperparameters: method["supervised"]?["hyperparameters"], param: "method.supervised.hyperparameters", openAINames: true)
        }
        try spec.apply(hyperparameters: json["hyperparameters"], param: "hyperparameters", openAINames: true)
        if let seed = json["seed"], !seed.isNull {
            guard let s = seed.intValue, s >= 0, s <= Int(Int32.max) else { throw OpenAIError.badRequest(param: "seed", message: "expected a non-negative integer") }
            spec.config.seed = UInt64(s)
        }
        // if_better with no eval rows and no held-out fraction cannot compare: fall back to activating a
        // first version only (the trainer's rule), which eval_fraction's default avoids.
        try spec.checkActivation()
        return spec
    }
}
