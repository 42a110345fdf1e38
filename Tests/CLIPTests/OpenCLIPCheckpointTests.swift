// Checkpoints without ClipLab metadata: OpenCLIP's `save_file(model.state_dict())`, loaded with a
// preset or an OpenCLIP model config (both JSON forms). A ClipLab checkpoint rewritten the way
// OpenCLIP writes one must give exactly the original model's embeddings; a file OpenCLIP wrote
// itself (Fixtures/, scripts/make_openclip_checkpoint_fixture.py) must give OpenCLIP's
// embeddings; and every refusal must say what is wrong and what to do.

import CLIP
import Compute
import Foundation
import TestSupport
import Testing

/// An OpenCLIP model config with nano's shapes: bare (model_configs/*.json) or as the hub's
/// open_clip_config.json; `vision` and `text` add fields.
fileprivate func nanoConfig(vocabulary: Int = 100, hub: Bool = false, top: String = "", vision: String = "", text: String = "", preprocess: String = "") -> String {
    let model = """
        {"embed_dim": 32\(top),
         "vision_cfg": {"image_size": 16, "layers": 1, "width": 32, "head_width": 16, "patch_size": 4\(vision)},
         "text_cfg": {"context_length": 16, "vocab_size": \(vocabulary), "width": 32, "heads": 2, "layers": 1\(text)}}
        """
    guard hub else { return model }
    return """
        {"model_cfg": \(model),
         "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711],
                            "interpolation": "bicubic", "resize_mode": "shortest"\(preprocess)}}
        """
}

