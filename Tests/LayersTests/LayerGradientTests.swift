// Every layer and block checked in Double against central finite differences, on fresh random
// parameters and inputs (never zeros). The loss is L = Σ dy ⊙ y for a fixed random dy, so every
// output element contributes. Tolerance: the analytic gradient may deviate from the central
// difference (h = 1e-5) by at most 1e-6 of the gradient's largest element; the truncation error of
// the difference is O(h²) ≈ 1e-10 relative here, so 1e-6 leaves margin while any wrong term
// (typically a relative error of 1e-2 or more) fails.

import Compute
import Layers
import Testing
import TestSupport

let gradientTolerance = 1e-6

/// Randomises every parameter of `store` with normal draws of std `std` (LayerNorm gains too).
func randomizeParameters(_ store: ParameterStore<Double>, seed: UInt64, std: Double = 0.3) {
    for view in store.layout.views {
        store.initialize(view, .normal(std: std), seed: seed)
        if view.name.hasSuffix("ln_1.weight") || view.name.hasSuffix("ln_2.weight") || view.name.hasSuffix("ln.weight") {
            let p = store.value(view)
            for i in 0..<view.count { p[i] += 1 }  // gains near 1, still random
        }
    }
}

/// One tensor per parameter view, for `checkGradients`.
func parameterTensors(_ store: ParameterStore<Double>) -> [CheckedTensor] {
    store.layout.views.map { CheckedTensor(name: $0.name, values: store.value($0), gradient: store.grad($0), count: $0.count) }
}

func expectAll(_ reports: [GradientReport], tolerance: Double = gradientTolerance, sourceLocation: SourceLocation = #_sourceLocation) {
    for r in reports {
        #expect(r.error < tolerance, "\(r)", sourceLocation: sourceLocation)
        #expect(r.accumulationError < 1e-12, "backward must accumulate: \(r)", sourceLocation: sourceLocation)
    }
}

@Suite("Layer gradients (Double, finite differences)")
struct LayerGradientTests {
    @Test("Linear", arguments: [true, false])
    func linear(bias: Bool) {
        var layout = ParameterLayout()
        let layer = Linear("fc", inFeatures: 7, outFeatures: 5, bias: bias, layout: &layout)
        let store = ParameterStore<Double>(layout: layout)
        randomizeParameters(store, seed: 1)
        let rows = 6
        let x = randomBuffer(rows * 7, seed: 1, stream: "x"), dx = AlignedBuffer<Double>(count: rows * 7)
        let dy = randomBuffer(rows * 5, seed: 1, stream: "dy"), y = AlignedBuffer<Double>(count: rows * 5)
        let reports = checkGradients(parameterTensors(store) + [CheckedTensor(name: "x", values: x.pointer, gradient: dx.pointer, count: rows * 7)]) {
            layer.forward(x.pointer, y.pointer, rows: rows, params: store)
            return dot(dy.pointer, y.pointer, count: rows * 5)
        } backward: {
            layer.backward(dy.pointer, x: x.pointer, dx: dx.pointer, rows: rows, params: store)
        }
        expectAll(reports)
        // Overwrite mode: dx equals exactly one backward's input gradient.
        dx.zero()
        layer.backward(dy.pointer, x: x.pointer, dx: dx.pointer, rows: rows, params: store)
        let once = dx.toArray()
        layer.backward(dy.pointer, x: x.pointer, dx: dx.pointer, rows: rows, params: store, accumulateInput: false)
        #expect(dx.toArray() == once)
    }

    @Test("LayerNorm layer")
    func layerNorm() {
        var layout = ParameterLayout()
        let ln = LayerNorm("ln", width: 10, layout: &layout)
        let store = ParameterStore<Double>(layout: layout)
        randomizeParameters(store, seed: 2)
        let rows = 4, n = 40
        let ws = Workspace<Double>()
        defer { withExtendedLifetime(ws) {} }
        let cache = ln.makeCache(rows: rows, workspace: ws, label: "ln")
        let x = randomBuffer(n, seed: 2, stream: "x", std: 2), dx = AlignedBuffer<Double>(count: n)
        let dy = randomBuffer(n, seed: 2, stream: "dy"), y = AlignedBuffer<Double>(count: n)
        let reports = checkGradients(parameterTensors(store) + [CheckedTensor(name: "x", values: x.pointer, gradient: dx.pointer, count: n)]) {
            ln.forward(x.pointer, y.pointer, rows: rows, cache: cache, params: store)
            return dot(dy.pointer, y.pointer, count: n)
        } backward: {
            ln.backward(dy.pointer, x: x.pointer, dx: dx.pointer, rows: rows, cache: cache, params: store)
        }
        expectAll(reports)
    }

