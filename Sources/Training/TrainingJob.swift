// One `lorad train` run as a library call (issue 17, parts 3-5): load and validate the data (before
// anything else, so bad data fails with nothing done), pick the starting adapter (a new one, or a
// registry version keeping its rank and targets), train (Trainer), and publish the result through
// the registry's one atomic publish as the next version, `source: trained`, with its parent and the
// run's figures in the manifest's stats. It becomes active only when asked (`.always`), or with
// `.ifBetter` only when its eval loss beats its parent's on the same eval rows. A failed or
// cancelled run publishes nothing (a cancelled one can leave a checkpoint to resume from).
//
// A new adapter starts as PEFT's (A Kaiming-uniform, B zero), or with PiSSA (from the base's SVD, with
// a frozen term so that the shared base stays as it is; LoRAParameters.swift) and is then published as
// the equivalent rank-2r plain LoRA; `dora` adds DoRA's magnitude vector. Resuming a PiSSA run takes
// the trainable values from the checkpoint and recomputes the frozen term from the base.
//
// The published files are a PEFT directory (LoRAParameters → LoRAAdapter → exportPEFT, f32, or f16
// when asked: half the size, for adapters that are shipped) written to a temporary directory first;
// Registry.publish copies, hashes, validates (LoRAAdapter.load
// against the base) and renames it into place, and the temporary directory is removed.
//
// Runs on its caller's thread and the model's ComputePool.

import Foundation
import Generation
import JSON
import LoRA
import ModelFormats
import Registry

public struct TrainingJobOptions: Sendable {
    public enum Start: Sendable, Equatable {
        /// A registry version of the adapter (nil: the active one), with its rank and targets.
        case from(version: Int?)
        /// A new adapter on `targets` of every layer (started as `initialization` and `dora` say).
        case new(rank: Int, alpha: Double, targets: [LoRATarget], rsLoRA: Bool)
    }
    public enum Activation: Sendable, Equatable { case never, always, ifBetter }

    public var registry: String
    public var adapter: String
    public var data: String
    public var evalData: String? = nil
    /// Held out of `data` when there is no eval file (DESIGN.md §6b); 0 turns evaluation off.
    public var evalFraction: Double = 0.1
    public var maxSequence: Int = 512
    public var skipBad: Bool = false
    public var start: Start = .from(version: nil)
    /// How a `.new` adapter starts: PEFT's default or PiSSA (published as the rank-2r plain LoRA).
    public var initialization: LoRAInitialization.Method = .lora
    /// A `.new` adapter with DoRA's magnitude vector.
    public var dora = false
    public var config = TrainerConfig()
    /// Evaluate every N steps; nil: once per epoch (this replaces `config.evalEvery`).
    public var evalEvery: Int? = nil
    public var activation: Activation = .never
    /// Where checkpoints are written (after every evaluation, and on interrupt with saveOnInterrupt).
    public var checkpoint: String? = nil
    public var resume: String? = nil
    public var saveOnInterrupt = false
    /// The stored type of the published weights: .f32 (exact) or .f16.
    public var dtype: SafetensorsDType = .f32

    public init(registry: String, adapter: String, data: String) {
        self.registry = registry
        self.adapter = adapter
        self.data = data
    }
}

public struct TrainingJobOutcome: Sendable {
    public var result: TrainingResult
    /// The published manifest; nil when the run was cancelled.
    public var manifest: Manifest?
    public var activated: Bool
    /// The parent version's eval loss on the same eval rows (activate-if-better's yardstick).
    public var parentEvalLoss: Double?
    /// Where the cancelled run's checkpoint was written.
    public var checkpoint: String?
}

public final class TrainingJob {
    public let bundle: ModelBundle
    public let options: TrainingJobOptions
    public let dataset: TrainingDataset
    public let evalDataset: TrainingDataset?
    public let trainExamples: [TrainingExample]
    public let evalExamples: [TrainingExample]
    /// `options.config` with the evaluation interval resolved.
    public let config: TrainerConfig

