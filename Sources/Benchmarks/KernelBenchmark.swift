// `clip bench kernels`: the GFLOP/s of the GEMM entry point on the exact shapes a training step of
// the tiny and small presets runs, and the GB/s of the element-wise kernels, at chosen thread
// counts. A benchmark, never a test: numbers are medians of repeated timings on a shared machine,
// and only ratios within one invocation mean anything.

import CLIP
import Compute
import Foundation

/// The transformer dimensions of one tower at one batch size, enough to list its GEMMs.
public struct TowerShape: Sendable, Hashable, Codable {
    public var name: String
    public var batch: Int  // B
    public var tokens: Int  // T (P + 1 for vision)
    public var width: Int  // C
    public var heads: Int  // H
    public var layers: Int  // L
    /// Patch embedding: 3·p·p inputs per patch and the number of patches, or nil for text.
    public var patchInputs: Int?
    public var patches: Int?

    public init(name: String, batch: Int, tokens: Int, width: Int, heads: Int, layers: Int, patchInputs: Int? = nil, patches: Int? = nil) {
        self.name = name
        self.batch = batch
        self.tokens = tokens
        self.width = width
        self.heads = heads
        self.layers = layers
        self.patchInputs = patchInputs
        self.patches = patches
    }

    /// The vision and text towers of a DESIGN.md preset ("nano", "micro", "tiny", "small") at a batch size.
    public static func preset(_ name: String, batch: Int) -> [TowerShape]? {
        guard let c = CLIPConfiguration.preset(name) else { return nil }
        let v = c.vision, t = c.text, grid = v.grid
        return [
            TowerShape(name: "\(name) vision", batch: batch, tokens: grid * grid + 1, width: v.width, heads: v.heads, layers: v.layers,
                       patchInputs: 3 * v.patchSize * v.patchSize, patches: grid * grid),
            TowerShape(name: "\(name) text", batch: batch, tokens: t.contextLength, width: t.width, heads: t.heads, layers: t.layers),
        ]
    }
}

/// One distinct GEMM of a training step: its dimensions, transposes, how many times a step runs
/// it, and whether it is a per-(sample, head) batched product.
public struct GemmCase: Sendable, Hashable, Codable {
    public var label: String
    public var m: Int, n: Int, k: Int
    public var transA: Bool, transB: Bool
    /// Members of a strided batch (1 for a plain GEMM).
    public var batch: Int
    /// How many times one training step (forward + backward) runs this product.
    public var perStep: Int

    public var flops: Double { Double(batch) * gemmFlops(m: m, n: n, k: k) }

    public init(label: String, m: Int, n: Int, k: Int, transA: Bool, transB: Bool, batch: Int, perStep: Int) {
        self.label = label
        self.m = m
        self.n = n
        self.k = k
        self.transA = transA
        self.transB = transB
        self.batch = batch
        self.perStep = perStep
    }
}

extension TowerShape {
    /// Every GEMM of one forward + backward pass of this tower, deduplicated by shape.
    public var gemmCases: [GemmCase] {
        let r = batch * tokens, c = width, d = width / heads, t = tokens, bh = batch * heads, l = layers
        var cases: [GemmCase] = []
        func linear(_ what: String, _ inF: Int, _ outF: Int) {
            cases.append(GemmCase(label: "\(name) \(what) fwd", m: r, n: outF, k: inF, transA: false, transB: true, batch: 1, perStep: l))
            cases.append(GemmCase(label: "\(name) \(what) dX", m: r, n: inF, k: outF, transA: false, transB: false, batch: 1, perStep: l))
            cases.append(GemmCase(label: "\(name) \(what) dW", m: outF, n: inF, k: r, transA: true, transB: false, batch: 1, perStep: l))
        }
        linear("qkv", c, 3 * c)
        linear("out_proj", c, c)
        linear("c_fc", c, 4 * c)
        linear("c_proj", 4 * c, c)
        // attention: forward QKᵀ and AV; backward dA = dC·Vᵀ, dV = Aᵀ·dC, dQ = dS·K, dK = dSᵀ·Q
        cases.append(GemmCase(label: "\(name) QKᵀ / dA", m: t, n: t, k: d, transA: false, transB: true, batch: bh, perStep: 2 * l))
        cases.append(GemmCase(label: "\(name) AV / dQ", m: t, n: d, k: t, transA: false, transB: false, batch: bh, perStep: 2 * l))
        cases.append(GemmCase(label: "\(name) dV / dK", m: t, n: d, k: t, transA: true, transB: false, batch: bh, perStep: 2 * l))
        if let pin = patchInputs, let np = patches {
            cases.append(GemmCase(label: "\(name) patch fwd", m: batch * np, n: c, k: pin, transA: false, transB: true, batch: 1, perStep: 1))
            cases.append(GemmCase(label: "\(name) patch dW", m: c, n: pin, k: batch * np, transA: true, transB: false, batch: 1, perStep: 1))
        }
        return cases
    }
}

