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
//
// A mixture-of-experts layer (CLIP-UP) counts its router, N·D·E, and its experts' MLP MACs times
// the assignments each token gets: min(k, cf) under token choice (k chosen, at most cf·N/E·E
// kept), cf under expert choice. ClipLab runs every expert on exactly its kept tokens, so no
// capacity padding is computed or counted; dropped assignments make the true count lower.

import Layers

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
        return embed + towerMACs(layers: v.layers, tokens: n + 1, width: v.width, mlpRatio: v.mlpRatio, experts: v.experts)
    }

    /// MACs of a stack of `layers` layers on `tokens` tokens, the mixture layers of `experts` counted
    /// as the header says.
    public static func towerMACs(layers: Int, tokens: Int, width: Int, mlpRatio: Int, experts: MoEPlacement?) -> Double {
        let dense = layerMACs(tokens: tokens, width: width, mlpRatio: mlpRatio)
        guard let p = experts else { return Double(layers) * dense }
        let m = p.configuration, n = Double(tokens), d = Double(width)
        let mlp = 2 * Double(mlpRatio) * n * d * d
        let assignments = m.routing == .tokenChoice ? min(Double(m.topK), m.capacityFactor) : m.capacityFactor
        let mixture = dense - mlp + assignments * mlp + n * d * Double(m.experts)
        let mixtures = p.blocks(layers: layers).count
        return Double(layers - mixtures) * dense + Double(mixtures) * mixture
    }

    /// MACs per caption of the text tower at `length` tokens (default: its context length).
    public static func textMACs(_ t: TextConfiguration, length: Int? = nil) -> Double {
        towerMACs(layers: t.layers, tokens: length ?? t.contextLength, width: t.width, mlpRatio: t.mlpRatio, experts: t.experts)
    }
}
