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
        let file = try SafetensorsFile(path: path)
        var problems: [String] = []
        let expected = Set(store.layout.views.map(\.name))
        for name in file.entries.keys.sorted() where !expected.contains(name) {
            problems.append("unexpected tensor '\(name)' \(file.entries[name]!.shape)")
        }
        for v in store.layout.views {
            guard let e = file.entries[v.name] else {
                problems.append("missing tensor '\(v.name)' \(v.shape)")
                continue
            }
            if e.shape != v.shape { problems.append("tensor '\(v.name)' has shape \(e.shape); the model expects \(v.shape)") }
            if e.dtype != "F32" && e.dtype != "F64" { problems.append("tensor '\(v.name)' has dtype \(e.dtype); expected F32 or F64") }
        }
        if !problems.isEmpty { throw CheckpointError.mismatch(path: path, problems: problems) }
        for v in store.layout.views { try file.copy(v.name, into: store.value(v)) }
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
