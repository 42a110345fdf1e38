import CLIP
import Compute
import Foundation
import Layers
import Objectives
import Testing
import TestSupport

@Suite("CLIP model")
struct CLIPModelTests {
    @Test("Tensor and parameter counts equal OpenCLIP's for each preset", arguments: [
        ("nano", 38, 1_611_329), ("tiny", 110, 7_962_625), ("small", 158, 22_332_417),
    ])
    func counts(preset: String, tensors: Int, parameters: Int) throws {
        let config = try #require(CLIPConfiguration.preset(preset))
        let model = try CLIPModel<Float>(config)
        #expect(model.store.layout.views.count == tensors)
        #expect(model.store.layout.parameterCount == parameters)
    }

    @Test("Names and shapes follow OpenCLIP's state_dict")
    func names() throws {
        let model = try CLIPModel<Float>(#require(CLIPConfiguration.preset("tiny")))
        let shapes = Dictionary(uniqueKeysWithValues: model.store.layout.views.map { ($0.name, $0.shape) })
        #expect(shapes["logit_scale"] == [])
        #expect(shapes["token_embedding.weight"] == [49408, 128])
        #expect(shapes["positional_embedding"] == [32, 128])
        #expect(shapes["text_projection"] == [128, 128])
        #expect(shapes["ln_final.weight"] == [128])
        #expect(shapes["visual.class_embedding"] == [128])
        #expect(shapes["visual.positional_embedding"] == [65, 128])
        #expect(shapes["visual.conv1.weight"] == [128, 3, 4, 4])
        #expect(shapes["visual.proj"] == [128, 128])
        #expect(shapes["visual.ln_pre.bias"] == [128])
        #expect(shapes["visual.transformer.resblocks.3.attn.in_proj_weight"] == [384, 128])
        #expect(shapes["transformer.resblocks.0.mlp.c_proj.weight"] == [128, 512])
        #expect(shapes["visual.conv1.bias"] == nil)
        #expect(shapes.keys.allSatisfy { !$0.contains("attn_mask") })
    }

    @Test("Initialisation follows OpenCLIP: logit scale, scales of the random tensors, LayerNorms")
    func initialisation() throws {
        // A 2,000-token vocabulary keeps the debug-build test fast; the rules do not depend on it.
        let config = try #require(CLIPConfiguration.preset("tiny", vocabularySize: 2000))
        let model = try CLIPModel<Double>(config)
        model.initialize(seed: 1)
        let s = model.store
        #expect(abs(s.value(model.logitScale).pointee - Foundation.log(1 / 0.07)) < 1e-12)
        func std(_ name: String) -> Double {
            let v = s.values(of: s.view(name))
            let m = v.reduce(0, +) / Double(v.count)
            return (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count)).squareRoot()
        }
        // Expected standard deviations, and the sampling tolerance for these sizes (≤ 5%).
        #expect(abs(std("token_embedding.weight") / 0.02 - 1) < 0.02)
        #expect(abs(std("positional_embedding") / 0.01 - 1) < 0.05)
        #expect(abs(std("transformer.resblocks.0.attn.in_proj_weight") / (1 / 128.0.squareRoot()) - 1) < 0.05)
        #expect(abs(std("transformer.resblocks.0.mlp.c_proj.weight") / (1 / 128.0.squareRoot() / 8.0.squareRoot()) - 1) < 0.05)
        #expect(abs(std("visual.positional_embedding") / (1 / 128.0.squareRoot()) - 1) < 0.05)
        // Xavier-uniform in_proj in the vision tower: std = bound/√3 with bound = √(6/(4W)).
        #expect(abs(std("visual.transformer.resblocks.0.attn.in_proj_weight") / ((6.0 / 512).squareRoot() / 3.0.squareRoot()) - 1) < 0.05)
        #expect(s.values(of: s.view("visual.ln_pre.weight")).allSatisfy { $0 == 1 })
        #expect(s.values(of: s.view("ln_final.bias")).allSatisfy { $0 == 0 })
        #expect(s.values(of: s.view("visual.transformer.resblocks.0.attn.in_proj_bias")).allSatisfy { $0 == 0 })
        // Same seed, same values; another seed, other values.
        let again = try CLIPModel<Double>(config)
        again.initialize(seed: 1)
        #expect(again.store.values.toArray() == s.values.toArray())
        again.initialize(seed: 2)
        #expect(again.store.values.toArray() != s.values.toArray())
    }

    @Test("Whole-model gradient of the CLIP loss equals finite differences (nano, Double)")
    func wholeModelGradient() throws {
        var config = try #require(CLIPConfiguration.preset("nano", vocabularySize: 40))
        config.text.contextLength = 6
        let model = try CLIPModel<Double>(config)
        model.initialize(seed: 3)
        // Random, non-trivial values everywhere (LayerNorm gains away from 1, biases non-zero).
        for view in model.store.layout.views where view.name != "logit_scale" {
            let p = model.store.value(view)
            let r = CounterRNG(seed: 33, streamNamed: view.name)
            for i in 0..<view.count { p[i] += 0.1 * r.normal(UInt64(i)) }
        }
        let b = 3, s = config.vision.imageSize
        let acts = model.makeActivations(batch: b)
        let images = randomBuffer(b * 3 * s * s, seed: 3, stream: "images")
        // Token rows: start 38, words, end-of-text 39 (the highest id), padding 0.
        let ids: [Int32] = [38, 5, 7, 39, 0, 0, 38, 12, 39, 0, 0, 0, 38, 3, 3, 21, 9, 39]
        let reports = checkModelGradients(model, images: images, ids: ids, activations: acts)
        #expect(reports.count == 38)
        for r in reports {
            // Unused vocabulary rows have zero gradient both ways; the scaled error handles that.
            #expect(r.error < 1e-6, "\(r)")
            #expect(r.accumulationError < 1e-12, "\(r)")
        }
        // Rows of never-seen tokens get no gradient.
        let emb = model.store.grads(of: model.store.view("token_embedding.weight"))
        #expect((0..<32).allSatisfy { emb[30 * 32 + $0] == 0 })
        withExtendedLifetime(acts) {}
    }

