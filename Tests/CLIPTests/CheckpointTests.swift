import CLIP
import Foundation
import Testing

@Suite("Safetensors checkpoints")
struct CheckpointTests {
    func tempDir() throws -> String {
        let d = NSTemporaryDirectory() + "cliplab-ckpt-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    func nano(seed: UInt64, vocabulary: Int = 100) throws -> CLIPModel<Float> {
        let m = try CLIPModel<Float>(#require(CLIPConfiguration.preset("nano", vocabularySize: vocabulary)))
        m.initialize(seed: seed)
        return m
    }

    @Test("Save then load gives identical parameters and the stored configuration")
    func roundTrip() throws {
        let dir = try tempDir()
        let path = dir + "/model.safetensors"
        let a = try nano(seed: 1)
        try a.save(to: path, metadata: ["epoch": "3"])
        let b = try nano(seed: 2)
        try b.load(from: path)
        #expect(a.store.values.toArray() == b.store.values.toArray())
        let c = try CLIPModel<Float>.load(from: path)
        #expect(c.config == a.config)
        #expect(c.store.values.toArray() == a.store.values.toArray())
        let file = try SafetensorsFile(path: path)
        #expect(file.metadata["epoch"] == "3" && file.metadata["format"] == "pt")
        #expect(file.entries.count == 38 && file.entries["logit_scale"]?.shape == [] && file.entries["logit_scale"]?.dtype == "F32")
        // No temporary files are left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["model.safetensors"])
    }

    @Test("The header is 8-byte aligned JSON with contiguous data offsets")
    func layout() throws {
        let dir = try tempDir()
        let path = dir + "/m.safetensors"
        try nano(seed: 1).save(to: path)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(n % 8 == 0)
        let header = try #require(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as? [String: Any])
        var spans: [(Int, Int)] = []
        for (k, v) in header where k != "__metadata__" {
            let offs = try #require((v as? [String: Any])?["data_offsets"] as? [Int])
            spans.append((offs[0], offs[1]))
        }
        spans.sort { $0.0 < $1.0 }
        #expect(spans.first?.0 == 0)
        #expect(zip(spans, spans.dropFirst()).allSatisfy { $0.1 == $1.0 })
        #expect(spans.last?.1 == data.count - 8 - n)
    }

    @Test("A corrupt file gives an error naming the file and the problem")
    func corrupt() throws {
        let dir = try tempDir()
        let path = dir + "/m.safetensors"
        try nano(seed: 1).save(to: path)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        // Truncated.
        try good.prefix(good.count - 10).write(to: URL(fileURLWithPath: path))
        #expect(throws: CheckpointError.self) { try nano(seed: 1).load(from: path) }
        do { try nano(seed: 1).load(from: path) } catch {
            #expect("\(error)".contains(path) && "\(error)".contains("truncated"))
        }
        // Garbage.
        try Data("hello".utf8).write(to: URL(fileURLWithPath: path))
        do { try nano(seed: 1).load(from: path); Issue.record("garbage loaded") } catch {
            #expect("\(error)".contains(path) && "\(error)".contains("8-byte"))
        }
        // Missing file.
        do { try nano(seed: 1).load(from: dir + "/nope.safetensors"); Issue.record("missing file loaded") } catch {
            #expect("\(error)".contains("nope.safetensors"))
        }
    }

    @Test("A mismatched checkpoint lists every shape, missing and unexpected tensor")
    func mismatch() throws {
        let dir = try tempDir()
        let path = dir + "/m.safetensors"
        try nano(seed: 1, vocabulary: 100).save(to: path)
        do {
            try nano(seed: 1, vocabulary: 120).load(from: path)
            Issue.record("a checkpoint with another vocabulary loaded")
        } catch let e as CheckpointError {
            guard case .mismatch(_, let problems) = e else { Issue.record("wrong error \(e)"); return }
            #expect(problems == ["tensor 'token_embedding.weight' has shape [100, 32]; the model expects [120, 32]"])
        }
        // A tiny model reading a nano file: many shape problems, and tiny's extra blocks are missing.
        let tiny = try CLIPModel<Float>(#require(CLIPConfiguration.preset("tiny", vocabularySize: 100)))
        do {
            try tiny.load(from: path)
            Issue.record("nano loaded into tiny")
        } catch let e as CheckpointError {
            let text = "\(e)"
            #expect(text.contains("missing tensor 'visual.transformer.resblocks.3.attn.in_proj_weight'"))
            #expect(text.contains("tensor 'visual.proj' has shape [32, 32]; the model expects [128, 128]"))
        }
        // An extra tensor.
        let tensors = [SafetensorsTensor(name: "logit_bias", shape: [], values: .f32([0]))]
        try Safetensors.write(tensors, metadata: [:], to: dir + "/extra.safetensors")
        do { try nano(seed: 1).load(from: dir + "/extra.safetensors") } catch {
            #expect("\(error)".contains("unexpected tensor 'logit_bias'"))
            #expect("\(error)".contains("missing tensor 'visual.proj'"))
        }
    }
}