    @Test("Multi-head attention", arguments: [false, true])
    func attention(causal: Bool) {
        var layout = ParameterLayout()
        let attn = MultiheadAttention("attn", width: 8, heads: 2, causal: causal, layout: &layout)
        let store = ParameterStore<Double>(layout: layout)
        randomizeParameters(store, seed: 3, std: 0.5)
        let batch = 2, tokens = 5, n = batch * tokens * 8
        let ws = Workspace<Double>()
        defer { withExtendedLifetime(ws) {} }
        let buffers = attn.makeBuffers(batch: batch, tokens: tokens, workspace: ws, label: "attn")
        ws.seal()
        let x = randomBuffer(n, seed: 3, stream: "x"), dx = AlignedBuffer<Double>(count: n)
        let dy = randomBuffer(n, seed: 3, stream: "dy"), y = AlignedBuffer<Double>(count: n)
        let reports = checkGradients(parameterTensors(store) + [CheckedTensor(name: "x", values: x.pointer, gradient: dx.pointer, count: n)]) {
            attn.forward(x.pointer, y.pointer, buffers: buffers, params: store)
            return dot(dy.pointer, y.pointer, count: n)
        } backward: {
            attn.backward(dy.pointer, x: x.pointer, dx: dx.pointer, buffers: buffers, params: store)
        }
        expectAll(reports)
    }

    @Test("Attention forward and backward are bit-identical at 1 and 2 threads (Float)")
    func attentionThreadIndependence() {
        var layout = ParameterLayout()
        let attn = MultiheadAttention("attn", width: 32, heads: 4, causal: true, layout: &layout)
        let store = ParameterStore<Float>(layout: layout)
        for v in layout.views { store.initialize(v, .normal(std: 0.2), seed: 5) }
        let batch = 7, tokens = 9, n = batch * tokens * 32
        let ws = Workspace<Float>()
        defer { withExtendedLifetime(ws) {} }
        let buffers = attn.makeBuffers(batch: batch, tokens: tokens, workspace: ws, label: "attn")
        let x = AlignedBuffer(randomArray(n, seed: 5, stream: "x").map(Float.init))
        let dy = AlignedBuffer(randomArray(n, seed: 5, stream: "dy").map(Float.init))
        var results: [[Float]] = []
        for threads in [1, 2] {
            Threads.set(threads)
            let y = AlignedBuffer<Float>(count: n), dx = AlignedBuffer<Float>(count: n)
            store.zeroGrads()
            attn.forward(x.pointer, y.pointer, buffers: buffers, params: store)
            attn.backward(dy.pointer, x: x.pointer, dx: dx.pointer, buffers: buffers, params: store)
            results.append(y.toArray() + dx.toArray() + store.grads.toArray())
        }
        Threads.set(1)
        #expect(results[0] == results[1])
        withExtendedLifetime((x, dy)) {}
    }

    @Test("Attention with a causal mask ignores later tokens")
    func causalMask() {
        var layout = ParameterLayout()
        let attn = MultiheadAttention("attn", width: 8, heads: 2, causal: true, layout: &layout)
        let store = ParameterStore<Double>(layout: layout)
        randomizeParameters(store, seed: 4, std: 0.5)
        let tokens = 6, n = tokens * 8
        let ws = Workspace<Double>()
        defer { withExtendedLifetime(ws) {} }
        let buffers = attn.makeBuffers(batch: 1, tokens: tokens, workspace: ws, label: "attn")
        let x = randomBuffer(n, seed: 4, stream: "x"), y1 = AlignedBuffer<Double>(count: n), y2 = AlignedBuffer<Double>(count: n)
        attn.forward(x.pointer, y1.pointer, buffers: buffers, params: store)
        for j in 0..<8 { x[(tokens - 1) * 8 + j] += 1 }  // change only the last token
        attn.forward(x.pointer, y2.pointer, buffers: buffers, params: store)
        #expect((0..<(tokens - 1) * 8).allSatisfy { y1[$0] == y2[$0] })
        #expect((((tokens - 1) * 8)..<n).contains { y1[$0] != y2[$0] })
    }

