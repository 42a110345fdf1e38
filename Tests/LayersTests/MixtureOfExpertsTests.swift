// The mixture-of-experts MLP: gradients (Double, central differences, routing kept away from ties
// so a perturbation never flips a decision), routing properties against a brute-force
// reimplementation, statistics on a hand-counted case, upcycling exactness, and the sealed workspace.

import Compute
import Foundation
import Layers
import Testing
import TestSupport

/// A routing configuration under test, with a readable name.
struct MoECase: Sendable, CustomTestStringConvertible {
    let name: String
    let configuration: MoEConfiguration
    let seed: UInt64
    /// Whether assignments are dropped (token choice) or tokens left untaken (expert choice).
    var drops = true
    var testDescription: String { name }
}

/// Every auxiliary-loss weight non-zero (0.1), so their gradients are checked too.
func auxWeighted(_ c: MoEConfiguration, threshold: Double? = nil) -> MoEConfiguration {
    var c = c
    c.loadBalanceWeight = 0.1
    c.zLossWeight = 0.1
    c.localEntropyWeight = 0.1
    c.globalEntropyWeight = 0.1
    c.globalEntropyThreshold = threshold
    return c
}

/// The smallest gap between routing-relevant probabilities after a forward pass: under token choice
/// between each token's consecutive top-(k+1) sorted probabilities; under expert choice between each
/// expert's Cap-th and (Cap+1)-th token and each token's top-2 (the argmax decides f_e). Central
/// differences with h = 1e-5 move probabilities by O(1e-5), so a margin of 1e-3 means no flips.
func routingMargin(_ moe: MixtureOfExperts, _ b: MixtureOfExperts.Buffers<Double>) -> Double {
    let s = b.rows, e = moe.configuration.experts
    var margin = Double.infinity
    let k = moe.configuration.routing == .tokenChoice ? moe.configuration.topK : 1
    for t in 0..<s {
        let sorted = (0..<e).map { b.probabilities[t * e + $0] }.sorted(by: >)
        for i in 0..<min(k, e - 1) { margin = min(margin, sorted[i] - sorted[i + 1]) }
    }
    if moe.configuration.routing == .expertChoice {
        let keep = min(b.capacity, s)
        for ex in 0..<e where keep < s {
            let sorted = (0..<s).map { b.probabilities[$0 * e + ex] }.sorted(by: >)
            margin = min(margin, sorted[keep - 1] - sorted[keep])
        }
    }
    return margin
}

@Suite("Mixture of experts")
struct MixtureOfExpertsTests {
    static let gradientCases: [MoECase] = [
        MoECase(
            name: "token choice top-2, renormalised, dropping (cf 1)",
            configuration: auxWeighted(MoEConfiguration(experts: 4, topK: 2, capacityFactor: 1, capacityMultiple: 1)), seed: 11),
        MoECase(
            name: "token choice top-2, renormalised, no drops (cf E, multiple 4)",
            configuration: auxWeighted(MoEConfiguration(experts: 4, topK: 2, capacityFactor: 4, capacityMultiple: 4)), seed: 12,
            drops: false),
        MoECase(
            name: "token choice top-2, probability gates, dropping",
            configuration: auxWeighted(MoEConfiguration(experts: 4, topK: 2, capacityFactor: 1, capacityMultiple: 1, gates: .probability)),
            seed: 13),
        MoECase(
            name: "token choice top-1, probability gates, dropping",
            configuration: auxWeighted(MoEConfiguration(experts: 4, topK: 1, capacityFactor: 1, capacityMultiple: 1, gates: .probability)),
            seed: 14),
        MoECase(
            name: "token choice top-1, renormalised (router learns from the aux losses only), dropping",
            configuration: auxWeighted(MoEConfiguration(experts: 4, topK: 1, capacityFactor: 1, capacityMultiple: 1)), seed: 15),
        MoECase(
            name: "expert choice, cf 1 (some tokens untaken)",
            configuration: auxWeighted(MoEConfiguration(experts: 4, capacityFactor: 1, capacityMultiple: 1, routing: .expertChoice)), seed: 16),
        MoECase(
            name: "expert choice, cf 2, multiple 4",
            configuration: auxWeighted(MoEConfiguration(experts: 4, capacityFactor: 2, capacityMultiple: 4, routing: .expertChoice)), seed: 17,
            drops: false),
        MoECase(
            name: "token choice top-2, global entropy with an active threshold",
            configuration: auxWeighted(MoEConfiguration(experts: 4, topK: 2, capacityFactor: 1, capacityMultiple: 1), threshold: 10),
            seed: 18),
    ]

