// A mixture-of-experts MLP (sparse upcycling, CLIP-UP; spec: papers/clipa_clipup.md B1–B3): a
// router picks experts per token, each expert is an exact copy of the dense `MLP`'s computation,
// and the output is the gate-weighted sum of the chosen experts' outputs. It replaces the dense
// MLP of a pre-norm block, which computes x + MoE(LN(x)); this layer maps (rows, C) → (rows, C).
//
// Parameters (checkpoint tensor names), for `prefix` = e.g. `visual.transformer.resblocks.1.mlp`:
//   prefix.router.weight                 (E, C)   router W_r, no bias: logits h = x·W_rᵀ
//   prefix.experts.<e>.c_fc.weight        (4C, C)  expert e = 0 … E−1: the dense MLP's c_fc (4 = ratio)
//   prefix.experts.<e>.c_fc.bias          (4C)
//   prefix.experts.<e>.c_proj.weight      (C, 4C)  and c_proj
//   prefix.experts.<e>.c_proj.bias        (C)
// Registered in this order (router first, then the experts in index order). Weight decay follows
// `ParameterLayout.defaultDecay`, so the router weight and the expert weights are decayed, biases not.
//
// One routing group = the `rows` tokens of one forward call (S = rows). The layer computes
//   h = x·W_rᵀ (S, E),  p_s = softmax(h_s),  lse_s = log Σ_e exp h_s,e,
// routes tokens to experts (token choice top-k with capacity, or expert choice), runs every expert
// once on its gathered tokens (one GEMM pair per expert, no capacity padding), and scatter-adds
//   y_s = Σ_{kept assignments (s, e)} g_s,e · Expert_e(x_s)    (a token with no kept assignment: y_s = 0).
// Auxiliary losses (B1.5–B1.6, B3), whose weighted sum the caller adds to the model loss
// (`auxiliaryLoss(_:)`) and whose gradient `backward` adds itself:
//   L_lb   = E · Σ_e f_e · P_e          f_e = share of tokens whose top-1 expert is e (a constant),
//                                       P_e = mean_s p_s,e
//   L_z    = mean_s lse_s²
//   L_loc  = mean_s H(p_s)              H(q) = −Σ_e q_e log q_e (LIMoE local entropy, minimised)
//   H_glob = H(P)                       (LIMoE global entropy, maximised)
//   aux    = w_lb·L_lb + w_z·L_z + w_loc·L_loc − w_glob·H_glob
//            (with a threshold τ the global term is w_glob·max(0, τ − H_glob) instead).
//
// Everything `forward` and `backward` touch comes from the Workspace at setup, integer buffers
// included (Workspace memory rebound to Int32), so a step allocates nothing.

import Compute
import Foundation

/// The routing and auxiliary-loss settings of a `MixtureOfExperts` layer. Defaults are what the
/// spec calls most likely for CLIP-UP (B4, B6): 8 experts, top-2 token choice with renormalised
/// gates, capacity factor 2 (AXLearn's rounding to a multiple of 4), w_lb = 0.01, w_z = 0.001,
/// no LIMoE entropy losses.
public struct MoEConfiguration: Codable, Hashable, Sendable {
    /// Who chooses.
    public enum Routing: String, Codable, Sendable, CaseIterable {
        /// Each token picks its top-k experts by router probability (ties → lower expert index).
        /// Capacity Cap per expert; positions are assigned in token order, all first choices before
        /// all second choices (AXLearn `Top2Gating`); an assignment at position ≥ Cap is dropped.
        case tokenChoice
        /// Each expert picks the min(Cap, S) tokens with the highest p_s,e (ties → earlier token),
        /// with gate g = p_s,e (not renormalised). A token may be taken by 0 … E experts; nothing is
        /// "dropped" (`topK`, `gates` are ignored). Sparse upcycling's choice for encoders (B2).
        case expertChoice
    }

    /// How token choice turns probabilities into gates.
    public enum Gates: String, Codable, Sendable, CaseIterable {
        /// g_i = p_s[e_i] / Σ_{j selected} p_s[e_j] (AXLearn, B1.2). The normalisation runs over the
        /// selected experts *before* dropping (gates are computed, then zeroed when over capacity),
        /// so a token with one dropped choice keeps a gate < 1 on the other. With top-1 the gate is
        /// exactly 1: the router then learns only through the auxiliary losses.
        case renormalized
        /// g_i = p_s[e_i], the raw softmax probability (Switch Transformer's top-1 convention): the
        /// router also learns through the gates.
        case probability
    }

    /// E, the number of experts (≥ 1). Spec: probably 8 for CLIP-UP (B4); 4 or 8 in the miniature (B6).
    public var experts: Int
    /// k, experts per token under token choice (1 … E; the spec uses 1 or 2, most likely 2).
    public var topK: Int
    /// cf in Cap = max(1, ⌊S·cf/E⌋), rounded up to a multiple of `capacityMultiple`. Default 2.0
    /// (AXLearn's train and eval default, B1.3); cf = E never drops under token choice.
    public var capacityFactor: Double
    /// Cap is rounded up to a multiple of this (AXLearn: 4); 1 = no rounding.
    public var capacityMultiple: Int
    /// Token choice (default, B1) or expert choice.
    public var routing: Routing
    /// Renormalised (default) or raw-probability gates, for token choice.
    public var gates: Gates
    /// w_lb, weight of L_lb = E·Σ_e f_e·P_e (default 0.01, Switch/GShard).
    public var loadBalanceWeight: Double
    /// w_z, weight of L_z = mean_s (logsumexp_e h_s,e)² (default 0.001, ST-MoE; AXLearn's layer default is 0).
    public var zLossWeight: Double
    /// w_loc, weight of the LIMoE local entropy L_loc = mean_s H(p_s), minimised (default 0; CLIP-UP uses none).
    public var localEntropyWeight: Double
    /// w_glob, weight of the LIMoE global entropy H(mean_s p_s), maximised: the loss term is
    /// −w_glob·H_glob (default 0; CLIP-UP uses none).
    public var globalEntropyWeight: Double
    /// τ: when set, the global term is w_glob·max(0, τ − H_glob) (LIMoE's thresholded form: no push
    /// once the mean routing distribution's entropy reaches τ nats). nil (default): −w_glob·H_glob.
    public var globalEntropyThreshold: Double?

