// OpenCLIP model configs mapped onto CLIPConfiguration, in either form OpenCLIP writes:
//
// - `open_clip_config.json`, as `open_clip.push_to_hf_hub` saves it beside the weights on the
//   Hugging Face hub: {"model_cfg": {…}, "preprocess_cfg": {"mean": …, "std": …, …}};
// - a bare model config, as in open_clip's `model_configs/*.json`: {"embed_dim": 512,
//   "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 32}, "text_cfg":
//   {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12}}.
//
// Absent fields take the defaults of OpenCLIP's `CLIPVisionCfg` and `CLIPTextCfg` (vision heads =
// width / head_width, head_width 64). Every field whose value would build a model ClipLab does not
// implement (QuickGELU, ModifiedResNet or timm towers, Hugging Face text towers, attentional
// pooling, LayerScale, custom attention blocks, SigLIP's logit bias, …) is refused with the field
// and its value, rather than silently building a different model; so is a field OpenCLIP does not
// know. Fields that do not change the model's parameters or its inference (patch dropout,
// `output_tokens`, `cast_dtype`, …) are accepted with a note.

import Compute
import Foundation

public enum OpenCLIPConfig {
    /// Reads the config file at `path`: the configuration (named after the file) and notes on
    /// what was accepted but not used.
    public static func load(path: String) throws -> (configuration: CLIPConfiguration, notes: [String]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(message: "\(path): cannot read the OpenCLIP model config")
        }
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        return try configuration(json: data, name: name, source: path)
    }

    /// Maps the JSON of an OpenCLIP config (either form) onto a `CLIPConfiguration` named `name`;
    /// errors start with `source`.
    public static func configuration(json: Data, name: String, source: String) throws -> (configuration: CLIPConfiguration, notes: [String]) {
        let root: JSONValue
        do { root = try JSONDecoder().decode(JSONValue.self, from: json) } catch {
            throw ConfigurationError(message: "\(source): not JSON: \(error)")
        }
        guard case .object(let top) = root else {
            throw ConfigurationError(message: "\(source): expected a JSON object (an OpenCLIP model config), got \(root)")
        }
        var notes: [String] = []
        let model: Section
        var preprocess: Section?
        if top["model_cfg"] != nil {
            // open_clip_config.json: the model config and the image preprocessing.
            var wrapper = Section(top, prefix: "", source: source)
            model = try wrapper.section("model_cfg")
            preprocess = try wrapper.optionalSection("preprocess_cfg")
            for key in wrapper.unread { notes.append("\(source): '\(key)' is not used") }
        } else if top["embed_dim"] != nil {
            model = Section(top, prefix: "", source: source)
        } else {
            throw ConfigurationError(
                message: "\(source): neither an open_clip_config.json ({\"model_cfg\": …, \"preprocess_cfg\": …}) nor an OpenCLIP model config "
                    + "(embed_dim, vision_cfg, text_cfg); its keys are \(top.keys.sorted().joined(separator: ", "))")
        }
        var config = try modelConfiguration(model, name: name, notes: &notes)
        if var p = preprocess { try checkPreprocessing(&p, imageSize: config.vision.imageSize, notes: &notes) }
        do { try config.validate() } catch let e as ConfigurationError {
            throw ConfigurationError(message: "\(source): \(e.message)")
        }
        config.name = name
        return (config, notes)
    }

    /// OpenCLIP's `CLIP(embed_dim, vision_cfg, text_cfg, quick_gelu, …)` arguments.
    static func modelConfiguration(_ top: Section, name: String, notes: inout [String]) throws -> CLIPConfiguration {
        var m = top
        let embed = try m.int("embed_dim")
        var vision = try m.section("vision_cfg")
        var text = try m.section("text_cfg")
        if let v = m.read("quick_gelu"), v != .bool(false) {
            throw m.refuse("quick_gelu", v, "QuickGELU (x·σ(1.702x), the activation of OpenAI's original weights) is not implemented; ClipLab's MLPs use exact or tanh GELU")
        }
        if let v = m.read("init_logit_bias"), v != .null {
            throw m.refuse("init_logit_bias", v, "a logit bias belongs to SigLIP's sigmoid loss, which ClipLab does not implement")
        }
        try m.requireDefault("nonscalar_logit_scale", .bool(false), "a logit scale of shape [1] is not implemented (ClipLab's is a scalar)")
        try m.requireDefault("custom_text", .bool(false), "CustomTextCLIP keeps its text tower under 'text.', a layout ClipLab does not read")
        if let v = m.read("multimodal_cfg"), v != .null { throw m.refuse("multimodal_cfg", v, "CoCa's multimodal decoder is not implemented") }
        if let v = m.read("cast_dtype"), v != .null { notes.append("\(m.name("cast_dtype")) = \(v) is not used: ClipLab computes in Float32") }
        if let v = m.read("init_logit_scale"), v != .null {
            notes.append("\(m.name("init_logit_scale")) = \(v) is not used: a checkpoint's logit_scale is loaded (a run from scratch starts at --tau-init)")
        }
        try m.refuseUnread("OpenCLIP's CLIP model takes no such argument")

        // Vision tower (CLIPVisionCfg).
        let vl = try vision.layers()
        let vw = try vision.int("width", default: 768)
        let headWidth = try vision.int("head_width", default: 64)
        guard headWidth > 0, vw % headWidth == 0 else {
            throw vision.refuse("head_width", .number(Double(headWidth)), "it must divide \(vision.name("width")) = \(vw) (the heads are width / head_width)")
        }
        let vr = try vision.mlpRatio()
        let patch = try vision.squareSize("patch_size", default: 16)
        let image = try vision.squareSize("image_size", default: 224)
        try vision.requireDefault("ls_init_value", .null, "LayerScale is not implemented")
        if let v = vision.read("patch_dropout"), v != .null, v != .number(0) {
            notes.append("\(vision.name("patch_dropout")) = \(v) is not used: it acts in OpenCLIP's training only (ClipLab's counterpart is --image-reduction random:RATIO)")
        }
        try vision.requireDefault("attentional_pool", .bool(false), "attentional pooling is not implemented")
        _ = vision.read("attn_pooler_queries")  // used only with attentional_pool
        _ = vision.read("attn_pooler_heads")
        try vision.requireDefault("no_ln_pre", .bool(false), "a vision tower without ln_pre is not implemented")
        let positional: VisionPositional
        switch try vision.string("pos_embed_type", default: "learnable") {
        case "learnable": positional = .learned
        case "sin_cos_2d": positional = .sinCos2D
        case let other: throw vision.refuse("pos_embed_type", .string(other), "ClipLab implements 'learnable' and 'sin_cos_2d'")
        }
        let lnAfterPool = try vision.bool("final_ln_after_pool", default: false)
        let pool: VisionPooling
        switch try vision.string("pool_type", default: "tok") {
        case "tok":
            pool = .classToken  // LayerNorm acts per token: before or after taking the class token is the same
        case "avg" where lnAfterPool:
            pool = .average
        case "avg":
            throw vision.refuse(
                "pool_type", .string("avg"),
                "with final_ln_after_pool false, OpenCLIP averages the tokens after ln_post; ClipLab's average pooling applies ln_post to the mean (final_ln_after_pool true)")
        case let other: throw vision.refuse("pool_type", .string(other), "ClipLab pools at the class token ('tok') or by the mean of the patch tokens ('avg')")
        }
        _ = vision.read("output_tokens")  // what forward returns, not the model
        let visionGELU = try vision.activation()
        try vision.checkNorm()
        try vision.checkBlock()
        if let v = vision.read("timm_model_name"), v != .null { throw vision.refuse("timm_model_name", v, "timm vision towers are not implemented") }
        for key in ["timm_model_pretrained", "timm_pool", "timm_proj", "timm_proj_bias", "timm_drop", "timm_drop_path"] { _ = vision.read(key) }
        try vision.refuseUnread("OpenCLIP's CLIPVisionCfg has no such field")

        // Text tower (CLIPTextCfg).
        let context = try text.int("context_length", default: 77)
        let vocabulary = try text.int("vocab_size", default: CLIPConfiguration.clipVocabularySize)
        let tw = try text.int("width", default: 512)
        let heads = try text.int("heads", default: 8)
        let tl = try text.layers()
        let tr = try text.mlpRatio()
        if let v = text.read("hf_model_name"), v != .null { throw text.refuse("hf_model_name", v, "Hugging Face text towers are not implemented") }
        for key in ["hf_model_pretrained", "hf_proj_type", "hf_pooler_type"] { _ = text.read(key) }
        if let v = text.read("hf_tokenizer_name"), v != .null {
            throw text.refuse("hf_tokenizer_name", v, "ClipLab tokenizes with CLIP's BPE (OpenCLIP's SimpleTokenizer) only")
        }
        if let v = text.read("tokenizer_mode"), v != .null { throw text.refuse("tokenizer_mode", v, "ClipLab tokenizes with CLIP's BPE (OpenCLIP's SimpleTokenizer) only") }
        if let v = text.read("tokenizer_kwargs"), v != .null, v != .object([:]), v != .object(["clean": .string("lower")]) {
            throw text.refuse("tokenizer_kwargs", v, "ClipLab's tokenizer is OpenCLIP's default SimpleTokenizer (clean 'lower')")
        }
        try text.requireDefault("ls_init_value", .null, "LayerScale is not implemented")
        try text.requireDefault("embed_cls", .bool(false), "a text tower with a class token is not implemented")
        _ = text.read("pad_id")  // used only with embed_cls
        _ = text.read("eos_id")  // used only with pool_type 'eos'
        try text.requireDefault("no_causal_mask", .bool(false), "ClipLab's text tower is causal")
        _ = text.read("final_ln_after_pool")  // LayerNorm acts per token: the same before or after pooling one token
        let textPool = try text.string("pool_type", default: "argmax")
        guard textPool == "argmax" else {
            throw text.refuse("pool_type", .string(textPool), "ClipLab pools the text at the end-of-text token, the largest id ('argmax')")
        }
        try text.requireDefault("proj_bias", .bool(false), "a text projection with a bias is not implemented")
        let projection = try text.string("proj_type", default: "linear")
        guard projection == "linear" else {
            throw text.refuse("proj_type", .string(projection), "ClipLab's text projection is one matrix ('linear')")
        }
        _ = text.read("output_tokens")
        let textGELU = try text.activation()
        try text.checkNorm()
        try text.checkBlock()
        try text.refuseUnread("OpenCLIP's CLIPTextCfg has no such field")

        guard visionGELU == textGELU else {
            throw ConfigurationError(
                message: "\(top.source): \(vision.name("act_kwargs")) and \(text.name("act_kwargs")) ask for different GELUs (\(visionGELU.rawValue), "
                    + "\(textGELU.rawValue)); ClipLab uses one for both towers")
        }
        var config = CLIPConfiguration(
            name: name, embedDimension: embed,
            vision: VisionConfiguration(
                imageSize: image, patchSize: patch, width: vw, layers: vl, heads: vw / headWidth, mlpRatio: vr, pool: pool, positional: positional),
            text: TextConfiguration(contextLength: context, vocabularySize: vocabulary, width: tw, layers: tl, heads: heads, mlpRatio: tr))
        config.gelu = visionGELU
        return config
    }

    /// `preprocess_cfg`: ClipLab normalises with OpenAI's mean and std, resizes the shorter side
    /// bicubically and centre-crops, to the model's image size.
    static func checkPreprocessing(_ p: inout Section, imageSize: Int, notes: inout [String]) throws {
        for (key, expected) in [("mean", ImageNormalization.mean), ("std", ImageNormalization.std)] {
            guard let v = p.read(key), v != .null else { continue }
            guard case .array(let items) = v, items.count == 3,
                case let numbers = items.compactMap({ (item: JSONValue) -> Double? in
                    if case .number(let x) = item { return x }
                    return nil
                }), numbers.count == 3,
                zip(numbers, expected).allSatisfy({ abs($0 - $1) <= 1e-6 })
            else {
                throw p.refuse(key, v, "ClipLab normalises images with OpenAI's CLIP \(key) \(JSONValue.array(expected.map { .number($0) }))")
            }
        }
        if let v = p.read("interpolation"), v != .null, v != .string("bicubic") {
            throw p.refuse("interpolation", v, "ClipLab resizes images bicubically")
        }
        if let v = p.read("resize_mode"), v != .null, v != .string("shortest") {
            throw p.refuse("resize_mode", v, "ClipLab resizes the shorter side and centre-crops ('shortest')")
        }
        if p.has("size") {
            let s = try p.squareSize("size", default: imageSize)
            if s != imageSize { throw p.refuse("size", .number(Double(s)), "it must equal the model's vision_cfg.image_size \(imageSize)") }
        }
        _ = p.read("fill_color")  // used only by resize_mode 'longest'
        for key in p.unread { notes.append("\(p.name(key)) is not used") }
    }
}