@Suite("OpenCLIP checkpoints")
struct OpenCLIPCheckpointTests {
    func tempDir() throws -> String {
        let d = NSTemporaryDirectory() + "cliplab-openclip-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    func model(_ preset: String, vocabulary: Int = 100, seed: UInt64 = 7) throws -> CLIPModel<Float> {
        let m = try CLIPModel<Float>(#require(CLIPConfiguration.preset(preset, vocabularySize: vocabulary)))
        m.initialize(seed: seed)
        // LayerNorm gains and biases away from 1 and 0, so a swapped tensor shows.
        for v in m.store.layout.views {
            let p = m.store.value(v)
            for i in 0..<v.count { p[i] += Float(0.01 * sin(Double(v.offset + i))) }
        }
        return m
    }

    /// Every parameter's values in layout order (the padding between them left out).
    func parameters(_ m: CLIPModel<Float>) -> [Float] {
        m.store.layout.views.flatMap { v in (0..<v.count).map { m.store.value(v)[$0] } }
    }

    /// Rewrites the checkpoint at `path` as OpenCLIP's `save_file(model.state_dict())` would: the
    /// same names, F32 (or `dtype`), no metadata at all; `extra` tensors are added.
    func openCLIPCopy(of path: String, to out: String, dtype: String = "F32", extra: [SafetensorsTensor] = []) throws {
        let file = try SafetensorsFile(path: path)
        var tensors: [SafetensorsTensor] = []
        for name in file.entries.keys.sorted() {
            let values = try file.doubles(name).map { Float($0) }
            let shape = file.entries[name]!.shape
            switch dtype {
            case "F16": tensors.append(SafetensorsTensor(name: name, shape: shape, values: .f16(values.map { Float16($0) })))
            case "BF16": tensors.append(SafetensorsTensor(name: name, shape: shape, values: .bf16(values)))
            default: tensors.append(SafetensorsTensor(name: name, shape: shape, values: .f32(values)))
            }
        }
        try Safetensors.write(tensors + extra, metadata: [:], to: out, checksums: false)
    }

    func write(_ text: String, to path: String) throws -> String {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Image and text embeddings (unnormalised) of fixed inputs.
    func embeddings(_ m: CLIPModel<Float>) -> (images: [Float], texts: [Float]) {
        let s = m.config.vision.imageSize, ctx = m.config.text.contextLength, v = m.config.text.vocabularySize
        let pixels = AlignedBuffer<Float>(uniformArray(3 * 3 * s * s, seed: 3, stream: "pixels", low: -2, high: 2).map { Float($0) })
        var ids = [Int32](repeating: 0, count: 3 * ctx)
        for b in 0..<3 {
            for t in 0..<(4 + 3 * b) { ids[b * ctx + t] = Int32((7 * t + 11 * b) % (v - 1)) }
            ids[b * ctx + 4 + 3 * b] = Int32(v - 1)
        }
        let acts = m.makeActivations(batch: 3, memory: .inference)
        let images = withExtendedLifetime(pixels) { m.embedImages(pixels.pointer, count: 3, activations: acts, normalize: false) }
        return (images, m.embedTexts(ids, count: 3, activations: acts, normalize: false))
    }

    func fixture(_ name: String, _ ext: String) throws -> String {
        try #require(Bundle.module.url(forResource: name, withExtension: ext, subdirectory: "Fixtures"), "Fixtures/\(name).\(ext) is not in the test bundle").path
    }

    @Test("A ClipLab model saved as OpenCLIP saves it (no metadata) loads with --model or either config form and embeds exactly as before",
          arguments: ["nano", "micro"])
    func roundTrip(preset: String) throws {
        let dir = try tempDir()
        let original = try model(preset)
        try original.save(to: dir + "/cliplab.safetensors")
        try openCLIPCopy(of: dir + "/cliplab.safetensors", to: dir + "/openclip.safetensors")
        let file = try SafetensorsFile(path: dir + "/openclip.safetensors")
        #expect(file.metadata.isEmpty && file.entries.values.allSatisfy { $0.dtype == "F32" })
        let expected = embeddings(original)

        var sources: [ArchitectureSource] = [.preset(preset)]
        if preset == "nano" {
            sources.append(.openCLIPConfig(path: try write(nanoConfig(), to: dir + "/nano.json")))
            sources.append(.openCLIPConfig(path: try write(nanoConfig(hub: true), to: dir + "/open_clip_config.json")))
        }
        for source in sources {
            let (loaded, notes) = try CLIPModel<Float>.load(from: dir + "/openclip.safetensors", architecture: source)
            #expect(parameters(loaded) == parameters(original), "\(source.option)")
            let got = embeddings(loaded)
            #expect(got.images == expected.images && got.texts == expected.texts, "\(source.option)")
            #expect(notes.contains { $0.contains("read as an OpenCLIP checkpoint with the architecture of \(source.option)") }, "\(notes)")
            if case .preset = source { #expect(notes.contains { $0.contains("the number of attention heads is not stored in the file") }, "\(notes)") }
        }
    }

    @Test("A checkpoint OpenCLIP wrote (save_file of its state_dict) embeds as OpenCLIP does, with --model nano and with both config forms")
    func realOpenCLIPFile() throws {
        let checkpoint = try fixture("openclip_nano", "safetensors")
        struct Recorded: Decodable {
            let pixels: [Double]
            let ids: [[Int]]
            let image_features: [[Double]]
            let text_features: [[Double]]
            let logit_scale: Double
        }
        let recorded = try JSONDecoder().decode(Recorded.self, from: Data(contentsOf: URL(fileURLWithPath: try fixture("openclip_nano_outputs", "json"))))
        let (pixels, ids, imageFeatures, textFeatures) = (recorded.pixels, recorded.ids, recorded.image_features, recorded.text_features)
        #expect(try SafetensorsFile(path: checkpoint).metadata.isEmpty)

        for source in [ArchitectureSource.preset("nano"), .openCLIPConfig(path: try fixture("openclip_nano", "json")),
                       .openCLIPConfig(path: try fixture("open_clip_config", "json"))] {
            let (m, _) = try CLIPModel<Float>.load(from: checkpoint, architecture: source)
            #expect(m.config.text.vocabularySize == 100 && m.config.vision.heads == 2 && m.config.text.heads == 2)
            #expect(m.store.value(m.logitScale).pointee == Float(recorded.logit_scale))
            let s = m.config.vision.imageSize, count = imageFeatures.count
            let buffer = AlignedBuffer<Float>(pixels.map { Float($0) })
            ImageNormalization.apply(buffer.pointer, batch: count, size: s)
            let acts = m.makeActivations(batch: 4, memory: .inference)
            let images = withExtendedLifetime(buffer) { m.embedImages(buffer.pointer, count: count, activations: acts, normalize: false) }
            let texts = m.embedTexts(ids.flatMap { $0.map { Int32($0) } }, count: ids.count, activations: acts, normalize: false)
            // Float32 on both sides, products summed in another order: measured 4.6e-7 of the scale.
            let imageError = scaledMaxError(images.map(Double.init), imageFeatures.flatMap { $0 })
            let textError = scaledMaxError(texts.map(Double.init), textFeatures.flatMap { $0 })
            #expect(imageError < 5e-6, "\(source.option): \(describeMismatch(images.map(Double.init), imageFeatures.flatMap { $0 }, label: "encode_image"))")
            #expect(textError < 5e-6, "\(source.option): \(describeMismatch(texts.map(Double.init), textFeatures.flatMap { $0 }, label: "encode_text"))")
        }
    }

    @Test("Without --model or --model-config, a file without metadata is refused as a valid safetensors file that is not a ClipLab checkpoint, naming the matching preset")
    func noMetadata() throws {
        let dir = try tempDir()
        try model("nano").save(to: dir + "/cliplab.safetensors")
        try openCLIPCopy(of: dir + "/cliplab.safetensors", to: dir + "/openclip.safetensors")
        let loads: [() throws -> Void] = [
            { _ = try CLIPModel<Float>.load(from: dir + "/openclip.safetensors") },
            { _ = try CLIPModel<Float>.load(from: dir + "/openclip.safetensors", architecture: nil) },
        ]
        for load in loads {
            do {
                try load()
                Issue.record("a file without metadata loaded without an architecture")
            } catch let e as CheckpointError {
                guard case .noConfiguration(_, let n, _) = e else { Issue.record("wrong error \(e)"); continue }
                #expect(n == 38)
                let text = e.description
                #expect(text.contains(dir + "/openclip.safetensors: a valid safetensors file holding 38 tensors"), "\(text)")
                #expect(text.contains("no 'cliplab.config' metadata, so it is not a ClipLab checkpoint (an OpenCLIP one, for example)"), "\(text)")
                #expect(text.contains("--model PRESET or --model-config open_clip_config.json"), "\(text)")
                #expect(text.contains("Its shapes are those of preset 'nano'") && text.contains("pass --model nano"), "\(text)")
                #expect(!text.contains("not a valid safetensors file"), "\(text)")
            }
        }
        // A truly malformed file keeps the malformed wording.
        try Data("{}".utf8).write(to: URL(fileURLWithPath: dir + "/bad.safetensors"))
        do { _ = try CLIPModel<Float>.load(from: dir + "/bad.safetensors", architecture: .preset("nano")) } catch {
            #expect("\(error)".contains("not a valid safetensors file"), "\(error)")
        }
    }

    @Test("Shapes that do not fit the architecture are listed, with the preset the file's shapes match, or its shapes when none does")
    func wrongShapes() throws {
        let dir = try tempDir()
        try model("nano").save(to: dir + "/cliplab.safetensors")
        try openCLIPCopy(of: dir + "/cliplab.safetensors", to: dir + "/nano.safetensors")
        do {
            _ = try CLIPModel<Float>.load(from: dir + "/nano.safetensors", architecture: .preset("tiny"))
            Issue.record("nano loaded as tiny")
        } catch let e as CheckpointError {
            guard case .openCLIPMismatch(_, let problems, let suggestion) = e else { Issue.record("wrong error \(e)"); return }
            #expect(problems.contains("tensor 'visual.proj' has shape [32, 32]; the model expects [128, 128]"), "\(problems)")
            #expect(problems.contains("missing tensor 'visual.transformer.resblocks.3.attn.in_proj_weight' [384, 128]"), "\(problems)")
            #expect(suggestion?.contains("Its shapes are those of preset 'nano'") == true && suggestion?.contains("pass --model nano") == true, "\(suggestion ?? "nil")")
            #expect(e.description.contains("checkpoint does not match the model") && e.description.contains("pass --model nano"))
        }
        // The same through the trainer's path (an instance load, positional tables resizable).
        let tiny = try CLIPModel<Float>(#require(CLIPConfiguration.preset("tiny", vocabularySize: 100)))
        #expect(throws: CheckpointError.self) { try tiny.load(from: dir + "/nano.safetensors", resizingPositional: true) }
        do { try tiny.load(from: dir + "/nano.safetensors", resizingPositional: true) } catch {
            #expect("\(error)".contains("pass --model nano"), "\(error)")
        }
        // Shapes no preset has: the suggestion spells them out for a model config.
        var custom = try #require(CLIPConfiguration.preset("nano", vocabularySize: 100))
        custom.vision.layers = 2
        custom.text.width = 48
        custom.text.heads = 3
        let other = try CLIPModel<Float>(custom)
        other.initialize(seed: 1)
        try other.save(to: dir + "/custom-cliplab.safetensors")
        try openCLIPCopy(of: dir + "/custom-cliplab.safetensors", to: dir + "/custom.safetensors")
        do { _ = try CLIPModel<Float>.load(from: dir + "/custom.safetensors", architecture: .preset("nano")) } catch {
            let text = "\(error)"
            #expect(text.contains("missing tensor") == false && text.contains("unexpected tensor 'visual.transformer.resblocks.1.ln_1.weight' [32]"), "\(text)")
            #expect(text.contains("embed_dim 32; vision_cfg: image_size 16, patch_size 4, width 32, layers 2, mlp_ratio 4; "
                                  + "text_cfg: context_length 16, vocab_size 100, width 48, layers 1, mlp_ratio 4"), "\(text)")
            #expect(text.contains("which no preset has") && text.contains("--model-config"), "\(text)")
        }
        // With a config that says so, it loads.
        let config = try write(
            #"{"embed_dim": 32, "vision_cfg": {"image_size": 16, "layers": 2, "width": 32, "head_width": 16, "patch_size": 4}, "#
                + #""text_cfg": {"context_length": 16, "vocab_size": 100, "width": 48, "heads": 3, "layers": 1}}"#, to: dir + "/custom.json")
        let (loaded, _) = try CLIPModel<Float>.load(from: dir + "/custom.safetensors", architecture: .openCLIPConfig(path: config))
        #expect(embeddings(loaded).texts == embeddings(other).texts)
    }

    @Test("A logit_bias (SigLIP) is refused, naming it; attn_mask buffers are skipped with a note")
    func extraTensors() throws {
        let dir = try tempDir()
        let original = try model("nano")
        try original.save(to: dir + "/cliplab.safetensors")
        try openCLIPCopy(of: dir + "/cliplab.safetensors", to: dir + "/siglip.safetensors",
                         extra: [SafetensorsTensor(name: "logit_bias", shape: [1], values: .f32([-10]))])
        do {
            _ = try CLIPModel<Float>.load(from: dir + "/siglip.safetensors", architecture: .preset("nano"))
            Issue.record("a logit_bias loaded")
        } catch let e as CheckpointError {
            guard case .openCLIPMismatch(_, let problems, let suggestion) = e else { Issue.record("wrong error \(e)"); return }
            #expect(problems == ["unexpected tensor 'logit_bias' [1]: SigLIP's learned logit bias (a model trained with the sigmoid loss), which ClipLab does not implement"])
            #expect(suggestion == nil, "the other shapes fit nano: no preset to suggest")
        }
        let mask = (0..<256).map { i in i % 16 > i / 16 ? -Float.infinity : 0 }
        try openCLIPCopy(of: dir + "/cliplab.safetensors", to: dir + "/masked.safetensors",
                         extra: [SafetensorsTensor(name: "attn_mask", shape: [16, 16], values: .f32(mask))])
        let (loaded, notes) = try CLIPModel<Float>.load(from: dir + "/masked.safetensors", architecture: .preset("nano"))
        #expect(parameters(loaded) == parameters(original))
        #expect(notes.contains { $0.contains("skipped 'attn_mask' [16, 16]") }, "\(notes)")
    }

    @Test("F16 and BF16 tensors are converted to Float on load", arguments: ["F16", "BF16"])
    func halfPrecision(dtype: String) throws {
        let dir = try tempDir()
        let original = try model("nano")
        try original.save(to: dir + "/cliplab.safetensors")
        try openCLIPCopy(of: dir + "/cliplab.safetensors", to: dir + "/half.safetensors", dtype: dtype)
        #expect(try SafetensorsFile(path: dir + "/half.safetensors").entries.values.allSatisfy { $0.dtype == dtype })
        let (loaded, notes) = try CLIPModel<Float>.load(from: dir + "/half.safetensors", architecture: .preset("nano"))
        let expected = original.store.layout.views.flatMap { v in
            (0..<v.count).map { i -> Float in
                let x = original.store.value(v)[i]
                return dtype == "F16" ? Float(Float16(x)) : bf16Rounded(x)
            }
        }
        #expect(parameters(loaded) == expected)
        #expect(notes.contains("38 tensors are stored as \(dtype), converted to Float on load"), "\(notes)")
    }

    @Test("Both JSON forms map onto the preset's configuration; OpenCLIP's defaults fill absent fields; supported options map")
    func configMapping() throws {
        let dir = try tempDir()
        let nano = try #require(CLIPConfiguration.preset("nano", vocabularySize: 100))
        for (name, text) in [("bare", nanoConfig()), ("open_clip_config", nanoConfig(hub: true))] {
            let (c, notes) = try OpenCLIPConfig.load(path: try write(text, to: dir + "/\(name).json"))
            var expected = nano
            expected.name = name
            #expect(c == expected)
            #expect(notes.isEmpty, "\(notes)")
        }
        // open_clip's ViT-B-32.json: the defaults give 12 vision heads (768 / 64) and 4× MLPs.
        let b32 = #"{"embed_dim": 512, "vision_cfg": {"image_size": 224, "layers": 12, "width": 768, "patch_size": 32}, "#
            + #""text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 512, "heads": 8, "layers": 12}}"#
        let (c, _) = try OpenCLIPConfig.configuration(json: Data(b32.utf8), name: "ViT-B-32", source: "ViT-B-32.json")
        #expect(c.vision.heads == 12 && c.vision.grid == 7 && c.vision.mlpRatio == 4 && c.text.heads == 8 && c.gelu == .exact)
        #expect(c.vision.pool == .classToken && c.vision.positional == .learned)
        // Options ClipLab implements.
        let (mapped, notes) = try OpenCLIPConfig.configuration(
            json: Data(nanoConfig(
                top: #", "quick_gelu": false, "cast_dtype": "fp16", "init_logit_scale": 2.66"#,
                vision: #", "pool_type": "avg", "final_ln_after_pool": true, "pos_embed_type": "sin_cos_2d", "mlp_ratio": 2.0, "patch_dropout": 0.5, "act_kwargs": {"approximate": "tanh"}"#,
                text: #", "act_kwargs": {"approximate": "tanh"}, "final_ln_after_pool": true, "tokenizer_kwargs": {"clean": "lower"}, "ls_init_value": null"#).utf8),
            name: "x", source: "x.json")
        #expect(mapped.vision.pool == .average && mapped.vision.positional == .sinCos2D && mapped.vision.mlpRatio == 2 && mapped.gelu == .tanh)
        #expect(notes.contains { $0.contains("vision_cfg.patch_dropout = 0.5 is not used") }, "\(notes)")
        #expect(notes.contains { $0.contains("cast_dtype = \"fp16\" is not used") }, "\(notes)")
        #expect(notes.contains { $0.contains("init_logit_scale = 2.66 is not used") }, "\(notes)")
    }

    @Test("What ClipLab does not implement is refused, naming the field and its value", arguments: [
        (nanoConfig(top: #", "quick_gelu": true"#), "vision.json: quick_gelu = true: QuickGELU"),
        (nanoConfig(hub: true, top: #", "quick_gelu": true"#), "model_cfg.quick_gelu = true"),
        (nanoConfig().replacingOccurrences(of: #""layers": 1, "width": 32, "head_width""#, with: #""layers": [3, 4, 6, 3], "width": 32, "head_width""#), "vision_cfg.layers = [3, 4, 6, 3]: a list of stage depths is a ModifiedResNet"),
        (nanoConfig().replacingOccurrences(of: #""heads": 2, "layers": 1"#, with: #""heads": 2, "layers": [1, 2]"#), "text_cfg.layers = [1, 2]"),
        (nanoConfig(vision: #", "timm_model_name": "convnext_base""#), "vision_cfg.timm_model_name = \"convnext_base\": timm vision towers are not implemented"),
        (nanoConfig(text: #", "hf_model_name": "xlm-roberta-base""#), "text_cfg.hf_model_name = \"xlm-roberta-base\": Hugging Face text towers"),
        (nanoConfig(text: #", "hf_tokenizer_name": "timm/ViT-B-16-SigLIP""#), "text_cfg.hf_tokenizer_name = \"timm/ViT-B-16-SigLIP\""),
        (nanoConfig(text: #", "tokenizer_kwargs": {"clean": "canonicalize"}"#), "text_cfg.tokenizer_kwargs = {\"clean\": \"canonicalize\"}"),
        (nanoConfig(vision: #", "attentional_pool": true"#), "vision_cfg.attentional_pool = true: attentional pooling is not implemented"),
        (nanoConfig(vision: #", "mlp_ratio": 4.5"#), "vision_cfg.mlp_ratio = 4.5: ClipLab's MLP width is a whole multiple"),
        (nanoConfig(text: #", "ls_init_value": 0.1"#), "text_cfg.ls_init_value = 0.1: LayerScale is not implemented"),
        (nanoConfig(top: #", "init_logit_bias": -10"#), "init_logit_bias = -10: a logit bias belongs to SigLIP"),
        (nanoConfig(top: #", "custom_text": true"#), "custom_text = true: CustomTextCLIP"),
        (nanoConfig(top: #", "multimodal_cfg": {"width": 32}"#), "multimodal_cfg = {\"width\": 32}: CoCa"),
        (nanoConfig(top: #", "nonscalar_logit_scale": true"#), "nonscalar_logit_scale = true"),
        (nanoConfig(vision: #", "pool_type": "avg""#), "vision_cfg.pool_type = \"avg\": with final_ln_after_pool false"),
        (nanoConfig(vision: #", "no_ln_pre": true"#), "vision_cfg.no_ln_pre = true"),
        (nanoConfig(vision: #", "pos_embed_type": "rope""#), "vision_cfg.pos_embed_type = \"rope\""),
        (nanoConfig(vision: #", "qk_norm": true"#), "vision_cfg.qk_norm = true"),
        (nanoConfig().replacingOccurrences(of: #""head_width": 16"#, with: #""head_width": 12"#), "vision_cfg.head_width = 12: it must divide vision_cfg.width = 32"),
        (nanoConfig().replacingOccurrences(of: #""image_size": 16"#, with: #""image_size": [16, 32]"#), "vision_cfg.image_size = [16, 32]: ClipLab's images and patches are square"),
        (nanoConfig(vision: #", "norm_kwargs": {"eps": 1e-06}"#), "vision_cfg.norm_kwargs = {\"eps\": 1e-06}"),
        (nanoConfig(text: #", "act_kwargs": {"approximate": "sigmoid"}"#), "text_cfg.act_kwargs = {\"approximate\": \"sigmoid\"}"),
        (nanoConfig(text: #", "pool_type": "last""#), "text_cfg.pool_type = \"last\""),
        (nanoConfig(text: #", "proj_bias": true"#), "text_cfg.proj_bias = true"),
        (nanoConfig(text: #", "proj_type": "mlp""#), "text_cfg.proj_type = \"mlp\""),
        (nanoConfig(text: #", "no_causal_mask": true"#), "text_cfg.no_causal_mask = true"),
        (nanoConfig(text: #", "embed_cls": true"#), "text_cfg.embed_cls = true"),
        (nanoConfig(vision: #", "widht": 64"#), "vision_cfg.widht = 64: unknown field"),
        (nanoConfig(top: #", "vision_width": 64"#), "vision_width = 64: unknown field"),
        (nanoConfig().replacingOccurrences(of: #""vocab_size": 100, "width": 32"#, with: #""vocab_size": 100, "width": "wide""#), "text_cfg.width = \"wide\": expected an integer"),
        (nanoConfig(hub: true, preprocess: #", "size": 224"#), "preprocess_cfg.size = 224: it must equal the model's vision_cfg.image_size 16"),
        (#"{"model_cfg": {"embed_dim": 32}, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5]}}"#, "model_cfg.vision_cfg is missing"),
        (nanoConfig(hub: true).replacingOccurrences(of: "\"mean\": [0.48145466, 0.4578275, 0.40821073]", with: "\"mean\": [0.5, 0.5, 0.5]"),
         "preprocess_cfg.mean = [0.5, 0.5, 0.5]: ClipLab normalises images with OpenAI's CLIP mean"),
        (nanoConfig(hub: true).replacingOccurrences(of: "\"shortest\"", with: "\"squash\""), "preprocess_cfg.resize_mode = \"squash\""),
        (#"{"vision_cfg": {}}"#, "neither an open_clip_config.json"),
    ])
    func configRefusals(json: String, message: String) throws {
        let dir = try tempDir()
        let path = try write(json, to: dir + "/vision.json")
        do {
            let (c, _) = try OpenCLIPConfig.load(path: path)
            Issue.record("accepted: \(c)")
        } catch let e as ConfigurationError {
            #expect(e.message.contains(message), "\(e.message)")
            #expect(e.message.hasPrefix(path + ": "), "\(e.message)")
        }
    }

    @Test("A ClipLab checkpoint keeps its recorded architecture; an architecture given for it is noted as not used")
    func clipLabCheckpointWithArchitecture() throws {
        let dir = try tempDir()
        let original = try model("nano")
        try original.save(to: dir + "/cliplab.safetensors")
        let (loaded, notes) = try CLIPModel<Float>.load(from: dir + "/cliplab.safetensors", architecture: .preset("tiny"))
        #expect(loaded.config == original.config)
        #expect(notes == ["\(dir)/cliplab.safetensors is a ClipLab checkpoint and records its architecture ('nano'); --model tiny was not used"])
    }
}