    public init(
        experts: Int = 8, topK: Int = 2, capacityFactor: Double = 2, capacityMultiple: Int = 4,
        routing: Routing = .tokenChoice, gates: Gates = .renormalized,
        loadBalanceWeight: Double = 0.01, zLossWeight: Double = 0.001,
        localEntropyWeight: Double = 0, globalEntropyWeight: Double = 0, globalEntropyThreshold: Double? = nil
    ) {
        self.experts = experts
        self.topK = topK
        self.capacityFactor = capacityFactor
        self.capacityMultiple = capacityMultiple
        self.routing = routing
        self.gates = gates
        self.loadBalanceWeight = loadBalanceWeight
        self.zLossWeight = zLossWeight
        self.localEntropyWeight = localEntropyWeight
        self.globalEntropyWeight = globalEntropyWeight
        self.globalEntropyThreshold = globalEntropyThreshold
    }

    /// Cap = max(1, ⌊S·cf/E⌋) rounded up to a multiple of `capacityMultiple`, for S = `rows` tokens
    /// (the floor is taken of the Double S·cf/E, as AXLearn's int() does).
    public func capacity(rows: Int) -> Int {
        let raw = max(1, Int((Double(rows) * capacityFactor / Double(experts)).rounded(.down)))
        let m = max(1, capacityMultiple)
        return (raw + m - 1) / m * m
    }

    /// Assignments a token makes under token choice (k), or 0 under expert choice.
    var choicesPerToken: Int { routing == .tokenChoice ? topK : 0 }
}

/// What one forward pass's routing did, and the auxiliary losses' values (B1.8). All shares are of
/// the S tokens of the group.
public struct MoEStatistics: Sendable, Equatable {
    /// S, tokens in the group.
    public var tokens: Int
    /// Cap, the capacity per expert for S tokens.
    public var capacity: Int
    /// load_e = kept assignments of expert e / S, (E).
    public var expertLoad: [Double]
    /// f_e = share of tokens whose top-1 expert (argmax p_s, ties → lower index) is e, before dropping, (E).
    public var topChoiceFraction: [Double]
    /// P_e = mean_s p_s,e, (E).
    public var meanProbability: [Double]
    /// dispatch_n = share of tokens with exactly n kept assignments, n = 0 … k (token choice) or
    /// 0 … E (expert choice) (AXLearn's `dispatch_0/1/2`).
    public var dispatchShares: [Double]
    /// Assignments attempted: S·k under token choice, Σ_e min(Cap, S) under expert choice.
    public var attemptedAssignments: Int
    /// Assignments computed (Σ_e load_e·S): the rows the experts ran on.
    public var keptAssignments: Int
    /// Dropped / attempted assignments under token choice; 0 under expert choice (experts choose,
    /// nothing is attempted and then dropped: tokens no expert took are `dispatchShares[0]`).
    public var overCapacityRatio: Double
    /// L_lb = E·Σ_e f_e·P_e (1 at uniform routing).
    public var loadBalanceLoss: Double
    /// L_z = mean_s lse_s².
    public var zLoss: Double
    /// L_loc = mean_s H(p_s), the mean router entropy in nats (LIMoE's local entropy).
    public var localEntropy: Double
    /// H_glob = H(P), the entropy of the mean routing distribution in nats (LIMoE's global entropy).
    public var globalEntropy: Double
    /// w_lb·L_lb + w_z·L_z + w_loc·L_loc − w_glob·H_glob (or + w_glob·max(0, τ − H_glob) with a
    /// threshold), times the auxiliary scale (`setAuxiliaryScale`): the term to add to the model loss.
    public var auxiliaryLoss: Double

    /// mean_s H(p_s), the same number as `localEntropy`.
    public var routerEntropy: Double { localEntropy }
}

/// Mixture-of-experts MLP: a bias-free router and E expert `MLP`s (see the file header for the
/// parameter names and formulas).
public struct MixtureOfExperts: Sendable {
    public let width: Int  // C
    public let hiddenWidth: Int  // ratio·C, each expert's hidden width
    public let approximation: GELUApproximation
    public let configuration: MoEConfiguration
    public let router: Linear  // router: (E, C), no bias
    public let experts: [MLP]  // E experts, each c_fc (ratio·C, C) + c_proj (C, ratio·C)

    /// Registers `prefix.router.weight` and `prefix.experts.<e>.c_fc.*`, `prefix.experts.<e>.c_proj.*`
    /// for e = 0 … E−1. Each expert is an `MLP(prefix.experts.<e>, width:, ratio:, approximation:)`,
    /// so it computes exactly what the dense MLP does.
    public init(
        _ prefix: String, width: Int, ratio: Int = 4, approximation: GELUApproximation = .exact,
        configuration: MoEConfiguration, layout: inout ParameterLayout
    ) {
        let cfg = configuration
        // fatalError, not precondition: configurations come from users and must be checked in release builds.
        guard cfg.experts >= 1 else { fatalError("MixtureOfExperts: experts must be ≥ 1, got \(cfg.experts)") }
        guard cfg.routing == .expertChoice || (1...cfg.experts).contains(cfg.topK) else {
            fatalError("MixtureOfExperts: topK must be in 1…\(cfg.experts), got \(cfg.topK)")
        }
        guard cfg.capacityFactor > 0, cfg.capacityMultiple >= 1 else {
            fatalError("MixtureOfExperts: capacityFactor must be > 0 and capacityMultiple ≥ 1, got \(cfg.capacityFactor), \(cfg.capacityMultiple)")
        }
        self.width = width
        self.hiddenWidth = ratio * width
        self.approximation = approximation
        self.configuration = cfg
        router = Linear(prefix + ".router", inFeatures: width, outFeatures: cfg.experts, bias: false, layout: &layout)
        experts = (0..<cfg.experts).map {
            MLP("\(prefix).experts.\($0)", width: width, ratio: ratio, approximation: approximation, layout: &layout)
        }
    }