    @Test("Gradients: experts, router and input (Double, finite differences)", arguments: gradientCases)
    func gradients(_ c: MoECase) {
        var layout = ParameterLayout()
        let moe = MixtureOfExperts("moe", width: 6, ratio: 2, configuration: c.configuration, layout: &layout)
        let store = ParameterStore<Double>(layout: layout)
        randomizeParameters(store, seed: c.seed, std: 0.5)
        let rows = 10, n = rows * 6
        let ws = Workspace<Double>()
        defer { withExtendedLifetime(ws) {} }
        let buffers = moe.makeBuffers(rows: rows, workspace: ws, label: "moe")
        ws.seal()
        let x = randomBuffer(n, seed: c.seed, stream: "x"), dx = AlignedBuffer<Double>(count: n)
        let dy = randomBuffer(n, seed: c.seed, stream: "dy"), y = AlignedBuffer<Double>(count: n)

        moe.forward(x.pointer, y.pointer, buffers: buffers, params: store)
        let margin = routingMargin(moe, buffers)
        #expect(margin > 1e-3, "routing within \(margin) of a tie: choose another seed")
        let stats = moe.statistics(buffers)
        // The dropping configurations really drop (token choice) or leave tokens untaken (expert choice).
        if c.configuration.routing == .tokenChoice {
            #expect((stats.overCapacityRatio > 0) == c.drops, "\(stats)")
        } else {
            #expect((stats.dispatchShares[0] > 0) == c.drops, "\(stats)")
        }
        #expect(stats.loadBalanceLoss > 0 && stats.zLoss > 0 && stats.localEntropy > 0 && stats.globalEntropy > 0)

        let reports = checkGradients(
            parameterTensors(store) + [CheckedTensor(name: "x", values: x.pointer, gradient: dx.pointer, count: n)]
        ) {
            moe.forward(x.pointer, y.pointer, buffers: buffers, params: store)
            return dot(dy.pointer, y.pointer, count: n) + moe.auxiliaryLoss(buffers)
        } backward: {
            moe.backward(dy.pointer, x: x.pointer, dx: dx.pointer, buffers: buffers, params: store)
        }
        expectAll(reports)
        // The router gets a gradient in every configuration (gates or auxiliary losses).
        #expect(store.grads(of: moe.router.weight).contains { $0 != 0 })

        // Overwrite mode: dx equals exactly one backward's input gradient.
        moe.forward(x.pointer, y.pointer, buffers: buffers, params: store)
        dx.zero()
        moe.backward(dy.pointer, x: x.pointer, dx: dx.pointer, buffers: buffers, params: store)
        let once = dx.toArray()
        moe.backward(dy.pointer, x: x.pointer, dx: dx.pointer, buffers: buffers, params: store, accumulateInput: false)
        #expect(dx.toArray() == once)
    }

    @Test("Without auxiliary losses, the gradient is that of Σ dy ⊙ y alone")
    func gradientsWithoutAuxiliaryLosses() {
        let cfg = MoEConfiguration(experts: 3, topK: 2, capacityFactor: 1, capacityMultiple: 1, loadBalanceWeight: 0, zLossWeight: 0)
        var layout = ParameterLayout()
        let moe = MixtureOfExperts("moe", width: 5, ratio: 2, configuration: cfg, layout: &layout)
        let store = ParameterStore<Double>(layout: layout)
        randomizeParameters(store, seed: 21, std: 0.5)
        let rows = 8, n = rows * 5
        let ws = Workspace<Double>()
        defer { withExtendedLifetime(ws) {} }
        let buffers = moe.makeBuffers(rows: rows, workspace: ws, label: "moe")
        let x = randomBuffer(n, seed: 21, stream: "x"), dx = AlignedBuffer<Double>(count: n)
        let dy = randomBuffer(n, seed: 21, stream: "dy"), y = AlignedBuffer<Double>(count: n)
        moe.forward(x.pointer, y.pointer, buffers: buffers, params: store)
        #expect(routingMargin(moe, buffers) > 1e-3)
        #expect(moe.auxiliaryLoss(buffers) == 0)
        let reports = checkGradients(
            parameterTensors(store) + [CheckedTensor(name: "x", values: x.pointer, gradient: dx.pointer, count: n)]
        ) {
            moe.forward(x.pointer, y.pointer, buffers: buffers, params: store)
            return dot(dy.pointer, y.pointer, count: n)
        } backward: {
            moe.backward(dy.pointer, x: x.pointer, dx: dx.pointer, buffers: buffers, params: store)
        }
        expectAll(reports)
    }