/// One level of a JSON config: reads fields by name (absent or null: the default), remembers
/// which were read, and words every refusal as "source: prefix.field = value: why".
struct Section {
    let values: [String: JSONValue]
    let prefix: String
    let source: String
    private(set) var readKeys: Set<String> = []

    init(_ values: [String: JSONValue], prefix: String, source: String) {
        self.values = values
        self.prefix = prefix
        self.source = source
    }

    func name(_ key: String) -> String { prefix + key }
    func has(_ key: String) -> Bool { values[key].map { $0 != .null } ?? false }
    var unread: [String] { values.keys.filter { !readKeys.contains($0) }.sorted() }

    mutating func read(_ key: String) -> JSONValue? {
        readKeys.insert(key)
        return values[key]
    }

    func refuse(_ key: String, _ value: JSONValue, _ why: String) -> ConfigurationError {
        ConfigurationError(message: "\(source): \(name(key)) = \(value): \(why)")
    }

    func wrongType(_ key: String, _ value: JSONValue, _ expected: String) -> ConfigurationError {
        ConfigurationError(message: "\(source): \(name(key)) = \(value): expected \(expected)")
    }

    mutating func section(_ key: String) throws -> Section {
        guard let s = try optionalSection(key) else { throw ConfigurationError(message: "\(source): \(name(key)) is missing") }
        return s
    }