    /// A layer trained from scratch: each expert gets the dense MLP's default (PyTorch) initialisation,
    /// drawn from streams named after its own parameters (so experts differ), and the router
    /// N(0, 0.02²) as in upcycling.
    public func initializeDefault<T>(_ store: ParameterStore<T>, seed: UInt64) {
        store.initialize(router.weight, .normal(std: 0.02), seed: seed)
        for expert in experts { expert.initializeDefault(store, seed: seed) }
    }

    /// Sparse upcycling (B2, B6 step 2): every expert becomes an exact copy of `dense` (weights and
    /// biases) as stored in `source`, and the router is drawn from N(0, routerStd²) with `seed`
    /// (`ParameterStore.initialize`, stream named after `prefix.router.weight`). `source` may be
    /// `store` itself. With `copyOptimizerState`, the dense MLP's AdamW moments are copied into every
    /// expert too and the router's are zeroed (the B6 ablation); otherwise moments are left as they are.
    /// Traps unless `dense` has this layer's width, hidden width and GELU approximation.
    public func upcycle<T>(
        from dense: MLP, source: ParameterStore<T>, into store: ParameterStore<T>, routerSeed seed: UInt64,
        routerStd: Double = 0.02, copyOptimizerState: Bool = false
    ) {
        guard dense.width == width, dense.hiddenWidth == hiddenWidth, dense.approximation == approximation else {
            fatalError(
                "MixtureOfExperts.upcycle: dense MLP (\(dense.width), \(dense.hiddenWidth), \(dense.approximation)) "
                    + "does not match the experts (\(width), \(hiddenWidth), \(approximation))")
        }
        func copy(_ from: ParameterView, _ to: ParameterView) {
            guard from.shape == to.shape else { fatalError("MixtureOfExperts.upcycle: \(from.name) \(from.shape) vs \(to.name) \(to.shape)") }
            store.value(to).update(from: source.value(from), count: to.count)
            if copyOptimizerState {
                (store.firstMoment.pointer + to.offset).update(from: source.firstMoment.pointer + from.offset, count: to.count)
                (store.secondMoment.pointer + to.offset).update(from: source.secondMoment.pointer + from.offset, count: to.count)
            }
        }
        func copy(_ from: Linear, _ to: Linear) {
            copy(from.weight, to.weight)
            guard (from.bias == nil) == (to.bias == nil) else { fatalError("MixtureOfExperts.upcycle: bias mismatch for \(to.weight.name)") }
            if let fb = from.bias, let tb = to.bias { copy(fb, tb) }
        }
        for expert in experts {
            copy(dense.fc, expert.fc)
            copy(dense.proj, expert.proj)
        }
        store.initialize(router.weight, .normal(std: routerStd), seed: seed)
        if copyOptimizerState {
            (store.firstMoment.pointer + router.weight.offset).update(repeating: 0, count: router.weight.count)
            (store.secondMoment.pointer + router.weight.offset).update(repeating: 0, count: router.weight.count)
        }
    }

    // MARK: - Buffers

    /// Offsets into `Buffers.statistics` (Doubles).
    @usableFromInline enum Stat {
        @usableFromInline static let tokens = 0, capacity = 1, attempted = 2, kept = 3
        @usableFromInline static let loadBalance = 4, zLoss = 5, localEntropy = 6, globalEntropy = 7, auxiliary = 8
        @usableFromInline static let globalActive = 9  // 1 when the global-entropy term has a gradient
        @usableFromInline static let scale = 10  // the auxiliary losses' share, 1/G for G routing groups (`setAuxiliaryScale`)
        @usableFromInline static let routed = 11  // how many rows `routedRows` lists; −1: every row is routed (`setRoutedRows`)
        @usableFromInline static let perExpert = 16  // load (E), f (E), P (E), dispatch shares (E + 1)
        @usableFromInline static func count(experts e: Int) -> Int { perExpert + 4 * e + 1 }
    }