    @Test("MLP", arguments: GELUApproximation.allCases)
    func mlp(_ approx: GELUApproximation) {
        var layout = ParameterLayout()
        let mlp = MLP("mlp", width: 6, approximation: approx, layout: &layout)
        let store = ParameterStore<Double>(layout: layout)
        randomizeParameters(store, seed: 5, std: 0.5)
        let rows = 5, n = rows * 6
        let ws = Workspace<Double>()
        defer { withExtendedLifetime(ws) {} }
        let buffers = mlp.makeBuffers(rows: rows, workspace: ws, label: "mlp")
        let x = randomBuffer(n, seed: 5, stream: "x"), dx = AlignedBuffer<Double>(count: n)
        let dy = randomBuffer(n, seed: 5, stream: "dy"), y = AlignedBuffer<Double>(count: n)
        let reports = checkGradients(parameterTensors(store) + [CheckedTensor(name: "x", values: x.pointer, gradient: dx.pointer, count: n)]) {
            mlp.forward(x.pointer, y.pointer, buffers: buffers, params: store)
            return dot(dy.pointer, y.pointer, count: n)
        } backward: {
            mlp.backward(dy.pointer, x: x.pointer, dx: dx.pointer, buffers: buffers, params: store)
        }
        expectAll(reports)
    }

