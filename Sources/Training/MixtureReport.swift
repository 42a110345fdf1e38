// What a trainer does for a mixture-of-experts model (CLIP-UP): take the experts' placement from
// the checkpoint it starts from, scale the auxiliary losses by the number of routing groups, and
// report the routing per step (steps.csv) and per layer (metrics.csv).

import CLIP
import Compute
import Foundation
import Layers

/// The routing columns of a mixture-of-experts run and their values.
///
/// steps.csv gets, per step, means over the mixture layers (and over the step's routing groups:
/// batch-split threads; under MPI rank 0's): `moe_aux_loss` the weighted auxiliary loss whose
/// gradient the step adds to the objective's (its sum over layers, mean over groups), `moe_lb_loss` L_lb, `moe_z_loss` L_z,
/// `moe_router_entropy` mean_s H(p_s) (nats), `moe_over_capacity` the share of attempted
/// assignments dropped, and `moe_dispatch_<n>` the share of tokens kept by n experts.
/// metrics.csv gets the same as epoch means, plus per layer `moe.<layer>.load_<e>`: the share of
/// the layer's tokens whose assignment to expert e was kept, and `moe.<layer>.over_capacity`;
/// `<layer>` is `visual.<block>` or `text.<block>`.
public struct MixtureReport {
    /// Layer names in model order (`visual.1`, `text.3`, …) and their experts and most choices.
    public let layers: [(name: String, experts: Int, choices: Int)]
    public let stepColumns: [String]
    public let metricColumns: [String]
    private var sums: [String: Double] = [:]
    private var steps = 0

    public init?(_ model: CLIPModel<Float>) {
        guard model.hasMixtures else { return nil }
        var layers: [(String, Int, Int)] = []
        for (prefix, tower) in [("visual", model.vision.transformer), ("text", model.text.transformer)] {
            for l in tower.mixtureBlocks {
                let c = tower.blocks[l].mlp.mixture!.configuration
                layers.append(("\(prefix).\(l)", c.experts, c.routing == .tokenChoice ? c.topK : c.experts))
            }
        }
        self.layers = layers
        let most = layers.map(\.2).max() ?? 0
        stepColumns = ["moe_aux_loss", "moe_lb_loss", "moe_z_loss", "moe_router_entropy", "moe_over_capacity"]
            + (0...most).map { "moe_dispatch_\($0)" }
        metricColumns = stepColumns + layers.flatMap { l in (0..<l.1).map { "moe.\(l.0).load_\($0)" } + ["moe.\(l.0).over_capacity"] }
    }

    /// The step's values from each routing group's statistics (`CLIPModel.mixtureStatistics`,
    /// layers in model order), and the auxiliary loss summed over the groups' layers (each group
    /// already scaled by 1/G). Accumulates the epoch's sums.
    public mutating func step(groups: [[(name: String, statistics: MoEStatistics)]], auxiliaryLoss: Double) -> [String: Double] {
        var row: [String: Double] = [:]
        for c in stepColumns { row[c] = 0 }
        var perLayer: [String: Double] = [:]
        let g = Double(max(1, groups.count)), n = Double(max(1, layers.count))
        for group in groups {
            for (i, entry) in group.enumerated() where i < layers.count {
                let s = entry.statistics, name = layers[i].name
                row["moe_lb_loss"]! += s.loadBalanceLoss / (g * n)
                row["moe_z_loss"]! += s.zLoss / (g * n)
                row["moe_router_entropy"]! += s.routerEntropy / (g * n)
                row["moe_over_capacity"]! += s.overCapacityRatio / (g * n)
                for (k, share) in s.dispatchShares.enumerated() { row["moe_dispatch_\(k)", default: 0] += share / (g * n) }
                for (e, load) in s.expertLoad.enumerated() { perLayer["moe.\(name).load_\(e)", default: 0] += load / g }
                perLayer["moe.\(name).over_capacity", default: 0] += s.overCapacityRatio / g
            }
        }
        row["moe_aux_loss"] = auxiliaryLoss
        for (k, v) in row { sums[k, default: 0] += v }
        for (k, v) in perLayer { sums[k, default: 0] += v }
        steps += 1
        return row
    }

    /// The epoch's means of every metrics.csv column, and a fresh start for the next epoch.
    public mutating func epochMeans() -> [String: Double] {
        var out: [String: Double] = [:]
        for c in metricColumns { out[c] = steps > 0 ? (sums[c] ?? 0) / Double(steps) : .nan }
        sums = [:]
        steps = 0
        return out
    }

    /// The epoch's running sums and step count so far (what a step checkpoint stores so a
    /// resumed epoch's means equal an unbroken one's).
    public var accumulated: (sums: [String: Double], steps: Int) {
        get { (sums, steps) }
        set { (sums, steps) = newValue }
    }

    /// NaN for every metrics.csv column (the row before training).
    public var emptyRow: [String: Double] { Dictionary(uniqueKeysWithValues: metricColumns.map { ($0, Double.nan) }) }

    /// The mixture placements a run trains: the configuration's, else those of the checkpoint it
    /// starts from (read from its metadata; an OpenCLIP checkpoint has none). A run that names
    /// other placements than its checkpoint holds is refused, naming the tower.
    public static func placements(for config: TrainingConfiguration) throws -> (vision: MoEPlacement?, text: MoEPlacement?) {
        guard let source = config.initFrom else { return (config.visionExperts, config.textExperts) }
        let file = try SafetensorsFile(path: source)
        var stored: CLIPConfiguration?
        if let json = file.metadata[CLIPModel<Float>.configurationKey] {
            stored = try? JSONDecoder().decode(CLIPConfiguration.self, from: Data(json.utf8))
        }
        func pick(_ mine: MoEPlacement?, _ theirs: MoEPlacement?, _ option: String) throws -> MoEPlacement? {
            guard let mine else { return theirs }
            if let theirs, theirs != mine {
                throw TrainingError.invalid(option: option, reason: "\(source) holds other mixtures of experts (\(theirs)); leave the option out to train them as they are")
            }
            if theirs == nil {
                let other = stored.map { $0.vision.experts != nil || $0.text.experts != nil } ?? false
                throw TrainingError.invalid(
                    option: option,
                    reason: other
                        ? "\(source) holds no mixtures in this tower (only in the other); pass --towers to match it, or leave the mixture options out"
                        : "\(source) is a dense model; upcycle it first (`clip upcycle --checkpoint \(source) …`), then --init-from the result")
            }
            return mine
        }
        return (try pick(config.visionExperts, stored?.vision.experts, "--experts (vision)"), try pick(config.textExperts, stored?.text.experts, "--experts (text)"))
    }
}

extension Trainer {
    /// The models and activations whose forward passes route the step's groups: each batch-split
    /// shard's, or the model's own.
    var routedReplicas: [(CLIPModel<Float>, CLIPModel<Float>.Activations)] {
        split.map { $0.shards.map { ($0.model, $0.activations) } } ?? [(model, activations)]
    }
}
