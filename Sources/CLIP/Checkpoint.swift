// Model checkpoints: the parameters under OpenCLIP's names as safetensors (F32, loadable by
// OpenCLIP for the same architecture), with the model configuration in the header's metadata.

import Compute
import Foundation
import Layers

extension CLIPModel {
    /// Metadata key holding the JSON-encoded `CLIPConfiguration`.
    public static var configurationKey: String { "cliplab.config" }

    /// Saves every parameter as F32 under its OpenCLIP name, atomically. `metadata` adds entries
    /// (run name, step, …) to the header.
    public func save(to path: String, metadata: [String: String] = [:]) throws {
        var meta = metadata
        meta["format"] = "pt"
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        meta[Self.configurationKey] = String(decoding: try enc.encode(config), as: UTF8.self)
        let tensors = store.layout.views.map { v in
            SafetensorsTensor(name: v.name, shape: v.shape, values: .f32(store.values(of: v).map { Float($0) }))
        }
        try Safetensors.write(tensors, metadata: meta, to: path)
    }

    /// Loads parameters from a safetensors file, after checking that its tensor names, shapes and
    /// dtypes (F32 or F64) are exactly the model's; every problem is listed in the error.
    public func load(from path: String) throws {
        try load(from: path, resizingPositional: false)
    }

    /// Loads parameters like `load(from:)`, except that with `resizingPositional` positional
    /// tables made for another patch grid or text length are resized to this model's (CLIPA's
    /// step between its pre-training at reduced tokens and its fine-tuning at full length):
    ///
    /// - `visual.positional_embedding` (1 + g₀², W) → (1 + g², W): the class row is kept and the
    ///   patch rows resized bicubically with antialiasing (OpenCLIP's `resize_pos_embed`), or,
    ///   when this model's table is the fixed sine–cosine code, recomputed for its grid;
    /// - `positional_embedding` (L₀, W) → (L, W): linear interpolation (CLIPA's
    ///   `resize_text_pos_embed`).
    ///
    /// Returns the names of the resized tensors. Any other difference is an error, as in `load`.
    @discardableResult
    public func load(from path: String, resizingPositional: Bool) throws -> [String] {
        let file = try SafetensorsFile(path: path)
        var problems: [String] = []
        var resized: [String] = []
        let visual = "visual.positional_embedding", text = "positional_embedding"
        let expected = Set(store.layout.views.map(\.name))
        for name in file.entries.keys.sorted() where !expected.contains(name) {
            problems.append("unexpected tensor '\(name)' \(file.entries[name]!.shape)")
        }
        for v in store.layout.views {
            guard let e = file.entries[v.name] else {
                problems.append("missing tensor '\(v.name)' \(v.shape)")
                continue
            }
            if e.dtype != "F32" && e.dtype != "F64" { problems.append("tensor '\(v.name)' has dtype \(e.dtype); expected F32 or F64") }
            guard e.shape != v.shape else { continue }
            if resizingPositional, e.shape.count == 2, e.shape[1] == v.shape.last {
                let g0 = Int(Double(e.shape[0] - 1).squareRoot().rounded())
                if v.name == visual && g0 * g0 == e.shape[0] - 1 || v.name == text && e.shape[0] >= 1 {
                    resized.append(v.name)
                    continue
                }
            }
            problems.append("tensor '\(v.name)' has shape \(e.shape); the model expects \(v.shape)")
        }
        if !problems.isEmpty { throw CheckpointError.mismatch(path: path, problems: problems) }
        for v in store.layout.views where !resized.contains(v.name) { try file.copy(v.name, into: store.value(v)) }
        for name in resized {
            let v = store.view(name), from = file.entries[name]!.shape[0], width = v.shape[1], to = v.shape[0]
            let source = try file.doubles(name)
            var table: [Double]
            if name == visual {
                if config.vision.positional == .sinCos2D {
                    vision.writeSinCosTable(store)
                    continue
                }
                let g0 = Int(Double(from - 1).squareRoot().rounded())
                table = Array(source[0..<width]) + PositionalTables.resizeBicubic(Array(source[width...]), from: g0, to: config.vision.grid, width: width)
            } else {
                table = PositionalTables.resizeLinear(source, from: from, to: to, width: width)
            }
            let p = store.value(v)
            for i in 0..<table.count { p[i] = T(table[i]) }
        }
        return resized
    }

    /// Builds a model from the configuration stored in a checkpoint's metadata and loads it.
    public static func load(from path: String) throws -> CLIPModel {
        let file = try SafetensorsFile(path: path)
        guard let json = file.metadata[configurationKey] else {
            throw CheckpointError.malformed(
                path: path, reason: "no '\(configurationKey)' entry in __metadata__: not a ClipLab checkpoint (load an OpenCLIP one into a model built from a preset)")
        }
        let config: CLIPConfiguration
        do {
            config = try JSONDecoder().decode(CLIPConfiguration.self, from: Data(json.utf8))
        } catch {
            throw CheckpointError.malformed(path: path, reason: "the model configuration in the metadata does not decode: \(error)")
        }
        let model = try CLIPModel(config)
        try model.load(from: path)
        return model
    }
}
