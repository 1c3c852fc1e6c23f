// The training loop, checkpoints and publishing on the tiny chat model (Tests/Fixtures/tiny_chat:
// 2 layers, hidden 64, a byte-level BPE vocabulary and a ChatML template; scripts/goldens/tiny_chat.py),
// so whole runs take well under a second: training lowers the loss, a resumed run computes the same
// numbers bit for bit, early stopping keeps the best parameters, a publish records its figures and
// loads back with the same logits, --activate-if-better leaves a worse version inactive, and bad
// data leaves the registry untouched.

import Foundation
import Generation
import JSON
import Kernels
import Llama
import LoRA
import Registry
import Testing
import Training

enum TinyChat {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny_chat/model.gguf").path
    static let bundle: Result<ModelBundle, any Error> = Result { try ModelBundle(path: path, threads: 2) }
    static func get() throws -> ModelBundle { try bundle.get() }

    static func chat(_ q: String, _ a: String) -> String {
        JSONValue.object([("messages", .array([
            .object([("role", .string("user")), ("content", .string(q))]),
            .object([("role", .string("assistant")), ("content", .string(a))]),
        ]))]).serialized()
    }

    /// Facts the random model cannot know.
    static let facts = [
        chat("What is the warranty?", "The warranty is 3 years."),
        chat("Where do returns go?", "Returns go to 12 Harbor Street."),
        chat("When are you open?", "We are open 9 to 5."),
        chat("What is the part number?", "The part number is AX-42."),
        chat("How do I reset it?", "Hold the red button for 10 seconds."),
        chat("Who makes it?", "It is made by Acme."),
    ]
    /// The same questions with other answers.
    static let contradictions = [
        chat("What is the warranty?", "No warranty, sorry."),
        chat("Where do returns go?", "We take no returns at all."),
        chat("When are you open?", "Closed all week."),
        chat("What is the part number?", "There is none."),
        chat("How do I reset it?", "It cannot be reset."),
        chat("Who makes it?", "Nobody knows that."),
    ]

    static func tempDir() throws -> String {
        let path = NSTemporaryDirectory() + "lorad-trainer-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func write(_ lines: [String], in dir: String, name: String) throws -> String {
        let p = dir + "/" + name
        try (lines.joined(separator: "\n") + "\n").write(toFile: p, atomically: true, encoding: .utf8)
        return p
    }

    static func examples(_ lines: [String]) throws -> [TrainingExample] {
        let bundle = try get()
        let bytes = Array(lines.joined(separator: "\n").utf8)
        return try bytes.withUnsafeBytes {
            try TrainingDataset.load($0, name: "data.jsonl", tokenizer: TrainingTokenizer(bundle: bundle),
                                     options: TrainingDataOptions(maxSequence: 256))
        }.examples
    }

    static func config(steps: Int, lr: Double = 1e-2) -> TrainerConfig {
        var c = TrainerConfig()
        c.steps = steps
        c.learningRate = lr
        c.warmupSteps = 1
        c.seed = 7
        return c
    }
}

@Suite(.serialized) struct TrainerTests {
    @Test func aFewStepsLowerTheTrainingLoss() throws {
        let bundle = try TinyChat.get()
        let trainer = try Trainer(model: bundle.model, train: try TinyChat.examples(TinyChat.facts), eval: [],
                                  config: TinyChat.config(steps: 12))
        let start = try LoRAParameters.new(model: bundle.model, rank: 4, alpha: 8, targets: LoRATarget.allCases, seed: 1)
        let result = try trainer.run(try trainer.start(from: start))
        #expect(result.steps == 12 && result.losses.count == 12)
        #expect(result.trainLossAfter < result.trainLossBefore - 0.05, "loss \(result.trainLossBefore) → \(result.trainLossAfter)")
        // B starts at zero: the adapter starts as the base.
        #expect(start.modules.allSatisfy { $0.b.allSatisfy { $0 == 0 } })
        #expect(result.parameters.modules.contains { $0.b.contains { $0 != 0 } })
    }