    /// Everything one layer's forward keeps for backward and for its statistics, plus views of the
    /// shared backward scratch. Shapes use S = `rows`, E experts, k = topK, C = width.
    public struct Buffers<T: Scalar> {
        public let configuration: MoEConfiguration  // the layer's, for Cap when resized
        public let rows: Int  // S: the tokens of this forward call, one routing group
        public let maxRows: Int  // the rows the buffers were made for
        public let capacity: Int  // Cap for `rows` tokens
        public let slotStride: Int  // slots reserved per expert: min(Cap(maxRows), maxRows) ≥ min(Cap, S)
        public let logits: UnsafeMutablePointer<T>  // (rows, E) router logits h
        public let probabilities: UnsafeMutablePointer<T>  // (rows, E) p = softmax(h)
        public let logSumExp: UnsafeMutablePointer<T>  // (rows) lse_s = log Σ_e exp h_s,e
        /// Token choice only: the expert of each token's i-th choice, by decreasing p (ties → lower index).
        public let choices: UnsafeMutablePointer<Int32>  // (rows, k)
        /// Token choice only: the position of each assignment in its expert's queue; kept iff < capacity.
        public let positions: UnsafeMutablePointer<Int32>  // (rows, k)
        /// Token choice only: each assignment's gate before dropping.
        public let gates: UnsafeMutablePointer<T>  // (rows, k)
        public let attempted: UnsafeMutablePointer<Int32>  // (E) assignments attempted per expert (token choice)
        public let expertCounts: UnsafeMutablePointer<Int32>  // (E) kept assignments per expert
        public let tokenCounts: UnsafeMutablePointer<Int32>  // (rows) kept assignments per token
        /// The token of each kept slot: expert e's tokens are slotTokens[e·slotStride ..< e·slotStride + expertCounts[e]],
        /// in position order (token choice) or token order (expert choice).
        public let slotTokens: UnsafeMutablePointer<Int32>  // (E, slotStride)
        public let slotGates: UnsafeMutablePointer<T>  // (E, slotStride) the gate of each kept slot
        public let dispatched: UnsafeMutablePointer<T>  // (E·slotStride, C) gathered expert inputs, kept for backward
        public let expertOutputs: UnsafeMutablePointer<T>  // (E·slotStride, C) Expert_e(x_s), kept for the gate gradient
        public let experts: [MLP.Buffers<T>]  // E × slotStride rows (pre-activations per expert; shared GELU scratch)
        public let statistics: UnsafeMutablePointer<Double>  // (Stat.count) written by forward
        public let dLogits: UnsafeMutablePointer<T>  // (rows, E) backward scratch: dL/dp, then dL/dh
        public let dSlotGates: UnsafeMutablePointer<T>  // (E, slotStride) backward scratch: dL/dg per kept slot
        public let dExpertOutput: UnsafeMutablePointer<T>  // (slotStride, C) backward scratch: g·dy gathered
        public let dExpertInput: UnsafeMutablePointer<T>  // (slotStride, C) backward scratch: an expert's input gradient
        public let routedRows: UnsafeMutablePointer<Int32>  // (maxRows) the rows routed when not all are (`setRoutedRows`)
        public let compactInput: UnsafeMutablePointer<T>  // (maxRows, C) the routed rows of x, gathered, kept for backward
        public let compactOutput: UnsafeMutablePointer<T>  // (maxRows, C) scratch: their outputs
        public let compactGradient: UnsafeMutablePointer<T>  // (maxRows, C) backward scratch: dy of the routed rows
        public let compactInputGradient: UnsafeMutablePointer<T>  // (maxRows, C) backward scratch: their dx

        /// The same buffers used for fewer rows (a smaller routing group; Cap is recomputed for it).
        public func resized(rows newRows: Int) -> Buffers {
            precondition(newRows <= maxRows, "MixtureOfExperts.Buffers: \(newRows) rows exceed capacity \(maxRows)")
            return Buffers(
                configuration: configuration, rows: newRows, maxRows: maxRows, capacity: configuration.capacity(rows: newRows),
                slotStride: slotStride,
                logits: logits, probabilities: probabilities, logSumExp: logSumExp, choices: choices, positions: positions,
                gates: gates, attempted: attempted, expertCounts: expertCounts, tokenCounts: tokenCounts,
                slotTokens: slotTokens, slotGates: slotGates, dispatched: dispatched, expertOutputs: expertOutputs,
                experts: experts, statistics: statistics, dLogits: dLogits, dSlotGates: dSlotGates,
                dExpertOutput: dExpertOutput, dExpertInput: dExpertInput, routedRows: routedRows, compactInput: compactInput,
                compactOutput: compactOutput, compactGradient: compactGradient, compactInputGradient: compactInputGradient)
        }
    }

    /// Workspace memory rebound to `count` Int32s (allocated at setup like every other buffer).
    static func allocateIndices<T>(_ count: Int, workspace: Workspace<T>, label: String) -> UnsafeMutablePointer<Int32> {
        let elements = max(1, (count * MemoryLayout<Int32>.stride + MemoryLayout<T>.stride - 1) / MemoryLayout<T>.stride)
        return UnsafeMutableRawPointer(workspace.allocate(elements, label: label)).bindMemory(to: Int32.self, capacity: max(1, count))
    }

    /// Workspace memory rebound to `count` Doubles.
    static func allocateDoubles<T>(_ count: Int, workspace: Workspace<T>, label: String) -> UnsafeMutablePointer<Double> {
        let elements = max(1, (count * MemoryLayout<Double>.stride + MemoryLayout<T>.stride - 1) / MemoryLayout<T>.stride)
        return UnsafeMutableRawPointer(workspace.allocate(elements, label: label)).bindMemory(to: Double.self, capacity: max(1, count))
    }

