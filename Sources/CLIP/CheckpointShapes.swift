// What a checkpoint's tensor shapes say about its architecture, for the error that refuses a file
// without ClipLab metadata (or one that does not fit the architecture given): the presets whose
// shapes are exactly the file's, or else the widths, depths and sizes to write into an OpenCLIP
// model config. The number of attention heads is not visible in the shapes (in_proj_weight is
// (3W, W) for any head count), so it is never inferred.

import Foundation
import Layers

public struct CheckpointShapes: Sendable {
    /// E: the columns of `text_projection`.
    public var embedDimension: Int?
    /// `visual.conv1.weight` (W, 3, p, p), `visual.positional_embedding` (1 + g², W).
    public var visionWidth: Int?
    public var visionLayers: Int
    public var patchSize: Int?
    public var imageSize: Int?
    public var visionMLPRatio: Int?
    /// `token_embedding.weight` (V, W), `positional_embedding` (L, W).
    public var textWidth: Int?
    public var textLayers: Int
    public var contextLength: Int?
    public var vocabularySize: Int?
    public var textMLPRatio: Int?
    /// Every tensor but the attention-mask buffers: name → shape.
    public let tensors: [String: [Int]]

    public init(_ file: SafetensorsFile) {
        var tensors: [String: [Int]] = [:]
        for (name, e) in file.entries where !CLIPModel<Float>.isMaskBuffer(name) { tensors[name] = e.shape }
        self.tensors = tensors
        func blocks(_ prefix: String) -> Int {
            // The number of distinct N in "<prefix>N.…".
            Set(tensors.keys.compactMap { name -> Int? in
                guard name.hasPrefix(prefix) else { return nil }
                return Int(name.dropFirst(prefix.count).prefix { $0 != "." })
            }).count
        }
        func ratio(_ name: String, width: Int?) -> Int? {
            guard let s = tensors[name], s.count == 2, let w = width, w > 0, s[0] % w == 0 else { return nil }
            return s[0] / w
        }
        embedDimension = tensors["text_projection"].flatMap { $0.count == 2 ? $0[1] : nil } ?? tensors["visual.proj"].flatMap { $0.count == 2 ? $0[1] : nil }
        if let s = tensors["visual.conv1.weight"], s.count == 4, s[2] == s[3] {
            visionWidth = s[0]
            patchSize = s[2]
        }
        // A damaged file's shapes can be anything (0 rows, sizes near Int.max): only a grid g with
        // 1 + g² rows, and g · p in range, gives an image size.
        if let s = tensors["visual.positional_embedding"], s.count == 2, s[0] >= 1, let p = patchSize {
            let g = Int(Double(s[0] - 1).squareRoot().rounded())
            let (square, squareOverflows) = g.multipliedReportingOverflow(by: g)
            let (size, sizeOverflows) = g.multipliedReportingOverflow(by: p)
            if !squareOverflows, !sizeOverflows, square == s[0] - 1 { imageSize = size }
        }
        visionLayers = blocks("visual.transformer.resblocks.")
        visionMLPRatio = ratio("visual.transformer.resblocks.0.mlp.c_fc.weight", width: visionWidth)
        if let s = tensors["token_embedding.weight"], s.count == 2 {
            vocabularySize = s[0]
            textWidth = s[1]
        }
        contextLength = tensors["positional_embedding"].flatMap { $0.count == 2 ? $0[0] : nil }
        textLayers = blocks("transformer.resblocks.")
        textMLPRatio = ratio("transformer.resblocks.0.mlp.c_fc.weight", width: textWidth)
    }

    /// Whether the file has the tensors of OpenCLIP's `CLIP` at all.
    public var looksLikeOpenCLIP: Bool {
        embedDimension != nil && visionWidth != nil && textWidth != nil && contextLength != nil && imageSize != nil
    }

    /// The names and shapes of a model built from `config`, without allocating it.
    public static func shapes(of config: CLIPConfiguration) -> [String: [Int]] {
        var layout = ParameterLayout()
        _ = TextTower(config.text, embedDimension: config.embedDimension, gelu: config.gelu, layout: &layout)
        layout.add("logit_scale", shape: [])
        _ = VisionTower(config.vision, embedDimension: config.embedDimension, gelu: config.gelu, layout: &layout)
        return Dictionary(uniqueKeysWithValues: layout.views.map { ($0.name, $0.shape) })
    }

    /// The presets (with the file's vocabulary) whose names and shapes are exactly the file's.
    public var matchingPresets: [String] {
        guard let v = vocabularySize else { return [] }
        return CLIPConfiguration.presetNames.filter { name in
            guard let c = CLIPConfiguration.preset(name, vocabularySize: v), (try? c.validate()) != nil else { return false }
            return Self.shapes(of: c) == tensors.filter { $0.key != "logit_bias" }
        }
    }

    /// The architecture in OpenCLIP's config terms, e.g. "embed_dim 32; vision_cfg: image_size 16,
    /// patch_size 4, width 32, layers 1, mlp_ratio 4; text_cfg: context_length 16, …".
    public var summary: String {
        func v(_ x: Int?) -> String { x.map(String.init) ?? "?" }
        return "embed_dim \(v(embedDimension)); vision_cfg: image_size \(v(imageSize)), patch_size \(v(patchSize)), width \(v(visionWidth)), "
            + "layers \(visionLayers), mlp_ratio \(v(visionMLPRatio)); text_cfg: context_length \(v(contextLength)), vocab_size \(v(vocabularySize)), "
            + "width \(v(textWidth)), layers \(textLayers), mlp_ratio \(v(textMLPRatio))"
    }

    /// One or two sentences on what to load the file as: the matching preset, or the shapes to put
    /// into an OpenCLIP model config. nil when the file's parameter shapes are already those of
    /// `current` (its problems are then not about the architecture, e.g. a `logit_bias`).
    public func suggestion(insteadOf current: CLIPConfiguration?) -> String? {
        guard looksLikeOpenCLIP else {
            return "It does not hold OpenCLIP's CLIP tensors (token_embedding.weight, positional_embedding, text_projection, "
                + "visual.conv1.weight, visual.positional_embedding, visual.proj), so no architecture fits it."
        }
        if let current, Self.shapes(of: current) == tensors.filter({ $0.key != "logit_bias" }) { return nil }
        let presets = matchingPresets
        if let first = presets.first, let c = CLIPConfiguration.preset(first) {
            let names = presets.map { "'\($0)'" }.joined(separator: " or ")
            return "Its shapes are those of preset \(names) (\(summary)): pass --model \(first). The number of attention heads "
                + "is not visible in the shapes (\(first) has \(c.vision.heads) vision and \(c.text.heads) text heads); if the model "
                + "used others, give its OpenCLIP config with --model-config instead."
        }
        return "Its shapes are \(summary), which no preset has (\(CLIPConfiguration.presetNames.joined(separator: ", "))): write them, "
            + "with the attention heads (vision_cfg.head_width, text_cfg.heads), into an OpenCLIP model config and pass --model-config FILE."
    }
}
