import ArgumentParser
import CLIP
import Compute
import Data
import Foundation
import Training

/// `clip eval`: the held-out metrics of a checkpoint.
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Evaluate a checkpoint on the shapes world's held-out tasks.")

    @Option(help: "A ClipLab checkpoint (.safetensors).") var checkpoint: String
    @Option(help: "Seed of the synthetic data (default: the one recorded in the checkpoint, else 0).") var dataSeed: UInt64?
    @Option(help: "Held-out zero-shot examples per class.") var evalExamples = 50
    @Option(help: "Held-out retrieval pairs.") var retrievalSize = 1000
    @Option(help: "Threads (default: all cores).") var threads = Threads.available

    func run() throws {
        Threads.set(threads)
        let (model, tokenizer) = try loadCheckpoint(checkpoint)
        let recorded = try SafetensorsFile(path: checkpoint).metadata["data_seed"].flatMap { UInt64($0) }
        let world = ShapesWorld(ShapesWorld.Configuration(seed: dataSeed ?? recorded ?? 0, count: 1))
        let m = try Evaluator(model: model, world: world, tokenizer: tokenizer, examplesPerClass: evalExamples, retrievalCount: retrievalSize)
            .run(batch: 256)
        print(MetricsReport.table(m, title: "held-out metrics of \(checkpoint) (chance in brackets)",
                                  chance: Trainer.chanceLevels(world: world, retrievalCount: retrievalSize)))
    }
}

/// Loads a checkpoint and the tokenizer it was trained with (recorded in its metadata).
func loadCheckpoint(_ path: String) throws -> (CLIPModel<Float>, any Tokenizer) {
    let model = try CLIPModel<Float>.load(from: path)
    let file = try SafetensorsFile(path: path)
    let tokenizer = try TokenizerMetadata.tokenizer(from: file.metadata, path: path, vocabularySize: model.config.text.vocabularySize)
    return (model, tokenizer)
}
