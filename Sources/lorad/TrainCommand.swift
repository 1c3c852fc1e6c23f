// `lorad train`: fine-tune an adapter of the registry on a chat JSONL file and publish it as the next
// version (Training's TrainingJob does the work). Prints the data report first, then progress (a bar
// on a terminal, plain lines otherwise, JSON lines with --json), then the published version. Ctrl-C
// stops after the current step and publishes nothing (exit 130; with --save-on-interrupt a checkpoint
// to --resume from). Runs on the main thread with the model's compute pool.

import ArgumentParser
import Foundation
import Generation
import JSON
import Llama
import LoRA
import Registry
import Training
#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGINT, polled between steps.
let trainInterrupt = TrainingCancellation()

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a LoRA adapter on chat JSONL and publish it as the adapter's next version.",
        discussion: """
            New adapters: --new --rank R --alpha A --targets LIST|all (all: the seven projections), \
            optionally --init pissa and --dora. \
            Otherwise training continues the active version (or --from vN) with its rank and targets. \
            The result is published (source: trained) but activated only with --activate, or with \
            --activate-if-better when its eval loss beats its parent's. Bad data, a failed run or \
            Ctrl-C publish nothing.
            """)

    @OptionGroup var registry: RegistryOptions
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: ArgumentHelp("The adapter to train, \(AdapterName.rule).", valueName: "name")) var adapter: String
    @Option(help: ArgumentHelp("Training data: chat JSONL ({\"messages\": [...]}) or prompt/completion.", valueName: "file")) var data: String
    @Option(name: .customLong("eval"), help: ArgumentHelp("Evaluation data (default: --eval-fraction of --data held out).", valueName: "file"))
    var evalFile: String?
    @Option(help: "Fraction of --data held out for evaluation when there is no --eval (0: none).") var evalFraction: Double = 0.1
    @Option(help: ArgumentHelp("Start from this version (default: the active one).", valueName: "vN")) var from: String?
    @Flag(help: "Start a new adapter (with --rank, --alpha, --targets).") var new = false
    @Option(help: "New adapter's rank.") var rank: Int = 8
    @Option(help: "New adapter's lora_alpha.") var alpha: Double = 16
    @Option(help: ArgumentHelp("New adapter's projections: q_proj,k_proj,... or all.", valueName: "list|all")) var targets: String = "all"
    @Flag(help: "New adapter with rsLoRA scaling (alpha/√r).") var rslora = false
    @Option(name: .customLong("init"), help: ArgumentHelp(
        "New adapter's initialisation: lora (A Kaiming-uniform, B zero) or pissa (A, B from the base's top-r singular vectors; published as a rank-2r plain LoRA).",
        valueName: "lora|pissa")) var initialization: String = "lora"
    @Flag(help: "New adapter with DoRA (a trained magnitude per output row, starting at the base's row norms).") var dora = false
    @Option(help: "Passes over the data (default 3).") var epochs: Int?
    @Option(help: "A step budget instead of epochs.") var steps: Int?
    @Option(help: "Learning rate.") var lr: Double = 2e-4
    @Option(help: "Rows per micro-batch.") var batch: Int = 1
    @Option(help: "Micro-batches per optimiser step.") var gradAccum: Int = 1
    @Option(help: "Longest example in tokens (longer ones are cut, with a warning).") var maxSeq: Int = 512
    @Flag(help: "Pack short examples into rows of at most --max-seq tokens (attention stays inside each example).") var pack = false
    @Option(help: "Seed of the initialisation, the split and the data order.") var seed: UInt64 = 0
    @Option(help: "Warmup steps.") var warmup: Int = 0
    @Option(help: ArgumentHelp("Learning-rate schedule after warmup.", valueName: "cosine|linear|constant")) var schedule: String = "cosine"
    @Option(help: "AdamW weight decay.") var weightDecay: Double = 0
    @Option(help: "Clip the gradient's global norm (0: off).") var maxGradNorm: Double = 1
    @Option(help: "LoRA+: B's learning rate is this times A's.") var loraPlus: Double = 1
    @Option(help: "Stop after N evaluations without a better eval loss (keeps the best).") var patience: Int?
    @Option(help: "Evaluate every N steps (default: once per epoch).") var evalEvery: Int?
    @Flag(help: "Make the new version active.") var activate = false
    @Flag(help: "Make it active only if its eval loss beats its parent's.") var activateIfBetter = false
    @Flag(help: "Skip malformed data lines (listed in the report) instead of failing.") var skipBad = false
    @Flag(help: "Print one JSON object per line.") var json = false
    @Option(help: ArgumentHelp("Write checkpoints here (after every evaluation).", valueName: "dir")) var checkpoint: String?
    @Option(help: ArgumentHelp("Continue the run whose checkpoint is here (same flags and data).", valueName: "dir")) var resume: String?
    @Flag(help: "On Ctrl-C, write a checkpoint (to --checkpoint or --resume's directory) to resume from.") var saveOnInterrupt = false
    @Option(help: "Worker threads for the matrix products (default: one per core).") var threads: Int?
    @Option(help: ArgumentHelp("Stored type of the published weights (f16: half the size).", valueName: "f32|f16"))
    var dtype: String = "f32"
    // Hidden from --help: on the AVX-512 machine measured it is no faster than f32 and its loss is a
    // little worse (docs/BENCHMARKS.md, "8-bit products in training"), so it is not offered yet.
    @Option(help: ArgumentHelp("Products of the training passes: f32 (exact) or q8 (8-bit activations in the forward pass and 8-bit dX = dY·W in the backward pass).",
                               valueName: "f32|q8", visibility: .hidden))
    var numerics: String = "f32"
    // Hidden, for A/B measurements: the backward's base products apart from the forward's numerics.
    @Option(help: .hidden) var backwardProducts: String?

    func validate() throws {
        guard AdapterName.isValid(adapter) else { throw ValidationError("--adapter '\(adapter)' does not match \(AdapterName.rule)") }
        if new && from != nil { throw ValidationError("--new and --from exclude each other") }
        if activate && activateIfBetter { throw ValidationError("--activate and --activate-if-better exclude each other") }
        if epochs != nil && steps != nil { throw ValidationError("--epochs and --steps exclude each other") }
        if let from, AdapterReference.parseVersion(from) == nil { throw ValidationError("--from '\(from)' is not a version such as v3") }
        if TrainerConfig.Schedule(rawValue: schedule) == nil { throw ValidationError("--schedule must be cosine, linear or constant") }
        if saveOnInterrupt && checkpoint == nil && resume == nil { throw ValidationError("--save-on-interrupt needs --checkpoint DIR") }
        if !(0..<1).contains(evalFraction) { throw ValidationError("--eval-fraction must be in [0, 1)") }
        guard LoRAInitialization.Method(rawValue: initialization) != nil else {
            throw ValidationError("--init '\(initialization)' is not one of \(LoRAInitialization.Method.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if initialization == "pissa" && dora {
            throw ValidationError("--init pissa and --dora exclude each other (PiSSA's start with DoRA is not checked against PEFT here)")
        }
        if !new && (initialization != "lora" || dora) {
            throw ValidationError("--init and --dora shape a new adapter: add --new (a version trained further keeps its own kind)")
        }
        guard ["f32", "q8"].contains(numerics) else { throw ValidationError("--numerics must be f32 or q8, not '\(numerics)'") }
        if let b = backwardProducts, TrainingPass.BackwardProducts(rawValue: b) == nil {
            throw ValidationError("--backward-products must be f32 or q8, not '\(b)'")
        }
        guard ["f32", "f16"].contains(dtype) else { throw ValidationError("--dtype must be f32 or f16, not '\(dtype)'") }
        _ = try parsedTargets()
    }

    func parsedTargets() throws -> [LoRATarget] {
        if targets == "all" { return LoRATarget.allCases }
        return try targets.split(separator: ",").map { name in
            let n = name.trimmingCharacters(in: .whitespaces)
            guard let t = LoRATarget.allCases.first(where: { $0.rawValue == n || $0.hfModule.hasSuffix("." + n) || $0.hfModule == n }) else {
                throw ValidationError("--targets: unknown projection '\(n)'; expected \(LoRATarget.allCases.map(\.rawValue).joined(separator: ",")) or all")
            }
            return t
        }
    }

    func run() throws {
        let bundle = loadTrainingBundle(modelOptions, threads: threads, numerics: numerics == "q8" ? .q8 : .f32)
        var o = TrainingJobOptions(registry: registry.root, adapter: adapter, data: data)
        o.evalData = evalFile
        o.evalFraction = evalFraction
        o.maxSequence = maxSeq
        o.skipBad = skipBad
        o.start = new ? .new(rank: rank, alpha: alpha, targets: try parsedTargets(), rsLoRA: rslora)
                      : .from(version: from.flatMap(AdapterReference.parseVersion))
        o.initialization = LoRAInitialization.Method(rawValue: initialization)!
        o.dora = dora
        var c = TrainerConfig()
        if let epochs { c.epochs = epochs }
        c.steps = steps
        c.learningRate = lr
        c.batchSize = batch
        c.gradientAccumulation = gradAccum
        c.seed = seed
        c.warmupSteps = warmup
        c.schedule = TrainerConfig.Schedule(rawValue: schedule)!
        c.weightDecay = weightDecay
        c.maxGradNorm = maxGradNorm > 0 ? maxGradNorm : nil
        c.backwardProducts = backwardProducts.flatMap(TrainingPass.BackwardProducts.init(rawValue:)) ?? (numerics == "q8" ? .q8 : .f32)
        c.loraPlusRatio = loraPlus
        c.patience = patience
        c.pack = pack ? maxSeq : nil
        o.config = c
        o.activation = activate ? .always : activateIfBetter ? .ifBetter : .never
        o.checkpoint = checkpoint
        o.resume = resume
        o.saveOnInterrupt = saveOnInterrupt
        o.dtype = dtype == "f16" ? .f16 : .f32

        o.evalEvery = evalEvery
        let final: TrainingJob
        do { final = try TrainingJob(bundle: bundle, options: o) } catch { fail("\(error)") }
        for report in final.reports {
            if json {
                emit(JSONValue.object([("event", .string("data")), ("file", .string(report.file)), ("examples", .int(report.examples)),
                                       ("tokens", .int(report.tokens)), ("trained_tokens", .int(report.trainedTokens)),
                                       ("truncated", .int(report.truncated.count)), ("dropped", .int(report.dropped.count)),
                                       ("skipped", .int(report.skipped.count))]).serialized() + "\n")
            } else {
                emit(report.description + "\n")
            }
        }
        if !json {
            emit("training \(final.trainExamples.count) examples, evaluating \(final.evalExamples.count)\n")
        }

        _ = trainInterrupt.isCancelled  // initialised before the handler can touch it
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in trainInterrupt.cancel() }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        sigaction(SIGINT, &action, nil)
        // A parent may have spawned us with SIGINT blocked (a thread of a test runner or a daemon);
        // blocked, it would stay pending and Ctrl-C would never stop the run.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGINT)
        sigprocmask(SIG_UNBLOCK, &unblock, nil)

        let printer = ProgressPrinter(json: json, terminal: !json && isatty(STDOUT_FILENO) == 1)
        let outcome: TrainingJobOutcome
        do {
            outcome = try final.run(cancellation: trainInterrupt) { printer.show($0) }
        } catch {
            printer.finish()
            fail("\(error); nothing was published")
        }
        printer.finish()
        let r = outcome.result
        guard let m = outcome.manifest else {
            let note = outcome.checkpoint.map { "checkpoint written to \($0) (continue with --resume \($0))" } ?? "no checkpoint written"
            if json {
                emit(JSONValue.object([("event", .string("interrupted")), ("step", .int(r.steps)),
                                       ("checkpoint", outcome.checkpoint.map { .string($0) } ?? .null)]).serialized() + "\n")
            } else {
                emit("interrupted after step \(r.steps): nothing published; \(note)\n")
            }
            throw ExitCode(130)
        }
        if json {
            var items: [(String, JSONValue)] = [("event", .string("published")), ("adapter", .string(adapter)), ("version", .int(m.version)),
                                                ("active", .bool(outcome.activated)), ("steps", .int(r.steps)), ("best_step", .int(r.bestStep)),
                                                ("train_loss_before", .double(r.trainLossBefore)), ("train_loss_after", .double(r.trainLossAfter)),
                                                ("tokens_per_second", .double(r.tokensPerSecond))]
            if let v = r.evalLossBefore { items.append(("eval_loss_before", .double(v))) }
            if let v = r.evalLossAfter { items.append(("eval_loss_after", .double(v))) }
            if let v = outcome.parentEvalLoss { items.append(("parent_eval_loss", .double(v))) }
            emit(JSONValue.object(items).serialized() + "\n")
        } else {
            var line = "published \(adapter)@v\(m.version)\(outcome.activated ? " (active)" : " (not active)")"
            line += String(format: ": %d steps, train loss %.4f → %.4f", r.steps, r.trainLossBefore, r.trainLossAfter)
            if let b = r.evalLossBefore, let a = r.evalLossAfter { line += String(format: ", eval loss %.4f → %.4f (best at step %d)", b, a, r.bestStep) }
            if let p = outcome.parentEvalLoss { line += String(format: ", parent's eval loss %.4f", p) }
            if r.stoppedEarly { line += ", stopped early" }
            line += String(format: ", %.1f tokens/s", r.tokensPerSecond)
            emit(line + "\n")
        }
    }
}

