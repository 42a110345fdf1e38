import Compute
import Foundation
import Layers
import Testing
import TestSupport

@Suite("Parameter store, optimizers and schedules")
struct OptimizerTests {
    @Test("Layout aligns offsets, keeps names, and applies the weight-decay rule")
    func layout() {
        var layout = ParameterLayout()
        let w = layout.add("visual.transformer.resblocks.0.mlp.c_fc.weight", shape: [12, 3])
        let b = layout.add("visual.transformer.resblocks.0.mlp.c_fc.bias", shape: [12])
        let s = layout.add("logit_scale", shape: [])
        let e = layout.add("token_embedding.weight", shape: [5, 4])
        let ln = layout.add("visual.ln_post.weight", shape: [4])
        let proj = layout.add("visual.proj", shape: [4, 4])
        #expect(w.offset == 0 && b.offset == 48 && s.offset == 64 && e.offset == 80)
        #expect(layout.views.allSatisfy { $0.offset % ParameterLayout.alignment == 0 })
        #expect(s.count == 1 && s.shape == [])
        #expect(w.decay && e.decay && proj.decay)
        #expect(!b.decay && !s.decay && !ln.decay)
        #expect(!ParameterLayout.defaultDecay(name: "x.ln_1.weight", shape: [4, 4]))
        #expect(layout.parameterCount == 36 + 12 + 1 + 20 + 4 + 16)
        #expect(layout["logit_scale"] == s)
        let groups = ParameterGroup.standard(layout, learningRate: 1e-3, weightDecay: 0.1)
        #expect(groups.map(\.name) == ["decay", "no_decay"])
        #expect(Set(groups[0].views.map(\.name)) == [w.name, e.name, proj.name])
        #expect(groups[1].weightDecay == 0)
    }

    /// A one-tensor store with given values and gradients.
    func store(values: [Double], grads: [Double], shape: [Int], name: String = "w") -> (ParameterStore<Double>, ParameterView) {
        var layout = ParameterLayout()
        let v = layout.add(name, shape: shape)
        let s = ParameterStore<Double>(layout: layout)
        for i in values.indices { s.value(v)[i] = values[i]; s.grad(v)[i] = grads[i] }
        return (s, v)
    }

    @Test("AdamW matches hand-computed steps")
    func adamW() {
        let (s, v) = store(values: [1.0, -2.0], grads: [0.5, -1.0], shape: [1, 2])
        var opt = Optimizer(kind: .adamw, hyper: AdamHyperparameters(beta1: 0.9, beta2: 0.99, epsilon: 1e-8))
        let groups = [ParameterGroup(name: "g", views: [v], learningRate: 0.1, weightDecay: 0.5)]
        opt.update(s, groups: groups)
        // Step 1: m̂ = g, v̂ = g², so the Adam step is lr·sign(g) (up to ε); decay first multiplies by 1 − 0.05.
        // θ₀ = 1:  1·0.95 − 0.1·0.5/(0.5 + 1e-8)  = 0.85000000019999...
        let e0 = 1.0 * 0.95 - 0.1 * 0.5 / (0.5 + 1e-8)
        let e1 = -2.0 * 0.95 - 0.1 * -1.0 / (1.0 + 1e-8)
        #expect(abs(s.value(v)[0] - e0) < 1e-15 && abs(s.value(v)[1] - e1) < 1e-15)
        // Step 2 with gradient 0.25 on θ₀: m = 0.9·0.05 + 0.1·0.25 = 0.07, v = 0.99·0.0025 + 0.01·0.0625 = 0.003100.
        s.grad(v)[0] = 0.25
        s.grad(v)[1] = 0
        opt.update(s, groups: groups)
        let m = 0.07, vv = 0.0031
        let mhat = m / (1 - 0.81), vhat = vv / (1 - 0.9801)
        let expected = e0 * 0.95 - 0.1 * mhat / (vhat.squareRoot() + 1e-8)
        #expect(abs(s.value(v)[0] - expected) < 1e-14, "got \(s.value(v)[0]) expected \(expected)")
        #expect(opt.step == 2)
    }

