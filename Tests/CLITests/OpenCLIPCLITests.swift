// `clip eval`, `clip embed`, `clip train --init-from` and `clip upcycle --checkpoint` on a checkpoint
// without ClipLab metadata (as OpenCLIP's `save_file(model.state_dict())` writes one), given its
// architecture with --model or --model-config; and the messages of every refusal.

import CLIP
import Data
import Foundation
import Testing

/// Whether CLIP's merges file is installed (an OpenCLIP checkpoint of CLIP's vocabulary needs it).
private let clipMergesInstalled = TokenizerFiles.defaultMergesFile() != nil

@Suite("clip with OpenCLIP checkpoints", .serialized)
struct OpenCLIPCLITests {
    /// A folder with a nano model of `vocabulary` tokens saved twice: as a ClipLab checkpoint
    /// (cliplab.safetensors, tokenizer "clip") and as OpenCLIP saves it (openclip.safetensors: the
    /// same names and F32 values, no metadata); its OpenCLIP config in both JSON forms
    /// (nano.json, open_clip_config.json); and a 16×16 PNG.
    static func fixture(vocabulary: Int = CLIPConfiguration.clipVocabularySize, extra: [SafetensorsTensor] = []) throws -> String {
        let dir = NSTemporaryDirectory() + "cli-openclip-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let model = try CLIPModel<Float>(#require(CLIPConfiguration.preset("nano", vocabularySize: vocabulary)))
        model.initialize(seed: 11)
        try model.save(to: dir + "/cliplab.safetensors", metadata: ["cliplab.tokenizer": "clip"])
        let file = try SafetensorsFile(path: dir + "/cliplab.safetensors")
        let tensors = try file.entries.keys.sorted().map { name in
            SafetensorsTensor(name: name, shape: file.entries[name]!.shape, values: .f32(try file.doubles(name).map { Float($0) }))
        }
        try Safetensors.write(tensors + extra, metadata: [:], to: dir + "/openclip.safetensors", checksums: false)
        let model_cfg = """
            {"embed_dim": 32, "vision_cfg": {"image_size": 16, "layers": 1, "width": 32, "head_width": 16, "patch_size": 4},
             "text_cfg": {"context_length": 16, "vocab_size": \(vocabulary), "width": 32, "heads": 2, "layers": 1}}
            """
        try Data(model_cfg.utf8).write(to: URL(fileURLWithPath: dir + "/nano.json"))
        let hub = """
            {"model_cfg": \(model_cfg), "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073],
             "std": [0.26862954, 0.26130258, 0.27577711], "interpolation": "bicubic", "resize_mode": "shortest"}}
            """
        try Data(hub.utf8).write(to: URL(fileURLWithPath: dir + "/open_clip_config.json"))
        var image = RGBImage(width: 16, height: 16)
        for i in 0..<image.pixels.count { image.pixels[i] = UInt8((i * 37) % 256) }
        try PNGWriter.write(image, to: dir + "/image.png")
        return dir
    }

