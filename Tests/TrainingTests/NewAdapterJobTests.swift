// New PiSSA and DoRA adapters through TrainingJob (what `lorad train --new --init pissa | --dora` runs)
// on the tiny chat model: a PiSSA run publishes the rank-2r plain LoRA, which loads back computing
// what the trained parameters compute, and an interrupted PiSSA run resumed from its checkpoint (which
// holds only the trainable values; the frozen term comes from the base again) equals an uninterrupted
// one bit for bit; a DoRA run publishes use_dora with its magnitudes. PEFT agreement is checked in
// InitializationGoldenTests and TrainingRoundTripTests.

import Foundation
import Generation
import JSON
import Llama
import LoRA
import Registry
import Testing
import Training

@Suite(.serialized) struct NewAdapterJobTests {
    static func options(_ root: String, data: String, start: TrainingJobOptions.Start,
                        initialization: LoRAInitialization.Method = .lora, dora: Bool = false) -> TrainingJobOptions {
        var o = TrainingJobOptions(registry: root, adapter: "shop", data: data)
        o.initialization = initialization
        o.dora = dora
        o.config = TinyChat.config(steps: 6)
        o.config.weightDecay = 0.01  // decoupled decay must not touch the frozen term
        o.evalFraction = 0
        o.maxSequence = 256
        o.start = start
        return o
    }

    /// The published version's logits on a training row equal those of the run's parameters.
    static func expectPublishedMatchesTrained(_ outcome: TrainingJobOutcome, root: String, bundle: ModelBundle) throws -> LoRAAdapter {
        let v = try Registry(root: root).resolve(AdapterReference(name: "shop"))
        let loaded = try LoRAAdapter.load(path: v.loadPath, name: "shop", base: bundle.baseInfo())
        let trained = try outcome.result.parameters.adapter(name: "shop", model: bundle.model)
        let tokens = try TinyChat.examples([TinyChat.facts[0]])[0].tokens
        let model = bundle.model
        let a = try model.forward(tokens, cache: model.makeCache(contextLimit: 64), logits: .all, adapters: [AdapterUse(loaded)])
        let b = try model.forward(tokens, cache: model.makeCache(contextLimit: 64), logits: .all, adapters: [AdapterUse(trained)])
        let base = try model.forward(tokens, cache: model.makeCache(contextLimit: 64), logits: .all)
        // Exported as f32 with alpha = scale·r and q/k rows permuted and back: the same numbers.
        #expect(a == b)
        #expect(a != base)
        return loaded
    }

    @Test func aPiSSARunPublishesTheRank2rLoRAAndResumesExactly() throws {
        let bundle = try TinyChat.get()
        let dir = try TinyChat.tempDir()
        let data = try TinyChat.write(TinyChat.facts, in: dir, name: "facts.jsonl")
        let start = TrainingJobOptions.Start.new(rank: 2, alpha: 4, targets: [.q, .k, .down], rsLoRA: false)

        let whole = try TrainingJob(bundle: bundle, options: Self.options(dir + "/whole", data: data, start: start, initialization: .pissa)).run()
        let m = try #require(whole.manifest)
        let hp = try #require(Dictionary(m.stats, uniquingKeysWith: { a, _ in a })["hyperparameters"])
        #expect(hp["rank"] == .int(4) && hp["init_lora_weights"] == .string("pissa") && hp["use_dora"] == .bool(false))
        #expect(whole.result.trainLossAfter < whole.result.trainLossBefore)
        // The frozen term rode along untouched (weight decay included): it is still the PiSSA start.
        let fresh = try LoRAParameters.new(model: bundle.model, rank: 2, alpha: 4, targets: [.q, .k, .down], initialization: .pissa, seed: 7)
        #expect(whole.result.parameters.modules.map(\.frozen) == fresh.modules.map(\.frozen))
        #expect(whole.result.parameters.modules.allSatisfy { $0.frozen != nil })
        let loaded = try Self.expectPublishedMatchesTrained(whole, root: dir + "/whole", bundle: bundle)
        #expect(loaded.modules.count == 2 * 3 && loaded.modules.allSatisfy { $0.module.rank == 4 && !$0.module.isDoRA })

        // Interrupted after step 3 with a checkpoint, then resumed: the same run.
        var o = Self.options(dir + "/split", data: data, start: start, initialization: .pissa)
        o.checkpoint = dir + "/ckpt"
        o.saveOnInterrupt = true
        let cancel = TrainingCancellation()
        let first = try TrainingJob(bundle: bundle, options: o).run(cancellation: cancel) { p in
            if p.step == 3 && p.loss != nil { cancel.cancel() }
        }
        #expect(first.manifest == nil && first.checkpoint == dir + "/ckpt")
        o.checkpoint = nil
        o.saveOnInterrupt = false
        o.resume = dir + "/ckpt"
        let rest = try TrainingJob(bundle: bundle, options: o).run()
        #expect(rest.result.losses.map(\.bitPattern) == whole.result.losses.map(\.bitPattern), "\(rest.result.losses) vs \(whole.result.losses)")
        #expect(rest.result.parameters.modules == whole.result.parameters.modules)
    }

    @Test func aDoRARunPublishesUseDoraWithItsMagnitudes() throws {
        let bundle = try TinyChat.get()
        let dir = try TinyChat.tempDir(), root = dir + "/registry"
        let data = try TinyChat.write(TinyChat.facts, in: dir, name: "facts.jsonl")
        let o = Self.options(root, data: data, start: .new(rank: 2, alpha: 4, targets: [.q, .v], rsLoRA: false), dora: true)
        let outcome = try TrainingJob(bundle: bundle, options: o).run()
        #expect(outcome.result.trainLossAfter < outcome.result.trainLossBefore)
        let loaded = try Self.expectPublishedMatchesTrained(outcome, root: root, bundle: bundle)
        #expect(loaded.modules.count == 2 * 2 && loaded.modules.allSatisfy { $0.module.isDoRA && $0.module.magnitude != nil })
        let v = try Registry(root: root).resolve(AdapterReference(name: "shop"))
        let config = try JSONValue.parse(String(contentsOfFile: v.loadPath + "/adapter_config.json", encoding: .utf8))
        #expect(config["use_dora"] == .bool(true) && config["r"] == .int(2))
        // The magnitudes trained away from their start, ‖W‖ per row.
        let start = try LoRAParameters.new(model: bundle.model, rank: 2, alpha: 4, targets: [.q, .v], dora: true, seed: 7)
        #expect(outcome.result.parameters.modules.map(\.magnitude) != start.modules.map(\.magnitude))
    }

    @Test func pissaWithDoRAOrOnAnExistingVersionIsRefused() throws {
        let bundle = try TinyChat.get()
        let dir = try TinyChat.tempDir(), root = dir + "/registry"
        let data = try TinyChat.write(TinyChat.facts, in: dir, name: "facts.jsonl")
        let o = Self.options(root, data: data, start: .new(rank: 2, alpha: 4, targets: [.q], rsLoRA: false), initialization: .pissa, dora: true)
        #expect(throws: TrainingError.self) { _ = try TrainingJob(bundle: bundle, options: o).run() }
        // A version trained further keeps its kind: asking for PiSSA or DoRA there is refused up front.
        let further = Self.options(root, data: data, start: .from(version: nil), dora: true)
        #expect(throws: TrainingError.self) { _ = try TrainingJob(bundle: bundle, options: further) }
        #expect(!FileManager.default.fileExists(atPath: root))
    }
}
