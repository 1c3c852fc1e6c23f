// A run's checkpoint: everything `Trainer.run` needs to continue exactly (TrainerState), in a
// directory:
//   parameters.bin   the adapter now (LORADPRM, below)
//   best.bin         the best parameters by eval loss so far
//   optimizer.bin    AdamW's step and moments (AdamW+State.swift)
//   state.json       step, position (epoch, micro-batch), best step and eval loss, the losses so far,
//                    tokens and seconds, and the run's key (hyperparameters and data sha256): a
//                    checkpoint is resumed only by the run that wrote it
// Floats are stored as their bit patterns (doubles in state.json as 16 hex digits), so nothing is
// rounded on the way through. The directory is written beside its final place and renamed over it,
// so a crash while saving leaves the previous checkpoint.
//
// LORADPRM: "LORADPRM", u32 format 1, u32 layer count, u32 module count; per module u32 layer,
// target (LoRATarget.allCases index), rank, in, out, scale bits, has-magnitude; then every module's
// A, B and magnitude as u32 bit patterns. Little-endian.

import Foundation
import JSON
import LoRA
import ModelFormats

extension LoRAParameters {
    static let magic = Array("LORADPRM".utf8)

    public func checkpointBytes() -> [UInt8] {
        var out = Self.magic
        func put(_ x: UInt32) { withUnsafeBytes(of: x.littleEndian) { out += $0 } }
        put(1)
        put(UInt32(layerCount))
        put(UInt32(modules.count))
        for m in modules {
            put(UInt32(m.layer)); put(UInt32(LoRATarget.allCases.firstIndex(of: m.target)!)); put(UInt32(m.rank))
            put(UInt32(m.inFeatures)); put(UInt32(m.outFeatures)); put(m.scale.bitPattern); put(m.magnitude == nil ? 0 : 1)
        }
        for m in modules {
            for x in m.a { put(x.bitPattern) }
            for x in m.b { put(x.bitPattern) }
            for x in m.magnitude ?? [] { put(x.bitPattern) }
        }
        return out
    }

    public init(checkpointBytes bytes: [UInt8], source: String) throws(TrainingError) {
        func bad(_ reason: String) -> TrainingError { .badCheckpoint(path: source, reason: reason) }
        var offset = 0
        func take() throws(TrainingError) -> UInt32 {
            guard offset + 4 <= bytes.count else { throw bad("the parameters end early at byte \(offset)") }
            let x = UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
            offset += 4
            return x
        }
        guard bytes.count >= 8, Array(bytes[0..<8]) == Self.magic else { throw bad("not lorad training parameters (expected LORADPRM)") }
        offset = 8
        guard try take() == 1 else { throw bad("parameters format is not 1") }
        let layers = Int(try take()), count = Int(try take())
        var shapes: [(Int, LoRATarget, Int, Int, Int, Float, Bool)] = []
        for _ in 0..<count {
            let layer = Int(try take()), t = Int(try take()), rank = Int(try take()), inF = Int(try take()), outF = Int(try take())
            let scale = Float(bitPattern: try take()), hasMag = try take() != 0
            guard t < LoRATarget.allCases.count, layer < layers, rank > 0 else { throw bad("module \(shapes.count) is malformed") }
            shapes.append((layer, LoRATarget.allCases[t], rank, inF, outF, scale, hasMag))
        }
        let floats = shapes.reduce(0) { $0 + $1.2 * ($1.3 + $1.4) + ($1.6 ? $1.4 : 0) }
        guard bytes.count == offset + 4 * floats else { throw bad("parameters are \(bytes.count) bytes, expected \(offset + 4 * floats)") }
        func read(_ n: Int) throws(TrainingError) -> [Float] {
            var v = [Float](repeating: 0, count: n)
            for i in 0..<n { v[i] = Float(bitPattern: try take()) }
            return v
        }
        var modules: [Module] = []
        for (layer, target, rank, inF, outF, scale, hasMag) in shapes {
            let a = try read(rank * inF), b = try read(outF * rank)
            let mag: [Float]? = try hasMag ? read(outF) : nil
            modules.append(Module(layer: layer, target: target, rank: rank, inFeatures: inF, outFeatures: outF, scale: scale,
                                  a: a, b: b, magnitude: mag))
        }
        self.init(layerCount: layers, modules: modules)
    }
}

extension Trainer {
    /// What a checkpoint must have been written by: the hyperparameters and `data` (the data's sha256s).
    public func checkpointKey(data: String) -> String { config.fingerprint + " " + data }