func loadTrainingBundle(_ options: ModelOptions, threads: Int?, numerics: LlamaModel.Numerics = .f32) -> ModelBundle {
    let path = options.resolvedPath
    do { return try ModelBundle(path: path, threads: threads, numerics: numerics) } catch { fail("\(path): \(error)") }
}

/// Progress: a redrawn line on a terminal, else a line every ~5% of the steps (and every evaluation),
/// or one JSON object per report.
final class ProgressPrinter {
    let json: Bool
    let terminal: Bool
    var lastLine = Date.distantPast
    var drew = false

    init(json: Bool, terminal: Bool) {
        self.json = json
        self.terminal = terminal
    }

    func show(_ p: TrainingProgress) {
        if json {
            var items: [(String, JSONValue)] = [("event", .string(p.loss == nil ? "eval" : "step")), ("step", .int(p.step)),
                                                ("total_steps", .int(p.totalSteps)), ("epoch", .double(p.epoch))]
            if let l = p.loss { items.append(("loss", .double(l))) }
            if let e = p.evalLoss { items.append(("eval_loss", .double(e))) }
            items += [("lr", .double(p.learningRate)), ("tokens_per_second", .double(p.tokensPerSecond)), ("eta_seconds", .double(p.etaSeconds))]
            emit(JSONValue.object(items).serialized() + "\n")
            return
        }
        var text = String(format: "step %d/%d  epoch %.2f", p.step, p.totalSteps, p.epoch)
        if let l = p.loss { text += String(format: "  loss %.4f", l) }
        if let e = p.evalLoss { text += String(format: "  eval loss %.4f", e) }
        text += String(format: "  lr %.2e  %.1f tokens/s  eta ", p.learningRate, p.tokensPerSecond) + Self.duration(p.etaSeconds)
        if terminal {
            let width = 20, done = p.totalSteps > 0 ? width * p.step / p.totalSteps : 0
            let bar = "[" + String(repeating: "#", count: done) + String(repeating: ".", count: width - done) + "] "
            emit("\r\u{1B}[K" + bar + text + (p.evalLoss != nil ? "\n" : ""))
            drew = p.evalLoss == nil
            return
        }
        let every = max(1, p.totalSteps / 20)
        if p.evalLoss != nil || p.step == 1 || p.step % every == 0 || p.step == p.totalSteps || Date().timeIntervalSince(lastLine) > 30 {
            emit(text + "\n")
            lastLine = Date()
        }
    }

    func finish() {
        if drew { emit("\n") }
        drew = false
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t % 3600 / 60) : String(format: "%dm%02ds", t / 60, t % 60)
    }
}