    @Test("clip embed of the OpenCLIP file with --model nano, or --model-config in either form, prints exactly the ClipLab checkpoint's embeddings",
          .enabled(if: clipMergesInstalled))
    func embedEqualsOriginal() throws {
        let dir = try Self.fixture()
        let inputs = ["--images", dir + "/image.png", "--texts", "a red square", "two blue circles on the left", "--raw"]
        let reference = try runClip(["embed", "--checkpoint", dir + "/cliplab.safetensors"] + inputs)
        #expect(reference.status == 0, "\(reference.err)")
        #expect(reference.out.split(separator: "\n").count == 4)
        for architecture in [["--model", "nano"], ["--model-config", dir + "/nano.json"], ["--model-config", dir + "/open_clip_config.json"]] {
            let r = try runClip(["embed", "--checkpoint", dir + "/openclip.safetensors"] + architecture + inputs)
            #expect(r.status == 0, "\(architecture): \(r.err)")
            #expect(r.out == reference.out, "\(architecture)")
            #expect(r.err.contains("note: \(dir)/openclip.safetensors has no ClipLab metadata: read as an OpenCLIP checkpoint with the architecture of \(architecture.joined(separator: " "))"),
                    "\(r.err)")
        }
        let eval = try runClip(["eval", "--checkpoint", dir + "/openclip.safetensors", "--model", "nano", "--eval-examples", "2", "--retrieval-size", "10", "--threads", "1"])
        #expect(eval.status == 0 && eval.out.contains("held-out metrics of \(dir)/openclip.safetensors"), "\(eval.out)\n\(eval.err)")
        let evalReference = try runClip(["eval", "--checkpoint", dir + "/cliplab.safetensors", "--eval-examples", "2", "--retrieval-size", "10", "--threads", "1"])
        #expect(eval.out.replacingOccurrences(of: "openclip.safetensors", with: "cliplab.safetensors") == evalReference.out)
    }

    @Test("Without --model or --model-config the file is refused as a valid safetensors file without ClipLab metadata, with the preset its shapes match",
          arguments: ["eval", "embed", "upcycle"])
    func noArchitecture(command: String) throws {
        let dir = try Self.fixture()
        let extra = command == "embed" ? ["--texts", "a cat"] : command == "upcycle" ? ["--experts", "2", "--out", dir + "/moe.safetensors"] : []
        let r = try runClip([command, "--checkpoint", dir + "/openclip.safetensors"] + extra)
        #expect(r.status != 0)
        #expect(r.err.contains("\(dir)/openclip.safetensors: a valid safetensors file holding 38 tensors, but it has no 'cliplab.config' metadata, "
                               + "so it is not a ClipLab checkpoint (an OpenCLIP one, for example). Give its architecture with --model PRESET or "
                               + "--model-config open_clip_config.json."), "\(r.err)")
        #expect(r.err.contains("Its shapes are those of preset 'nano'") && r.err.contains("pass --model nano"), "\(r.err)")
        #expect(!r.err.contains("not a valid safetensors file"), "\(r.err)")
    }

    @Test("Refusals: another preset's shapes, a logit_bias, an unsupported config field, both options, and a vocabulary that is not CLIP's")
    func refusals() throws {
        let dir = try Self.fixture()
        let ckpt = ["--checkpoint", dir + "/openclip.safetensors", "--texts", "a cat"]
        let tiny = try runClip(["embed"] + ckpt + ["--model", "tiny"])
        #expect(tiny.status != 0 && tiny.err.contains("checkpoint does not match the model")
                && tiny.err.contains("tensor 'visual.proj' has shape [32, 32]; the model expects [128, 128]") && tiny.err.contains("pass --model nano"), "\(tiny.err)")
        let both = try runClip(["embed"] + ckpt + ["--model", "nano", "--model-config", dir + "/nano.json"])
        #expect(both.status != 0 && both.err.contains("--model and --model-config: give one of them, not both"), "\(both.err)")
        let quick = #"{"embed_dim": 32, "quick_gelu": true, "vision_cfg": {"image_size": 16, "layers": 1, "width": 32, "head_width": 16, "patch_size": 4}, "text_cfg": {"context_length": 16, "width": 32, "heads": 2, "layers": 1}}"#
        try Data(quick.utf8).write(to: URL(fileURLWithPath: dir + "/quick.json"))
        let q = try runClip(["embed"] + ckpt + ["--model-config", dir + "/quick.json"])
        #expect(q.status != 0 && q.err.contains("--model-config: \(dir)/quick.json: quick_gelu = true: QuickGELU"), "\(q.err)")

        let siglip = try Self.fixture(extra: [SafetensorsTensor(name: "logit_bias", shape: [1], values: .f32([-10]))])
        let bias = try runClip(["embed", "--checkpoint", siglip + "/openclip.safetensors", "--model", "nano", "--texts", "a cat"])
        #expect(bias.status != 0 && bias.err.contains("unexpected tensor 'logit_bias' [1]: SigLIP's learned logit bias"), "\(bias.err)")

        let small = try Self.fixture(vocabulary: 100)
        let vocab = try runClip(["embed", "--checkpoint", small + "/openclip.safetensors", "--model", "nano", "--texts", "a cat"])
        #expect(vocab.status != 0 && vocab.err.contains("its vocabulary of 100 tokens is not CLIP's 49408"), "\(vocab.err)")
    }

    @Test("An OpenCLIP checkpoint of CLIP's vocabulary needs CLIP's merges file; without it the error says how to install it")
    func missingMerges() throws {
        let dir = try Self.fixture()
        let empty = dir + "/empty-cache"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let r = try runClip(["embed", "--checkpoint", dir + "/openclip.safetensors", "--model", "nano", "--texts", "a cat"],
                            environment: ["CLIPLAB_BPE_PATH": "", "CLIPLAB_CACHE": empty])
        #expect(r.status != 0)
        #expect(r.err.contains("has CLIP's vocabulary of 49408 tokens and no ClipLab metadata (an OpenCLIP checkpoint), so it needs CLIP's BPE, "
                               + "but bpe_simple_vocab_16e6.txt.gz is not installed (run scripts/bootstrap.sh or set CLIPLAB_BPE_PATH)"), "\(r.err)")
    }

    @Test("clip train --init-from the OpenCLIP file with --model nano or --model-config; the default preset's mismatch names nano",
          .enabled(if: clipMergesInstalled))
    func trainInitFrom() throws {
        let dir = try Self.fixture()
        let common = ["--data", "shapes:128", "--batch-size", "64", "--epochs", "1", "--eval-examples", "2", "--retrieval-size", "10",
                      "--eval-every", "0", "--warmup", "1", "--threads", "1", "--no-checkpoints", "--init-from", dir + "/openclip.safetensors"]
        for (name, architecture) in [("preset", ["--model", "nano"]), ("config", ["--model-config", dir + "/open_clip_config.json"])] {
            let r = try runClip(["train"] + common + architecture + ["--out", dir + "/run-\(name)"])
            #expect(r.status == 0, "\(name): \(r.err)")
            let log = try String(contentsOfFile: dir + "/run-\(name)/log.txt", encoding: .utf8)
            #expect(log.contains("initialised from \(dir)/openclip.safetensors"), "\(log)")
            #expect(log.contains("has no ClipLab metadata: read as an OpenCLIP checkpoint into"), "\(log)")
            #expect(log.contains("tokenizer clip (49408 tokens)"), "\(log)")
        }
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/run-config/config.json"))) as? [String: Any]
        let architecture = (config?["training"] as? [String: Any])?["modelArchitecture"] as? [String: Any]
        #expect(architecture?["name"] as? String == "open_clip_config" && architecture?["embedDimension"] as? Int == 32, "\(String(describing: config))")
        // The default preset (tiny) does not fit: the mismatch names the preset that does.
        let wrong = try runClip(["train"] + common + ["--out", dir + "/run-tiny"])
        #expect(wrong.status != 0 && wrong.err.contains("checkpoint does not match the model") && wrong.err.contains("pass --model nano"), "\(wrong.err)")
        let moments = try runClip(["train"] + common + ["--model", "nano", "--init-optimizer-state", "--out", dir + "/run-moments"])
        #expect(moments.status != 0 && moments.err.contains("leave out --init-optimizer-state"), "\(moments.err)")
    }

    @Test("clip upcycle --checkpoint the OpenCLIP file with --model nano writes a ClipLab checkpoint that records CLIP's BPE")
    func upcycle() throws {
        let dir = try Self.fixture()
        let r = try runClip(["upcycle", "--checkpoint", dir + "/openclip.safetensors", "--model", "nano", "--experts", "2", "--every", "1",
                             "--first-block", "0", "--out", dir + "/moe.safetensors"])
        #expect(r.status == 0 && r.out.contains("2 mixture layers (visual.0, text.0), 2 experts"), "\(r.out)\n\(r.err)")
        #expect(r.err.contains("read as an OpenCLIP checkpoint with the architecture of --model nano"), "\(r.err)")
        let meta = try SafetensorsFile(path: dir + "/moe.safetensors").metadata
        #expect(meta["cliplab.tokenizer"] == "clip" && meta["cliplab.config"] != nil && meta["upcycled_from"] == dir + "/openclip.safetensors")
    }
}
