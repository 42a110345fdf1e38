// Sparse upcycling of a dense CLIP (Komatsuzaki et al.; CLIP-UP, spec B2, B6 step 2): the same
// architecture with a mixture of experts in the chosen blocks of each chosen tower, every expert
// an exact copy of the dense block's MLP, the router freshly drawn, and every other parameter
// copied unchanged.

import Compute
import Foundation
import Layers

/// Which towers an upcycling converts.
public enum UpcycledTowers: String, Codable, Sendable, CaseIterable {
    case both, vision, text
}

extension CLIPModel {
    /// An upcycled copy of this (dense) model. `placement` says which blocks become mixtures and how
    /// they route (every other block from block 1, top-2 of 8 with capacity factor 2 by default);
    /// `towers` which towers get them ("separated backbone": each tower its own experts, spec B4).
    /// Every parameter the dense model has is copied by name; each mixture's experts copy the
    /// dense block's MLP exactly and its router is drawn N(0, routerStd²) from `routerSeed`
    /// (streams keyed by the router's name). With `copyOptimizerState`, the AdamW moments in this
    /// model's store are copied too (shared parameters as they are, every expert the dense MLP's,
    /// routers zero); otherwise the new model's moments are zero.
    ///
    /// With renormalised top-k gates and nothing dropped (a capacity factor of E is always enough:
    /// every token may pick the same expert), the upcycled model computes exactly the dense model's
    /// embeddings at step 0.
    public func upcycled(
        placement: MoEPlacement, towers: UpcycledTowers = .both, routerSeed: UInt64 = 0, routerStd: Double = 0.02,
        copyOptimizerState: Bool = false
    ) throws -> CLIPModel<T> {
        guard !hasMixtures else {
            throw ConfigurationError(message: "upcycling: the model '\(config.name)' already holds mixtures of experts; upcycle a dense model")
        }
        var c = config
        if towers != .text { c.vision.experts = placement }
        if towers != .vision { c.text.experts = placement }
        let moe = try CLIPModel<T>(c)
        let source = store.layout
        for v in moe.store.layout.views {
            guard let from = source.views.first(where: { $0.name == v.name }) else { continue }  // experts, routers
            precondition(from.shape == v.shape, "upcycling: \(v.name) changed shape")
            moe.store.value(v).update(from: store.value(from), count: v.count)
            if copyOptimizerState {
                (moe.store.firstMoment.pointer + v.offset).update(from: store.firstMoment.pointer + from.offset, count: v.count)
                (moe.store.secondMoment.pointer + v.offset).update(from: store.secondMoment.pointer + from.offset, count: v.count)
            }
        }
        for (dense, sparse) in [(vision.transformer, moe.vision.transformer), (text.transformer, moe.text.transformer)] {
            for l in sparse.mixtureBlocks {
                guard let mlp = dense.blocks[l].mlp.dense, let mixture = sparse.blocks[l].mlp.mixture else { continue }
                mixture.upcycle(
                    from: mlp, source: store, into: moe.store, routerSeed: routerSeed, routerStd: routerStd,
                    copyOptimizerState: copyOptimizerState)
            }
        }
        return moe
    }

    /// Parameters of the whole model, and those one token's forward pass uses: a mixture layer
    /// counts its router and min(k, cf) of its E experts rounded up (token choice: capacity keeps
    /// at most cf assignments per token on average; expert choice: cf), as `ComputeAccounting` does.
    public var parameterCounts: (total: Int, active: Int) {
        let total = store.layout.totalCount
        var inactive = 0
        for tower in [vision.transformer, text.transformer] {
            for l in tower.mixtureBlocks {
                guard let m = tower.blocks[l].mlp.mixture else { continue }
                let perExpert = m.experts[0].fc.weight.count + (m.experts[0].fc.bias?.count ?? 0)
                    + m.experts[0].proj.weight.count + (m.experts[0].proj.bias?.count ?? 0)
                let c = m.configuration
                let used = Int((c.routing == .tokenChoice ? min(Double(c.topK), c.capacityFactor) : c.capacityFactor).rounded(.up))
                inactive += perExpert * max(0, m.configuration.experts - used)
            }
        }
        return (total, total - inactive)
    }
}