/// One measured rate.
public struct BenchMeasurement: Sendable, Codable {
    public var label: String
    public var threads: Int
    /// GFLOP/s for GEMMs, GB/s for element-wise kernels.
    public var rate: Double
    public var seconds: Double

    public init(label: String, threads: Int, rate: Double, seconds: Double) {
        self.label = label
        self.threads = threads
        self.rate = rate
        self.seconds = seconds
    }
}

/// Times `body` repeatedly (after one warm-up call) until `minTime` seconds and `minRuns` runs
/// have passed, and returns the median seconds per call.
public func medianSeconds(minTime: Double, minRuns: Int = 3, maxRuns: Int = 1000, _ body: () -> Void) -> Double {
    body()
    var samples: [Double] = []
    let start = ContinuousClock.now
    while samples.count < minRuns || (elapsedSeconds(since: start) < minTime && samples.count < maxRuns) {
        let t0 = ContinuousClock.now
        body()
        samples.append(elapsedSeconds(since: t0))
    }
    samples.sort()
    return samples[samples.count / 2]
}

/// Measures one GEMM case in Float at the current thread count; returns GFLOP/s and seconds.
public func measureGemm(_ g: GemmCase, minTime: Double) -> (gflops: Double, seconds: Double) {
    let aRows = g.transA ? g.k : g.m, aCols = g.transA ? g.m : g.k
    let bRows = g.transB ? g.n : g.k, bCols = g.transB ? g.k : g.n
    let lda = aCols, ldb = bCols, ldc = g.n
    let a = AlignedBuffer<Float>(count: g.batch * aRows * lda)
    let b = AlignedBuffer<Float>(count: g.batch * bRows * ldb)
    let c = AlignedBuffer<Float>(count: g.batch * g.m * ldc)
    let rng = CounterRNG(seed: 0, stream: 1)
    rng.fillUniform(a.pointer, count: a.count, low: -1, high: 1)
    rng.fillUniform(b.pointer, count: b.count, low: -1, high: 1, start: UInt64(a.count))
    let seconds = medianSeconds(minTime: minTime) {
        gemmStridedBatched(
            batch: g.batch, transA: g.transA, transB: g.transB, m: g.m, n: g.n, k: g.k,
            a: a.pointer, lda: lda, strideA: aRows * lda, b: b.pointer, ldb: ldb, strideB: bRows * ldb,
            beta: 0, c: c.pointer, ldc: ldc, strideC: g.m * ldc)
    }
    return (g.flops / seconds / 1e9, seconds)
}

/// An element-wise kernel to time, with the bytes it moves per call.
public struct ElementwiseCase: Sendable {
    public var label: String
    public var elements: Int
    public var bytes: Double
    public var run: @Sendable (ElementwiseBuffers) -> Void
}

/// Scratch for the element-wise benchmarks: (rows, C) activations and (C) parameters.
public final class ElementwiseBuffers: @unchecked Sendable {
    public let rows: Int, width: Int
    public let x: AlignedBuffer<Float>, y: AlignedBuffer<Float>, g: AlignedBuffer<Float>
    public let w: AlignedBuffer<Float>, b: AlignedBuffer<Float>, dw: AlignedBuffer<Float>, db: AlignedBuffer<Float>
    public let mean: AlignedBuffer<Float>, rstd: AlignedBuffer<Float>

