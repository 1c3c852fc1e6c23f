// `lorad adapter inspect|merge|combine|export`: thin commands (the registry's own commands are in
// RegistryCommands.swift) over the LoRA library (load and
// validate against a base, LoRADescription, writeMergedModel, combine, exportPEFT / exportGGUF).
// Every adapter is loaded against the base model given by --model, because validation (and the Q/K
// row permutation, DoRA factors, merges) needs the base's shapes and weights. Usage errors exit 64
// (ArgumentParser's ValidationError); a bad adapter or a failed write exits 1 with the library's error.

import ArgumentParser
import Foundation
import LoRA
import JSON
import ModelFormats

struct Adapter: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the adapter registry; inspect, merge, combine and export LoRA adapters.",
        subcommands: [AdapterImport.self, AdapterList.self, AdapterShow.self, AdapterActivate.self, AdapterRollback.self,
                      AdapterRemove.self, AdapterCollect.self,
                      AdapterInspect.self, AdapterMerge.self, AdapterCombine.self, AdapterExport.self])
}

// MARK: - inspect

struct AdapterInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print an adapter's config, modules (layer, target, rank, shape, scale, DoRA) and size.",
        discussion: """
            The adapter is validated against the base model (--model); an adapter that does not fit it \
            is reported with the validation error and exit status 1.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: ArgumentHelp("A PEFT directory or a llama.cpp GGUF LoRA file.", valueName: "path"))
    var path: String

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    func run() throws {
        let base = openBase(modelOptions)
        let adapter = loadAdapterFile(path, base: base)
        let d = LoRADescription(adapter: adapter, path: path)
        let warning = base.info.identity.mismatch(declared: adapter.declaredBase)
        if json {
            print(d.json(base: base.path, warning: warning).serialized())
        } else {
            print(d.text(base: base.path, warning: warning), terminator: "")
        }
    }
}

// MARK: - merge

struct AdapterMerge: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Write a new GGUF model: the base with the adapter merged into the matrices it touches.",
        discussion: """
            Every other tensor and all metadata are copied from the base. Merged matrices are stored as \
            F32, F16 or re-quantized to the base matrix's own type (--type base); the largest absolute \
            error of that storage is printed to stderr per matrix and over all.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: ArgumentHelp("A PEFT directory or a llama.cpp GGUF LoRA file.", valueName: "path"))
    var path: String

    @Option(name: .shortAndLong, help: ArgumentHelp("The merged model file to write (.gguf).", valueName: "file"))
    var output: String

    @Option(help: ArgumentHelp("Storage of the merged matrices.", valueName: "f32|f16|base"))
    var type: String = "f16"

    @Option(help: "Scale the adapter's contribution (1 = as trained; DoRA adapters merge only at 1).")
    var scale: Float = 1

    func validate() throws {
        guard storage != nil else { throw ValidationError("--type must be f32, f16 or base, not '\(type)'") }
        guard output.hasSuffix(".gguf") else { throw ValidationError("--output must be a .gguf file, not '\(output)'") }
        guard scale.isFinite else { throw ValidationError("--scale must be finite") }
        let resolvedOut = URL(fileURLWithPath: output).standardizedFileURL.path
        let resolvedModel = URL(fileURLWithPath: modelOptions.resolvedPath).standardizedFileURL.path
        guard resolvedOut != resolvedModel else { throw ValidationError("--output is the base model itself; write the merge to a new file") }
    }

    var storage: MergeStorage? {
        switch type {
        case "f32": return .f32
        case "f16": return .f16
        case "base": return .baseType
        default: return nil
        }
    }

    func run() throws {
        let base = openBase(modelOptions)
        let adapter = loadAdapterFile(path, base: base)
        let reports: [MergedTensorReport]
        do {
            reports = try adapter.writeMergedModel(base: base.gguf, info: base.info, to: output,
                                                   storage: storage ?? .f16, userScale: scale)
        } catch {
            fail("\(error)")
        }
        for r in reports {
            FileHandle.standardError.write(Data("  \(r.name): \(r.type.name), max abs error \(r.maxAbsError)\n".utf8))
        }
        // Name the worst matrix only when there is an error to name (F32 merges are exact).
        let worst = reports.max { $0.maxAbsError < $1.maxAbsError }.flatMap { $0.maxAbsError > 0 ? $0 : nil }
        let size = ((try? FileManager.default.attributesOfItem(atPath: output))?[.size] as? NSNumber)?.intValue ?? 0
        FileHandle.standardError.write(Data((
            "merged \(reports.count) matrices of '\(adapter.name)' into \(output) (\(size) bytes); "
            + "max abs error over all: \(worst?.maxAbsError ?? 0)" + (worst.map { " (\($0.name))" } ?? "") + "\n").utf8))
    }
}

