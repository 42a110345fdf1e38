// Input embeddings: the patch embedding of the vision tower (a convolution with stride = kernel =
// patch size, computed as unfold + GEMM), the token embedding of the text tower, and learned
// positional embeddings.

import Compute

/// OpenCLIP's `visual.conv1`: a bias-free convolution with kernel = stride = `patch`, mapping an
/// image (B, 3, S, S) to patch features (B, P, W), P = (S/patch)², patches in row-major order.
///
/// Computed as unfold + GEMM: each patch becomes a row of length 3·p·p in (channel, ky, kx) order
/// — the flattening of the conv weight (W, 3, p, p) — and `y = cols·Wᵀ`.
public struct PatchEmbedding: Sendable {
    public let channels: Int
    public let imageSize: Int
    public let patchSize: Int
    public let width: Int
    public let weight: ParameterView  // (W, 3, p, p)

    public var grid: Int { imageSize / patchSize }
    public var patches: Int { grid * grid }
    public var patchDimension: Int { channels * patchSize * patchSize }

    /// Registers `name` (OpenCLIP: `visual.conv1.weight`).
    public init(_ name: String, imageSize: Int, patchSize: Int, width: Int, channels: Int = 3, layout: inout ParameterLayout) {
        precondition(patchSize > 0 && imageSize % patchSize == 0, "PatchEmbedding: image size \(imageSize) is not a multiple of patch size \(patchSize)")
        self.channels = channels
        self.imageSize = imageSize
        self.patchSize = patchSize
        self.width = width
        weight = layout.add(name, shape: [width, channels, patchSize, patchSize])
    }

    /// PyTorch's nn.Conv2d default: uniform on ±1/√(3·p·p).
    public func initializeDefault<T>(_ store: ParameterStore<T>, seed: UInt64) {
        store.initialize(weight, .uniform(bound: 1 / Double(patchDimension).squareRoot()), seed: seed)
    }

    /// The unfolded patches (B·K, 3·p·p), kept for the weight gradient; K = P unless a mask keeps fewer.
    public func makeColumns<T>(batch: Int, keptPatches: Int? = nil, workspace: Workspace<T>, label: String) -> UnsafeMutablePointer<T> {
        workspace.allocate(batch * (keptPatches ?? patches) * patchDimension, label: label + ".cols")
    }

    /// - images: (B, 3, S, S); columns: (B·K, 3·p·p) written; y: (B·K, W) overwritten.
    /// With `kept` (B, K) patch indices, only those patches are unfolded and embedded (a mask);
    /// without, K = P.
    @inlinable
    public func forward<T: Scalar>(
        images: UnsafePointer<T>, columns: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>, batch: Int,
        params: ParameterStore<T>, kept: UnsafePointer<Int32>? = nil, keptPatches: Int? = nil
    ) {
        let k = keptPatches ?? patches
        unfold(images, columns, batch: batch, kept: kept, keptPatches: k)
        gemm(
            transB: true, m: batch * k, n: width, k: patchDimension, a: columns, lda: patchDimension,
            b: params.value(weight), ldb: patchDimension, beta: 0, c: y, ldc: width)
    }

    /// Accumulates dW += dyᵀ·cols, and, when `dImages` is given, the image gradient (fold of dy·W).
    /// - dy: (B·K, W) for the K patches per image the forward embedded (`keptPatches`, default P);
    ///   dColumns: (B·P, 3·p·p) scratch, needed only with `dImages` (which needs K = P).
    @inlinable
    public func backward<T: Scalar>(
        _ dy: UnsafePointer<T>, columns: UnsafePointer<T>, batch: Int, params: ParameterStore<T>,
        dImages: UnsafeMutablePointer<T>? = nil, dColumns: UnsafeMutablePointer<T>? = nil, keptPatches: Int? = nil
    ) {
        let rows = batch * (keptPatches ?? patches)
        precondition(dImages == nil || rows == batch * patches, "PatchEmbedding.backward: the image gradient needs every patch")
        gemm(
            transA: true, m: width, n: patchDimension, k: rows, a: dy, lda: width, b: columns, ldb: patchDimension,
            beta: 1, c: params.grad(weight), ldc: patchDimension)
        if let dImages {
            guard let dColumns else { preconditionFailure("PatchEmbedding.backward: dImages needs a dColumns scratch buffer") }
            gemm(
                m: rows, n: patchDimension, k: width, a: dy, lda: width, b: params.value(weight), ldb: patchDimension,
                beta: 0, c: dColumns, ldc: patchDimension)
            fold(dColumns, into: dImages, batch: batch)
        }
    }