    // MARK: - Routing properties

    static let propertyConfigurations: [MoEConfiguration] = [
        MoEConfiguration(experts: 4, topK: 2, capacityFactor: 4, capacityMultiple: 1),
        MoEConfiguration(experts: 4, topK: 2, capacityFactor: 1, capacityMultiple: 1),
        MoEConfiguration(experts: 4, topK: 2, capacityFactor: 0.5, capacityMultiple: 4),
        MoEConfiguration(experts: 5, topK: 1, capacityFactor: 1.25, capacityMultiple: 1, gates: .probability),
        MoEConfiguration(experts: 5, topK: 3, capacityFactor: 2, capacityMultiple: 4),
        MoEConfiguration(experts: 4, capacityFactor: 1, capacityMultiple: 1, routing: .expertChoice),
        MoEConfiguration(experts: 3, capacityFactor: 2, capacityMultiple: 4, routing: .expertChoice),
        MoEConfiguration(experts: 6, capacityFactor: 6, capacityMultiple: 4, routing: .expertChoice),
    ]

    @Test("Routing matches a brute-force reimplementation", arguments: propertyConfigurations)
    func routingProperties(_ cfg: MoEConfiguration) {
        let width = 4, rows = 13
        var layout = ParameterLayout()
        let moe = MixtureOfExperts("moe", width: width, ratio: 2, configuration: cfg, layout: &layout)
        let store = ParameterStore<Double>(layout: layout)
        let ws = Workspace<Double>()
        defer { withExtendedLifetime(ws) {} }
        let buffers = moe.makeBuffers(rows: rows, workspace: ws, label: "moe")
        let reference = moe.experts[0].makeBuffers(rows: rows, workspace: ws, label: "reference")
        let e = cfg.experts
        for seed in UInt64(1)...6 {
            randomizeParameters(store, seed: seed, std: 0.7)
            // Group sizes below the maximum as well (resized buffers, smaller capacity).
            let s = seed % 2 == 0 ? rows : rows - 4
            let b = buffers.resized(rows: s)
            let x = randomBuffer(s * width, seed: seed, stream: "x"), y = AlignedBuffer<Double>(count: s * width)
            moe.forward(x.pointer, y.pointer, buffers: b, params: store)
            let cap = cfg.capacity(rows: s)
            #expect(b.capacity == cap)
            let p = (0..<s).map { t in (0..<e).map { b.probabilities[t * e + $0] } }
            // The kept (token, expert, gate) triples, from the layer's slots.
            var kept: [(token: Int, expert: Int, gate: Double)] = []
            for ex in 0..<e {
                let count = Int(b.expertCounts[ex])
                #expect(count <= cap, "expert \(ex) holds \(count) > capacity \(cap)")
                for j in 0..<count {
                    kept.append((Int(b.slotTokens[ex * b.slotStride + j]), ex, b.slotGates[ex * b.slotStride + j]))
                }
            }
            var expected: [(token: Int, expert: Int, gate: Double)] = []
            switch cfg.routing {
            case .tokenChoice:
                let k = cfg.topK
                // Top-k by probability, ties → lower index.
                let choices = p.map { row in Array((0..<e).sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.prefix(k)) }
                for t in 0..<s {
                    #expect(Set(choices[t]).count == k)
                    for i in 0..<k { #expect(Int(b.choices[t * k + i]) == choices[t][i], "token \(t) choice \(i)") }
                }
                // Position of (t, i) = assignments to the same expert by earlier choice ranks, or by the
                // same rank at earlier tokens.
                for t in 0..<s {
                    let total = choices[t].reduce(0.0) { $0 + p[t][$1] }
                    var keptHere = 0
                    for i in 0..<k {
                        let ex = choices[t][i]
                        var position = 0
                        for i2 in 0..<k { for t2 in 0..<s where choices[t2][i2] == ex && (i2 < i || (i2 == i && t2 < t)) { position += 1 } }
                        #expect(Int(b.positions[t * k + i]) == position, "token \(t) choice \(i)")
                        if position < cap {
                            let g = cfg.gates == .renormalized ? p[t][ex] / total : p[t][ex]
                            expected.append((t, ex, g))
                            #expect(Int(b.slotTokens[ex * b.slotStride + position]) == t)
                            keptHere += 1
                        }
                    }
                    #expect(Int(b.tokenCounts[t]) == keptHere)
                }
                if cfg.capacityFactor >= Double(e) {
                    // Nothing dropped: every token keeps exactly its top-k distinct experts.
                    #expect((0..<s).allSatisfy { Int(b.tokenCounts[$0]) == k })
                    #expect(kept.count == s * k)
                }
            case .expertChoice:
                for ex in 0..<e {
                    #expect(Int(b.expertCounts[ex]) == min(cap, s), "expert \(ex)")
                    let ranked = (0..<s).sorted { p[$0][ex] > p[$1][ex] || (p[$0][ex] == p[$1][ex] && $0 < $1) }
                    for t in ranked.prefix(min(cap, s)).sorted() { expected.append((t, ex, p[t][ex])) }
                }
            }
            let key = { (a: (token: Int, expert: Int, gate: Double)) in a.expert * 1000 + a.token }
            let got = kept.sorted { key($0) < key($1) }, want = expected.sorted { key($0) < key($1) }
            #expect(got.map { key($0) } == want.map { key($0) }, "seed \(seed)")
            if got.count == want.count {
                #expect(zip(got, want).allSatisfy { abs($0.gate - $1.gate) < 1e-15 })
            }
            // The output: y_s = Σ_kept g·Expert_e(x_s), each expert run on all tokens separately.
            var yExpected = [Double](repeating: 0, count: s * width)
            let out = AlignedBuffer<Double>(count: s * width)
            for ex in 0..<e {
                moe.experts[ex].forward(x.pointer, out.pointer, buffers: reference.resized(rows: s), params: store)
                for a in want where a.expert == ex {
                    for i in 0..<width { yExpected[a.token * width + i] += a.gate * out[a.token * width + i] }
                }
            }
            #expect(scaledMaxError(y.toArray(), yExpected) < 1e-13, "\(describeMismatch(y.toArray(), yExpected, label: "y"))")
        }
    }

    @Test("Exact ties go to the lower expert index (token choice) and the earlier token (expert choice)")
    func ties() {
        for routing in MoEConfiguration.Routing.allCases {
            let cfg = MoEConfiguration(experts: 4, topK: 2, capacityFactor: 1, capacityMultiple: 1, routing: routing)
            var layout = ParameterLayout()
            let moe = MixtureOfExperts("moe", width: 4, ratio: 2, configuration: cfg, layout: &layout)
            let store = ParameterStore<Double>(layout: layout)
            randomizeParameters(store, seed: 5)
            store.value(moe.router.weight).update(repeating: 0, count: moe.router.weight.count)  // p = 1/4 everywhere
            let ws = Workspace<Double>()
            defer { withExtendedLifetime(ws) {} }
            let rows = 9
            let b = moe.makeBuffers(rows: rows, workspace: ws, label: "moe")
            let x = randomBuffer(rows * 4, seed: 5, stream: "x"), y = AlignedBuffer<Double>(count: rows * 4)
            moe.forward(x.pointer, y.pointer, buffers: b, params: store)
            #expect(b.capacity == 2)
            let slots = (0..<4).map { ex in (0..<Int(b.expertCounts[ex])).map { Int(b.slotTokens[ex * b.slotStride + $0]) } }
            switch routing {
            case .tokenChoice:
                // Every token picks experts 0 then 1: e0 keeps the first two first choices (tokens 0, 1),
                // e1 receives only second choices and keeps the first two (tokens 0, 1).
                #expect((0..<rows).allSatisfy { b.choices[2 * $0] == 0 && b.choices[2 * $0 + 1] == 1 })
                #expect(slots == [[0, 1], [0, 1], [], []])
                #expect(moe.statistics(b).topChoiceFraction == [1, 0, 0, 0])
            case .expertChoice:
                // Every expert takes the two earliest tokens; the argmax of a uniform row is expert 0.
                #expect(slots == [[0, 1], [0, 1], [0, 1], [0, 1]])
                #expect(moe.statistics(b).topChoiceFraction == [1, 0, 0, 0])
            }
        }
    }

    @Test("Partial ties: a later, strictly better token still wins; tied tokens go in token order")
    func partialTies() {
        // Router = identity on width 3, so the logits are the inputs. Tokens 0 and 1 are identical;
        // token 2 has the highest p for e0, and token 3 ties e1 with e2.
        let logits: [Double] = [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1]
        for routing in MoEConfiguration.Routing.allCases {
            let cfg = MoEConfiguration(experts: 3, topK: 2, capacityFactor: 1.5, capacityMultiple: 1, routing: routing)
            var layout = ParameterLayout()
            let moe = MixtureOfExperts("moe", width: 3, ratio: 2, configuration: cfg, layout: &layout)
            let store = ParameterStore<Double>(layout: layout)
            randomizeParameters(store, seed: 6)
            let w = store.value(moe.router.weight)
            for i in 0..<3 { for j in 0..<3 { w[i * 3 + j] = i == j ? 1 : 0 } }
            let ws = Workspace<Double>()
            defer { withExtendedLifetime(ws) {} }
            let b = moe.makeBuffers(rows: 4, workspace: ws, label: "moe")
            let x = AlignedBuffer(logits), y = AlignedBuffer<Double>(count: 12)
            moe.forward(x.pointer, y.pointer, buffers: b, params: store)
            #expect(b.capacity == 2)  // ⌊4·1.5/3⌋
            let slots = (0..<3).map { ex in (0..<Int(b.expertCounts[ex])).map { Int(b.slotTokens[ex * b.slotStride + $0]) } }
            switch routing {
            case .tokenChoice:
                let choices = (0..<8).map { Int(b.choices[$0]) }
                #expect(choices == [0, 1, 0, 1, 0, 1, 1, 2])
                // First choices: e0 ← 0, 1, (2 dropped); e1 ← 3. Second: e1 ← 0 (pos 1), 1 (dropped), 2 (dropped); e2 ← 3.
                #expect(slots == [[0, 1], [3, 0], [3]])
            case .expertChoice:
                // e0: token 2 (p = e/(e+2)), then the earlier of the tied tokens 0 and 1. e1: tokens 3 and then 0
                // (p = e/(2e+1) > 1/3). e2: the same as e1.
                #expect(slots == [[0, 2], [0, 3], [0, 3]])
            }
        }
    }

    // MARK: - Statistics

    /// Six tokens, three experts, router = identity on width 3, so the logits are the inputs:
    ///   s0 (2, 1, 0)   s1 (2, 0, 0.5)   s2 (3, 1, 0)   s3 (0, 2, 1)   s4 (1, 0, 2)   s5 (0, 1, 2.5)
    static let handLogits: [[Double]] = [[2, 1, 0], [2, 0, 0.5], [3, 1, 0], [0, 2, 1], [1, 0, 2], [0, 1, 2.5]]

    /// The layer, its store and buffers after one forward pass on the hand logits, and what must stay alive.
    typealias HandCase = (
        moe: MixtureOfExperts, store: ParameterStore<Double>, buffers: MixtureOfExperts.Buffers<Double>,
        workspace: Workspace<Double>, x: AlignedBuffer<Double>, y: AlignedBuffer<Double>
    )

    func handCase(_ cfg: MoEConfiguration) -> HandCase {
        var layout = ParameterLayout()
        let moe = MixtureOfExperts("moe", width: 3, ratio: 2, configuration: cfg, layout: &layout)
        let store = ParameterStore<Double>(layout: layout)
        randomizeParameters(store, seed: 31, std: 0.5)
        let w = store.value(moe.router.weight)
        for i in 0..<3 { for j in 0..<3 { w[i * 3 + j] = i == j ? 1 : 0 } }
        let ws = Workspace<Double>()
        let buffers = moe.makeBuffers(rows: 6, workspace: ws, label: "moe")
        let x = AlignedBuffer(Self.handLogits.flatMap { $0 }), y = AlignedBuffer<Double>(count: 18)
        moe.forward(x.pointer, y.pointer, buffers: buffers, params: store)
        return (moe, store, buffers, ws, x, y)
    }

    /// Softmax, logsumexp and the hand-derived losses for the hand case.
    func handLosses(f: [Double]) -> (p: [[Double]], lb: Double, z: Double, local: Double, global: Double) {
        let lse = Self.handLogits.map { row in Foundation.log(row.map { Foundation.exp($0) }.reduce(0, +)) }
        let p = Self.handLogits.enumerated().map { t, row in row.map { Foundation.exp($0 - lse[t]) } }
        let meanP = (0..<3).map { ex in p.map { $0[ex] }.reduce(0, +) / 6 }
        let lb = 3 * (0..<3).map { f[$0] * meanP[$0] }.reduce(0, +)
        let z = lse.map { $0 * $0 }.reduce(0, +) / 6
        let local = p.map { row in -row.map { $0 * Foundation.log($0) }.reduce(0, +) }.reduce(0, +) / 6
        let global = -meanP.map { $0 * Foundation.log($0) }.reduce(0, +)
        return (p, lb, z, local, global)
    }

    @Test("Statistics of a hand-counted token-choice case (top-2, capacity 2)")
    func handCountedTokenChoice() {
        let cfg = MoEConfiguration(
            experts: 3, topK: 2, capacityFactor: 1, capacityMultiple: 1, loadBalanceWeight: 0.01, zLossWeight: 0.001,
            localEntropyWeight: 0.1, globalEntropyWeight: 0.2)
        let (moe, store, b, ws, x, y) = handCase(cfg)
        defer { withExtendedLifetime((ws, x)) {} }
        // Cap = max(1, ⌊6·1/3⌋) = 2. First choices: e0 ← s0, s1, (s2 dropped); e1 ← s3; e2 ← s4, s5.
        // Second choices queue behind them: s0→e1 at 1 (kept); s1→e2 at 2, s2→e1 at 2, s3→e2 at 3,
        // s4→e0 at 3, s5→e1 at 3 (all dropped).
        #expect(b.capacity == 2)
        let choices = (0..<12).map { Int(b.choices[$0]) }, positions = (0..<12).map { Int(b.positions[$0]) }
        #expect(choices == [0, 1, 0, 2, 0, 1, 1, 2, 2, 0, 2, 1])
        #expect(positions == [0, 1, 1, 2, 2, 2, 0, 3, 0, 3, 1, 3])
        let stats = moe.statistics(b)
        #expect(stats.tokens == 6 && stats.capacity == 2)
        let loads: [Double] = [2.0 / 6, 2.0 / 6, 2.0 / 6], shares: [Double] = [1.0 / 6, 4.0 / 6, 1.0 / 6]
        #expect(stats.expertLoad == loads)
        #expect(stats.dispatchShares == shares)  // s2: 0; s1, s3, s4, s5: 1; s0: 2
        #expect(stats.attemptedAssignments == 12 && stats.keptAssignments == 6)
        #expect(stats.overCapacityRatio == 0.5)
        let f = [3.0 / 6, 1.0 / 6, 2.0 / 6]
        #expect(stats.topChoiceFraction == f)
        let hand = handLosses(f: f)
        #expect(abs(stats.loadBalanceLoss - hand.lb) < 1e-13)
        #expect(abs(stats.zLoss - hand.z) < 1e-13)
        #expect(abs(stats.localEntropy - hand.local) < 1e-13 && stats.routerEntropy == stats.localEntropy)
        #expect(abs(stats.globalEntropy - hand.global) < 1e-13)
        let aux = 0.01 * hand.lb + 0.001 * hand.z + 0.1 * hand.local - 0.2 * hand.global
        #expect(abs(stats.auxiliaryLoss - aux) < 1e-13 && moe.auxiliaryLoss(b) == stats.auxiliaryLoss)
        // A fully dropped token outputs 0; s1 keeps e0 with its gate renormalised over e0 and e2
        // *before* dropping, p0/(p0 + p2) < 1.
        #expect((0..<3).allSatisfy { y[2 * 3 + $0] == 0 })
        let ref = moe.experts[0].makeBuffers(rows: 1, workspace: ws, label: "ref"), out = AlignedBuffer<Double>(count: 3)
        moe.experts[0].forward(x.pointer + 3, out.pointer, buffers: ref, params: store)
        let g = hand.p[1][0] / (hand.p[1][0] + hand.p[1][2])
        #expect((0..<3).allSatisfy { abs(y[3 + $0] - g * out[$0]) < 1e-13 })
        // FLOPs: router 2·S·C·E plus one expert MLP (2·2·C·2C) per kept assignment; no padding.
        let routerFlops: Double = 2 * 6 * 3 * 3, expertFlops: Double = 2 * 2 * 3 * 6  // per row: c_fc and c_proj, 2·C·2C each
        #expect(moe.forwardFlops(rows: 6, keptAssignments: stats.keptAssignments) == routerFlops + 6 * expertFlops)
        #expect(moe.maxAssignments(rows: 6) == 6)  // min(S·k = 12, E·Cap = 6)
    }

    @Test("Statistics of a hand-counted expert-choice case (capacity 3)")
    func handCountedExpertChoice() {
        let cfg = MoEConfiguration(experts: 3, capacityFactor: 1.5, capacityMultiple: 1, routing: .expertChoice)
        let (moe, _, b, ws, x, _) = handCase(cfg)
        defer { withExtendedLifetime((ws, x)) {} }
        // Cap = ⌊6·1.5/3⌋ = 3. By p[:, e]: e0 takes s2, s1, s0; e1 takes s3, s0, s5; e2 takes s5, s4, s3
        // (listed in token order).
        let slots = (0..<3).map { ex in (0..<Int(b.expertCounts[ex])).map { Int(b.slotTokens[ex * b.slotStride + $0]) } }
        #expect(slots == [[0, 1, 2], [0, 3, 5], [3, 4, 5]])
        let stats = moe.statistics(b)
        #expect(stats.capacity == 3)
        #expect(stats.expertLoad == [0.5, 0.5, 0.5])
        let shares: [Double] = [0, 3.0 / 6, 3.0 / 6, 0]
        #expect(stats.dispatchShares == shares)  // s1, s2, s4: 1 expert; s0, s3, s5: 2
        #expect(stats.overCapacityRatio == 0 && stats.keptAssignments == 9)
        let f = [3.0 / 6, 1.0 / 6, 2.0 / 6]  // argmax per token
        #expect(stats.topChoiceFraction == f)
        let hand = handLosses(f: f)
        #expect(abs(stats.loadBalanceLoss - hand.lb) < 1e-13 && abs(stats.zLoss - hand.z) < 1e-13)
        #expect(abs(stats.auxiliaryLoss - (0.01 * hand.lb + 0.001 * hand.z)) < 1e-13)
    }

    // MARK: - Upcycling

    func upcycledMatchesDense<T: Scalar>(_: T.Type, tolerance: Double) {
        let width = 16, rows = 12
        var denseLayout = ParameterLayout()
        let dense = MLP("visual.transformer.resblocks.1.mlp", width: width, layout: &denseLayout)
        let denseStore = ParameterStore<T>(layout: denseLayout)
        dense.initializeDefault(denseStore, seed: 41)
        let cfg = MoEConfiguration(experts: 4, topK: 2, capacityFactor: 4)
        var layout = ParameterLayout()
        let moe = MixtureOfExperts("visual.transformer.resblocks.1.mlp", width: width, configuration: cfg, layout: &layout)
        let store = ParameterStore<T>(layout: layout)
        moe.upcycle(from: dense, source: denseStore, into: store, routerSeed: 7)
        for expert in moe.experts {
            #expect(store.values(of: expert.fc.weight) == denseStore.values(of: dense.fc.weight))
            #expect(store.values(of: expert.fc.bias!) == denseStore.values(of: dense.fc.bias!))
            #expect(store.values(of: expert.proj.weight) == denseStore.values(of: dense.proj.weight))
            #expect(store.values(of: expert.proj.bias!) == denseStore.values(of: dense.proj.bias!))
        }
        let router = store.values(of: moe.router.weight).map { Double($0) }
        let std = (router.map { $0 * $0 }.reduce(0, +) / Double(router.count)).squareRoot()
        #expect(std > 0.01 && std < 0.04, "router std \(std), expected about 0.02")

        let ws = Workspace<T>()
        defer { withExtendedLifetime(ws) {} }
        let mb = moe.makeBuffers(rows: rows, workspace: ws, label: "moe")
        let db = dense.makeBuffers(rows: rows, workspace: ws, label: "dense")
        let x = AlignedBuffer(randomArray(rows * width, seed: 41, stream: "x").map { T($0) })
        let yMoE = AlignedBuffer<T>(count: rows * width), yDense = AlignedBuffer<T>(count: rows * width)
        moe.forward(x.pointer, yMoE.pointer, buffers: mb, params: store)
        dense.forward(x.pointer, yDense.pointer, buffers: db, params: denseStore)
        let stats = moe.statistics(mb)
        #expect(stats.overCapacityRatio == 0 && stats.dispatchShares == [0, 0, 1])
        let a = yMoE.toArray().map { Double($0) }, d = yDense.toArray().map { Double($0) }
        #expect(scaledMaxError(a, d) < tolerance, "\(describeMismatch(a, d, label: "upcycled vs dense"))")
        #expect(a != [Double](repeating: 0, count: a.count))
    }

    @Test("An upcycled MoE (top-2, renormalised, cf = E) equals its dense MLP (Float)")
    func upcyclingFloat() { upcycledMatchesDense(Float.self, tolerance: 1e-5) }

    @Test("An upcycled MoE (top-2, renormalised, cf = E) equals its dense MLP (Double)")
    func upcyclingDouble() { upcycledMatchesDense(Double.self, tolerance: 1e-12) }

    @Test("Upcycling can copy the dense MLP's optimiser moments")
    func upcyclingMoments() {
        var denseLayout = ParameterLayout()
        let dense = MLP("mlp", width: 4, layout: &denseLayout)
        let denseStore = ParameterStore<Float>(layout: denseLayout)
        dense.initializeDefault(denseStore, seed: 3)
        for i in 0..<denseLayout.totalCount {
            denseStore.firstMoment[i] = Float(i)
            denseStore.secondMoment[i] = Float(2 * i)
        }
        var layout = ParameterLayout()
        let moe = MixtureOfExperts("mlp", width: 4, configuration: MoEConfiguration(experts: 2), layout: &layout)
        let store = ParameterStore<Float>(layout: layout)
        store.firstMoment.pointer.update(repeating: 5, count: layout.totalCount)
        moe.upcycle(from: dense, source: denseStore, into: store, routerSeed: 1, copyOptimizerState: true)
        for expert in moe.experts {
            for (from, to) in [(dense.fc.weight, expert.fc.weight), (dense.proj.bias!, expert.proj.bias!)] {
                #expect((0..<to.count).allSatisfy { store.firstMoment[to.offset + $0] == denseStore.firstMoment[from.offset + $0] })
                #expect((0..<to.count).allSatisfy { store.secondMoment[to.offset + $0] == denseStore.secondMoment[from.offset + $0] })
            }
        }
        #expect((0..<moe.router.weight.count).allSatisfy { store.firstMoment[moe.router.weight.offset + $0] == 0 })
    }

    // MARK: - Layout and allocation discipline

    @Test("Parameter names")
    func parameterNames() {
        var layout = ParameterLayout()
        _ = MixtureOfExperts("transformer.resblocks.1.mlp", width: 4, configuration: MoEConfiguration(experts: 2), layout: &layout)
        #expect(layout.views.map(\.name) == [
            "transformer.resblocks.1.mlp.router.weight",
            "transformer.resblocks.1.mlp.experts.0.c_fc.weight", "transformer.resblocks.1.mlp.experts.0.c_fc.bias",
            "transformer.resblocks.1.mlp.experts.0.c_proj.weight", "transformer.resblocks.1.mlp.experts.0.c_proj.bias",
            "transformer.resblocks.1.mlp.experts.1.c_fc.weight", "transformer.resblocks.1.mlp.experts.1.c_fc.bias",
            "transformer.resblocks.1.mlp.experts.1.c_proj.weight", "transformer.resblocks.1.mlp.experts.1.c_proj.bias",
        ])
        #expect(layout["transformer.resblocks.1.mlp.router.weight"]?.shape == [2, 4])
    }

    @Test("Forward and backward allocate nothing after the workspace is sealed", arguments: MoEConfiguration.Routing.allCases)
    func sealedWorkspace(_ routing: MoEConfiguration.Routing) {
        let cfg = MoEConfiguration(experts: 4, topK: 2, routing: routing, localEntropyWeight: 0.01, globalEntropyWeight: 0.01)
        var layout = ParameterLayout()
        let moe = MixtureOfExperts("moe", width: 16, configuration: cfg, layout: &layout)
        let store = ParameterStore<Float>(layout: layout)
        moe.initializeDefault(store, seed: 9)
        let rows = 32, n = rows * 16
        let ws = Workspace<Float>()
        defer { withExtendedLifetime(ws) {} }
        let buffers = moe.makeBuffers(rows: rows, workspace: ws, label: "moe")
        ws.seal()
        let x = AlignedBuffer(randomArray(n, seed: 9, stream: "x").map(Float.init))
        let dy = AlignedBuffer(randomArray(n, seed: 9, stream: "dy").map(Float.init))
        let y = AlignedBuffer<Float>(count: n), dx = AlignedBuffer<Float>(count: n)
        for s in [rows, 20] {
            let b = buffers.resized(rows: s)
            store.zeroGrads()
            moe.forward(x.pointer, y.pointer, buffers: b, params: store)
            moe.backward(dy.pointer, x: x.pointer, dx: dx.pointer, buffers: b, params: store, accumulateInput: false)
            #expect(moe.auxiliaryLoss(b).isFinite)
            let grads = store.grads.toArray(), inputGrads = dx.toArray()
            let finite = grads.allSatisfy { $0.isFinite } && inputGrads.allSatisfy { $0.isFinite }
            let nonzero = grads.contains { $0 != 0 }
            #expect(finite && nonzero)
        }
        #expect(ws.isSealed)
    }
}
