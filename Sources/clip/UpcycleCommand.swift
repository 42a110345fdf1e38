// `clip upcycle`: sparse upcycling of a dense checkpoint into a mixture-of-experts one (CLIP-UP),
// and the mixture options `clip train` shares with it.

import ArgumentParser
import CLIP
import Compute
import Foundation
import Layers
import Training

/// The mixture-of-experts options (`--experts` and the routing), for `clip upcycle` and `clip train`.
struct MixtureOptions: ParsableArguments {
    @Option(help: "Experts per mixture layer (clip train: 0 = dense, or the --init-from checkpoint's mixtures).") var experts = 0
    @Option(help: "Experts each token picks (token choice): 1 or 2.") var topK = 2
    @Option(help: "Capacity factor: each expert takes at most ⌊S·cf/E⌋ tokens of a group of S (rounded up to a multiple of 4); later assignments are dropped.")
    var capacityFactor = 2.0
    @Option(help: "Mixtures in every Nth block …") var every = 2
    @Option(help: "… starting at this block (0-based; sparse upcycling's every other block from block 1).") var firstBlock = 1
    @Option(help: "Towers that get mixtures: both (CLIP-UP's separated backbone), vision or text.") var towers = "both"
    @Option(help: "Routing: token-choice or expert-choice.") var routing = "token-choice"
    @Option(help: "Gates: renormalized (over the chosen experts) or probability (the router's softmax; Switch's top-1).") var gates = "renormalized"
    @Option(help: "Load-balance loss weight (GShard/Switch).") var lbWeight = 0.01
    @Option(help: "Router z-loss weight (ST-MoE).") var zWeight = 0.001
    @Option(help: "LIMoE local entropy weight (minimised).") var localEntropyWeight = 0.0
    @Option(help: "LIMoE global entropy weight (maximised).") var globalEntropyWeight = 0.0

    /// The placement these options describe, with the towers it goes to; nil for `--experts 0`.
    func placement() throws -> (placement: MoEPlacement, towers: UpcycledTowers)? {
        guard experts != 0 else { return nil }
        guard (1...64).contains(experts) else { throw ValidationError("--experts: must be in 1...64 (or 0 for none), got \(experts)") }
        guard let route = ["token-choice": MoEConfiguration.Routing.tokenChoice, "expert-choice": .expertChoice][routing] else {
            throw ValidationError("--routing: expected token-choice or expert-choice, got '\(routing)'")
        }
        guard let gate = MoEConfiguration.Gates(rawValue: gates) else {
            throw ValidationError("--gates: expected \(MoEConfiguration.Gates.allCases.map(\.rawValue).joined(separator: " or ")), got '\(gates)'")
        }
        guard let t = UpcycledTowers(rawValue: towers) else { throw ValidationError("--towers: expected both, vision or text, got '\(towers)'") }
        guard route == .expertChoice || (1...experts).contains(topK) else { throw ValidationError("--top-k: must be in 1...\(experts), got \(topK)") }
        guard capacityFactor > 0 else { throw ValidationError("--capacity-factor: must be > 0, got \(capacityFactor)") }
        guard every >= 1, firstBlock >= 0 else { throw ValidationError("--every must be ≥ 1 and --first-block ≥ 0, got \(every), \(firstBlock)") }
        for (name, w) in [("--lb-weight", lbWeight), ("--z-weight", zWeight), ("--local-entropy-weight", localEntropyWeight), ("--global-entropy-weight", globalEntropyWeight)] {
            guard w >= 0 && w.isFinite else { throw ValidationError("\(name): must be ≥ 0, got \(w)") }
        }
        let c = MoEConfiguration(
            experts: experts, topK: topK, capacityFactor: capacityFactor, routing: route, gates: gate, loadBalanceWeight: lbWeight, zLossWeight: zWeight,
            localEntropyWeight: localEntropyWeight, globalEntropyWeight: globalEntropyWeight)
        return (MoEPlacement(c, every: every, first: firstBlock), t)
    }
}