    @Test("Chunked inference equals a single full batch, and text pooling uses the end-of-text row")
    func inference() throws {
        var config = try #require(CLIPConfiguration.preset("nano", vocabularySize: 40))
        config.text.contextLength = 6
        let model = try CLIPModel<Float>(config)
        model.initialize(seed: 4)
        let s = config.vision.imageSize, e = config.embedDimension
        let images = AlignedBuffer(randomArray(5 * 3 * s * s, seed: 4, stream: "img").map(Float.init))
        let ids: [Int32] = (0..<5).flatMap { i -> [Int32] in [38, Int32(i + 1), 39, 0, 0, 0] }
        let big = model.makeActivations(batch: 5), small = model.makeActivations(batch: 2)
        let a = model.embedImages(images.pointer, count: 5, activations: big)
        let c = model.embedImages(images.pointer, count: 5, activations: small)
        #expect(scaledMaxError(a.map(Double.init), c.map(Double.init)) < 1e-5)
        let t1 = model.embedTexts(ids, count: 5, activations: big)
        let t2 = model.embedTexts(ids, count: 5, activations: small)
        // Chunks of another size change how OpenBLAS blocks the products, and so the Float
        // summation order (AVX-512 kernels measured 1.3e−6 here); a pooling or chunking bug
        // gives errors of order 1.
        #expect(scaledMaxError(t1.map(Double.init), t2.map(Double.init)) < 1e-5)
        // Changing a token after the end-of-text token (padding) leaves the embedding unchanged.
        var padded = ids
        padded[4] = 17
        let t3 = model.embedTexts(padded, count: 5, activations: small)
        #expect(t3 == t2)
        for r in 0..<5 {
            let n = (0..<e).map { Double(a[r * e + $0]) * Double(a[r * e + $0]) }.reduce(0, +)
            #expect(abs(n - 1) < 1e-5)
        }
        let sim = model.similarity(imageEmbeddings: a, textEmbeddings: t1)
        #expect(sim.count == 25 && sim.allSatisfy { abs($0) <= 1 / 0.07 + 1e-3 })
    }

    @Test("Recomputed activations give exactly the gradients of full ones; forward-only activations exactly the embeddings")
    func activationMemory() throws {
        var config = try #require(CLIPConfiguration.preset("nano", vocabularySize: 40))
        config.text.contextLength = 6
        config.vision.layers = 3
        config.text.layers = 3
        let model = try CLIPModel<Float>(config)
        model.initialize(seed: 5)
        let b = 4, e = config.embedDimension, s = config.vision.imageSize
        let images = AlignedBuffer(randomArray(b * 3 * s * s, seed: 5, stream: "img").map(Float.init))
        let ids: [Int32] = (0..<b).flatMap { i -> [Int32] in [38, Int32(i + 2), Int32(2 * i + 1), 39, 0, 0] }
        let loss = MiniBatchContrastiveLoss<Float>(batch: b, dimension: e, workspace: Workspace())
        let dImg = AlignedBuffer<Float>(count: b * e), dTxt = AlignedBuffer<Float>(count: b * e)
        func gradients(_ memory: ActivationMemory) -> (grads: [Float], bytes: Int) {
            let acts = model.makeActivations(batch: b, memory: memory)
            model.store.zeroGrads()
            model.forward(images: images.pointer, ids: ids, activations: acts)
            _ = loss.forward(imageFeatures: acts.imageFeatures, textFeatures: acts.textFeatures,
                             logitScale: model.store.value(model.logitScale).pointee)
            model.store.grad(model.logitScale).pointee += loss.backward(dImageFeatures: dImg.pointer, dTextFeatures: dTxt.pointer)
            model.backward(dImageFeatures: dImg.pointer, dTextFeatures: dTxt.pointer, activations: acts)
            return (Array(UnsafeBufferPointer(start: model.store.grads.pointer, count: model.store.layout.totalCount)), acts.workspace.totalBytes)
        }
        let full = gradients(.full), recomputed = gradients(.recompute)
        #expect(full.grads.contains { $0 != 0 })
        let differing = zip(recomputed.grads, full.grads).filter { $0 != $1 }.count
        #expect(differing == 0, "\(differing) of \(full.grads.count) gradient entries differ")
        #expect(recomputed.bytes < full.bytes)

        let training = model.makeActivations(batch: b), inference = model.makeActivations(batch: b, memory: .inference)
        #expect(inference.workspace.totalBytes < recomputed.bytes)
        #expect(model.embedImages(images.pointer, count: b, activations: inference)
                == model.embedImages(images.pointer, count: b, activations: training))
        #expect(model.embedTexts(ids, count: b, activations: inference) == model.embedTexts(ids, count: b, activations: training))
    }

    @Test("The vision tower's parameters follow every other parameter in the flat buffer (the overlapped all-reduce's split)",
          arguments: ["nano", "tiny", "small"])
    func visionParametersLast(preset: String) throws {
        let model = try CLIPModel<Float>(try #require(CLIPConfiguration.preset(preset)))
        let split = model.visionParameterOffset
        #expect(split > 0 && split < model.store.layout.totalCount)
        for v in model.store.layout.views {
            if v.name.hasPrefix("visual.") { #expect(v.offset >= split, "\(v.name)") } else { #expect(v.offset + v.count <= split, "\(v.name)") }
        }
    }
}