    /// Buffers for groups of up to `rows` tokens, sized for that many rows' capacity: each expert
    /// has min(Cap(rows), rows) slots for its gathered inputs, outputs and MLP pre-activations
    /// (E·min(Cap, S) rows in all: cf·S under token choice with cf ≤ E). GELU's output and the backward
    /// scratch are the shared `MLP` scratch, plus shared scratch for the gathered output and input gradients.
    public func makeBuffers<T>(rows: Int, workspace: Workspace<T>, label: String) -> Buffers<T> {
        let e = configuration.experts, c = width, k = max(1, configuration.choicesPerToken)
        let stride = min(configuration.capacity(rows: rows), rows)
        let buffers = Buffers<T>(
            configuration: configuration, rows: rows, maxRows: rows, capacity: configuration.capacity(rows: rows), slotStride: stride,
            logits: workspace.allocate(rows * e, label: label + ".router.logits"),
            probabilities: workspace.allocate(rows * e, label: label + ".router.probabilities"),
            logSumExp: workspace.allocate(rows, label: label + ".router.lse"),
            choices: Self.allocateIndices(rows * k, workspace: workspace, label: label + ".choices"),
            positions: Self.allocateIndices(rows * k, workspace: workspace, label: label + ".positions"),
            gates: workspace.allocate(rows * k, label: label + ".gates"),
            attempted: Self.allocateIndices(e, workspace: workspace, label: label + ".attempted"),
            expertCounts: Self.allocateIndices(e, workspace: workspace, label: label + ".expert_counts"),
            tokenCounts: Self.allocateIndices(rows, workspace: workspace, label: label + ".token_counts"),
            slotTokens: Self.allocateIndices(e * stride, workspace: workspace, label: label + ".slot_tokens"),
            slotGates: workspace.allocate(e * stride, label: label + ".slot_gates"),
            dispatched: workspace.allocate(e * stride * c, label: label + ".dispatched"),
            expertOutputs: workspace.allocate(e * stride * c, label: label + ".expert_out"),
            experts: experts.enumerated().map {
                $0.element.makeBuffers(rows: stride, workspace: workspace, label: "\(label).experts.\($0.offset)")
            },
            statistics: Self.allocateDoubles(Stat.count(experts: e), workspace: workspace, label: label + ".statistics"),
            dLogits: workspace.gradientScratch(rows * e, label: "scratch.moe.dlogits"),
            dSlotGates: workspace.gradientScratch(e * stride, label: "scratch.moe.dgates"),
            dExpertOutput: workspace.gradientScratch(stride * c, label: "scratch.moe.dout"),
            dExpertInput: workspace.gradientScratch(stride * c, label: "scratch.moe.din"),
            routedRows: Self.allocateIndices(rows, workspace: workspace, label: label + ".routed_rows"),
            compactInput: workspace.allocate(rows * c, label: label + ".routed_input"),
            compactOutput: workspace.scratch(rows * c, label: "scratch.moe.routed_out"),
            compactGradient: workspace.gradientScratch(rows * c, label: "scratch.moe.routed_dy"),
            compactInputGradient: workspace.gradientScratch(rows * c, label: "scratch.moe.routed_dx"))
        buffers.statistics[Stat.scale] = 1
        buffers.statistics[Stat.routed] = -1
        return buffers
    }

    // MARK: - Forward

