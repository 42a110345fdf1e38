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

    /// The file offset of tensor `name`'s first data byte in the safetensors file `bytes`.
    func dataOffset(of name: String, in bytes: Data) throws -> Int {
        let n = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try #require(try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + n))) as? [String: Any])
        let offsets = try #require((header[name] as? [String: Any])?["data_offsets"] as? [Int])
        return 8 + n + offsets[0]
    }

    @Test("Every tensor's CRC-32 (zlib's) is recorded in the metadata as 8 hex digits")
    func checksumsRecorded() throws {
        // The CRC-32 check value of "123456789" (ISO-HDLC, as zlib, gzip and PNG compute it).
        #expect(Array("123456789".utf8).withUnsafeBytes { Safetensors.crc32($0) } == 0xCBF4_3926)
        let dir = try tempDir()
        let path = dir + "/m.safetensors"
        try nano(seed: 1).save(to: path, metadata: ["epoch": "1"])
        let file = try SafetensorsFile(path: path)
        #expect(Set(file.checksums.keys) == Set(file.entries.keys) && file.checksums.count == 38)
        let text = try #require(file.metadata[Safetensors.checksumKey])
        let recorded = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String])
        #expect(recorded.values.allSatisfy { $0.count == 8 && $0.allSatisfy(\.isHexDigit) && $0 == $0.lowercased() })
        // The recorded value is the CRC-32 of the tensor's bytes in the file.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let start = try dataOffset(of: "logit_scale", in: bytes)
        let crc = bytes.subdata(in: start..<(start + 4)).withUnsafeBytes { Safetensors.crc32($0) }
        #expect(file.checksums["logit_scale"] == crc && recorded["logit_scale"] == String(format: "%08x", crc))
        #expect(crc == 0x6eeb_b5c4, "a new model's logit_scale, ln(1/0.07) as F32 (bytes 51 31 2a 40; zlib.crc32 in Python)")
        #expect(file.metadata["epoch"] == "1")
    }

    @Test("A flipped byte inside a tensor's data fails the load with an error naming the file, the tensor and both checksums")
    func flippedByte() throws {
        let dir = try tempDir()
        let path = dir + "/m.safetensors"
        let original = try nano(seed: 1)
        try original.save(to: path)
        let stored = try #require(try SafetensorsFile(path: path).checksums["visual.proj"])
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let start = try dataOffset(of: "visual.proj", in: bytes)
        bytes[start + 101] ^= 0x10  // one bit of one value: still a valid Float, and a valid file
        try bytes.write(to: URL(fileURLWithPath: path))
        let computed = bytes.subdata(in: start..<(start + 32 * 32 * 4)).withUnsafeBytes { Safetensors.crc32($0) }
        #expect(computed != stored)
        let expected = CheckpointError.checksumMismatch(path: path, tensor: "visual.proj", stored: stored, computed: computed)
        #expect(throws: expected) { try nano(seed: 2).load(from: path) }
        #expect(throws: expected) { _ = try CLIPModel<Float>.load(from: path) }
        let file = try SafetensorsFile(path: path)  // the header is intact
        #expect(throws: expected) { _ = try file.doubles("visual.proj") }
        var into = [Float](repeating: 0, count: 32 * 32)
        #expect(throws: expected) { try into.withUnsafeMutableBufferPointer { try file.copy("visual.proj", into: $0.baseAddress!) } }
        #expect(try file.doubles("logit_scale").count == 1, "the other tensors still read")
        let message = "\(expected)"
        #expect(message.contains(path) && message.contains("'visual.proj'") && message.contains(String(format: "%08x", stored))
                && message.contains(String(format: "%08x", computed)), "\(message)")
    }

    @Test("A file written without checksums (OpenCLIP's, older ClipLab ones) loads as before; a malformed checksum entry is refused")
    func withoutChecksums() throws {
        let dir = try tempDir()
        let original = try nano(seed: 1)
        try original.save(to: dir + "/with.safetensors", metadata: ["epoch": "2"])
        let with = try SafetensorsFile(path: dir + "/with.safetensors")
        let tensors = try with.entries.keys.sorted().map { name in
            SafetensorsTensor(name: name, shape: with.entries[name]!.shape, values: .f32(try with.doubles(name).map { Float($0) }))
        }
        // Without checksums, even the key copied from another file's metadata is left out.
        try Safetensors.write(tensors, metadata: with.metadata, to: dir + "/without.safetensors", checksums: false)
        let without = try SafetensorsFile(path: dir + "/without.safetensors")
        #expect(without.metadata[Safetensors.checksumKey] == nil && without.checksums.isEmpty && without.metadata["epoch"] == "2")
        let loaded = try CLIPModel<Float>.load(from: dir + "/without.safetensors")
        #expect(loaded.store.values.toArray() == original.store.values.toArray())
        // The key must hold a JSON object of 8-hex-digit strings.
        for (value, reason) in [("[1, 2]", "is not a JSON object"), ("{\\\"logit_scale\\\": 12}", "gives tensor 'logit_scale' 12"),
                                ("{\\\"logit_scale\\\": \\\"123\\\"}", "gives tensor 'logit_scale' 123")] {
            var header = Array(("{\"__metadata__\":{\"\(Safetensors.checksumKey)\":\"\(value)\"},"
                                + "\"logit_scale\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}").utf8)
            while header.count % 8 != 0 { header.append(0x20) }
            let length = (0..<8).map { UInt8(truncatingIfNeeded: header.count >> (8 * $0)) }
            try Data(length + header + [0, 0, 128, 63]).write(to: URL(fileURLWithPath: dir + "/bad.safetensors"))
            do {
                _ = try SafetensorsFile(path: dir + "/bad.safetensors")
                Issue.record("\(value) accepted")
            } catch let e as CheckpointError {
                guard case .invalidMetadata(_, let r) = e else { Issue.record("wrong error \(e)"); continue }
                #expect(r.contains(reason), "\(r)")
            }
        }
    }
}
