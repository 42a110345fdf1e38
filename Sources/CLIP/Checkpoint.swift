// Model checkpoints: the parameters under OpenCLIP's names as safetensors (F32, loadable by
// OpenCLIP for the same architecture), with the model configuration in the header's metadata.
// A file without that metadata (an OpenCLIP checkpoint: `save_file(model.state_dict())`) loads
// into the architecture of a preset or of an OpenCLIP model config (`ArchitectureSource`).

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
    /// dtypes (F32, F64, F16 or BF16; converted) are exactly the model's; every problem is listed
    /// in the error. OpenCLIP's causal-mask buffers (`attn_mask`), which older OpenCLIP versions
    /// saved, are skipped; a `logit_bias` (SigLIP) is refused.
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
        for name in file.entries.keys.sorted() where !expected.contains(name) && !Self.isMaskBuffer(name) {
            let shape = file.entries[name]!.shape
            problems.append(
                name == "logit_bias"
                    ? "unexpected tensor 'logit_bias' \(shape): SigLIP's learned logit bias (a model trained with the sigmoid loss), which ClipLab does not implement"
                    : "unexpected tensor '\(name)' \(shape)")
        }
        for v in store.layout.views {
            guard let e = file.entries[v.name] else {
                problems.append("missing tensor '\(v.name)' \(v.shape)")
                continue
            }
            if !SafetensorsFile.floatDTypes.contains(e.dtype) { problems.append("tensor '\(v.name)' has dtype \(e.dtype); expected F32, F64, F16 or BF16") }
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
        if !problems.isEmpty {
            // A ClipLab checkpoint records its architecture; for any other file, say what its
            // shapes are.
            guard file.metadata[Self.configurationKey] == nil else { throw CheckpointError.mismatch(path: path, problems: problems) }
            throw CheckpointError.openCLIPMismatch(path: path, problems: problems, suggestion: CheckpointShapes(file).suggestion(insteadOf: config))
        }
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

    /// Whether `name` is one of OpenCLIP's attention-mask buffers (`attn_mask`, the text tower's
    /// causal mask), which older OpenCLIP versions saved with the parameters; ClipLab builds its
    /// own mask, so a loader skips them.
    public static func isMaskBuffer(_ name: String) -> Bool { name == "attn_mask" || name.hasSuffix(".attn_mask") }

    /// Builds a model from the configuration stored in a checkpoint's metadata and loads it. A
    /// file without it (an OpenCLIP checkpoint) is refused, saying what its shapes match.
    public static func load(from path: String) throws -> CLIPModel {
        try load(from: path, architecture: nil).model
    }

    /// Builds and loads the model of the checkpoint at `path`. A ClipLab checkpoint brings its
    /// own architecture (its metadata's `cliplab.config`; `architecture` is then not used). Any
    /// other safetensors file with OpenCLIP's names, an OpenCLIP checkpoint, needs `architecture`:
    /// a preset (with the file's vocabulary) or an OpenCLIP model config. The shapes are checked
    /// exactly, as in `load(from:)`. `notes` says what was assumed, converted or skipped, for the
    /// user to read.
    public static func load(from path: String, architecture: ArchitectureSource?) throws -> (model: CLIPModel, notes: [String]) {
        let file = try SafetensorsFile(path: path)
        var notes: [String] = []
        let config: CLIPConfiguration
        if let json = file.metadata[configurationKey] {
            do {
                config = try JSONDecoder().decode(CLIPConfiguration.self, from: Data(json.utf8))
            } catch {
                throw CheckpointError.invalidMetadata(path: path, reason: "the model configuration under '\(configurationKey)' does not decode: \(error)")
            }
            if let a = architecture {
                notes.append("\(path) is a ClipLab checkpoint and records its architecture ('\(config.name)'); \(a.option) was not used")
            }
        } else {
            guard let architecture else {
                throw CheckpointError.noConfiguration(
                    path: path, tensorCount: file.entries.count, suggestion: CheckpointShapes(file).suggestion(insteadOf: nil))
            }
            let configNotes: [String]
            (config, configNotes) = try architecture.configuration(for: file)
            notes.append("\(path) has no ClipLab metadata: read as an OpenCLIP checkpoint with the architecture of \(architecture.option)")
            if case .preset(let name) = architecture {
                notes.append(
                    "the number of attention heads is not stored in the file: \(name)'s \(config.vision.heads) vision and \(config.text.heads) text heads "
                        + "are assumed (if the model had others, its embeddings differ; give its OpenCLIP config with --model-config)")
            }
            notes += configNotes
        }
        let model = try CLIPModel(config)
        try model.load(from: path)
        notes += Self.conversionNotes(file)
        return (model, notes)
    }

    /// What a load of `file` skips or converts: attention-mask buffers, F16 / BF16 / F64 tensors.
    public static func conversionNotes(_ file: SafetensorsFile) -> [String] {
        var notes: [String] = []
        let masks = file.entries.keys.filter(isMaskBuffer).sorted()
        if !masks.isEmpty {
            notes.append("skipped " + masks.map { "'\($0)' \(file.entries[$0]!.shape)" }.joined(separator: ", ")
                         + ": OpenCLIP's causal-mask buffer, not a parameter (ClipLab builds the mask itself)")
        }
        var byType: [String: Int] = [:]
        for (name, e) in file.entries where !isMaskBuffer(name) && e.dtype != "F32" { byType[e.dtype, default: 0] += 1 }
        for (dtype, n) in byType.sorted(by: { $0.key < $1.key }) {
            notes.append("\(n) tensor\(n == 1 ? " is" : "s are") stored as \(dtype), converted to \(T.self) on load")
        }
        return notes
    }
}

/// Where the architecture of a checkpoint without ClipLab metadata comes from: `clip … --model
/// PRESET` or `--model-config FILE`.
public enum ArchitectureSource: Sendable, Hashable {
    /// A preset, built with the vocabulary of the file's `token_embedding.weight`.
    case preset(String)
    /// An OpenCLIP model config: `open_clip_config.json` or a `model_configs/*.json` (`OpenCLIPConfig`).
    case openCLIPConfig(path: String)

    /// The command-line option that gives it.
    public var option: String {
        switch self {
        case .preset(let name): "--model \(name)"
        case .openCLIPConfig(let path): "--model-config \(path)"
        }
    }

    /// The configuration to load `file` into, and notes on what the config file leaves out.
    public func configuration(for file: SafetensorsFile) throws -> (CLIPConfiguration, [String]) {
        switch self {
        case .preset(let name):
            let vocabulary = file.entries["token_embedding.weight"]?.shape.first ?? CLIPConfiguration.clipVocabularySize
            guard let c = CLIPConfiguration.preset(name, vocabularySize: vocabulary) else {
                throw ConfigurationError(message: "--model: unknown preset '\(name)'; expected one of \(CLIPConfiguration.presetNames.joined(separator: ", "))")
            }
            return (c, [])
        case .openCLIPConfig(let path):
            let (c, notes) = try OpenCLIPConfig.load(path: path)
            return (c, notes)
        }
    }
}
