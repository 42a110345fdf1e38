// CLIP-UP as a second stage: the pre-training's last checkpoint is upcycled (`CLIPModel.upcycled`)
// into the fine-tuning stage's directory, and the stage trains the mixture model from it. The same
// file writing serves `clip upcycle`.

import CLIP
import Compute
import Foundation
import Layers

/// How a staged run upcycles its pre-trained model before the second stage.
public struct UpcycleSpec: Codable, Sendable, Hashable {
    public var placement: MoEPlacement
    public var towers: UpcycledTowers
    /// Copy the pre-training's AdamW moments (experts their MLP's, routers zero) and step count.
    public var copyOptimizerState: Bool = false
    /// Seed of the routers' N(0, 0.02²) draw (default: the run's seed).
    public var routerSeed: UInt64? = nil

    public init(placement: MoEPlacement, towers: UpcycledTowers = .both, copyOptimizerState: Bool = false, routerSeed: UInt64? = nil) {
        self.placement = placement
        self.towers = towers
        self.copyOptimizerState = copyOptimizerState
        self.routerSeed = routerSeed
    }

    /// Writes the upcycled model of the dense checkpoint `source` to `path` (atomically, with
    /// `source`'s tokenizer and other metadata, and `upcycled_from`), and with
    /// `copyOptimizerState` its moments to the state file beside it. A `source` without ClipLab
    /// metadata (an OpenCLIP checkpoint) is read with `architecture`, and the result records
    /// CLIP's BPE as its tokenizer when the vocabulary is CLIP's. Returns the dense and upcycled
    /// models, the optimizer step carried (0 without moments) and the loader's notes.
    @discardableResult
    public func write(from source: String, to path: String, routerSeed seed: UInt64, architecture: ArchitectureSource? = nil) throws
        -> (dense: CLIPModel<Float>, model: CLIPModel<Float>, optimizerStep: Int, notes: [String])
    {
        var (dense, notes) = try CLIPModel<Float>.load(from: source, architecture: architecture)
        let step = copyOptimizerState ? try TrainingState.carryMoments(fromCheckpoint: source, into: dense.store) : 0
        let moe = try dense.upcycled(placement: placement, towers: towers, routerSeed: seed, copyOptimizerState: copyOptimizerState)
        let sourceMeta = try SafetensorsFile(path: source).metadata
        var meta = sourceMeta.filter { $0.key != CLIPModel<Float>.configurationKey && $0.key != "format" }
        if sourceMeta[CLIPModel<Float>.configurationKey] == nil && sourceMeta[TokenizerMetadata.kindKey] == nil {
            if dense.config.text.vocabularySize == CLIPConfiguration.clipVocabularySize {
                meta[TokenizerMetadata.kindKey] = "clip"
            } else {
                notes.append("\(path) records no tokenizer: \(source) has none and its vocabulary of \(dense.config.text.vocabularySize) tokens is not CLIP's")
            }
        }
        meta["upcycled_from"] = source
        if copyOptimizerState { try TrainingState.saveMoments(of: moe.store, optimizerStep: step, to: TrainingState.path(forCheckpoint: path)) }
        try moe.save(to: path, metadata: meta)
        return (dense, moe, step, notes)
    }
}