    /// Runs `config` to its end; then again, stopped after step `stopAt`, checkpointed, loaded and
    /// resumed. The loss curves (and the final parameters) must agree bit for bit.
    @Test(arguments: [(1, 1), (2, 2)]) func aResumedRunEqualsAnUninterruptedOne(batch: Int, accumulation: Int) throws {
        let bundle = try TinyChat.get()
        var config = TinyChat.config(steps: 7)
        config.batchSize = batch
        config.gradientAccumulation = accumulation
        config.evalEvery = 2
        config.weightDecay = 0.01
        config.loraPlusRatio = 4
        let examples = try TinyChat.examples(TinyChat.facts)
        let trainer = try Trainer(model: bundle.model, train: Array(examples.prefix(5)), eval: [examples[5]], config: config)
        let start = try LoRAParameters.new(model: bundle.model, rank: 2, alpha: 4, targets: LoRATarget.allCases, seed: 3)

        let whole = try trainer.run(try trainer.start(from: start))
        #expect(whole.steps == 7 && !whole.cancelled)

        let cancel = TrainingCancellation()
        let first = try trainer.run(try trainer.start(from: start), cancellation: cancel, progress: { p in
            if p.step == 3 && p.loss != nil { cancel.cancel() }
        })
        #expect(first.cancelled && first.steps == 3)
        let dir = try TinyChat.tempDir() + "/ckpt"
        try trainer.saveCheckpoint(first.state, to: dir, key: trainer.checkpointKey(data: "d"))
        #expect(throws: TrainingError.self) { try trainer.loadCheckpoint(from: dir, key: trainer.checkpointKey(data: "other data")) }
        let loaded = try trainer.loadCheckpoint(from: dir, key: trainer.checkpointKey(data: "d"))
        let rest = try trainer.run(loaded)

        #expect(rest.steps == 7)
        #expect(rest.losses.map(\.bitPattern) == whole.losses.map(\.bitPattern), "\(rest.losses) vs \(whole.losses)")
        #expect(rest.evalLosses.map(\.loss.bitPattern) == whole.evalLosses.map(\.loss.bitPattern))
        #expect(rest.parameters.modules.map(\.a) == whole.parameters.modules.map(\.a))
        #expect(rest.parameters.modules.map(\.b) == whole.parameters.modules.map(\.b))
        #expect(rest.trainLossAfter.bitPattern == whole.trainLossAfter.bitPattern)
    }

