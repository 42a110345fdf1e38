// CLIPA's compute accounting (§A5.5 of the spec): "GFLOPs" in the CLIPA papers are
// multiply–accumulates (the fvcore convention; ViT-B/16 at 224 px counts 17.6). Per transformer
// layer of N tokens and width D with MLP ratio r (4 in every CLIPA tower):
//
//     MACs = (4 + 2r)·N·D² + 2·N²·D      (q, k, v and output projections 4ND², MLP 2rND²,
//                                         scores QKᵀ and their product with V N²D each)
//
// plus the patch embedding, n·3p²·D for the n patches embedded. Lookups, norms, softmax, GELU,
// pooling and the final projection are not counted (as in CLIPA's tables). A run's compute is
// Σ over stages of (image + text MACs per sample) × samples seen.

public enum ComputeAccounting {
    /// Multiply–accumulates of one transformer layer on `tokens` tokens.
    public static func layerMACs(tokens n: Int, width d: Int, mlpRatio r: Int = 4) -> Double {
        let n = Double(n), d = Double(d)
        return Double(4 + 2 * r) * n * d * d + 2 * n * n * d
    }

    /// MACs per image of the vision tower at `imageSize` pixels (default: its own), of which
    /// `keptPatches` patches reach the encoder (default: all). Masked patches are not embedded in
    /// ClipLab, so the patch embedding counts the kept ones; the class token is a token.
    public static func imageMACs(_ v: VisionConfiguration, imageSize: Int? = nil, keptPatches: Int? = nil) -> Double {
        let grid = (imageSize ?? v.imageSize) / v.patchSize
        let n = keptPatches ?? grid * grid
        let embed = Double(n) * Double(3 * v.patchSize * v.patchSize) * Double(v.width)
        return embed + Double(v.layers) * layerMACs(tokens: n + 1, width: v.width, mlpRatio: v.mlpRatio)
    }

    /// MACs per caption of the text tower at `length` tokens (default: its context length).
    public static func textMACs(_ t: TextConfiguration, length: Int? = nil) -> Double {
        Double(t.layers) * layerMACs(tokens: length ?? t.contextLength, width: t.width, mlpRatio: t.mlpRatio)
    }
}
