// A checked request (JobSpec) made ready to run, on the jobs queue: its rows written where the
// trainer reads them, its paths and file ids resolved, the starting point decided (the adapter's
// active version when it has one, else a new adapter), and the data loaded and tokenized by
// TrainingJob itself, exactly as the run will load it. So malformed rows, an empty data set or a
// bad setting are a 400 before the job is queued, and nothing is left behind for a refused job.

import Foundation
import Generation
import JSON
import LoRA
import Registry
import Training

/// A job ready for the trainer thread. @unchecked: TrainingJob is a class that is built here,
/// handed to the trainer thread once, and only read there.
struct PreparedJob: @unchecked Sendable {
    let job: TrainingJob
    let record: JobRecord
}

enum JobPreparation {
    /// Makes `spec` ready as job `id` under `root`. Throws an OpenAIError (400 for bad data, 403
    /// for a path outside the import roots, 404 for an unknown file).
    static func prepare(_ spec: JobSpec, id: String, root: String, importRoots: [String], bundle: ModelBundle) throws -> PreparedJob {
        let dir = JobStore.directory(root: root, id: id)
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let data = try resolve(spec.data, name: "train", param: spec.trainingParam, dir: dir, root: root, owner: spec.owner, importRoots: importRoots)
            let evalData = try spec.evalData.map {
                try resolve($0, name: "eval", param: spec.evalParam, dir: dir, root: root, owner: spec.owner, importRoots: importRoots)
            }
            var options = TrainingJobOptions(registry: root, adapter: spec.adapter, data: data)
            options.evalData = evalData
            options.evalFraction = spec.evalFraction
            options.maxSequence = spec.maxSequence
            options.config = spec.config
            options.evalEvery = spec.evalEvery
            options.activation = spec.activation
            let existing = (try? Registry(root: root))?.adapterIfPresent(spec.adapter)
            if let existing {
                if spec.rank != nil || spec.alpha != nil || spec.targets != nil || spec.rsLoRA {
                    throw OpenAIError.badRequest(param: "hyperparameters.rank",
                                                 message: "\(spec.adapter) exists (v\(existing) active): its next version keeps that version's rank, alpha and targets; leave rank, alpha, targets and rslora out, or train a new adapter name")
                }
                options.start = .from(version: nil)
            } else {
                options.start = .new(rank: spec.rank ?? 8, alpha: spec.alpha ?? 16, targets: spec.targets ?? LoRATarget.allCases, rsLoRA: spec.rsLoRA)
            }
            let job: TrainingJob
            do {
                job = try TrainingJob(bundle: bundle, options: options)
            } catch let e as TrainingError {
                throw OpenAIError.badRequest(param: param(of: e, spec), message: describe(e, data: data, evalData: evalData, spec: spec))
            }
            var record = JobRecord(id: id, adapter: spec.adapter, owner: spec.owner, activate: spec.activationName,
                                   hyperparameters: resolvedHyperparameters(spec, job), model: spec.model)
            record.suffix = spec.suffix
            if case .file(let f) = spec.data { record.trainingFile = f }
            if case .file(let f)? = spec.evalData { record.validationFile = f }
            record.examples = job.trainExamples.count
            record.evalExamples = job.evalExamples.count
            try JobStore.write(record, root: root)
            return PreparedJob(job: job, record: record)
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            if let e = error as? OpenAIError { throw e }
            throw OpenAIError.internal("the job could not be prepared: \(error)")
        }
    }

    /// The file the trainer reads for `data`.
    private static func resolve(_ data: JobData, name: String, param: String, dir: String, root: String, owner: String?,
                                importRoots: [String]) throws -> String {
        switch data {
        case .rows(let rows):
            let path = dir + "/\(name).jsonl"
            let text = rows.map { $0.serialized() }.joined(separator: "\n") + "\n"
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            return path
        case .path(let p):
            var e = OpenAIError.badRequest(param: param, message: "")
            do { return try Endpoints.checkImportPath(p, roots: importRoots) } catch let o as OpenAIError {
                e = o
                e.param = param
                throw e
            }
        case .file(let id):
            guard let (_, path) = JobStore.file(id, owner: owner, root: root) else {
                var e = OpenAIError(status: 404, message: "no file \(OpenAIError.excerpt(id)): upload it with POST /v1/files (purpose fine-tune)",
                                    type: "invalid_request_error", param: param)
                e.code = "file_not_found"
                throw e
            }
            return path
        }
    }

    /// The hyperparameters the record shows: the request's, with the starting adapter's shape.
    private static func resolvedHyperparameters(_ spec: JobSpec, _ job: TrainingJob) -> JSONValue {
        var members = spec.hyperparametersJSON.objectMembers ?? []
        switch job.options.start {
        case .new(let rank, let alpha, let targets, let rs):
            members.removeAll { ["rank", "alpha", "targets", "rslora"].contains($0.0) }
            members += [("rank", .int(rank)), ("alpha", .double(alpha)), ("targets", .array(targets.map { .string($0.rawValue) })),
                        ("rslora", .bool(rs)), ("init", .string("new"))]
        case .from:
            members.append(("init", .string("active version")))
        }
        return .object(members)
    }

    private static func param(of e: TrainingError, _ spec: JobSpec) -> String? {
        switch e {
        case .badExample, .noExamples: return spec.trainingParam
        case .badSetting(let name, _, _): return name.hasPrefix("--") ? "hyperparameters." + name.dropFirst(2).replacingOccurrences(of: "-", with: "_") : name
        default: return nil
        }
    }

    /// A data error in the request's own terms: "examples[2]" for a row sent in the body, the
    /// file's name otherwise.
    private static func describe(_ e: TrainingError, data: String, evalData: String?, spec: JobSpec) -> String {
        func place(_ file: String) -> (String, Bool) {
            if file == evalData { return (spec.evalParam, spec.evalData.map { if case .rows = $0 { return true } else { return false } } ?? false) }
            if case .rows = spec.data { return (spec.trainingParam, true) }
            return (spec.trainingParam, false)
        }
        switch e {
        case .badExample(let file, let line, let reason):
            let (name, rows) = place(file)
            return rows ? "\(name)[\(line - 1)]: \(reason)" : "\(name) line \(line): \(reason)"
        case .noExamples(let file, let reason):
            return "\(place(file).0): no examples to train on: \(reason)"
        default:
            return e.description
        }
    }
}

extension JobSpec {
    /// The request field that holds the training rows, for error messages.
    var trainingParam: String {
        switch data {
        case .rows: return "examples"
        case .path: return "data_path"
        case .file: return "training_file"
        }
    }

    var evalParam: String {
        switch evalData {
        case .rows?: return "eval_examples"
        case .path?: return "eval_data_path"
        default: return "validation_file"
        }
    }
}

extension Registry {
    /// The active version of `name` when the registry holds it, else nil.
    func adapterIfPresent(_ name: String) -> Int? {
        (try? adapter(name))?.active
    }
}