    /// Loads and validates the data; throws (TrainingError) on bad data before anything else happens.
    public init(bundle: ModelBundle, options: TrainingJobOptions) throws {
        try options.config.check()
        guard [.f32, .f16].contains(options.dtype) else {
            throw TrainingError.badSetting(name: "--dtype", value: options.dtype.rawValue, expected: "f32 or f16")
        }
        if options.activation == .ifBetter && options.evalData == nil && options.evalFraction == 0 {
            throw TrainingError.badSetting(name: "--activate-if-better", value: "without eval rows",
                                           expected: "--eval FILE or --eval-fraction above 0")
        }
        if case .from = options.start, options.initialization != .lora || options.dora {
            throw TrainingError.badSetting(name: "--init/--dora", value: "with a version trained further",
                                           expected: "a new adapter (--new); a version keeps its own kind")
        }
        guard AdapterName.isValid(options.adapter) else {
            throw TrainingError.badSetting(name: "--adapter", value: options.adapter, expected: "a name matching \(AdapterName.rule)")
        }
        self.bundle = bundle
        self.options = options
        let tokenizer = TrainingTokenizer(bundle: bundle)
        let dataOptions = TrainingDataOptions(maxSequence: options.maxSequence, skipBad: options.skipBad)
        dataset = try TrainingDataset.load(path: options.data, tokenizer: tokenizer, options: dataOptions)
        if let e = options.evalData {
            // The eval file may be the one `lorad eval` reads, with its "expected"/"must_contain" keys.
            var evalOptions = dataOptions
            evalOptions.evaluationKeys = true
            let loaded = try TrainingDataset.load(path: e, tokenizer: tokenizer, options: evalOptions)
            evalDataset = loaded
            trainExamples = dataset.examples
            evalExamples = loaded.examples
        } else {
            evalDataset = nil
            let split = try TrainingSplit(dataset.examples, evalFraction: options.evalFraction, seed: options.config.seed)
            trainExamples = split.train
            evalExamples = split.eval
        }
        var c = options.config
        let perStep = c.batchSize * c.gradientAccumulation
        // Once per epoch by default: an epoch is its rows, fewer than the examples when they are packed.
        let examples = trainExamples
        let rows = c.pack.map { TrainingRow.packed(examples, maxSequence: $0).count } ?? examples.count
        c.evalEvery = options.evalEvery ?? max(1, (rows + perStep - 1) / perStep)
        config = c
    }

    /// The validation reports (train data, then the eval file), to print before training.
    public var reports: [TrainingDataReport] { [dataset.report] + (evalDataset.map { [$0.report] } ?? []) }

    /// The registry version training starts from (nil for a new adapter) and its parameters.
    func startingPoint(_ registry: Registry?) throws -> (version: Int?, parameters: LoRAParameters) {
        switch options.start {
        case .new(let rank, let alpha, let targets, let rs):
            return (nil, try LoRAParameters.new(model: bundle.model, rank: rank, alpha: alpha, targets: targets, rsLoRA: rs,
                                                initialization: options.initialization, dora: options.dora, seed: config.seed))
        case .from(let version):
            guard let registry else {
                throw TrainingError.badSetting(name: "--adapters", value: options.registry, expected: "an existing registry to train \(options.adapter) from")
            }
            let v = try registry.resolve(AdapterReference(name: options.adapter, version: version))
            return (v.version, try parameters(of: v))
        }
    }

    func parameters(of v: Registry.Version) throws -> LoRAParameters {
        try LoRAParameters(adapter: LoRAAdapter.load(path: v.loadPath, name: options.adapter, base: bundle.baseInfo()))
    }

