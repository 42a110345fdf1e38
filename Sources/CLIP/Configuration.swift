// Model configurations: the presets of DESIGN.md, named and shaped like OpenCLIP's model configs.

import Compute
import Layers

/// How the vision tower turns its last hidden state into one vector (before `ln_post`).
public enum VisionPooling: String, Codable, Sendable, Hashable, CaseIterable {
    /// The class token's row (OpenCLIP's default, CLIPA's B and S towers: "tok").
    case classToken = "class"
    /// The mean over the patch tokens, class token excluded, then `ln_post` (CLIPA-v2's and the
    /// JAX towers' "gap"; OpenCLIP's `pool_type='avg'` with the norm after pooling).
    case average = "average"
    /// The mean over every token including the class token, then `ln_post` (the PyTorch CLIPA-v1
    /// L/16 "GAP" towers).
    case averageWithClass = "average-with-class"
}

/// Where the vision tower's positional table comes from.
public enum VisionPositional: String, Codable, Sendable, Hashable, CaseIterable {
    /// A learned table (OpenCLIP's), initialised W^−½·N(0, 1).
    case learned
    /// The fixed 2-D sine–cosine code of the patch grid with a zero class-token row (CLIPA's JAX
    /// towers; `PositionalTables.sinCos2D`), stored in the same parameter, never trained or decayed.
    case sinCos2D = "sincos"
}

/// The vision tower: a ViT pooled at the class token (or, for CLIPA, by averaging).
public struct VisionConfiguration: Codable, Sendable, Hashable {
    public var imageSize: Int
    public var patchSize: Int
    public var width: Int
    public var layers: Int
    public var heads: Int
    public var mlpRatio: Int = 4
    public var pool: VisionPooling = .classToken
    public var positional: VisionPositional = .learned
    /// The blocks whose MLP is a mixture of experts (CLIP-UP); nil for a dense tower.
    public var experts: MoEPlacement? = nil

    public init(
        imageSize: Int, patchSize: Int, width: Int, layers: Int, heads: Int, mlpRatio: Int = 4, pool: VisionPooling = .classToken,
        positional: VisionPositional = .learned
    ) {
        self.imageSize = imageSize
        self.patchSize = patchSize
        self.width = width
        self.layers = layers
        self.heads = heads
        self.mlpRatio = mlpRatio
        self.pool = pool
        self.positional = positional
    }

    /// Reads checkpoints written before `pool` and `positional` existed as class-token pooling
    /// with a learned table.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        imageSize = try c.decode(Int.self, forKey: .imageSize)
        patchSize = try c.decode(Int.self, forKey: .patchSize)
        width = try c.decode(Int.self, forKey: .width)
        layers = try c.decode(Int.self, forKey: .layers)
        heads = try c.decode(Int.self, forKey: .heads)
        mlpRatio = try c.decodeIfPresent(Int.self, forKey: .mlpRatio) ?? 4
        pool = try c.decodeIfPresent(VisionPooling.self, forKey: .pool) ?? .classToken
        positional = try c.decodeIfPresent(VisionPositional.self, forKey: .positional) ?? .learned
        experts = try c.decodeIfPresent(MoEPlacement.self, forKey: .experts)
    }

    /// Patches per side.
    public var grid: Int { imageSize / patchSize }
    /// Sequence length: the patches plus the class token.
    public var tokens: Int { grid * grid + 1 }
}

/// The text tower: a causal transformer pooled at the end-of-text token.
public struct TextConfiguration: Codable, Sendable, Hashable {
    public var contextLength: Int
    public var vocabularySize: Int
    public var width: Int
    public var layers: Int
    public var heads: Int
    public var mlpRatio: Int = 4
    /// The blocks whose MLP is a mixture of experts (CLIP-UP); nil for a dense tower.
    public var experts: MoEPlacement? = nil

    public init(contextLength: Int, vocabularySize: Int, width: Int, layers: Int, heads: Int, mlpRatio: Int = 4) {
        self.contextLength = contextLength
        self.vocabularySize = vocabularySize
        self.width = width
        self.layers = layers
        self.heads = heads
        self.mlpRatio = mlpRatio
    }
}