    mutating func optionalSection(_ key: String) throws -> Section? {
        guard let v = read(key), v != .null else { return nil }
        guard case .object(let o) = v else { throw wrongType(key, v, "an object") }
        return Section(o, prefix: name(key) + ".", source: source)
    }

    mutating func int(_ key: String, default d: Int? = nil) throws -> Int {
        guard let v = read(key), v != .null else {
            guard let d else { throw ConfigurationError(message: "\(source): \(name(key)) is missing") }
            return d
        }
        guard case .number(let x) = v, x == x.rounded(), abs(x) < 1e9 else { throw wrongType(key, v, "an integer") }
        return Int(x)
    }

    mutating func bool(_ key: String, default d: Bool) throws -> Bool {
        guard let v = read(key), v != .null else { return d }
        guard case .bool(let b) = v else { throw wrongType(key, v, "true or false") }
        return b
    }

    mutating func string(_ key: String, default d: String) throws -> String {
        guard let v = read(key), v != .null else { return d }
        guard case .string(let s) = v else { throw wrongType(key, v, "a string") }
        return s
    }

    /// A field that must keep OpenCLIP's default (absent, null or `expected`).
    mutating func requireDefault(_ key: String, _ expected: JSONValue, _ why: String) throws {
        guard let v = read(key), v != .null, v != expected else { return }
        throw refuse(key, v, why)
    }

