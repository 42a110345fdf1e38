// Inputs the fuzz targets (Fuzz/, `just fuzz`) found to crash the checkpoint and config readers,
// kept in Fixtures/fuzz (or inline): each must now give the reader's error (or a result) instead.

import CLIP
import Foundation
import Testing

/// The path of a fuzz fixture (a file under Fixtures/fuzz).
private func fuzzFixture(_ name: String) throws -> String {
    let folder = try #require(Bundle.module.url(forResource: "fuzz", withExtension: nil, subdirectory: "Fixtures"))
    return folder.appendingPathComponent(name).path
}

@Suite struct CLIPFuzzRegressionTests {
    /// A file with OpenCLIP's tensor names whose `visual.positional_embedding` has 0 rows (its
    /// dtype unknown, so no size check applies): working out the image size took the square root
    /// of −1 and converted NaN to Int, which stopped the program. The error that refuses a file
    /// without ClipLab metadata computes that, so `clip eval` on such a file crashed.
    @Test func zeroRowPositionalTableGivesNoImageSize() throws {
        let path = try fuzzFixture("empty-positional-grid.safetensors")
        let file = try SafetensorsFile(path: path)
        #expect(file.entries["visual.positional_embedding"]?.shape == [0, 2])
        let shapes = CheckpointShapes(file)
        #expect(shapes.imageSize == nil && !shapes.looksLikeOpenCLIP)
        #expect(shapes.suggestion(insteadOf: nil)?.contains("no architecture fits it") == true)
        do {
            _ = try CLIPModel<Float>.load(from: path)
            Issue.record("a file without metadata loaded")
        } catch let error as CheckpointError {
            guard case .noConfiguration(_, let count, let suggestion) = error else { Issue.record("wrong error \(error)"); return }
            #expect(count == 9)
            #expect(suggestion?.contains("no architecture fits it") == true, "\(error)")
        }
    }

    /// A header giving an F16 tensor the shape [1.1e301, 2]: multiplying the sizes to check the
    /// byte count overflowed, which stops a checked build (and wraps in release). Now a shape whose
    /// product does not fit, or that has a negative size, is malformed. The inline file is the
    /// negative case: [-1, -1] has the product 1, so 4 bytes of F32 passed as a valid tensor.
    @Test func shapesThatOverflowOrAreNegativeAreMalformed() throws {
        func reason(_ read: () throws -> SafetensorsFile) -> String {
            do {
                _ = try read()
                return "no error"
            } catch let error as CheckpointError {
                guard case .malformed(_, let reason) = error else { return "wrong error \(error)" }
                return reason
            } catch {
                return "wrong error \(error)"
            }
        }
        let found = reason { try SafetensorsFile(path: try fuzzFixture("shape-product-overflow.safetensors")) }
        #expect(found.contains("tensor 'b.f16' has shape") && found.contains("sizes must be ≥ 0 and their product must fit in 64 bits"), "\(found)")

        var header = Array(#"{"a":{"dtype":"F32","shape":[-1,-1],"data_offsets":[0,4]}}"#.utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        var bytes = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header
        bytes += [0, 0, 0x80, 0x3F]
        let negative = reason { try SafetensorsFile(bytes: Data(bytes), path: "negative.safetensors") }
        #expect(negative == "tensor 'a' has shape [-1, -1]: sizes must be ≥ 0 and their product must fit in 64 bits", "\(negative)")
    }

    /// Seen while reading the config target's code: `validate` listed every block of a tower with
    /// experts, so a `cliplab.config` declaring 10¹² layers hung it, and no size had an upper bound
    /// (a width of 2⁶² overflows the parameter count). Now each size has a bound named in the error,
    /// and the mixture check does not visit the blocks.
    @Test func configurationSizesAreBoundedAndCheckedWithoutVisitingEveryBlock() throws {
        let seed = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Fuzz/corpus/config/cliplab-config-moe.json")
        let json = try String(contentsOf: seed.standardized, encoding: .utf8)
        func problem(_ replace: String, _ with: String) throws -> String {
            #expect(json.contains(replace))
            let config = try JSONDecoder().decode(CLIPConfiguration.self, from: Data(json.replacingOccurrences(of: replace, with: with).utf8))
            do {
                try config.validate()
                return "valid"
            } catch let error as ConfigurationError {
                return error.message
            }
        }
        #expect(try problem("\"name\"", "\"name\"") == "valid")
        let start = Date()
        #expect(try problem("\"layers\":2,", "\"layers\":1000000000000,") == "model configuration 'nano': vision.layers must be ≤ 1024, got 1000000000000")
        #expect(Date().timeIntervalSince(start) < 5)
        #expect(try problem("\"width\":32,\"experts\"", "\"width\":4611686018427387904,\"experts\"").contains("vision.width must be ≤ 65536"))
        #expect(try problem("\"vocabularySize\":49408", "\"vocabularySize\":99999999999").contains("text.vocabularySize must be ≤ 16777216"))
        #expect(try problem("\"experts\":4,", "\"experts\":100000,").contains("vision.experts.configuration.experts must be ≤ 4096"))
        #expect(try problem("\"first\":1", "\"first\":2").contains("vision.experts places no mixture in its 2 blocks (first 2, every 2)"))
        #expect(try problem("\"mlpRatio\":4,\"patchSize", "\"mlpRatio\":0,\"patchSize").contains("mlpRatio must be in 1…64"))
        #expect(try problem("\"width\":32,\"experts\"", "\"width\":-32,\"experts\"").contains("must be > 0"))
    }
}
