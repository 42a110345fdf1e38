// The vision tower on a subset of its patches (CLIPA's and FLIP's masking) and its pooling and
// positional variants: gradients through the kept tokens against finite differences in Double,
// the order of the kept indices not mattering, and the fixed sine–cosine table taking no
// gradient and no weight decay.

import CLIP
import Compute
import Foundation
import Layers
import Objectives
import Testing
import TestSupport

@Suite("Vision tower on kept patches")
struct TokenMaskTests {
    /// nano with a 4×4 patch grid, a 40-token vocabulary and perturbed parameters.
    func model(pool: VisionPooling, positional: VisionPositional) throws -> CLIPModel<Double> {
        var config = try #require(CLIPConfiguration.preset("nano", vocabularySize: 40))
        config.text.contextLength = 6
        config.vision.pool = pool
        config.vision.positional = positional
        let model = try CLIPModel<Double>(config)
        model.initialize(seed: 5)
        for view in model.store.layout.views where view.name != "logit_scale" && view.name != "visual.positional_embedding" {
            let p = model.store.value(view)
            let r = CounterRNG(seed: 55, streamNamed: view.name)
            for i in 0..<view.count { p[i] += 0.1 * r.normal(UInt64(i)) }
        }
        return model
    }

    static let ids: [Int32] = [38, 5, 7, 39, 0, 0, 38, 12, 39, 0, 0, 0, 38, 3, 3, 21, 9, 39]
    /// Six of the 16 patches per image, different for each of the three images; no image keeps 15.
    static let kept: [Int32] = [0, 3, 5, 6, 12, 13, 1, 2, 7, 8, 9, 14, 3, 4, 5, 10, 11, 13]

    @Test("Gradients through the kept tokens equal finite differences", arguments: [
        (VisionPooling.classToken, VisionPositional.learned), (.average, .learned), (.averageWithClass, .learned),
        (.average, .sinCos2D),
    ])
    func maskedGradient(pool: VisionPooling, positional: VisionPositional) throws {
        let model = try model(pool: pool, positional: positional)
        let b = 3, s = model.config.vision.imageSize
        let acts = model.makeActivations(batch: b, keptImagePatches: 6)
        let images = randomBuffer(b * 3 * s * s, seed: 3, stream: "images")
        let fixedTable = positional == .sinCos2D
        let reports = checkModelGradients(
            model, images: images, ids: Self.ids, kept: Self.kept, activations: acts,
            skipping: fixedTable ? ["visual.positional_embedding"] : [])
        #expect(reports.count == (fixedTable ? 37 : 38))
        for r in reports {
            #expect(r.error < 1e-6, "\(r)")
            #expect(r.accumulationError < 1e-12, "\(r): backward must add into the gradients")
        }
        let pos = model.store.view("visual.positional_embedding")
        let dpos = model.store.grads(of: pos), w = model.config.vision.width
        if fixedTable {
            #expect(dpos.allSatisfy { $0 == 0 }, "the sine–cosine table takes no gradient")
            #expect(!pos.decay, "and no weight decay")
        } else {
            // The positional row of a patch no image kept gets nothing.
            let keptAnywhere = Set(Self.kept.map(Int.init))
            for p in 0..<16 where !keptAnywhere.contains(p) {
                #expect((0..<w).allSatisfy { dpos[(1 + p) * w + $0] == 0 }, "patch \(p) was kept by no image")
            }
            #expect(pos.decay)
        }
        withExtendedLifetime(acts) {}
    }

    @Test("The order of the kept indices does not change the features")
    func keptOrder() throws {
        for pool in VisionPooling.allCases {
            let model = try model(pool: pool, positional: .learned)
            let b = 3, e = model.config.embedDimension, s = model.config.vision.imageSize
            let acts = model.makeActivations(batch: b, memory: .inference, keptImagePatches: 6)
            let images = randomBuffer(b * 3 * s * s, seed: 4, stream: "images")
            model.vision.forward(images: images.pointer, features: acts.imageFeatures, batch: b, buffers: acts.vision,
                                 params: model.store, kept: Self.kept)
            let sorted = Array(UnsafeBufferPointer(start: acts.imageFeatures, count: b * e))
            var reversed = Self.kept
            for i in 0..<b { reversed[(i * 6)..<(i * 6 + 6)].reverse() }
            model.vision.forward(images: images.pointer, features: acts.imageFeatures, batch: b, buffers: acts.vision,
                                 params: model.store, kept: reversed)
            let other = Array(UnsafeBufferPointer(start: acts.imageFeatures, count: b * e))
            #expect(scaledMaxError(sorted, other) < 1e-12, "\(pool)")
            // A different subset gives different features.
            var shifted = Self.kept
            shifted[0] = 2
            model.vision.forward(images: images.pointer, features: acts.imageFeatures, batch: b, buffers: acts.vision,
                                 params: model.store, kept: shifted)
            let changed = Array(UnsafeBufferPointer(start: acts.imageFeatures, count: e))
            #expect(scaledMaxError(Array(sorted[0..<e]), changed) > 1e-6)
            withExtendedLifetime(acts) {}
        }
    }