    @Test("LAMB matches hand-computed steps, with the trust ratio only where wd ≠ 0")
    func lamb() {
        let hyper = AdamHyperparameters(beta1: 0.9, beta2: 0.999, epsilon: 1e-6)
        // With wd = 0.01: u = m̂/(√v̂+ε) + wd·θ, r = ‖θ‖/‖u‖.
        let (s, v) = store(values: [3.0, 4.0], grads: [1.0, -2.0], shape: [2, 1])
        var opt = Optimizer(kind: .lamb, hyper: hyper)
        opt.update(s, groups: [ParameterGroup(name: "g", views: [v], learningRate: 0.01, weightDecay: 0.01)])
        let u = [1.0 / (1.0 + 1e-6) + 0.03, -2.0 / (2.0 + 1e-6) + 0.04]
        let r = 5.0 / (u[0] * u[0] + u[1] * u[1]).squareRoot()
        #expect(abs(s.value(v)[0] - (3 - 0.01 * r * u[0])) < 1e-14)
        #expect(abs(s.value(v)[1] - (4 - 0.01 * r * u[1])) < 1e-14)
        // With wd = 0 the trust ratio is 1: a plain Adam step.
        let (s2, v2) = store(values: [3.0, 4.0], grads: [1.0, -2.0], shape: [2])
        var opt2 = Optimizer(kind: .lamb, hyper: hyper)
        opt2.update(s2, groups: [ParameterGroup(name: "g", views: [v2], learningRate: 0.01, weightDecay: 0)])
        #expect(abs(s2.value(v2)[0] - (3 - 0.01 / (1 + 1e-6))) < 1e-14)
        #expect(abs(s2.value(v2)[1] - (4 + 0.01 * 2 / (2 + 1e-6))) < 1e-14)
        // Zero weights: trust falls back to 1.
        let (s3, v3) = store(values: [0, 0], grads: [1.0, 1.0], shape: [2, 1])
        var opt3 = Optimizer(kind: .lamb, hyper: hyper)
        opt3.update(s3, groups: [ParameterGroup(name: "g", views: [v3], learningRate: 0.01, weightDecay: 0.1)])
        #expect(abs(s3.value(v3)[0] - -0.01 / (1 + 1e-6)) < 1e-14)
    }

    @Test("Float optimizer steps agree with Double", arguments: OptimizerKind.allCases)
    func floatAgreement(_ kind: OptimizerKind) {
        var layout = ParameterLayout()
        let w = layout.add("w", shape: [40, 30]), b = layout.add("b", shape: [30])
        let sd = ParameterStore<Double>(layout: layout), sf = ParameterStore<Float>(layout: layout)
        let values = randomArray(layout.totalCount, seed: 1, stream: "v")
        for i in 0..<layout.totalCount { sd.values[i] = values[i]; sf.values[i] = Float(values[i]) }
        var od = Optimizer(kind: kind), of = Optimizer(kind: kind)
        let groups = ParameterGroup.standard(layout, learningRate: 1e-3, weightDecay: 0.1)
        for step in 0..<5 {
            let g = randomArray(layout.totalCount, seed: UInt64(step), stream: "g")
            for i in 0..<layout.totalCount { sd.grads[i] = g[i]; sf.grads[i] = Float(g[i]) }
            od.update(sd, groups: groups)
            of.update(sf, groups: groups)
        }
        for view in [w, b] {
            let e = scaledMaxError(sf.values(of: view).map(Double.init), sd.values(of: view))
            #expect(e < 1e-5, "\(view.name): \(e)")
        }
    }

    @Test("Gradient clipping rescales to the maximum norm")
    func clipping() {
        let (s, _) = store(values: [0, 0], grads: [3, 4], shape: [2])
        #expect(clipGradientNorm(s, maxNorm: 10) == 5)
        #expect(s.grads[0] == 3 && s.grads[1] == 4)
        #expect(clipGradientNorm(s, maxNorm: 1) == 5)
        #expect(abs(s.grads[0] - 3 / (5 + 1e-6)) < 1e-15 && abs(s.grads[1] - 4 / (5 + 1e-6)) < 1e-15)
    }

    @Test("Cosine schedule: warm-up, decay and floor")
    func cosine() {
        let s = CosineSchedule(baseRate: 1e-3, warmupSteps: 10, totalSteps: 110, floor: 1e-5)
        #expect(abs(s(0) - 1e-4) < 1e-18)
        #expect(abs(s(9) - 1e-3) < 1e-18)
        #expect(abs(s(10) - 1e-3) < 1e-18)
        #expect(abs(s(60) - (1e-5 + 0.5 * (1e-3 - 1e-5))) < 1e-15)  // halfway: cos(π/2) = 0
        #expect(abs(s(110) - 1e-5) < 1e-18)
        #expect(abs(s(500) - 1e-5) < 1e-18)
        for step in 10..<110 { #expect(s(step + 1) <= s(step)) }
        #expect(ConstantSchedule(rate: 0.5)(1234) == 0.5)
    }

    @Test("Workspace hands out aligned buffers, reports its size per label, and traps once sealed")
    func workspace() async {
        let ws = Workspace<Float>()
        let p = ws.allocate(100, label: "block0.qkv")
        _ = ws.allocate(28, label: "block0.probs")
        _ = ws.allocate(50, label: "block1.qkv")
        ws.seal()
        #expect(ws.isSealed)
        #expect(ws.totalElements == 178 && ws.totalBytes == 712)
        #expect(Int(bitPattern: p) % 64 == 0)
        #expect(ws.report().first?.label == "block0" && ws.report().first?.bytes == 512)
        // An allocation after sealing (i.e. inside the step) stops the process.
        await #expect(processExitsWith: .failure) {
            let sealed = Workspace<Float>()
            sealed.seal()
            _ = sealed.allocate(1, label: "late")
        }
    }
}
