// Sparse upcycling at the model level: an upcycled CLIP computes the dense one's embeddings at
// step 0 when nothing is dropped; its names, counts, gradients (Double, finite differences, the
// auxiliary losses included), activation-memory modes and checkpoints.

import CLIP
import Compute
import Foundation
import Layers
import Objectives
import Testing
import TestSupport

@Suite("Sparse upcycling of a CLIP model")
struct UpcyclingTests {
    /// micro-shaped towers (2 blocks each, so block 1 is upcycled) with a short context.
    func denseConfig() throws -> CLIPConfiguration {
        var c = try #require(CLIPConfiguration.preset("nano", vocabularySize: 40))
        c.vision.layers = 2
        c.text.layers = 2
        c.text.contextLength = 6
        return c
    }

    func inputs(_ c: CLIPConfiguration, batch b: Int, seed: UInt64) -> (images: [Double], ids: [Int32]) {
        let s = c.vision.imageSize
        let ids: [Int32] = (0..<b).flatMap { i -> [Int32] in [38, Int32(i + 2), Int32(2 * i + 1), 39, 0, 0] }
        return (randomArray(b * 3 * s * s, seed: seed, stream: "img"), ids)
    }

    @Test("Nothing dropped (capacity factor = E): the upcycled model's embeddings equal the dense model's", arguments: UpcycledTowers.allCases)
    func embeddingsAtStepZero(towers: UpcycledTowers) throws {
        let c = try denseConfig(), b = 5
        let (images, ids) = inputs(c, batch: b, seed: 3)
        let placement = MoEPlacement(MoEConfiguration(experts: 4, topK: 2, capacityFactor: 4))
        // Double: the experts compute the dense MLP's products; the gates sum to 1.
        let dense = try CLIPModel<Double>(c)
        dense.initialize(seed: 3)
        let moe = try dense.upcycled(placement: placement, towers: towers, routerSeed: 9)
        let img = AlignedBuffer(images)
        let d = (dense.embedImages(img.pointer, count: b, activations: dense.makeActivations(batch: b)),
                 dense.embedTexts(ids, count: b, activations: dense.makeActivations(batch: b)))
        let acts = moe.makeActivations(batch: b)
        let m = (moe.embedImages(img.pointer, count: b, activations: acts), moe.embedTexts(ids, count: b, activations: acts))
        #expect(scaledMaxError(d.0, m.0) < 1e-12 && scaledMaxError(d.1, m.1) < 1e-12)
        // Every block was routed, and every token kept both its choices.
        let stats = moe.mixtureStatistics(acts)
        #expect(stats.count == (towers == .both ? 2 : 1))
        for s in stats { #expect(s.statistics.overCapacityRatio == 0 && s.statistics.dispatchShares.last == 1, "\(s.name)") }
        // Float, the trainer's type, to float rounding.
        let denseF = try CLIPModel<Float>(c)
        denseF.initialize(seed: 3)
        let moeF = try denseF.upcycled(placement: placement, towers: towers, routerSeed: 9)
        let imgF = AlignedBuffer(images.map(Float.init))
        let df = denseF.embedImages(imgF.pointer, count: b, activations: denseF.makeActivations(batch: b))
        let mf = moeF.embedImages(imgF.pointer, count: b, activations: moeF.makeActivations(batch: b))
        #expect(scaledMaxError(df.map(Double.init), mf.map(Double.init)) < 1e-5)
    }

    @Test("Names: the dense names but the upcycled MLPs', plus each mixture's router and experts; values copied; counts")
    func namesAndCounts() throws {
        let c = try denseConfig()
        let dense = try CLIPModel<Float>(c)
        dense.initialize(seed: 1)
        let moe = try dense.upcycled(placement: MoEPlacement(MoEConfiguration(experts: 8, topK: 2)), routerSeed: 2)
        let denseNames = Set(dense.store.layout.views.map(\.name)), moeNames = Set(moe.store.layout.views.map(\.name))
        let upcycledMLPs = ["visual.transformer.resblocks.1.mlp.", "transformer.resblocks.1.mlp."]
        #expect(denseNames.subtracting(moeNames) == Set(denseNames.filter { n in upcycledMLPs.contains { n.hasPrefix($0) } }))
        for p in upcycledMLPs {
            #expect(moeNames.contains(p + "router.weight") && moeNames.contains(p + "experts.7.c_proj.bias"))
            let dense = dense.store.values(of: dense.store.view(p + "c_fc.weight"))
            #expect(moe.store.values(of: moe.store.view(p + "experts.5.c_fc.weight")) == dense)
        }
        for n in denseNames.intersection(moeNames) { #expect(moe.store.values(of: moe.store.view(n)) == dense.store.values(of: dense.store.view(n)), "\(n)") }
        // Active parameters: k = 2 of 8 experts per mixture; the routers count as active.
        let counts = moe.parameterCounts
        let vision = 2 * 4 * 32 * 32 + 4 * 32 + 32, text = vision  // one expert: c_fc + c_proj, weights and biases (width 32)
        #expect(counts.total == dense.store.layout.totalCount + 7 * (vision + text) + 8 * 32 * 2)
        #expect(counts.total - counts.active == 6 * (vision + text))
        // A model that already holds mixtures is refused.
        #expect(throws: ConfigurationError.self) { _ = try moe.upcycled(placement: MoEPlacement(MoEConfiguration())) }
    }

    @Test("Whole-model gradient, the auxiliary losses included, equals finite differences (Double, tokens dropped)")
    func gradients() throws {
        var c = try denseConfig()
        let config = MoEConfiguration(experts: 3, topK: 2, capacityFactor: 1, capacityMultiple: 1, loadBalanceWeight: 0.1, zLossWeight: 0.1)
        c.vision.experts = MoEPlacement(config)
        c.text.experts = MoEPlacement(config, every: 1, first: 0)
        let model = try CLIPModel<Double>(c)
        model.initialize(seed: 7)
        // Routers of larger weights than upcycling's N(0, 0.02²) keep the routing decisions away from
        // ties under the differences, and the second choices' gates away from 0.
        for v in model.store.layout.views where v.name.hasSuffix("router.weight") { model.store.initialize(v, .normal(std: 0.3), seed: 7) }
        let b = 3, e = c.embedDimension
        let (images, ids) = inputs(c, batch: b, seed: 7)
        let img = AlignedBuffer(images)
        let acts = model.makeActivations(batch: b)
        let loss = MiniBatchContrastiveLoss<Double>(batch: b, dimension: e, workspace: Workspace())
        let dImg = AlignedBuffer<Double>(count: b * e), dTxt = AlignedBuffer<Double>(count: b * e)
        let tensors = model.store.layout.views.map {
            CheckedTensor(name: $0.name, values: model.store.value($0), gradient: model.store.grad($0), count: $0.count)
        }
        let reports = checkGradients(tensors, maxElements: 12) {
            model.forward(images: img.pointer, ids: ids, activations: acts)
            return loss.forward(imageFeatures: acts.imageFeatures, textFeatures: acts.textFeatures, logitScale: model.store.value(model.logitScale).pointee)
                + model.auxiliaryLoss(acts)
        } backward: {
            model.store.grad(model.logitScale).pointee += loss.backward(dImageFeatures: dImg.pointer, dTextFeatures: dTxt.pointer)
            model.backward(dImageFeatures: dImg.pointer, dTextFeatures: dTxt.pointer, activations: acts)
        }
        model.forward(images: img.pointer, ids: ids, activations: acts)
        let stats = model.mixtureStatistics(acts)
        #expect(stats.count == 3 && stats.contains { $0.statistics.overCapacityRatio > 0 }, "some assignments must be dropped: \(stats)")
        #expect(model.auxiliaryLoss(acts) > 0)
        for r in reports { #expect(r.error < 1e-6, "\(r)") }
    }

    @Test("Recomputed activations give the full ones' gradients; forward-only ones the same embeddings; the auxiliary scale")
    func activationMemory() throws {
        var c = try denseConfig()
        c.vision.layers = 3
        c.text.layers = 3
        let config = MoEConfiguration(experts: 4, topK: 2, capacityFactor: 1)
        c.vision.experts = MoEPlacement(config, every: 1, first: 0)
        c.text.experts = MoEPlacement(config)
        let model = try CLIPModel<Float>(c)
        model.initialize(seed: 5)
        let b = 4, e = c.embedDimension
        let (images, ids) = inputs(c, batch: b, seed: 5)
        let img = AlignedBuffer(images.map(Float.init))
        let loss = MiniBatchContrastiveLoss<Float>(batch: b, dimension: e, workspace: Workspace())
        let dImg = AlignedBuffer<Float>(count: b * e), dTxt = AlignedBuffer<Float>(count: b * e)
        func gradients(_ memory: ActivationMemory, scale: Double = 1) -> (grads: [Float], aux: Double) {
            let acts = model.makeActivations(batch: b, memory: memory)
            model.setAuxiliaryScale(scale, activations: acts)
            model.store.zeroGrads()
            model.forward(images: img.pointer, ids: ids, activations: acts)
            _ = loss.forward(imageFeatures: acts.imageFeatures, textFeatures: acts.textFeatures, logitScale: model.store.value(model.logitScale).pointee)
            model.store.grad(model.logitScale).pointee += loss.backward(dImageFeatures: dImg.pointer, dTextFeatures: dTxt.pointer)
            model.backward(dImageFeatures: dImg.pointer, dTextFeatures: dTxt.pointer, activations: acts)
            return (Array(UnsafeBufferPointer(start: model.store.grads.pointer, count: model.store.layout.totalCount)), model.auxiliaryLoss(acts))
        }
        let full = gradients(.full), recomputed = gradients(.recompute)
        #expect(full.grads == recomputed.grads && full.aux == recomputed.aux && full.aux > 0)
        // Half the auxiliary scale: half the auxiliary loss; only the routers' gradients change.
        let half = gradients(.full, scale: 0.5)
        #expect(abs(half.aux - full.aux / 2) < 1e-12 * full.aux)
        // The auxiliary gradient enters at the routers and flows back through the blocks below them:
        // the routers' gradients change, what lies above every mixture does not.
        func same(_ v: ParameterView) -> Bool { (0..<v.count).allSatisfy { half.grads[v.offset + $0] == full.grads[v.offset + $0] } }
        let above = ["visual.ln_post.weight", "visual.proj", "ln_final.weight", "text_projection", "transformer.resblocks.2.mlp.c_fc.weight", "logit_scale"]
        for n in above { #expect(same(model.store.view(n)), "\(n)") }
        for v in model.store.layout.views where v.name.hasSuffix("router.weight") { #expect(!same(v), "\(v.name)") }
        let training = model.makeActivations(batch: b), inference = model.makeActivations(batch: b, memory: .inference)
        #expect(model.embedImages(img.pointer, count: b, activations: inference) == model.embedImages(img.pointer, count: b, activations: training))
        #expect(model.embedTexts(ids, count: b, activations: inference) == model.embedTexts(ids, count: b, activations: training))
    }

    @Test("A mixture-of-experts checkpoint loads back with its placement and values; a bad placement is refused by name")
    func checkpoint() throws {
        let c = try denseConfig()
        let dense = try CLIPModel<Float>(c)
        dense.initialize(seed: 2)
        let moe = try dense.upcycled(placement: MoEPlacement(MoEConfiguration(experts: 4, topK: 1, gates: .probability)), towers: .vision)
        let path = NSTemporaryDirectory() + "moe-\(UUID().uuidString).safetensors"
        try moe.save(to: path)
        let back = try CLIPModel<Float>.load(from: path)
        #expect(back.config == moe.config && back.config.text.experts == nil && back.config.vision.experts?.configuration.topK == 1)
        #expect(Array(UnsafeBufferPointer(start: back.store.values.pointer, count: back.store.layout.totalCount))
                == Array(UnsafeBufferPointer(start: moe.store.values.pointer, count: moe.store.layout.totalCount)))
        // The dense model's architecture does not accept the mixture's tensors.
        #expect(throws: CheckpointError.self) { try dense.load(from: path) }
        var bad = c
        bad.vision.experts = MoEPlacement(MoEConfiguration(experts: 4, topK: 5))
        #expect { try CLIPModel<Float>(bad) } throws: { "\($0)".contains("vision.experts.configuration.topK must be in 1…4") }
        bad.vision.experts = MoEPlacement(MoEConfiguration(), every: 2, first: 2)
        #expect { try CLIPModel<Float>(bad) } throws: { "\($0)".contains("places no mixture in its 2 blocks") }
    }

    @Test("Routed rows: only they form the group (capacity, statistics), the others output 0 and take no gradient; gradients check")
    func routedRows() throws {
        let c = 6, rows = 10, e = 3
        var layout = ParameterLayout()
        let moe = MixtureOfExperts("m", width: c, configuration: MoEConfiguration(experts: e, topK: 2, capacityFactor: 1, capacityMultiple: 1,
                                                                                  loadBalanceWeight: 0.1, zLossWeight: 0.1), layout: &layout)
        let store = ParameterStore<Double>(layout: layout)
        for v in layout.views { store.initialize(v, .normal(std: 0.5), seed: 3) }
        let ws = Workspace<Double>()
        let b = moe.makeBuffers(rows: rows, workspace: ws, label: "m")
        ws.seal()
        let x = AlignedBuffer(randomArray(rows * c, seed: 3, stream: "x")), y = AlignedBuffer<Double>(count: rows * c)
        let routed: [Int32] = [0, 1, 2, 5, 6, 9]
        moe.setRoutedRows(routed, count: routed.count, buffers: b)
        moe.forward(x.pointer, y.pointer, buffers: b, params: store)
        let stats = moe.statistics(b)
        #expect(stats.tokens == 6 && stats.capacity == 2)  // ⌊6·1/3⌋ = 2 for the 6 routed rows
        // The same rows alone, as a group of their own, give the same outputs.
        let xs = AlignedBuffer(routed.flatMap { r in (0..<c).map { x.pointer[Int(r) * c + $0] } }), ys = AlignedBuffer<Double>(count: 6 * c)
        let aloneSpace = Workspace<Double>()
        let alone = moe.makeBuffers(rows: 6, workspace: aloneSpace, label: "alone")
        moe.forward(xs.pointer, ys.pointer, buffers: alone, params: store)
        for (j, r) in routed.enumerated() { for i in 0..<c { #expect(y.pointer[Int(r) * c + i] == ys.pointer[j * c + i]) } }
        for r in 0..<rows where !routed.contains(Int32(r)) { for i in 0..<c { #expect(y.pointer[r * c + i] == 0) } }
        // Gradients: the loss Σ dy ⊙ y plus the auxiliary losses, x and every parameter.
        let dy = AlignedBuffer(randomArray(rows * c, seed: 4, stream: "dy")), dx = AlignedBuffer<Double>(count: rows * c)
        let tensors = store.layout.views.map { CheckedTensor(name: $0.name, values: store.value($0), gradient: store.grad($0), count: $0.count) }
            + [CheckedTensor(name: "x", values: x.pointer, gradient: dx.pointer, count: rows * c)]
        let reports = checkGradients(tensors) {
            moe.forward(x.pointer, y.pointer, buffers: b, params: store)
            var l = 0.0
            for i in 0..<(rows * c) { l += dy.pointer[i] * y.pointer[i] }
            return l + moe.auxiliaryLoss(b)
        } backward: {
            moe.backward(dy.pointer, x: x.pointer, dx: dx.pointer, buffers: b, params: store)
        }
        for r in reports { #expect(r.error < 1e-6, "\(r)") }
        #expect(moe.statistics(b).overCapacityRatio > 0, "capacity 2 for 6 tokens × 2 choices must drop")
        for r in 0..<rows where !routed.contains(Int32(r)) { for i in 0..<c { #expect(dx.pointer[r * c + i] == 0) } }
        // nil routes every row again.
        moe.setRoutedRows(nil as UnsafePointer<Int32>?, count: 0, buffers: b)
        moe.forward(x.pointer, y.pointer, buffers: b, params: store)
        #expect(moe.statistics(b).tokens == rows)
        withExtendedLifetime((ws, aloneSpace)) {}
    }

    @Test("A mixture text tower routes each text up to its end-of-text token: padding changes nothing and takes no capacity")
    func textPadding() throws {
        var c = try denseConfig()
        c.text.experts = MoEPlacement(MoEConfiguration(experts: 4, topK: 2, capacityFactor: 1), every: 1, first: 0)
        let model = try CLIPModel<Float>(c)
        model.initialize(seed: 6)
        let b = 4
        let short: [Int32] = [38, 2, 39, 0, 0, 0], long: [Int32] = [38, 3, 7, 9, 39, 0]
        let ids = short + long + short + long
        let acts = model.makeActivations(batch: b)
        let plain = model.embedTexts(ids, count: b, activations: acts)
        let stats = model.mixtureStatistics(acts)
        let tokens = stats.map(\.statistics.tokens)
        #expect(tokens == [16, 16], "\(tokens)")  // 3 + 5 + 3 + 5 rows up to the end-of-text tokens, in each of the 2 blocks
        // Other tokens after each end-of-text token: the same embeddings, bit for bit.
        var padded = ids
        for i in 0..<b { for j in 0..<6 where padded[i * 6 + j] == 0 { padded[i * 6 + j] = Int32(11 + j) } }
        #expect(model.embedTexts(padded, count: b, activations: acts) == plain)
    }
}