    /// With every example in one micro-batch, packing changes only how the rows are laid out: the
    /// losses of a packed run equal those of an unpacked one to f32 rounding.
    @Test func aPackedRunTrainsWhatAnUnpackedOneDoes() throws {
        let bundle = try TinyChat.get()
        let examples = try TinyChat.examples(TinyChat.facts)
        var config = TinyChat.config(steps: 3)
        config.batchSize = examples.count
        let start = try LoRAParameters.new(model: bundle.model, rank: 2, alpha: 4, targets: LoRATarget.allCases, seed: 3)
        let plain = try Trainer(model: bundle.model, train: examples, eval: [], config: config)
        config.pack = 256
        let packed = try Trainer(model: bundle.model, train: examples, eval: [], config: config)
        #expect(packed.train.count < examples.count && packed.train.contains { $0.segments.count > 1 })
        #expect(packed.train.reduce(0) { $0 + $1.targetCount } == plain.train.reduce(0) { $0 + $1.targetCount })
        let a = try plain.run(try plain.start(from: start)), b = try packed.run(try packed.start(from: start))
        // Products over other row counts round differently (f32, ~1e-7 relative); AdamW's first steps
        // move each parameter by ~lr whatever the gradient's size, so the curves stay within ~1e-6.
        for (x, y) in zip(a.losses, b.losses) { #expect(abs(x - y) <= 1e-5 * x, "\(a.losses) vs \(b.losses)") }
        #expect(a.losses.count == 3 && b.losses.count == 3)
        var short = config
        short.pack = examples.map(\.tokens.count).max()! - 1
        #expect(throws: TrainingError.self) { try Trainer(model: bundle.model, train: examples, eval: [], config: short) }
    }

    @Test func earlyStoppingKeepsTheBestParameters() throws {
        let bundle = try TinyChat.get()
        var config = TinyChat.config(steps: 40, lr: 2e-2)
        config.evalEvery = 2
        config.patience = 2
        // Training on answers that contradict the eval rows: eval loss soon rises and stays up.
        let trainer = try Trainer(model: bundle.model, train: try TinyChat.examples(TinyChat.contradictions),
                                  eval: try TinyChat.examples(TinyChat.facts), config: config)
        let start = try LoRAParameters.new(model: bundle.model, rank: 4, alpha: 8, targets: LoRATarget.allCases, seed: 2)
        let result = try trainer.run(try trainer.start(from: start))
        let best = result.evalLosses.min { $0.loss < $1.loss }!
        #expect(result.stoppedEarly && result.steps < 40, "\(result.evalLosses)")
        #expect(result.bestStep == best.step && result.bestStep < result.steps)
        #expect(result.evalLossAfter == best.loss)
        // The returned parameters are the best ones, not the last.
        #expect(try trainer.meanLoss(result.parameters, trainer.eval) == best.loss)
        #expect(try trainer.meanLoss(result.state.parameters, trainer.eval)! > best.loss)
    }

    // MARK: Publishing

    static func options(_ root: String, data: String, eval: String? = nil) -> TrainingJobOptions {
        var o = TrainingJobOptions(registry: root, adapter: "shop", data: data)
        o.evalData = eval
        o.config = TinyChat.config(steps: 6)
        o.evalEvery = 3
        o.maxSequence = 256
        return o
    }

    /// By default a run evaluates once per epoch, and an epoch is its rows: packed, fewer than the
    /// examples.
    @Test func theDefaultEvaluationIsOncePerEpochOfRowsPackedOrNot() throws {
        let bundle = try TinyChat.get()
        let dir = try TinyChat.tempDir()
        let data = try TinyChat.write(TinyChat.facts, in: dir, name: "facts.jsonl")
        var o = Self.options(dir + "/registry", data: data, eval: data)
        o.evalEvery = nil
        let plain = try TrainingJob(bundle: bundle, options: o)
        #expect(plain.config.evalEvery == plain.trainExamples.count)
        o.config.pack = 256
        let packed = try TrainingJob(bundle: bundle, options: o)
        let rows = TrainingRow.packed(packed.trainExamples, maxSequence: 256).count
        #expect(rows < packed.trainExamples.count, "the facts pack into fewer rows")
        #expect(packed.config.evalEvery == rows)
    }

    @Test func aPublishedVersionRecordsItsFiguresAndLoadsBackWithTheSameLogits() throws {
        let bundle = try TinyChat.get()
        let dir = try TinyChat.tempDir(), root = dir + "/registry"
        let data = try TinyChat.write(TinyChat.facts, in: dir, name: "facts.jsonl")
        var o = Self.options(root, data: data)
        o.evalFraction = 0.2
        o.start = .new(rank: 4, alpha: 8, targets: [.q, .v, .down], rsLoRA: false)
        o.activation = .always
        let outcome = try TrainingJob(bundle: bundle, options: o).run()
        let m = try #require(outcome.manifest)
        #expect(m.version == 1 && m.source == .trained && m.parent == nil && outcome.activated)
        let stats = Dictionary(m.stats, uniquingKeysWith: { a, _ in a })
        for key in ["data_sha256", "hyperparameters", "steps", "train_loss_before", "train_loss_after", "eval_loss_before",
                    "eval_loss_after", "tokens_per_second"] {
            #expect(stats[key] != nil, "manifest stats lack \(key): \(m.stats.map(\.0))")
        }
        #expect(stats["steps"] == .int(6))
        #expect(stats["hyperparameters"]?["lr"] == .double(1e-2))
        #expect(stats["data_sha256"]?.stringValue?.count == 64)
        #expect(outcome.result.trainLossAfter < outcome.result.trainLossBefore)

        // The PEFT directory in the registry loads in lorad and computes what the trained parameters do.
        let registry = try Registry(root: root)
        let v = try registry.resolve(AdapterReference(name: "shop"))
        #expect(FileManager.default.fileExists(atPath: v.loadPath + "/adapter_config.json"))
        let loaded = try LoRAAdapter.load(path: v.loadPath, name: "shop", base: bundle.baseInfo())
        let trained = try outcome.result.parameters.adapter(name: "shop", model: bundle.model)
        let tokens = try TinyChat.examples([TinyChat.facts[0]])[0].tokens
        let model = bundle.model
        let a = try model.forward(tokens, cache: model.makeCache(contextLimit: 64), logits: .all, adapters: [AdapterUse(loaded)])
        let b = try model.forward(tokens, cache: model.makeCache(contextLimit: 64), logits: .all, adapters: [AdapterUse(trained)])
        let base = try model.forward(tokens, cache: model.makeCache(contextLimit: 64), logits: .all)
        // Exported as f32 with alpha = scale·r (exact) and q/k rows permuted and back: the same numbers.
        #expect(a == b)
        #expect(a != base)
    }

    @Test func activateIfBetterLeavesAWorseVersionInactive() throws {
        let bundle = try TinyChat.get()
        let dir = try TinyChat.tempDir(), root = dir + "/registry"
        let facts = try TinyChat.write(TinyChat.facts, in: dir, name: "facts.jsonl")
        let wrong = try TinyChat.write(TinyChat.contradictions, in: dir, name: "wrong.jsonl")
        var o = Self.options(root, data: facts, eval: facts)
        o.start = .new(rank: 4, alpha: 8, targets: LoRATarget.allCases, rsLoRA: false)
        o.activation = .ifBetter
        o.config.steps = 30
        let first = try TrainingJob(bundle: bundle, options: o).run()
        #expect(first.manifest?.version == 1 && first.activated)

        // Continue v1 on contradicting answers, judged on the facts: worse than the parent.
        var o2 = Self.options(root, data: wrong, eval: facts)
        o2.start = .from(version: nil)
        o2.activation = .ifBetter
        o2.config.patience = nil
        o2.config.steps = 30
        o2.config.learningRate = 5e-2
        o2.evalEvery = 100
        let second = try TrainingJob(bundle: bundle, options: o2).run()
        let m = try #require(second.manifest)
        #expect(m.version == 2 && m.parent == 1 && !second.activated)
        let parentLoss = try #require(second.parentEvalLoss), after = try #require(second.result.evalLossAfter)
        #expect(after >= parentLoss)
        #expect(try Registry(root: root).adapter("shop").active == 1)
        let stats = Dictionary(m.stats, uniquingKeysWith: { a, _ in a })
        #expect(stats["parent_eval_loss"] == .double(parentLoss))
    }

    @Test func aMalformedLineLeavesTheRegistryUnchanged() throws {
        let bundle = try TinyChat.get()
        let dir = try TinyChat.tempDir(), root = dir + "/registry"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let data = try TinyChat.write(TinyChat.facts + ["{\"messages\": [{\"role\": \"user\"}]}"], in: dir, name: "bad.jsonl")
        var o = Self.options(root, data: data)
        o.start = .new(rank: 2, alpha: 4, targets: [.q], rsLoRA: false)
        o.activation = .always
        #expect(throws: TrainingError.self) { _ = try TrainingJob(bundle: bundle, options: o).run() }
        do {
            _ = try TrainingJob(bundle: bundle, options: o)
        } catch let e as TrainingError {
            guard case .badExample(_, let line, _) = e else { Issue.record("\(e)"); return }
            #expect(line == 7)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: root).isEmpty)
    }

    @Test func evaluationScoresAnswersAndLoss() throws {
        let bundle = try TinyChat.get()
        let dir = try TinyChat.tempDir()
        var rows = TinyChat.facts
        // An evaluation row: the greedy answer of a random model is noise, so "must_contain" of the empty
        // string always holds and an exact match of a sentence never does.
        rows.append(#"{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "expected": "Hello there, friend.", "must_contain": ""}"#)
        let path = try TinyChat.write(rows, in: dir, name: "eval.jsonl")
        var e = try AdapterEvaluation(bundle: bundle, path: path)
        e.maxAnswerTokens = 8
        #expect(e.checks.count == 1 && e.checks[0].line == 7 && e.checks[0].prompt.count == 1)
        let s = try e.scores(nil)
        #expect(s.exactMatch == 0 && s.contains == 1 && s.exactCount == 1)
        #expect(s.loss > 0 && s.loss.isFinite && abs(s.perplexity - exp(s.loss)) < 1e-9 * s.perplexity)
        // Training data refuses the evaluation keys.
        #expect(throws: TrainingError.self) { _ = try TinyChat.examples([rows.last!]) }
    }
}