/// A CLIP model's architecture. Encoded into every checkpoint's metadata.
public struct CLIPConfiguration: Codable, Sendable, Hashable {
    /// Preset name ("nano", "tiny", "small") or a user's own.
    public var name: String
    /// Dimension E of the shared embedding space.
    public var embedDimension: Int
    public var vision: VisionConfiguration
    public var text: TextConfiguration
    /// GELU flavour of the MLPs; OpenCLIP's ViT configs use the exact one (`quick_gelu` off).
    public var gelu: GELUApproximation = .exact

    /// CLIP's BPE vocabulary size (256 bytes + 256 word-final bytes + 48,894 merges + 2 specials).
    public static let clipVocabularySize = 49408

    /// The presets of DESIGN.md:
    ///
    /// | preset | image | patch | vision W × L × H | text ctx | text W × L × H | embed |
    /// | nano   | 16 | 4 | 32 × 1 × 2  | 16 | 32 × 1 × 2  | 32  |
    /// | micro  | 32 | 4 | 64 × 2 × 2  | 32 | 64 × 2 × 2  | 64  |
    /// | tiny   | 32 | 4 | 128 × 4 × 4 | 32 | 128 × 4 × 4 | 128 |
    /// | small  | 64 | 8 | 256 × 6 × 4 | 32 | 256 × 6 × 4 | 256 |
    /// | clipa-s | 64 | 8 | 64 × 2 × 2  | 32 | 48 × 2 × 2 | 64  |
    /// | clipa-m | 64 | 8 | 96 × 3 × 3  | 32 | 64 × 3 × 2 | 96  |
    /// | clipa-l | 64 | 8 | 128 × 4 × 4 | 32 | 96 × 4 × 3 | 128 |
    public static func preset(_ name: String, vocabularySize: Int = clipVocabularySize) -> CLIPConfiguration? {
        switch name {
        case "nano":
            return CLIPConfiguration(
                name: name, embedDimension: 32,
                vision: VisionConfiguration(imageSize: 16, patchSize: 4, width: 32, layers: 1, heads: 2),
                text: TextConfiguration(contextLength: 16, vocabularySize: vocabularySize, width: 32, layers: 1, heads: 2))
        case "micro":
            // Between nano and tiny: tiny's image and patch (shapes 6–10 pixels across stay
            // recognisable) at a quarter of its width and half its depth, so the studies' paper
            // presets can train 30+ epochs on a few cores.
            return CLIPConfiguration(
                name: name, embedDimension: 64,
                vision: VisionConfiguration(imageSize: 32, patchSize: 4, width: 64, layers: 2, heads: 2),
                text: TextConfiguration(contextLength: 32, vocabularySize: vocabularySize, width: 64, layers: 2, heads: 2))
        case "tiny":
            return CLIPConfiguration(
                name: name, embedDimension: 128,
                vision: VisionConfiguration(imageSize: 32, patchSize: 4, width: 128, layers: 4, heads: 4),
                text: TextConfiguration(contextLength: 32, vocabularySize: vocabularySize, width: 128, layers: 4, heads: 4))
        case "small":
            return CLIPConfiguration(
                name: name, embedDimension: 256,
                vision: VisionConfiguration(imageSize: 64, patchSize: 8, width: 256, layers: 6, heads: 4),
                text: TextConfiguration(contextLength: 32, vocabularySize: vocabularySize, width: 256, layers: 6, heads: 4))
        case "clipa-s", "clipa-m", "clipa-l":
            // CLIPA's ladder (spec §A7) scaled to a few cores: 64 px images, patch 8 (an 8×8 grid,
            // 64 patches to reduce), vision width 64/96/128 with depth width/32 (shared depth
            // ratio), text width about 2/3 of the vision's at the same depth, context 32.
            let (w, tw, th): (Int, Int, Int) = name == "clipa-s" ? (64, 48, 2) : name == "clipa-m" ? (96, 64, 2) : (128, 96, 3)
            return CLIPConfiguration(
                name: name, embedDimension: w,
                vision: VisionConfiguration(imageSize: 64, patchSize: 8, width: w, layers: w / 32, heads: w / 32),
                text: TextConfiguration(contextLength: 32, vocabularySize: vocabularySize, width: tw, layers: w / 32, heads: th))
        default:
            return nil
        }
    }

    public static let presetNames = ["nano", "micro", "tiny", "small", "clipa-s", "clipa-m", "clipa-l"]

