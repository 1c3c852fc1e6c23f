// One training job as the daemon keeps it: what was asked, where it stands, what came of it; and
// one entry of its event log. The same record answers the lorad API (`/v1/jobs`) and OpenAI's
// fine-tuning API (`/v1/fine_tuning/jobs`): one JSON shape, OpenAI's `fine_tuning.job` object
// with lorad's progress fields beside it, so the two never drift apart. It is also what
// `<registry root>/.jobs/<id>/job.json` holds, read back at start-up.
//
// Status values are OpenAI's (`queued`, `running`, `succeeded`, `failed`, `cancelled`); a job is
// terminal in the last three, and then its record no longer changes.

import Foundation
import JSON

enum JobStatus: String, Sendable, CaseIterable {
    case queued, running, succeeded, failed, cancelled

    var isTerminal: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

struct JobRecord: Sendable {
    let id: String
    /// The adapter the job publishes a version of.
    let adapter: String
    /// The tenant that submitted it (nil: an admin, or a daemon without tenants); only that tenant
    /// (and admins) see it.
    let owner: String?
    /// `never`, `always` or `if_better`.
    let activate: String
    /// The hyperparameters as resolved (every default filled in), for the record and OpenAI's shape.
    let hyperparameters: JSONValue
    /// OpenAI's fields: `model` as asked (the adapter or the base's name), the uploaded files' ids.
    var model: String
    var trainingFile: String?
    var validationFile: String?
    var suffix: String?
    let createdAt: Double
    var status: JobStatus = .queued
    var startedAt: Double?
    var finishedAt: Double?
    var step = 0
    var totalSteps = 0
    var epoch = 0.0
    /// Every step's training loss, in order.
    var losses: [Double] = []
    var evalLoss: Double?
    var parentEvalLoss: Double?
    var tokensPerSecond = 0.0
    var etaSeconds: Double?
    var trainedTokens = 0
    var examples = 0
    var evalExamples = 0
    var resultVersion: Int?
    var activated = false
    /// Why it failed or was cancelled: a short code and a message saying what to do.
    var errorCode: String?
    var errorMessage: String?

    init(id: String, adapter: String, owner: String?, activate: String, hyperparameters: JSONValue, model: String,
         createdAt: Double = Date().timeIntervalSince1970) {
        self.id = id
        self.adapter = adapter
        self.owner = owner
        self.activate = activate
        self.hyperparameters = hyperparameters
        self.model = model
        self.createdAt = createdAt
    }

    /// The servable model id of the result (`name@vN`), OpenAI's `fine_tuned_model`.
    var fineTunedModel: String? { resultVersion.map { "\(adapter)@v\($0)" } }