    @Test("Pre-LN residual block", arguments: [false, true])
    func residualBlock(causal: Bool) {
        var layout = ParameterLayout()
        let block = ResidualBlock("transformer.resblocks.0", width: 8, heads: 2, causal: causal, layout: &layout)
        let store = ParameterStore<Double>(layout: layout)
        randomizeParameters(store, seed: 6, std: 0.4)
        let batch = 2, tokens = 4, n = batch * tokens * 8
        let ws = Workspace<Double>()
        defer { withExtendedLifetime(ws) {} }
        let buffers = block.makeBuffers(batch: batch, tokens: tokens, workspace: ws, label: "block")
        ws.seal()
        let x = randomBuffer(n, seed: 6, stream: "x"), dx = AlignedBuffer<Double>(count: n)
        let dy = randomBuffer(n, seed: 6, stream: "dy"), y = AlignedBuffer<Double>(count: n)
        let reports = checkGradients(parameterTensors(store) + [CheckedTensor(name: "x", values: x.pointer, gradient: dx.pointer, count: n)]) {
            block.forward(x.pointer, y.pointer, buffers: buffers, params: store)
            return dot(dy.pointer, y.pointer, count: n)
        } backward: {
            block.backward(dy.pointer, x: x.pointer, dx: dx.pointer, buffers: buffers, params: store)
        }
        expectAll(reports)
        #expect(Set(store.layout.views.map(\.name)) == [
            "transformer.resblocks.0.ln_1.weight", "transformer.resblocks.0.ln_1.bias",
            "transformer.resblocks.0.attn.in_proj_weight", "transformer.resblocks.0.attn.in_proj_bias",
            "transformer.resblocks.0.attn.out_proj.weight", "transformer.resblocks.0.attn.out_proj.bias",
            "transformer.resblocks.0.ln_2.weight", "transformer.resblocks.0.ln_2.bias",
            "transformer.resblocks.0.mlp.c_fc.weight", "transformer.resblocks.0.mlp.c_fc.bias",
            "transformer.resblocks.0.mlp.c_proj.weight", "transformer.resblocks.0.mlp.c_proj.bias",
        ])
    }

    @Test("Two stacked blocks sharing scratch (LayerNorm and GELU outputs rebuilt in backward)")
    func stackedBlocksSharingScratch() {
        var layout = ParameterLayout()
        let b0 = ResidualBlock("transformer.resblocks.0", width: 8, heads: 2, causal: true, layout: &layout)
        let b1 = ResidualBlock("transformer.resblocks.1", width: 8, heads: 2, causal: true, layout: &layout)
        let store = ParameterStore<Double>(layout: layout)
        randomizeParameters(store, seed: 16, std: 0.4)
        let batch = 2, tokens = 3, n = batch * tokens * 8
        let ws = Workspace<Double>()
        defer { withExtendedLifetime(ws) {} }
        let buf0 = b0.makeBuffers(batch: batch, tokens: tokens, workspace: ws, label: "b0")
        let buf1 = b1.makeBuffers(batch: batch, tokens: tokens, workspace: ws, label: "b1")
        #expect(buf0.dln == buf1.dln && buf0.attention.dqkv == buf1.attention.dqkv && buf0.x1 != buf1.x1)
        // LayerNorm and GELU outputs are shared too, and rebuilt in backward.
        #expect(buf0.ln1Out == buf1.ln2Out && buf0.mlp.dense?.activation == buf1.mlp.dense?.activation && buf0.mlp.dense?.preActivation != buf1.mlp.dense?.preActivation)
        let x = randomBuffer(n, seed: 16, stream: "x"), dx = AlignedBuffer<Double>(count: n)
        let h = AlignedBuffer<Double>(count: n), dh = AlignedBuffer<Double>(count: n)
        let dy = randomBuffer(n, seed: 16, stream: "dy"), y = AlignedBuffer<Double>(count: n)
        let reports = checkGradients(parameterTensors(store) + [CheckedTensor(name: "x", values: x.pointer, gradient: dx.pointer, count: n)]) {
            b0.forward(x.pointer, h.pointer, buffers: buf0, params: store)
            b1.forward(h.pointer, y.pointer, buffers: buf1, params: store)
            return dot(dy.pointer, y.pointer, count: n)
        } backward: {
            dh.zero()
            b1.backward(dy.pointer, x: h.pointer, dx: dh.pointer, buffers: buf1, params: store)
            b0.backward(dh.pointer, x: x.pointer, dx: dx.pointer, buffers: buf0, params: store)
        }
        expectAll(reports)
    }

    @Test("Patch embedding (weights and image)")
    func patchEmbedding() {
        var layout = ParameterLayout()
        let pe = PatchEmbedding("visual.conv1.weight", imageSize: 6, patchSize: 3, width: 5, layout: &layout)
        let store = ParameterStore<Double>(layout: layout)
        randomizeParameters(store, seed: 7)
        let batch = 2, imageCount = batch * 3 * 36, outCount = batch * pe.patches * 5
        let ws = Workspace<Double>()
        defer { withExtendedLifetime(ws) {} }
        let cols = pe.makeColumns(batch: batch, workspace: ws, label: "patch")
        let dcols = pe.makeColumns(batch: batch, workspace: ws, label: "dpatch")
        let images = randomBuffer(imageCount, seed: 7, stream: "img"), dImages = AlignedBuffer<Double>(count: imageCount)
        let dy = randomBuffer(outCount, seed: 7, stream: "dy"), y = AlignedBuffer<Double>(count: outCount)
        let reports = checkGradients(parameterTensors(store) + [CheckedTensor(name: "images", values: images.pointer, gradient: dImages.pointer, count: imageCount)]) {
            pe.forward(images: images.pointer, columns: cols, y.pointer, batch: batch, params: store)
            return dot(dy.pointer, y.pointer, count: outCount)
        } backward: {
            pe.backward(dy.pointer, columns: cols, batch: batch, params: store, dImages: dImages.pointer, dColumns: dcols)
        }
        expectAll(reports)
    }

    @Test("Patch embedding equals a direct convolution")
    func patchEmbeddingIsConvolution() {
        var layout = ParameterLayout()
        let pe = PatchEmbedding("conv", imageSize: 8, patchSize: 4, width: 3, layout: &layout)
        let store = ParameterStore<Double>(layout: layout)
        randomizeParameters(store, seed: 8)
        let ws = Workspace<Double>()
        defer { withExtendedLifetime(ws) {} }
        let cols = pe.makeColumns(batch: 1, workspace: ws, label: "p")
        let img = randomBuffer(3 * 64, seed: 8, stream: "img"), y = AlignedBuffer<Double>(count: pe.patches * 3)
        pe.forward(images: img.pointer, columns: cols, y.pointer, batch: 1, params: store)
        let w = store.value(pe.weight)
        for gy in 0..<2 {
            for gx in 0..<2 {
                for o in 0..<3 {
                    var s = 0.0
                    for c in 0..<3 { for ky in 0..<4 { for kx in 0..<4 {
                        s += w[((o * 3 + c) * 4 + ky) * 4 + kx] * img[(c * 8 + gy * 4 + ky) * 8 + gx * 4 + kx]
                    } } }
                    #expect(abs(y[(gy * 2 + gx) * 3 + o] - s) < 1e-13)
                }
            }
        }
    }

    @Test("Token and positional embeddings")
    func embeddings() {
        var layout = ParameterLayout()
        let tok = TokenEmbedding("token_embedding.weight", vocabularySize: 11, width: 4, layout: &layout)
        let pos = PositionalEmbedding("positional_embedding", tokens: 3, width: 4, layout: &layout)
        let store = ParameterStore<Double>(layout: layout)
        randomizeParameters(store, seed: 9)
        let batch = 2, n = batch * 3 * 4
        let ids: [Int32] = [3, 7, 3, 10, 0, 7]  // repeated ids: gradients must add up
        let dy = randomBuffer(n, seed: 9, stream: "dy"), y = AlignedBuffer<Double>(count: n)
        let reports = checkGradients(parameterTensors(store)) {
            ids.withUnsafeBufferPointer { tok.forward(tokens: $0.baseAddress!, y.pointer, count: 6, params: store) }
            pos.forward(y.pointer, batch: batch, params: store)
            return dot(dy.pointer, y.pointer, count: n)
        } backward: {
            pos.backward(dy.pointer, batch: batch, params: store)
            ids.withUnsafeBufferPointer { tok.backward(dy.pointer, tokens: $0.baseAddress!, count: 6, params: store) }
        }
        expectAll(reports)
    }
}