/// `clip upcycle`.
struct Upcycle: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sparse upcycling: turn a dense checkpoint into a mixture-of-experts one (CLIP-UP).",
        discussion: """
            Every chosen block's MLP becomes --experts exact copies of it under
            <block>.mlp.experts.<e>.c_fc / c_proj, with a router <block>.mlp.router.weight (E, C)
            drawn N(0, 0.02²); every other tensor is copied. The mixture settings travel in the
            checkpoint's metadata, so `clip train --init-from OUT` trains the result as it is (single
            process or under mpirun). With nothing dropped (capacity factor ≥ E / top-k), the
            upcycled model's embeddings equal the dense model's (a capacity factor of E never drops).

            With --copy-optimizer-state, the dense checkpoint's AdamW moments (its
            epoch_N.state.safetensors, written beside every training checkpoint) are copied too
            (each expert gets its MLP's, routers start at zero) into OUT's state file; `clip train
            --init-from OUT --init-optimizer-state` starts from them. Without it the moments start at zero.

            Example:
              clip upcycle --checkpoint runs/dense/checkpoints/epoch_20.safetensors --experts 8 --top-k 2 --every 2 --towers both --out moe.safetensors
              clip train --model clipa-s --init-from moe.safetensors --lr 2e-4 --epochs 4 --out runs/upcycled
            """)

    @Option(help: "The dense checkpoint: a ClipLab one (its model configuration is in the metadata), or an OpenCLIP one with --model or --model-config.")
    var checkpoint: String
    @OptionGroup(title: "Architecture of a checkpoint without ClipLab metadata (an OpenCLIP checkpoint)") var architecture: ArchitectureOptions
    @OptionGroup var mixture: MixtureOptions
    @Option(help: "Seed of the routers' initialisation.") var routerSeed: UInt64 = 0
    @Flag(help: "Copy the dense checkpoint's optimizer moments (experts get their MLP's, routers zero).") var copyOptimizerState = false
    @Option(name: [.customLong("out"), .customShort("o")], help: "The upcycled checkpoint to write.") var out: String

    func validate() throws {
        guard FileManager.default.fileExists(atPath: checkpoint) else { throw ValidationError("--checkpoint: \(checkpoint) does not exist") }
        guard mixture.experts >= 1 else { throw ValidationError("--experts: upcycling needs ≥ 1 expert, got \(mixture.experts)") }
        _ = try mixture.placement()
        if copyOptimizerState {
            let state = TrainingState.path(forCheckpoint: checkpoint)
            guard FileManager.default.fileExists(atPath: state) else {
                throw ValidationError("--copy-optimizer-state: no optimizer state beside the checkpoint (expected \(state))")
            }
        }
    }

    func run() throws {
        guard let (placement, towers) = try mixture.placement() else { return }
        let dense: CLIPModel<Float>, moe: CLIPModel<Float>, optimizerStep: Int, notes: [String]
        do {
            (dense, moe, optimizerStep, notes) = try UpcycleSpec(placement: placement, towers: towers, copyOptimizerState: copyOptimizerState)
                .write(from: checkpoint, to: out, routerSeed: routerSeed, architecture: architecture.source)
        } catch let e as ConfigurationError {
            throw ValidationError((e.message.contains("already holds") ? "--checkpoint: " : "--experts / --every / --first-block: ") + e.message)
        }
        printNotes(notes)
        let counts = moe.parameterCounts, dc = dense.store.layout.totalCount
        let layers = moe.vision.transformer.mixtureBlocks.map { "visual.\($0)" } + moe.text.transformer.mixtureBlocks.map { "text.\($0)" }
        print("upcycled \(checkpoint) → \(out): \(layers.count) mixture layers (\(layers.joined(separator: ", "))), \(placement.configuration.experts) experts, "
              + (placement.configuration.routing == .tokenChoice ? "top-\(placement.configuration.topK)" : "expert choice")
              + String(format: ", capacity factor %g", placement.configuration.capacityFactor))
        print("parameters: dense \(dc), upcycled \(counts.total) total, \(counts.active) active per token"
              + (copyOptimizerState ? "; optimizer moments copied (step \(optimizerStep))" : ""))
    }
}