    public init(rows: Int, width: Int) {
        self.rows = rows
        self.width = width
        let n = rows * width
        x = AlignedBuffer(count: n); y = AlignedBuffer(count: n); g = AlignedBuffer(count: n)
        w = AlignedBuffer(count: width); b = AlignedBuffer(count: width)
        dw = AlignedBuffer(count: width); db = AlignedBuffer(count: width)
        mean = AlignedBuffer(count: rows); rstd = AlignedBuffer(count: rows)
        let rng = CounterRNG(seed: 0, stream: 2)
        rng.fillNormal(x.pointer, count: n)
        rng.fillNormal(g.pointer, count: n, start: UInt64(n))
        w.pointer.update(repeating: 1, count: width)
    }
}

/// The element-wise kernels of a transformer step on a (rows, C) activation.
public func elementwiseCases(rows: Int, width: Int) -> [ElementwiseCase] {
    let n = rows * width, f = Double(MemoryLayout<Float>.stride)
    let bytes = { (streams: Int) in Double(streams) * Double(n) * f }
    return [
        ElementwiseCase(label: "add (residual)", elements: n, bytes: bytes(3)) { e in
            vectorAdd(e.x.pointer, e.g.pointer, e.y.pointer, count: n)
        },
        ElementwiseCase(label: "axpy", elements: n, bytes: bytes(3)) { e in
            axpy(0.5, e.x.pointer, e.y.pointer, count: n)
        },
        ElementwiseCase(label: "GELU exact fwd", elements: n, bytes: bytes(2)) { e in
            geluForward(e.x.pointer, e.y.pointer, count: n, approximation: .exact)
        },
        ElementwiseCase(label: "GELU tanh fwd", elements: n, bytes: bytes(2)) { e in
            geluForward(e.x.pointer, e.y.pointer, count: n, approximation: .tanh)
        },
        ElementwiseCase(label: "GELU exact bwd", elements: n, bytes: bytes(3)) { e in
            geluBackward(e.g.pointer, x: e.x.pointer, dx: e.y.pointer, count: n, approximation: .exact)
        },
        ElementwiseCase(label: "LayerNorm fwd", elements: n, bytes: bytes(2)) { e in
            layerNormForward(e.x.pointer, weight: e.w.pointer, bias: e.b.pointer, e.y.pointer, mean: e.mean.pointer,
                             rstd: e.rstd.pointer, rows: e.rows, width: e.width)
        },
        ElementwiseCase(label: "LayerNorm bwd", elements: n, bytes: bytes(3)) { e in
            layerNormBackward(e.g.pointer, x: e.x.pointer, weight: e.w.pointer, mean: e.mean.pointer, rstd: e.rstd.pointer,
                              dx: e.y.pointer, dweight: e.dw.pointer, dbias: e.db.pointer, rows: e.rows, width: e.width)
        },
        ElementwiseCase(label: "softmax fwd", elements: n, bytes: bytes(2)) { e in
            softmaxRowsForward(e.x.pointer, e.y.pointer, rows: e.rows, cols: e.width, scale: 0.125)
        },
        ElementwiseCase(label: "softmax bwd", elements: n, bytes: bytes(2)) { e in
            softmaxRowsBackwardInPlace(e.g.pointer, y: e.y.pointer, rows: e.rows, cols: e.width)
        },
        ElementwiseCase(label: "L2-normalize fwd", elements: n, bytes: bytes(2)) { e in
            l2NormalizeForward(e.x.pointer, e.y.pointer, norms: e.mean.pointer, rows: e.rows, cols: e.width)
        },
    ]
}

/// The FLOP-weighted GEMM rate of one training step: Σ flops / Σ (flops / measured rate) over
/// the step's products — the rate a step made only of these GEMMs would reach.
public func stepGemmRate(_ cases: [GemmCase], rates: [String: Double]) -> Double {
    var flops = 0.0, seconds = 0.0
    for c in cases {
        guard let r = rates[c.label], r > 0 else { continue }
        let f = c.flops * Double(c.perStep)
        flops += f
        seconds += f / (r * 1e9)
    }
    return seconds > 0 ? flops / seconds / 1e9 : 0
}