    @Test("A fixed sine–cosine table is written at initialisation, class row zero")
    func sinCosTable() throws {
        let model = try model(pool: .average, positional: .sinCos2D)
        let w = model.config.vision.width, g = model.config.vision.grid
        let table = model.store.values(of: model.store.view("visual.positional_embedding"))
        #expect(table.count == (g * g + 1) * w)
        #expect(table[0..<w].allSatisfy { $0 == 0 })
        let expected = PositionalTables.sinCos2D(grid: g, width: w)
        #expect(Array(table[w...]) == expected)
        // Older checkpoints' configurations (without pool and positional) decode with the defaults.
        let json = #"{"imageSize":16,"patchSize":4,"width":32,"layers":1,"heads":2,"mlpRatio":4}"#
        let decoded = try JSONDecoder().decode(VisionConfiguration.self, from: Data(json.utf8))
        #expect(decoded.pool == .classToken && decoded.positional == .learned)
        let roundTrip = try JSONDecoder().decode(VisionConfiguration.self, from: JSONEncoder().encode(model.config.vision))
        #expect(roundTrip == model.config.vision)
    }

    @Test("Loading across grids and text lengths resizes the positional tables")
    func resizingLoad() throws {
        var small = try #require(CLIPConfiguration.preset("nano", vocabularySize: 40))
        small.vision.imageSize = 8  // a 2×2 grid
        small.text.contextLength = 4
        let source = try CLIPModel<Double>(small)
        source.initialize(seed: 9)
        let path = NSTemporaryDirectory() + "cliplab-resize-\(UUID().uuidString).safetensors"
        try source.save(to: path)
        let full = try CLIPModel<Double>(#require(CLIPConfiguration.preset("nano", vocabularySize: 40)))
        #expect(throws: CheckpointError.self) { try full.load(from: path) }
        let resized = try full.load(from: path, resizingPositional: true)
        #expect(Set(resized) == ["visual.positional_embedding", "positional_embedding"])
        let w = full.config.vision.width
        // Checkpoints hold F32: compare with the source's values rounded to Float.
        func stored(_ name: String) -> [Double] { source.store.values(of: source.store.view(name)).map { Double(Float($0)) } }
        let src = stored("visual.positional_embedding")
        let dst = full.store.values(of: full.store.view("visual.positional_embedding"))
        #expect(Array(dst[0..<w]) == Array(src[0..<w]), "the class row is kept")
        let expected = PositionalTables.resizeBicubic(Array(src[w...]), from: 2, to: 4, width: w)
        #expect(scaledMaxError(Array(dst[w...]), expected) < 1e-12)
        let tsrc = stored("positional_embedding")
        let tdst = full.store.values(of: full.store.view("positional_embedding"))
        #expect(scaledMaxError(tdst, PositionalTables.resizeLinear(tsrc, from: 4, to: 16, width: full.config.text.width)) < 1e-12)
        // Every other tensor is copied as is.
        let copied = full.store.values(of: full.store.view("visual.conv1.weight")) == stored("visual.conv1.weight")
        #expect(copied)
        // A fixed sine–cosine table is recomputed for the new grid instead.
        var sincos = try #require(CLIPConfiguration.preset("nano", vocabularySize: 40))
        sincos.vision.positional = .sinCos2D
        let target = try CLIPModel<Double>(sincos)
        try target.load(from: path, resizingPositional: true)
        let table = target.store.values(of: target.store.view("visual.positional_embedding"))
        #expect(Array(table[w...]) == PositionalTables.sinCos2D(grid: 4, width: w))
    }
}