    /// y_s = Σ_{kept (s, e)} g_s,e · Expert_e(x_s) over the S = `buffers.rows` tokens of one group;
    /// also fills the routing buffers and the statistics (`statistics(_:)`, `auxiliaryLoss(_:)`).
    /// - x: (rows, C); y: (rows, C), overwritten.
    /// With `setRoutedRows`, only the listed rows form the group (capacity, routing, statistics
    /// and losses are theirs) and every other row's output is 0: the text tower's padding after
    /// the end-of-text token, which the pooled feature never sees, takes no expert's capacity.
    @inlinable
    public func forward<T: Scalar>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, buffers b: Buffers<T>, params: ParameterStore<T>) {
        let n = Int(b.statistics[Stat.routed]), c = width
        guard n >= 0 && n < b.rows else {
            forwardGroup(x, y, buffers: b, params: params)
            return
        }
        for j in 0..<n { (b.compactInput + j * c).update(from: x + Int(b.routedRows[j]) * c, count: c) }
        vectorFill(0, y, count: b.rows * c)
        guard n > 0 else { return }
        forwardGroup(UnsafePointer(b.compactInput), b.compactOutput, buffers: b.resized(rows: n), params: params)
        for j in 0..<n { (y + Int(b.routedRows[j]) * c).update(from: b.compactOutput + j * c, count: c) }
    }

    /// Routes only `rows` (row indices of the next forward passes' input, `count` of them, each
    /// below `buffers.rows`), or every row again when `rows` is nil. Stays in force until set again.
    public func setRoutedRows<T>(_ rows: UnsafePointer<Int32>?, count: Int, buffers: Buffers<T>) {
        guard let rows else {
            buffers.statistics[Stat.routed] = -1
            return
        }
        precondition(count <= buffers.maxRows, "MixtureOfExperts.setRoutedRows: \(count) rows exceed \(buffers.maxRows)")
        buffers.routedRows.update(from: rows, count: count)
        buffers.statistics[Stat.routed] = Double(count)
    }

    /// The forward pass over every row of `b` as one group.
    @inlinable
    func forwardGroup<T: Scalar>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, buffers b: Buffers<T>, params: ParameterStore<T>) {
        let s = b.rows, e = configuration.experts, c = width
        router.forward(x, b.logits, rows: s, params: params)
        logSumExpRows(b.logits, b.logSumExp, rows: s, cols: e)
        softmaxRowsForward(b.logits, b.probabilities, rows: s, cols: e)
        switch configuration.routing {
        case .tokenChoice: routeTokenChoice(b)
        case .expertChoice: routeExpertChoice(b)
        }
        vectorFill(0, y, count: s * c)
        for ex in 0..<e {
            let n = Int(b.expertCounts[ex])
            if n == 0 { continue }
            let base = ex * b.slotStride
            let input = b.dispatched + base * c, output = b.expertOutputs + base * c
            for j in 0..<n { (input + j * c).update(from: x + Int(b.slotTokens[base + j]) * c, count: c) }
            experts[ex].forward(input, output, buffers: b.experts[ex].resized(rows: n), params: params)
            for j in 0..<n {
                let g = b.slotGates[base + j], yr = y + Int(b.slotTokens[base + j]) * c, o = output + j * c
                for i in 0..<c { yr[i] += g * o[i] }
            }
        }
        computeStatistics(b)
    }

    /// Token choice (B1.2–B1.3): top-k per token, gates, then positions choice by choice in token order.
    @inlinable
    func routeTokenChoice<T: Scalar>(_ b: Buffers<T>) {
        let s = b.rows, e = configuration.experts, k = configuration.topK, cap = b.capacity
        let renormalize = configuration.gates == .renormalized
        for t in 0..<s {
            let p = b.probabilities + t * e, chosen = b.choices + t * k
            var total: T = 0
            for i in 0..<k {
                var best = -1
                var bestP: T = 0
                for ex in 0..<e {
                    var taken = false
                    for j in 0..<i where Int(chosen[j]) == ex { taken = true }
                    if taken { continue }
                    if best < 0 || p[ex] > bestP { best = ex; bestP = p[ex] }  // strict: ties keep the lower index
                }
                chosen[i] = Int32(best)
                total += bestP
            }
            for i in 0..<k {
                let pi = p[Int(chosen[i])]
                b.gates[t * k + i] = renormalize ? pi / total : pi
            }
        }
        for ex in 0..<e { b.attempted[ex] = 0 }
        for t in 0..<s { b.tokenCounts[t] = 0 }
        // All first choices, in token order, then all second choices, …: position = assignments
        // already queued on that expert.
        for i in 0..<k {
            for t in 0..<s {
                let ex = Int(b.choices[t * k + i]), pos = Int(b.attempted[ex])
                b.positions[t * k + i] = Int32(pos)
                b.attempted[ex] = Int32(pos + 1)
                if pos < cap {
                    b.slotTokens[ex * b.slotStride + pos] = Int32(t)
                    b.slotGates[ex * b.slotStride + pos] = b.gates[t * k + i]
                    b.tokenCounts[t] += 1
                }
            }
        }
        for ex in 0..<e { b.expertCounts[ex] = Int32(min(Int(b.attempted[ex]), cap)) }
    }

    /// Expert choice: each expert keeps the min(Cap, S) best tokens by (p_s,e, earlier token first),
    /// found with a min-heap of that size, then listed in token order.
    @inlinable
    func routeExpertChoice<T: Scalar>(_ b: Buffers<T>) {
        let s = b.rows, e = configuration.experts, keep = min(b.capacity, s)
        for t in 0..<s { b.tokenCounts[t] = 0 }
        for ex in 0..<e {
            if keep == 0 {  // an empty group
                b.expertCounts[ex] = 0
                b.attempted[ex] = 0
                continue
            }
            let heap = b.slotTokens + ex * b.slotStride, p = b.probabilities + ex
            // better(a, b): a ranks above b (higher probability; ties → the earlier token).
            @inline(__always) func better(_ a: Int32, _ c: Int32) -> Bool {
                let pa = p[Int(a) * e], pc = p[Int(c) * e]
                return pa > pc || (pa == pc && a < c)
            }
            @inline(__always) func siftDown(_ start: Int, _ n: Int) {
                var i = start
                while true {
                    let l = 2 * i + 1, r = l + 1
                    var worst = i
                    if l < n && better(heap[worst], heap[l]) { worst = l }
                    if r < n && better(heap[worst], heap[r]) { worst = r }
                    if worst == i { return }
                    (heap[i], heap[worst]) = (heap[worst], heap[i])
                    i = worst
                }
            }
            // A min-heap (root = the worst kept token) of the first `keep` tokens, then the rest.
            for t in 0..<keep { heap[t] = Int32(t) }
            var i = keep / 2 - 1
            while i >= 0 { siftDown(i, keep); i -= 1 }
            for t in keep..<s where better(Int32(t), heap[0]) {
                heap[0] = Int32(t)
                siftDown(0, keep)
            }
            // Exactly the tokens ranking at or above the root, in token order (the order is total).
            let threshold = heap[0]
            var n = 0
            for t in 0..<s where n < keep && (Int32(t) == threshold || better(Int32(t), threshold)) {
                heap[n] = Int32(t)
                b.slotGates[ex * b.slotStride + n] = p[t * e]
                b.tokenCounts[t] += 1
                n += 1
            }
            b.expertCounts[ex] = Int32(n)
            b.attempted[ex] = Int32(n)
        }
    }

    /// Fills `buffers.statistics`: loads, f, P, dispatch counts and the auxiliary losses (Double sums).
    @inlinable
    func computeStatistics<T: Scalar>(_ b: Buffers<T>) {
        let s = b.rows, e = configuration.experts, cfg = configuration
        let st = b.statistics, load = st + Stat.perExpert, f = load + e, meanP = f + e, dispatch = meanP + e
        for i in 0..<(4 * e + 1) { load[i] = 0 }
        var z = 0.0, local = 0.0, attempted = 0, kept = 0
        for t in 0..<s {
            let p = b.probabilities + t * e, h = b.logits + t * e, lse = Double(b.logSumExp[t])
            // Top-1 expert: the first choice under token choice, the argmax (ties → lower index) otherwise.
            var top = 0
            if cfg.routing == .tokenChoice {
                top = Int(b.choices[t * cfg.topK])
            } else {
                for ex in 1..<e where p[ex] > p[top] { top = ex }
            }
            f[top] += 1
            var entropy = 0.0
            for ex in 0..<e {
                let pe = Double(p[ex])
                meanP[ex] += pe
                entropy -= pe * (Double(h[ex]) - lse)  // −p·log p with log p = h − lse
            }
            local += entropy
            z += lse * lse
            dispatch[Int(b.tokenCounts[t])] += 1
        }
        for ex in 0..<e {
            attempted += Int(b.attempted[ex])
            kept += Int(b.expertCounts[ex])
        }
        if cfg.routing == .tokenChoice { attempted = s * cfg.topK }
        let count = Double(max(1, s))
        var lb = 0.0, global = 0.0
        for ex in 0..<e {
            load[ex] = Double(b.expertCounts[ex]) / count
            f[ex] /= count
            meanP[ex] /= count
            lb += f[ex] * meanP[ex]
            if meanP[ex] > 0 { global -= meanP[ex] * log(meanP[ex]) }
        }
        for n in 0...e { dispatch[n] /= count }
        lb *= Double(e)
        z /= count
        local /= count
        var globalTerm = -cfg.globalEntropyWeight * global, globalActive = 1.0
        if let tau = cfg.globalEntropyThreshold {
            globalActive = global < tau ? 1 : 0
            globalTerm = cfg.globalEntropyWeight * max(0, tau - global)
        }
        st[Stat.tokens] = Double(s)
        st[Stat.capacity] = Double(b.capacity)
        st[Stat.attempted] = Double(attempted)
        st[Stat.kept] = Double(kept)
        st[Stat.loadBalance] = lb
        st[Stat.zLoss] = z
        st[Stat.localEntropy] = local
        st[Stat.globalEntropy] = global
        st[Stat.globalActive] = globalActive
        st[Stat.auxiliary] = st[Stat.scale] * (cfg.loadBalanceWeight * lb + cfg.zLossWeight * z + cfg.localEntropyWeight * local + globalTerm)
    }

    /// Scales this layer's auxiliary losses, value and gradient, by `scale` (1 until set): a
    /// trainer whose batch is routed as G groups (batch-split threads × ranks, one forward call
    /// each) sets 1/G in every group's buffers, so the sum over groups is the mean of the groups'
    /// losses, as AXLearn averages over groups. The weights themselves stay the configuration's.
    public func setAuxiliaryScale<T>(_ scale: Double, buffers: Buffers<T>) { buffers.statistics[Stat.scale] = scale }

    /// The weighted auxiliary loss of the last forward pass, w_lb·L_lb + w_z·L_z + w_loc·L_loc − w_glob·H_glob
    /// (thresholded form with τ), times the auxiliary scale: add it to the model loss. Reads one
    /// number; allocates nothing.
    public func auxiliaryLoss<T>(_ buffers: Buffers<T>) -> Double { buffers.statistics[Stat.auxiliary] }

    /// The routing statistics and auxiliary-loss values of the last forward pass on `buffers`.
    /// Builds small arrays: call it when logging, not inside the step (forward itself only fills a
    /// fixed buffer).
    public func statistics<T>(_ buffers: Buffers<T>) -> MoEStatistics {
        let st = buffers.statistics, e = configuration.experts
        let load = st + Stat.perExpert, f = load + e, meanP = f + e, dispatch = meanP + e
        let maxAssigned = configuration.routing == .tokenChoice ? configuration.topK : e
        let attempted = Int(st[Stat.attempted]), kept = Int(st[Stat.kept])
        return MoEStatistics(
            tokens: Int(st[Stat.tokens]), capacity: Int(st[Stat.capacity]),
            expertLoad: Array(UnsafeBufferPointer(start: load, count: e)),
            topChoiceFraction: Array(UnsafeBufferPointer(start: f, count: e)),
            meanProbability: Array(UnsafeBufferPointer(start: meanP, count: e)),
            dispatchShares: Array(UnsafeBufferPointer(start: dispatch, count: maxAssigned + 1)),
            attemptedAssignments: attempted, keptAssignments: kept,
            overCapacityRatio: configuration.routing == .tokenChoice && attempted > 0 ? Double(attempted - kept) / Double(attempted) : 0,
            loadBalanceLoss: st[Stat.loadBalance], zLoss: st[Stat.zLoss],
            localEntropy: st[Stat.localEntropy], globalEntropy: st[Stat.globalEntropy],
            auxiliaryLoss: st[Stat.auxiliary])
    }

    // MARK: - Backward

    /// Backward pass for the loss Σ dy ⊙ y + aux (aux as in `auxiliaryLoss`): adds the gradients of
    /// every expert's parameters and of the router weight into the store, and the input gradient into
    /// `dx` when `accumulateInput` (the default) or overwrites `dx` with it when false (MLP's semantics).
    /// The router gradient flows through the gates (dL/dg = ⟨dy_s, Expert_e(x_s)⟩ per kept assignment,
    /// then through renormalisation and softmax; dropped assignments have gate 0 and no gradient, but
    /// their probability still enters the kept gates' normaliser) and through the auxiliary losses
    /// (f_e constant; dL_z/dh_s,e = 2·lse_s·p_s,e/S). Reads what `forward` kept in `buffers`.
    /// - dy: (rows, C); x: (rows, C) the forward input; dx: (rows, C).
    @inlinable
    public func backward<T: Scalar>(
        _ dy: UnsafePointer<T>, x: UnsafePointer<T>, dx: UnsafeMutablePointer<T>, buffers b: Buffers<T>,
        params: ParameterStore<T>, accumulateInput: Bool = true
    ) {
        let n = Int(b.statistics[Stat.routed]), c = width
        guard n >= 0 && n < b.rows else {
            backwardGroup(dy, x: x, dx: dx, buffers: b, params: params, accumulateInput: accumulateInput)
            return
        }
        // Only the routed rows depend on the layer; the others' input gradient is 0.
        if !accumulateInput { vectorFill(0, dx, count: b.rows * c) }
        guard n > 0 else { return }
        for j in 0..<n { (b.compactGradient + j * c).update(from: dy + Int(b.routedRows[j]) * c, count: c) }
        backwardGroup(
            UnsafePointer(b.compactGradient), x: UnsafePointer(b.compactInput), dx: b.compactInputGradient, buffers: b.resized(rows: n), params: params,
            accumulateInput: false)
        for j in 0..<n {
            let target = dx + Int(b.routedRows[j]) * c, source = b.compactInputGradient + j * c
            for i in 0..<c { target[i] += source[i] }
        }
    }

    /// The backward pass over every row of `b` as one group.
    @inlinable
    func backwardGroup<T: Scalar>(
        _ dy: UnsafePointer<T>, x: UnsafePointer<T>, dx: UnsafeMutablePointer<T>, buffers b: Buffers<T>,
        params: ParameterStore<T>, accumulateInput: Bool
    ) {
        let s = b.rows, e = configuration.experts, c = width, cfg = configuration
        if !accumulateInput { vectorFill(0, dx, count: s * c) }
        // Experts: dOut_j = g_j·dy[t_j], dg_j = ⟨dy[t_j], out_j⟩; the input gradient is scatter-added.
        for ex in 0..<e {
            let n = Int(b.expertCounts[ex])
            if n == 0 { continue }
            let base = ex * b.slotStride
            let input = b.dispatched + base * c, output = b.expertOutputs + base * c
            for j in 0..<n {
                let dyr = dy + Int(b.slotTokens[base + j]) * c, g = b.slotGates[base + j], d = b.dExpertOutput + j * c
                b.dSlotGates[base + j] = dot(dyr, output + j * c, count: c)
                for i in 0..<c { d[i] = g * dyr[i] }
            }
            experts[ex].backward(
                b.dExpertOutput, x: input, dx: b.dExpertInput, buffers: b.experts[ex].resized(rows: n), params: params,
                accumulateInput: false)
            for j in 0..<n {
                let dxr = dx + Int(b.slotTokens[base + j]) * c, d = b.dExpertInput + j * c
                for i in 0..<c { dxr[i] += d[i] }
            }
        }
        // dL/dp: the gates …
        let dp = b.dLogits
        dp.update(repeating: 0, count: s * e)
        switch cfg.routing {
        case .tokenChoice:
            let k = cfg.topK
            for t in 0..<s {
                let p = b.probabilities + t * e, dpr = dp + t * e
                if cfg.gates == .probability {
                    for i in 0..<k where Int(b.positions[t * k + i]) < b.capacity {
                        let ex = Int(b.choices[t * k + i])
                        dpr[ex] += b.dSlotGates[ex * b.slotStride + Int(b.positions[t * k + i])]
                    }
                } else {
                    // g_i = p_i/Z over the selected experts: dp_j = (dg_j − Σ_i dg_i·g_i)/Z, dg = 0 when dropped.
                    var total: T = 0, weighted: T = 0
                    for i in 0..<k {
                        let ex = Int(b.choices[t * k + i]), pos = Int(b.positions[t * k + i])
                        total += p[ex]
                        if pos < b.capacity { weighted += b.dSlotGates[ex * b.slotStride + pos] * b.gates[t * k + i] }
                    }
                    for i in 0..<k {
                        let ex = Int(b.choices[t * k + i]), pos = Int(b.positions[t * k + i])
                        let dg = pos < b.capacity ? b.dSlotGates[ex * b.slotStride + pos] : 0
                        dpr[ex] += (dg - weighted) / total
                    }
                }
            }
        case .expertChoice:
            for ex in 0..<e {
                let base = ex * b.slotStride
                for j in 0..<Int(b.expertCounts[ex]) { dp[Int(b.slotTokens[base + j]) * e + ex] += b.dSlotGates[base + j] }
            }
        }
        // … and the auxiliary losses that depend on p (per-row constants drop out of the softmax backward):
        //   w_lb·L_lb:      dp_s,e += w_lb·E·f_e/S
        //   w_loc·L_loc:    dp_s,e += −w_loc·(log p_s,e + 1)/S
        //   −w_glob·H_glob: dp_s,e += w_glob·(log P_e + 1)/S   (with τ: only while H_glob < τ)
        let st = b.statistics, f = st + Stat.perExpert + e, meanP = f + e
        let invS = st[Stat.scale] / Double(max(1, s))  // the auxiliary scale (1 unless set) folded in
        let wlb = cfg.loadBalanceWeight * Double(e) * invS, wloc = cfg.localEntropyWeight * invS
        let wglob = cfg.globalEntropyWeight * invS * st[Stat.globalActive]
        if wlb != 0 || wloc != 0 || wglob != 0 {
            for t in 0..<s {
                let dpr = dp + t * e, h = b.logits + t * e, lse = b.logSumExp[t]
                for ex in 0..<e {
                    var v = wlb * f[ex]
                    if wloc != 0 { v -= wloc * (Double(h[ex] - lse) + 1) }
                    if wglob != 0 && meanP[ex] > 0 { v += wglob * (log(meanP[ex]) + 1) }
                    dpr[ex] += T(v)
                }
            }
        }
        // dh = softmax backward of dp, plus the z-loss: dh_s,e += w_z·2·lse_s·p_s,e/S.
        softmaxRowsBackwardInPlace(dp, y: b.probabilities, rows: s, cols: e)
        let wz = T(2 * cfg.zLossWeight * invS)
        if wz != 0 {
            for t in 0..<s {
                let dpr = dp + t * e, p = b.probabilities + t * e, scale = wz * b.logSumExp[t]
                for ex in 0..<e { dpr[ex] += scale * p[ex] }
            }
        }
        router.backward(dp, x: x, dx: dx, rows: s, params: params, accumulateInput: true)
    }

    // MARK: - Accounting

    /// The most assignments the experts can compute for S = `rows` tokens: min(S·k, E·min(Cap, S))
    /// under token choice, E·min(Cap, S) under expert choice.
    public func maxAssignments(rows: Int) -> Int {
        let perExpert = min(configuration.capacity(rows: rows), rows), e = configuration.experts
        return configuration.routing == .tokenChoice ? min(rows * configuration.topK, e * perExpert) : e * perExpert
    }

    /// Forward FLOPs counted as `Linear` counts them (2 per multiply–add): the router, 2·S·C·E, plus
    /// one expert MLP per kept assignment (`MoEStatistics.keptAssignments`). Experts run on exactly
    /// their gathered rows, so capacity padding is never computed and costs nothing.
    public func forwardFlops(rows: Int, keptAssignments: Int) -> Double {
        router.forwardFlops(rows: rows) + experts[0].forwardFlops(rows: keptAssignments)
    }

    /// Forward FLOPs when every assignment capacity allows is kept (`maxAssignments(rows:)`): the
    /// nominal cost, S·k expert rows under token choice with nothing dropped.
    public func forwardFlops(rows: Int) -> Double { forwardFlops(rows: rows, keptAssignments: maxAssignments(rows: rows)) }
}