    /// Copies each patch of `images` (B, 3, S, S) into a row of `columns` (B·K, 3·p·p): every
    /// patch in row-major order, or with `kept` (B, K) the listed patches of each image.
    @inlinable
    public func unfold<T: Scalar>(
        _ images: UnsafePointer<T>, _ columns: UnsafeMutablePointer<T>, batch: Int, kept: UnsafePointer<Int32>? = nil,
        keptPatches: Int? = nil
    ) {
        let s = imageSize, p = patchSize, g = grid, k = patchDimension, ch = channels, n = keptPatches ?? patches
        precondition(kept != nil || n == patches, "PatchEmbedding.unfold: \(n) of \(patches) patches needs the kept indices")
        Threads.parallelFor(batch, grain: 1) { range in
            for b in range {
                let image = images + b * ch * s * s
                for i in 0..<n {
                    let patch = kept.map { Int($0[b * n + i]) } ?? i
                    let gy = patch / g, gx = patch % g
                    let row = columns + (b * n + i) * k
                    for c in 0..<ch {
                        for ky in 0..<p {
                            let src = image + (c * s + gy * p + ky) * s + gx * p
                            (row + (c * p + ky) * p).update(from: src, count: p)
                        }
                    }
                }
            }
        }
    }

    /// Adds each row of `columns` (B·P, 3·p·p) back into its patch of `images` (B, 3, S, S).
    @inlinable
    public func fold<T: Scalar>(_ columns: UnsafePointer<T>, into images: UnsafeMutablePointer<T>, batch: Int) {
        let s = imageSize, p = patchSize, g = grid, k = patchDimension, ch = channels
        Threads.parallelFor(batch, grain: 1) { range in
            for b in range {
                let image = images + b * ch * s * s
                for gy in 0..<g {
                    for gx in 0..<g {
                        let row = columns + ((b * g + gy) * g + gx) * k
                        for c in 0..<ch {
                            for ky in 0..<p {
                                let dst = image + (c * s + gy * p + ky) * s + gx * p
                                let src = row + (c * p + ky) * p
                                for kx in 0..<p { dst[kx] += src[kx] }
                            }
                        }
                    }
                }
            }
        }
    }

    public func forwardFlops(batch: Int) -> Double { gemmFlops(m: batch * patches, n: width, k: patchDimension) }
}

/// OpenCLIP's `token_embedding`: a lookup table (V, C).
public struct TokenEmbedding: Sendable {
    public let vocabularySize: Int
    public let width: Int
    public let weight: ParameterView  // (V, C)

    public init(_ name: String, vocabularySize: Int, width: Int, layout: inout ParameterLayout) {
        self.vocabularySize = vocabularySize
        self.width = width
        weight = layout.add(name, shape: [vocabularySize, width])
    }

    /// y[i] = E[tokens[i]] for i in 0..<count. tokens: (count) ids in 0..<V; y: (count, C).
    @inlinable
    public func forward<T: Scalar>(tokens: UnsafePointer<Int32>, _ y: UnsafeMutablePointer<T>, count: Int, params: ParameterStore<T>) {
        let table = params.value(weight), c = width
        for i in 0..<count {
            let id = Int(tokens[i])
            precondition(id >= 0 && id < vocabularySize, "TokenEmbedding: token id \(id) outside 0..<\(vocabularySize)")
            (y + i * c).update(from: table + id * c, count: c)
        }
    }

    /// Accumulates dE[tokens[i]] += dy[i]. dy: (count, C).
    @inlinable
    public func backward<T: Scalar>(_ dy: UnsafePointer<T>, tokens: UnsafePointer<Int32>, count: Int, params: ParameterStore<T>) {
        let dtable = params.grad(weight), c = width
        for i in 0..<count {
            let row = dtable + Int(tokens[i]) * c, src = dy + i * c
            for j in 0..<c { row[j] += src[j] }
        }
    }
}

/// A learned positional embedding (T, C) added to every sequence of a (B, T, C) batch
/// (OpenCLIP's `positional_embedding`, `visual.positional_embedding`).
public struct PositionalEmbedding: Sendable {
    public let tokens: Int
    public let width: Int
    public let weight: ParameterView  // (T, C)

    /// `decay: false` keeps the table out of weight decay (a fixed table that takes no gradient).
    public init(_ name: String, tokens: Int, width: Int, decay: Bool? = nil, layout: inout ParameterLayout) {
        self.tokens = tokens
        self.width = width
        weight = layout.add(name, shape: [tokens, width], decay: decay)
    }

    /// x[b, t, :] += P[t, :] in place. x: (B, T, C).
    @inlinable
    public func forward<T: Scalar>(_ x: UnsafeMutablePointer<T>, batch: Int, params: ParameterStore<T>) {
        let pos = params.value(weight), n = tokens * width
        Threads.parallelFor(batch, grain: max(1, 8192 / max(1, n))) { range in
            for b in range {
                let xb = x + b * n
                for i in 0..<n { xb[i] += pos[i] }
            }
        }
    }

    /// Accumulates dP[t] += Σ_b dy[b, t]. dy: (B, T, C).
    @inlinable
    public func backward<T: Scalar>(_ dy: UnsafePointer<T>, batch: Int, params: ParameterStore<T>) {
        let dpos = params.grad(weight), n = tokens * width
        for b in 0..<batch {
            let src = dy + b * n
            for i in 0..<n { dpos[i] += src[i] }
        }
    }
}
