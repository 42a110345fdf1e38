import ArgumentParser
import CLIP
import Compute
import Data
import Foundation
import Training

/// `clip eval`: the held-out metrics of a checkpoint.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a checkpoint on the shapes world's held-out tasks, or on your own data set.",
        discussion: "With --data wds:PATTERN or csv:FILE: image↔text retrieval over the set's first --retrieval-size pairs, and with --zero-shot classes.json ({\"classes\": [names], \"templates\": [\"a photo of a {}.\"]}) zero-shot top-1 over the samples that carry a class (a WebDataset .cls member).")

    @Option(help: "A ClipLab checkpoint (.safetensors), or an OpenCLIP one with --model or --model-config.") var checkpoint: String
    @OptionGroup(title: "Architecture of a checkpoint without ClipLab metadata (an OpenCLIP checkpoint)") var architecture: ArchitectureOptions
    @Option(help: "Seed of the synthetic data (default: the one recorded in the checkpoint, else 0).") var dataSeed: UInt64?
    @Option(help: "Held-out zero-shot examples per class.") var evalExamples = 50
    @Option(help: "Held-out retrieval pairs.") var retrievalSize = 1000
    @Option(help: "Threads (default: all cores).") var threads = Threads.available
    @Option(help: "Evaluate on your own data instead: wds:PATTERN or csv:FILE (as clip train's --data).") var data: String?
    @Option(help: "With --data: a classes.json of class names and prompt templates for zero-shot top-1.") var zeroShot: String?
    @Option(help: "With --data: unusable samples are left out and counted (skip) or stop the evaluation (fail).") var badSample = "skip"
    @Option(help: "Also write the metrics, their chance levels and the pair count to this JSON file (for scripts).") var json: String?

    func validate() throws {
        if zeroShot != nil && data == nil { throw ValidationError("--zero-shot needs --data (the shapes world has its own zero-shot tasks)") }
        guard BadSamplePolicy(rawValue: badSample) != nil else { throw ValidationError("--bad-sample: expected skip or fail, got '\(badSample)'") }
        if let d = data {
            guard d.hasPrefix("wds:") || d.hasPrefix("csv:") else { throw ValidationError("--data: expected wds:PATTERN or csv:FILE, got '\(d)'") }
        }
    }

    func run() throws {
        Threads.set(threads)
        let (model, tokenizer) = try loadCheckpoint(checkpoint, architecture: architecture.source)
        if let data {
            var c = TrainingConfiguration()
            c.data = data
            guard let source = try c.realDataSource() else { return }
            let set: RealImageTextData
            do { set = try RealImageTextData(source, policy: BadSamplePolicy(rawValue: badSample)!) } catch let e as BadSampleError {
                throw ValidationError("--data: \(e)")
            }
            if set.skippedTotal > 0 {
                let reasons = set.skipped.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key.rawValue)" }
                FileHandle.standardError.write(Data("note: left out \(set.skippedTotal) samples (\(reasons.joined(separator: ", ")))\n".utf8))
            }
            let classes = try zeroShot.map { try ZeroShotClasses.load(path: $0) }
            let m = try RealDataEvaluation.run(model: model, tokenizer: tokenizer, data: set, retrievalCount: retrievalSize, classes: classes)
            let chance = RealDataEvaluation.chanceLevels(retrievalCount: min(retrievalSize, set.count), classes: classes?.classes.count)
            print(MetricsReport.table(m, title: "metrics of \(checkpoint) on \(data) (\(set.count) pairs; chance in brackets)", chance: chance))
            if let json {
                let report: [String: Any] = ["checkpoint": checkpoint, "data": data, "pairs": set.count, "metrics": m, "chance": chance]
                let bytes = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
                try writeAtomically(bytes, to: json)
            }
            return
        }
        let recorded = try SafetensorsFile(path: checkpoint).metadata["data_seed"].flatMap { UInt64($0) }
        let world = ShapesWorld(ShapesWorld.Configuration(seed: dataSeed ?? recorded ?? 0, count: 1))
        let m = try Evaluator(model: model, world: world, tokenizer: tokenizer, examplesPerClass: evalExamples, retrievalCount: retrievalSize)
            .run(batch: 256)
        print(MetricsReport.table(m, title: "held-out metrics of \(checkpoint) (chance in brackets)",
                                  chance: Trainer.chanceLevels(world: world, retrievalCount: retrievalSize)))
    }
}

/// Loads a checkpoint and the tokenizer it was trained with (recorded in its metadata; CLIP's BPE
/// for an OpenCLIP checkpoint of CLIP's vocabulary). A checkpoint without ClipLab metadata is read
/// with `architecture`; what the loader assumed or converted is printed to standard error.
func loadCheckpoint(_ path: String, architecture: ArchitectureSource?) throws -> (CLIPModel<Float>, any Tokenizer) {
    let (model, notes) = try CLIPModel<Float>.load(from: path, architecture: architecture)
    printNotes(notes)
    let file = try SafetensorsFile(path: path)
    let tokenizer = try TokenizerMetadata.tokenizer(from: file.metadata, path: path, vocabularySize: model.config.text.vocabularySize)
    return (model, tokenizer)
}

/// Writes each note as "note: …" to standard error (standard output may be a CSV).
func printNotes(_ notes: [String]) {
    for n in notes { FileHandle.standardError.write(Data(("note: " + n + "\n").utf8)) }
}

/// `--model PRESET` / `--model-config FILE`: the architecture of a checkpoint that does not record
/// one, for `clip eval`, `clip embed` and `clip upcycle`.
struct ArchitectureOptions: ParsableArguments {
    @Option(help: "A preset (\(CLIPConfiguration.presetNames.joined(separator: ", "))), built with the checkpoint's vocabulary.")
    var model: String?
    @Option(help: ArgumentHelp(
        "An OpenCLIP model config: open_clip_config.json ({\"model_cfg\": …, \"preprocess_cfg\": …}, as the hub has it) or a model_configs/*.json.",
        valueName: "file"))
    var modelConfig: String?

    func validate() throws {
        if model != nil && modelConfig != nil { throw ValidationError("--model and --model-config: give one of them, not both") }
        if let m = model, CLIPConfiguration.preset(m) == nil {
            throw ValidationError("--model: unknown preset '\(m)'; expected one of \(CLIPConfiguration.presetNames.joined(separator: ", "))")
        }
        if let p = modelConfig {
            guard FileManager.default.fileExists(atPath: p) else { throw ValidationError("--model-config: \(p) does not exist") }
            do { _ = try OpenCLIPConfig.load(path: p) } catch let e as ConfigurationError { throw ValidationError("--model-config: " + e.message) }
        }
    }

    var source: ArchitectureSource? {
        if let m = model { return .preset(m) }
        return modelConfig.map { .openCLIPConfig(path: $0) }
    }
}