// MARK: - combine

struct AdapterCombine: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "combine",
        abstract: "Combine weighted adapters into one (PEFT's add_weighted_adapter) and write it.",
        discussion: """
            cat stacks the adapters (exact weighted sum of their deltas, rank = sum of ranks); linear adds \
            the factors (equal ranks only, as PEFT does); svd truncates the weighted sum of deltas to \
            --rank; ties and dare prune the deltas to --density first (PEFT's ties_svd, dare_linear_svd). \
            The result is a PEFT directory, or a llama.cpp GGUF LoRA file when --output ends in .gguf.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: ArgumentHelp("How to combine.", valueName: "cat|linear|svd|ties|dare"))
    var method: String

    @Option(help: "Rank of the result for svd, ties and dare (default: the largest input rank).")
    var rank: Int?

    @Option(help: "Fraction of each delta kept by ties and dare, in (0, 1].")
    var density: Float = 0.5

    @Option(help: "Seed of dare's random drop masks.")
    var seed: UInt64 = 0

    @Option(help: "Name of the combined adapter (default: the output's file name).")
    var name: String?

    @Option(name: .shortAndLong, help: ArgumentHelp("A PEFT directory, or a .gguf file.", valueName: "dir|file.gguf"))
    var output: String

    @Option(help: ArgumentHelp("Stored type of the written weights.", valueName: "f32|f16"))
    var dtype: String = "f32"

    @Argument(help: ArgumentHelp("Adapters with weights (weight 1 when omitted).", valueName: "path:weight"))
    var inputs: [String]

    func validate() throws {
        guard ["cat", "linear", "svd", "ties", "dare"].contains(method) else {
            throw ValidationError("--method must be cat, linear, svd, ties or dare, not '\(method)'")
        }
        guard !inputs.isEmpty else { throw ValidationError("give at least one PATH:WEIGHT") }
        for spec in inputs where !parseWeighted(spec).weight.isFinite {
            throw ValidationError("the weight in '\(spec)' must be finite")
        }
        if let rank, rank < 1 { throw ValidationError("--rank must be at least 1") }
        if rank != nil && !["svd", "ties", "dare"].contains(method) {
            throw ValidationError("--rank applies to svd, ties and dare only")
        }
        guard density > 0 && density <= 1 else { throw ValidationError("--density must be in (0, 1]") }
        guard ["f32", "f16"].contains(dtype) else { throw ValidationError("--dtype must be f32 or f16") }
    }

    func run() throws {
        let base = openBase(modelOptions)
        let weighted = inputs.map { spec -> (adapter: LoRAAdapter, weight: Float) in
            let (path, weight) = parseWeighted(spec)
            return (loadAdapterFile(path, base: base), weight)
        }
        let k = rank ?? weighted.flatMap { $0.adapter.modules.map(\.module.rank) }.max() ?? 1
        let m: LoRAAdapter.CombineMethod
        switch method {
        case "cat": m = .cat
        case "linear": m = .linear
        case "svd": m = .svd(rank: k)
        case "ties": m = .ties(density: density, rank: k)
        default: m = .dare(density: density, rank: k, seed: seed)
        }
        let combined: LoRAAdapter
        do {
            combined = try LoRAAdapter.combine(weighted, method: m, name: name ?? adapterName(output))
        } catch {
            fail("\(error)")
        }
        writeAdapter(combined, to: output, gguf: output.hasSuffix(".gguf"), dtype: dtype, base: base)
        FileHandle.standardError.write(Data(
            "wrote \(combined.modules.count) modules (\(method) of \(inputs.count) adapters) to \(output)\n".utf8))
    }
}

// MARK: - export

struct AdapterExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Rewrite an adapter as a PEFT directory or a llama.cpp GGUF LoRA file.")

    @OptionGroup var modelOptions: ModelOptions

    @Argument(help: ArgumentHelp("A PEFT directory or a llama.cpp GGUF LoRA file.", valueName: "path"))
    var path: String

    @Option(name: .shortAndLong, help: ArgumentHelp("Where to write.", valueName: "dir|file.gguf"))
    var output: String

    @Option(help: ArgumentHelp("Output format (default: gguf when --output ends in .gguf, else peft).", valueName: "peft|gguf"))
    var format: String?

    @Option(help: ArgumentHelp("Stored type of the written weights.", valueName: "f32|f16"))
    var dtype: String = "f32"

    func validate() throws {
        if let format, !["peft", "gguf"].contains(format) {
            throw ValidationError("--format must be peft or gguf, not '\(format)'")
        }
        if format == "gguf" && !output.hasSuffix(".gguf") {
            // lorad (and llama.cpp's tools) recognize GGUF LoRA files by this suffix.
            throw ValidationError("--format gguf needs an --output ending in .gguf")
        }
        guard ["f32", "f16"].contains(dtype) else { throw ValidationError("--dtype must be f32 or f16") }
    }

    func run() throws {
        let base = openBase(modelOptions)
        let adapter = loadAdapterFile(path, base: base)
        let gguf = (format ?? (output.hasSuffix(".gguf") ? "gguf" : "peft")) == "gguf"
        writeAdapter(adapter, to: output, gguf: gguf, dtype: dtype, base: base)
        FileHandle.standardError.write(Data(
            "wrote \(adapter.modules.count) modules as \(gguf ? "llama.cpp GGUF LoRA" : "PEFT") to \(output)\n".utf8))
    }
}

// MARK: - shared

/// The base model as adapters see it: the mapped file and its shapes and weights.
struct OpenedBase {
    let path: String
    let gguf: GGUFFile
    let info: BaseModelInfo
}

/// Opens --model (only the GGUF and the adapter-facing info; no forward pass) or exits 1.
func openBase(_ options: ModelOptions) -> OpenedBase {
    let path = options.resolvedPath
    do {
        let gguf = try GGUFFile(path: path)
        return OpenedBase(path: path, gguf: gguf, info: try BaseModelInfo(gguf: gguf))
    } catch {
        fail("\(path): \(error)")
    }
}

/// The adapter's name: its file or directory name without .gguf (as `--adapter` names it).
func adapterName(_ path: String) -> String {
    var name = URL(fileURLWithPath: path).lastPathComponent
    if name.hasSuffix(".gguf") { name.removeLast(5) }
    return name
}

/// Loads and validates `path` against the base, or exits 1 with the validation error.
func loadAdapterFile(_ path: String, base: OpenedBase) -> LoRAAdapter {
    do {
        return try LoRAAdapter.load(path: path, name: adapterName(path), base: base.info)
    } catch {
        fail("adapter \(path): \(error)")
    }
}

/// `PATH:WEIGHT` with the weight after the last colon when it parses as a number (so paths may
/// hold colons), else weight 1.
func parseWeighted(_ spec: String) -> (path: String, weight: Float) {
    if let colon = spec.lastIndex(of: ":"), let w = Float(spec[spec.index(after: colon)...]) {
        return (String(spec[..<colon]), w)
    }
    return (spec, 1)
}

/// Writes a PEFT directory or a GGUF LoRA file, or exits 1.
func writeAdapter(_ adapter: LoRAAdapter, to output: String, gguf: Bool, dtype: String, base: OpenedBase) {
    do {
        if gguf {
            try adapter.exportGGUF(path: output, dtype: dtype == "f16" ? .f16 : .f32)
        } else {
            let baseName = (try? base.gguf.string("general.name")).flatMap { $0 }
            try adapter.exportPEFT(directory: output, base: base.info, baseModelName: baseName,
                                   dtype: dtype == "f16" ? .f16 : .f32)
        }
    } catch {
        fail("\(error)")
    }
}