    /// Writes `state` to the directory `path` (replacing an earlier checkpoint there).
    public func saveCheckpoint(_ state: TrainerState, to path: String, key: String) throws {
        let fm = FileManager.default
        let partial = path + ".partial-\(getpid())"
        try? fm.removeItem(atPath: partial)
        try fm.createDirectory(atPath: partial, withIntermediateDirectories: true)
        try writeFileAtomically(state.parameters.checkpointBytes(), to: partial + "/parameters.bin")
        try writeFileAtomically(state.best.checkpointBytes(), to: partial + "/best.bin")
        try writeFileAtomically(state.optimizer.stateBytes(), to: partial + "/optimizer.bin")
        func hex(_ d: Double) -> JSONValue { .string(String(d.bitPattern, radix: 16)) }
        let json: JSONValue = .object([
            ("format", .int(1)), ("key", .string(key)), ("step", .int(state.step)), ("epoch", .int(state.epoch)),
            ("batch_index", .int(state.batchIndex)), ("best_step", .int(state.bestStep)),
            ("best_eval_loss", state.bestEvalLoss.map(hex) ?? .null), ("evaluations_without_best", .int(state.evaluationsWithoutBest)),
            ("train_loss_before", hex(state.trainLossBefore)), ("eval_loss_before", state.evalLossBefore.map(hex) ?? .null),
            ("losses", .array(state.losses.map(hex))),
            ("eval_losses", .array(state.evalLosses.map { .array([.int($0.step), hex($0.loss)]) })),
            ("tokens", .int(state.tokens)), ("seconds", hex(state.seconds)),
        ])
        try writeFileAtomically(Array(json.serialized().utf8), to: partial + "/state.json")
        let old = path + ".old-\(getpid())"
        let had = fm.fileExists(atPath: path)
        if had { try fm.moveItem(atPath: path, toPath: old) }
        try fm.moveItem(atPath: partial, toPath: path)
        if had { try? fm.removeItem(atPath: old) }
    }

    /// Reads a checkpoint written by `saveCheckpoint` with the same key.
    public func loadCheckpoint(from path: String, key: String) throws(TrainingError) -> TrainerState {
        func bad(_ reason: String) -> TrainingError { .badCheckpoint(path: path, reason: reason) }
        func bytes(_ name: String) throws(TrainingError) -> [UInt8] {
            guard let d = FileManager.default.contents(atPath: path + "/" + name) else { throw bad("\(name) is missing or unreadable") }
            return [UInt8](d)
        }
        let json: JSONValue
        do { json = try JSONValue.parse(try bytes("state.json")) } catch let e as TrainingError { throw e } catch { throw bad("state.json: \(error)") }
        guard json["key"]?.stringValue == key else {
            throw bad("it was written by a run with other hyperparameters or data (resume with the same flags and files)")
        }
        func int(_ k: String) throws(TrainingError) -> Int {
            guard case .int(let v)? = json[k] else { throw bad("state.json has no integer \"\(k)\"") }
            return v
        }
        func double(_ v: JSONValue?) throws(TrainingError) -> Double {
            guard let s = v?.stringValue, let bits = UInt64(s, radix: 16) else { throw bad("state.json has a malformed number") }
            return Double(bitPattern: bits)
        }
        func optional(_ k: String) throws(TrainingError) -> Double? {
            if case .null? = json[k] { return nil }
            return try double(json[k])
        }
        let parameters = try LoRAParameters(checkpointBytes: try bytes("parameters.bin"), source: path + "/parameters.bin")
        let best = try LoRAParameters(checkpointBytes: try bytes("best.bin"), source: path + "/best.bin")
        var optimizer = try makeOptimizer(for: parameters)
        let opt = try bytes("optimizer.bin")
        do { try opt.withUnsafeBytes { try optimizer.restoreState($0, source: path + "/optimizer.bin") } } catch let e as TrainingError {
            throw e
        } catch {
            throw bad("optimizer.bin: \(error)")
        }
        var losses: [Double] = []
        for v in json["losses"]?.arrayValue ?? [] { losses.append(try double(v)) }
        var evalLosses: [(step: Int, loss: Double)] = []
        for v in json["eval_losses"]?.arrayValue ?? [] {
            guard let pair = v.arrayValue, pair.count == 2, case .int(let step) = pair[0] else { throw bad("state.json: malformed eval_losses") }
            evalLosses.append((step, try double(pair[1])))
        }
        return TrainerState(parameters: parameters, optimizer: optimizer, step: try int("step"), epoch: try int("epoch"),
                            batchIndex: try int("batch_index"), best: best, bestStep: try int("best_step"),
                            bestEvalLoss: try optional("best_eval_loss"), evaluationsWithoutBest: try int("evaluations_without_best"),
                            trainLossBefore: try double(json["train_loss_before"]), evalLossBefore: try optional("eval_loss_before"),
                            losses: losses, evalLosses: evalLosses, tokens: try int("tokens"), seconds: try double(json["seconds"]))
    }
}