    /// An image or patch size: a number, or a list of two equal ones.
    mutating func squareSize(_ key: String, default d: Int) throws -> Int {
        guard let v = values[key], v != .null else { return try int(key, default: d) }
        if case .array(let items) = v {
            _ = read(key)
            guard items.count == 2, items[0] == items[1], case .number(let x) = items[0], x == x.rounded(), x > 0 else {
                throw refuse(key, v, "ClipLab's images and patches are square")
            }
            return Int(x)
        }
        return try int(key, default: d)
    }

    /// `layers`: a number; a list of stage depths is a ModifiedResNet.
    mutating func layers() throws -> Int {
        if let v = values["layers"], case .array = v {
            _ = read("layers")
            throw refuse("layers", v, "a list of stage depths is a ModifiedResNet tower (OpenAI's RN50 family), which ClipLab does not implement; it needs one number (transformer blocks)")
        }
        return try int("layers", default: 12)
    }

    /// `mlp_ratio`: ClipLab's MLP is a whole multiple of the width.
    mutating func mlpRatio() throws -> Int {
        guard let v = read("mlp_ratio"), v != .null else { return 4 }
        guard case .number(let x) = v, x == x.rounded(), x >= 1, x <= 64 else {
            throw refuse("mlp_ratio", v, "ClipLab's MLP width is a whole multiple (1…64) of the tower width")
        }
        return Int(x)
    }