    var json: JSONValue {
        func opt(_ v: Double?) -> JSONValue { v.map(JSONValue.double) ?? .null }
        func optInt(_ v: Double?) -> JSONValue { v.map { .int(Int($0)) } ?? .null }
        func optString(_ v: String?) -> JSONValue { v.map(JSONValue.string) ?? .null }
        let error: JSONValue = errorMessage.map {
            .object([("code", .string(errorCode ?? "error")), ("message", .string($0)), ("param", .null)])
        } ?? .null
        let hp = hyperparameters
        let openAIHyperparameters: JSONValue = .object([
            ("n_epochs", hp["epochs"] ?? .null), ("batch_size", hp["batch_size"] ?? .null),
            ("learning_rate_multiplier", hp["learning_rate_multiplier"] ?? .null),
        ])
        let finish = etaSeconds.flatMap { status == .running ? Date().timeIntervalSince1970 + $0 : nil }
        return .object([
            ("id", .string(id)), ("object", .string("fine_tuning.job")), ("status", .string(status.rawValue)),
            ("model", .string(model)), ("adapter", .string(adapter)), ("fine_tuned_model", optString(fineTunedModel)),
            ("created_at", .int(Int(createdAt))), ("started_at", optInt(startedAt)), ("finished_at", optInt(finishedAt)),
            ("estimated_finish", optInt(finish)),
            ("organization_id", .string(owner ?? "lorad")), ("owner", optString(owner)),
            ("training_file", optString(trainingFile)), ("validation_file", optString(validationFile)), ("suffix", optString(suffix)),
            ("result_files", .array([])), ("seed", hp["seed"] ?? .int(0)), ("trained_tokens", .int(trainedTokens)),
            ("hyperparameters", openAIHyperparameters), ("lorad_hyperparameters", hp), ("activate", .string(activate)),
            ("step", .int(step)), ("total_steps", .int(totalSteps)), ("epoch", .double(epoch)),
            ("loss", losses.last.map(JSONValue.double) ?? .null), ("losses", .array(losses.map(JSONValue.double))),
            ("eval_loss", opt(evalLoss)), ("parent_eval_loss", opt(parentEvalLoss)),
            ("tokens_per_second", .double(tokensPerSecond)), ("eta_seconds", opt(etaSeconds)),
            ("examples", .int(examples)), ("eval_examples", .int(evalExamples)),
            ("result_version", resultVersion.map(JSONValue.int) ?? .null), ("activated", .bool(activated)),
            ("error", error), ("integrations", .array([])), ("metadata", .null),
        ])
    }

    /// A record read back from job.json; nil when the file is not one (it is then skipped).
    init?(json j: JSONValue) {
        guard let id = j["id"]?.stringValue, let adapter = j["adapter"]?.stringValue,
              let status = j["status"]?.stringValue.flatMap(JobStatus.init(rawValue:)),
              let created = j["created_at"]?.doubleValue else { return nil }
        self.init(id: id, adapter: adapter, owner: j["owner"]?.stringValue, activate: j["activate"]?.stringValue ?? "never",
                  hyperparameters: j["lorad_hyperparameters"] ?? .object([]), model: j["model"]?.stringValue ?? adapter,
                  createdAt: created)
        self.status = status
        trainingFile = j["training_file"]?.stringValue
        validationFile = j["validation_file"]?.stringValue
        suffix = j["suffix"]?.stringValue
        startedAt = j["started_at"]?.doubleValue
        finishedAt = j["finished_at"]?.doubleValue
        step = j["step"]?.intValue ?? 0
        totalSteps = j["total_steps"]?.intValue ?? 0
        epoch = j["epoch"]?.doubleValue ?? 0
        losses = (j["losses"]?.arrayValue ?? []).compactMap(\.doubleValue)
        evalLoss = j["eval_loss"]?.doubleValue
        parentEvalLoss = j["parent_eval_loss"]?.doubleValue
        tokensPerSecond = j["tokens_per_second"]?.doubleValue ?? 0
        trainedTokens = j["trained_tokens"]?.intValue ?? 0
        examples = j["examples"]?.intValue ?? 0
        evalExamples = j["eval_examples"]?.intValue ?? 0
        resultVersion = j["result_version"]?.intValue
        activated = j["activated"]?.boolValue ?? false
        errorCode = j["error"]?["code"]?.stringValue
        errorMessage = j["error"]?["message"]?.stringValue
    }
}

/// One entry of a job's event log (`events.jsonl`, the SSE stream, OpenAI's `fine_tuning.job.event`).
struct JobEvent: Sendable {
    let sequence: Int
    let createdAt: Double
    let level: String
    let message: String
    /// `message` (status changes) or `metrics` (a step or an evaluation).
    let type: String
    let data: JSONValue
    /// The job's status when it happened.
    let status: JobStatus

    func json(jobID: String) -> JSONValue {
        .object([("id", .string("\(jobID)-event-\(sequence)")), ("object", .string("fine_tuning.job.event")),
                 ("created_at", .int(Int(createdAt))), ("level", .string(level)), ("message", .string(message)),
                 ("type", .string(type)), ("status", .string(status.rawValue)), ("data", data)])
    }
}