    /// Largest width, embedding dimension or head count `validate()` accepts.
    public static let maxWidth = 1 << 16
    /// Most blocks a tower may have.
    public static let maxLayers = 1024
    /// Largest image side in pixels.
    public static let maxImageSize = 1 << 14
    /// Longest text context in tokens.
    public static let maxContextLength = 1 << 16
    /// Largest vocabulary.
    public static let maxVocabularySize = 1 << 24
    /// Most experts in a mixture layer.
    public static let maxExperts = 1 << 12

    /// Checks the architecture's internal consistency and its sizes' upper bounds; the message
    /// names the field.
    public func validate() throws {
        func require(_ ok: Bool, _ message: String) throws {
            if !ok { throw ConfigurationError(message: "model configuration '\(name)': \(message)") }
        }
        try require(embedDimension > 0, "embedDimension must be > 0")
        // Upper bounds, so that a configuration read from a file (a checkpoint's cliplab.config,
        // an OpenCLIP config) cannot overflow the sizes computed from it or make the checks below
        // visit 10¹² blocks; each is far beyond any model this workbench trains.
        let limits: [(String, Int, Int)] = [
            ("embedDimension", embedDimension, Self.maxWidth), ("vision.width", vision.width, Self.maxWidth), ("text.width", text.width, Self.maxWidth),
            ("vision.layers", vision.layers, Self.maxLayers), ("text.layers", text.layers, Self.maxLayers),
            ("vision.heads", vision.heads, Self.maxWidth), ("text.heads", text.heads, Self.maxWidth),
            ("vision.imageSize", vision.imageSize, Self.maxImageSize), ("text.contextLength", text.contextLength, Self.maxContextLength),
            ("text.vocabularySize", text.vocabularySize, Self.maxVocabularySize),
        ]
        for (field, value, limit) in limits {
            try require(value <= limit, "\(field) must be ≤ \(limit), got \(value)")
        }
        try require(vision.width > 0 && text.width > 0 && vision.imageSize > 0, "vision.width, text.width and vision.imageSize must be > 0")
        try require((1...64).contains(vision.mlpRatio) && (1...64).contains(text.mlpRatio),
                    "vision.mlpRatio and text.mlpRatio must be in 1…64, got \(vision.mlpRatio), \(text.mlpRatio)")
        try require(vision.patchSize > 0 && vision.imageSize % vision.patchSize == 0,
                    "vision.imageSize \(vision.imageSize) must be a positive multiple of vision.patchSize \(vision.patchSize)")
        try require(vision.heads > 0 && vision.width % vision.heads == 0, "vision.width \(vision.width) must be divisible by vision.heads \(vision.heads)")
        try require(text.heads > 0 && text.width % text.heads == 0, "text.width \(text.width) must be divisible by text.heads \(text.heads)")
        try require(vision.layers >= 1 && text.layers >= 1, "each tower needs at least one layer")
        try require(vision.positional != .sinCos2D || (vision.width % 4 == 0 && vision.width >= 8),
                    "vision.positional sincos needs vision.width to be a multiple of 4 and ≥ 8, got \(vision.width)")
        try require(text.contextLength >= 2, "text.contextLength must be ≥ 2 (start and end of text)")
        try require(text.vocabularySize >= 3, "text.vocabularySize must be ≥ 3")
        for (tower, placement, layers) in [("vision", vision.experts, vision.layers), ("text", text.experts, text.layers)] {
            guard let p = placement else { continue }
            let m = p.configuration
            try require(m.experts >= 1, "\(tower).experts.configuration.experts must be ≥ 1, got \(m.experts)")
            try require(m.routing == .expertChoice || (1...m.experts).contains(m.topK),
                        "\(tower).experts.configuration.topK must be in 1…\(m.experts), got \(m.topK)")
            try require(m.capacityFactor > 0 && m.capacityMultiple >= 1,
                        "\(tower).experts: capacityFactor must be > 0 and capacityMultiple ≥ 1, got \(m.capacityFactor), \(m.capacityMultiple)")
            try require(p.every >= 1 && p.first >= 0, "\(tower).experts: every must be ≥ 1 and first ≥ 0, got \(p.every), \(p.first)")
            try require(m.experts <= Self.maxExperts, "\(tower).experts.configuration.experts must be ≤ \(Self.maxExperts), got \(m.experts)")
            try require(p.first < layers,  // the first block with a mixture, as p.blocks(layers:) would find
                        "\(tower).experts places no mixture in its \(layers) blocks (first \(p.first), every \(p.every))")
        }
    }
}

/// A configuration that cannot be built, with the reason.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