    /// `act_kwargs`: none (exact GELU) or {"approximate": "none" | "tanh"}.
    mutating func activation() throws -> GELUApproximation {
        guard let v = read("act_kwargs"), v != .null, v != .object([:]) else { return .exact }
        switch v {
        case .object(["approximate": .string("none")]): return .exact
        case .object(["approximate": .string("tanh")]): return .tanh
        default: throw refuse("act_kwargs", v, "ClipLab's MLPs take GELU's exact form or {\"approximate\": \"tanh\"} only")
        }
    }

    /// `norm_kwargs`: none, or LayerNorm's default eps 1e-5.
    mutating func checkNorm() throws {
        guard let v = read("norm_kwargs"), v != .null, v != .object([:]), v != .object(["eps": .number(1e-5)]) else { return }
        throw refuse("norm_kwargs", v, "ClipLab's LayerNorms use eps 1e-5 and no other options")
    }

    /// The custom attention block's options: all off.
    mutating func checkBlock() throws {
        if let v = read("block_type"), v != .null, v != .string("default") {
            throw refuse("block_type", v, "ClipLab implements OpenCLIP's default residual attention block")
        }
        for key in ["qk_norm", "scaled_cosine_attn", "scale_heads", "scale_attn_inner", "scale_attn", "scale_fc"] {
            try requireDefault(key, .bool(false), "this option of OpenCLIP's custom attention block is not implemented")
        }
    }

    /// Refuses the fields no reader asked for.
    func refuseUnread(_ why: String) throws {
        if let key = unread.first { throw refuse(key, values[key]!, "unknown field (\(why))") }
    }
}

/// A JSON value, decoded without losing the difference between `true` and `1`.
enum JSONValue: Decodable, Equatable, CustomStringConvertible {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let x = try? c.decode(Double.self) {
            self = .number(x)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    /// JSON text, numbers without a needless ".0".
    var description: String {
        switch self {
        case .null: "null"
        case .bool(let b): b ? "true" : "false"
        case .number(let x): x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : "\(x)"
        case .string(let s): "\"\(s)\""
        case .array(let a): "[" + a.map(\.description).joined(separator: ", ") + "]"
        case .object(let o): "{" + o.sorted { $0.key < $1.key }.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ") + "}"
        }
    }
}