    /// Trains and publishes. `progress` gets every step and evaluation; `cancellation` stops after
    /// the current step, and then nothing is published.
    public func run(cancellation: TrainingCancellation? = nil, progress: (TrainingProgress) -> Void = { _ in }) throws -> TrainingJobOutcome {
        let existing = try? Registry(root: options.registry)
        let start = try startingPoint(existing)
        let trainer = try Trainer(model: bundle.model, train: trainExamples, eval: evalExamples, config: config)
        let key = trainer.checkpointKey(data: dataset.sha256 + (evalDataset.map { " " + $0.sha256 } ?? "") + " \(options.start)"
                                            + " \(options.initialization.rawValue) dora=\(options.dora)")
        var state: TrainerState
        if let resume = options.resume {
            state = try trainer.loadCheckpoint(from: resume, key: key)
            // A checkpoint holds the trainable values; PiSSA's frozen terms are the start's again.
            state.parameters = try state.parameters.withFrozenTerms(of: start.parameters)
            state.best = try state.best.withFrozenTerms(of: start.parameters)
        } else {
            state = try trainer.start(from: start.parameters)
        }
        let checkpointDir = options.checkpoint ?? options.resume
        var save: ((TrainerState) throws -> Void)? = nil
        if let dir = options.checkpoint { save = { try trainer.saveCheckpoint($0, to: dir, key: key) } }
        let result = try trainer.run(state, cancellation: cancellation, checkpoint: save, progress: progress)
        state = result.state
        // A Ctrl-C during the last step or the final loss still means: publish nothing.
        if result.cancelled || cancellation?.isCancelled == true {
            var written: String? = nil
            if options.saveOnInterrupt, let dir = checkpointDir {
                try trainer.saveCheckpoint(state, to: dir, key: key)
                written = dir
            }
            return TrainingJobOutcome(result: result, manifest: nil, activated: false, parentEvalLoss: nil, checkpoint: written)
        }

        // The parent: what it was trained from, else the adapter's active version.
        let parent = start.version ?? (try? existing?.adapter(options.adapter))?.active
        var parentEval: Double? = nil
        if let parent, !evalExamples.isEmpty {
            if parent == start.version {
                parentEval = result.evalLossBefore
            } else if let v = try existing?.resolve(AdapterReference(name: options.adapter, version: parent)) {
                parentEval = try trainer.meanLoss(try parameters(of: v), trainer.eval)
            }
        }
        let activate: Bool
        switch options.activation {
        case .never: activate = false
        case .always: activate = true
        case .ifBetter:
            if let after = result.evalLossAfter, let p = parentEval { activate = after < p } else { activate = parent == nil }
        }

        let registry = try Registry(root: options.registry, create: true)
        let info = try bundle.baseInfo()
        let tmp = NSTemporaryDirectory() + "lorad-train-\(getpid())-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        let adapter = try result.parameters.adapter(name: options.adapter, model: bundle.model, source: "trained")
        try adapter.exportPEFT(directory: tmp, base: info, baseModelName: info.identity.name, dtype: options.dtype)

        var stats: [(String, JSONValue)] = [
            ("data_sha256", .string(dataset.sha256)),
            ("examples", .int(trainExamples.count)), ("eval_examples", .int(evalExamples.count)),
            ("hyperparameters", .object(config.json + startJSON(result.parameters))),
            ("steps", .int(result.steps)), ("best_step", .int(result.bestStep)), ("stopped_early", .bool(result.stoppedEarly)),
            ("train_loss_before", .double(result.trainLossBefore)), ("train_loss_after", .double(result.trainLossAfter)),
            ("tokens_per_second", .double(result.tokensPerSecond)), ("dtype", .string(options.dtype.rawValue)),
        ]
        if let e = evalDataset { stats.append(("eval_data_sha256", .string(e.sha256))) }
        if let v = result.evalLossBefore { stats.append(("eval_loss_before", .double(v))) }
        if let v = result.evalLossAfter { stats.append(("eval_loss_after", .double(v))) }
        if let v = parentEval { stats.append(("parent_eval_loss", .double(v))) }
        let request = PublishRequest(name: options.adapter, source: tmp, kind: .trained, parent: parent, base: BaseFingerprint(info),
                                     stats: stats, activate: activate, origin: "lorad train --data \(options.data)")
        let name = options.adapter
        let manifest = try registry.publish(request) { path in _ = try LoRAAdapter.load(path: path, name: name, base: info) }
        let active = (try? registry.adapter(name))?.active == manifest.version
        return TrainingJobOutcome(result: result, manifest: manifest, activated: active, parentEvalLoss: parentEval, checkpoint: nil)
    }

    func startJSON(_ p: LoRAParameters) -> [(String, JSONValue)] {
        let targets = LoRATarget.allCases.filter { t in p.modules.contains { $0.target == t } }
        // The published rank: a PiSSA module is exported as its rank-2r plain LoRA.
        var out: [(String, JSONValue)] = [("rank", .int(p.modules.map(\.effectiveRank).max() ?? 0)),
                                          ("targets", .array(targets.map { .string($0.rawValue) })),
                                          ("max_seq", .int(options.maxSequence))]
        switch options.start {
        case .new(_, let alpha, _, let rs):
            out += [("alpha", .double(alpha)), ("rslora", .bool(rs)), ("init", .string("new")),
                    ("init_lora_weights", .string(options.initialization.rawValue)), ("use_dora", .bool(options.dora))]
        case .from(let v): out.append(("init", .string(v.map { "v\($0)" } ?? "active")))
        }
        return out
    }
}
