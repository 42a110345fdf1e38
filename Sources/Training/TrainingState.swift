// What a run needs besides the model's parameters to continue exactly after a stop: the
// optimizer's moments and step count, the epoch and step reached, and the objective's per-sample
// tables (u, and for individual temperatures τ, its Adam moments and the bounds). Written per epoch
// next to the model checkpoint as `epoch_N.state.safetensors` (F32 moments, F64 tables), atomically
// and with each tensor's CRC-32, like the checkpoint (`Safetensors.write`).

import CLIP
import Compute
import Foundation
import Layers
import Objectives

public enum TrainingState {
    /// The state file that belongs to model checkpoint `epoch_N.safetensors`.
    public static func path(forCheckpoint checkpoint: String) -> String {
        (checkpoint.hasSuffix(".safetensors") ? String(checkpoint.dropLast(".safetensors".count)) : checkpoint) + ".state.safetensors"
    }

    static let configurationKey = "cliplab.training"

    /// Writes the state after `epoch` epochs (`step` global steps).
    static func save(
        to path: String, epoch: Int, step: Int, optimizer: Optimizer, store: ParameterStore<Float>, sampleState: SampleState?,
        configuration: TrainingConfiguration
    ) throws {
        let n = store.values.count
        var tensors = [
            SafetensorsTensor(name: "optimizer.first_moment", shape: [n], values: .f32(Array(UnsafeBufferPointer(start: store.firstMoment.pointer, count: n)))),
            SafetensorsTensor(name: "optimizer.second_moment", shape: [n], values: .f32(Array(UnsafeBufferPointer(start: store.secondMoment.pointer, count: n)))),
        ]
        for (name, values) in sampleState?.tables() ?? [] {
            tensors.append(SafetensorsTensor(name: "samples." + name, shape: [values.count], values: .f64(values)))
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let meta = [
            "epoch": "\(epoch)", "step": "\(step)", "optimizer_step": "\(optimizer.step)",
            configurationKey: String(decoding: try enc.encode(configuration), as: UTF8.self),
        ]
        try Safetensors.write(tensors, metadata: meta, to: path)
    }

    /// Writes a state file holding only optimizer moments and step (what `carryMoments` reads), for
    /// a checkpoint made outside training (`clip upcycle --copy-optimizer-state`), atomically.
    public static func saveMoments(of store: ParameterStore<Float>, optimizerStep: Int, to path: String) throws {
        let n = store.values.count
        try Safetensors.write(
            [
                SafetensorsTensor(name: "optimizer.first_moment", shape: [n], values: .f32(Array(UnsafeBufferPointer(start: store.firstMoment.pointer, count: n)))),
                SafetensorsTensor(name: "optimizer.second_moment", shape: [n], values: .f32(Array(UnsafeBufferPointer(start: store.secondMoment.pointer, count: n)))),
            ], metadata: ["optimizer_step": "\(optimizerStep)"], to: path)
    }

    /// What `load` restores into the trainer.
    struct Restored {
        var epoch: Int
        var step: Int
        var optimizerStep: Int
    }

    /// Restores moments and tables from `path` after checking it was written by a run with the
    /// same configuration (threads and output directory aside); returns the epoch and steps.
    static func load(
        from path: String, store: ParameterStore<Float>, sampleState: SampleState?, configuration: TrainingConfiguration
    ) throws -> Restored {
        let file = try SafetensorsFile(path: path)
        func field(_ key: String) throws -> Int {
            guard let s = file.metadata[key], let v = Int(s), v >= 0 else {
                throw TrainingError.io(path: path, reason: "metadata field '\(key)' is missing or not a non-negative integer")
            }
            return v
        }
        guard let json = file.metadata[configurationKey],
            var recorded = try? JSONDecoder().decode(TrainingConfiguration.self, from: Data(json.utf8))
        else {
            throw TrainingError.io(path: path, reason: "metadata field '\(configurationKey)' is missing or does not decode")
        }
        recorded.threads = configuration.threads
        recorded.output = configuration.output
        if recorded != configuration {
            throw TrainingError.invalid(
                option: "--resume", reason: "\(path) was written by a run with another configuration; resume with the run's own config.json")
        }
        let n = store.values.count
        for (name, buffer) in [("optimizer.first_moment", store.firstMoment), ("optimizer.second_moment", store.secondMoment)] {
            guard let e = file.entries[name], e.shape == [n] else {
                throw TrainingError.io(path: path, reason: "tensor '\(name)' is missing or not of shape [\(n)]")
            }
            try file.copy(name, into: buffer.pointer)
        }
        if let state = sampleState {
            for (name, _) in state.tables() {
                guard file.entries["samples." + name] != nil else {
                    throw TrainingError.io(path: path, reason: "per-sample table 'samples.\(name)' is missing")
                }
                do { try state.restore(name, values: try file.doubles("samples." + name)) } catch let e as ObjectiveError {
                    throw TrainingError.io(path: path, reason: "samples.\(e.description)")
                }
            }
        }
        return Restored(epoch: try field("epoch"), step: try field("step"), optimizerStep: try field("optimizer_step"))
    }

    /// Copies the optimizer moments of `checkpoint`'s state file into `store`, tensor by tensor:
    /// the source layout is rebuilt from the model configuration in the checkpoint, and a tensor
    /// whose shape differs in `store` (a resized positional table) keeps zero moments. Returns the
    /// source's optimizer step (so that the bias corrections continue). Used to carry the state
    /// across CLIPA's stage boundary.
    public static func carryMoments(fromCheckpoint checkpoint: String, into store: ParameterStore<Float>) throws -> Int {
        guard try SafetensorsFile(path: checkpoint).metadata[CLIPModel<Float>.configurationKey] != nil else {
            throw TrainingError.io(
                path: checkpoint, reason: "has no ClipLab metadata (an OpenCLIP checkpoint, say), so no optimizer state was written beside it; leave out --init-optimizer-state")
        }
        let sourceModel = try CLIPModel<Float>.load(from: checkpoint)
        let source = sourceModel.store.layout
        let statePath = path(forCheckpoint: checkpoint)
        let file = try SafetensorsFile(path: statePath)
        guard let s = file.metadata["optimizer_step"], let step = Int(s) else {
            throw TrainingError.io(path: statePath, reason: "metadata field 'optimizer_step' is missing or not an integer")
        }
        store.firstMoment.pointer.update(repeating: 0, count: store.values.count)
        store.secondMoment.pointer.update(repeating: 0, count: store.values.count)
        for (name, buffer) in [("optimizer.first_moment", store.firstMoment), ("optimizer.second_moment", store.secondMoment)] {
            guard let e = file.entries[name], e.shape == [sourceModel.store.values.count] else {
                throw TrainingError.io(path: statePath, reason: "tensor '\(name)' is missing or not of shape [\(sourceModel.store.values.count)]")
            }
            let all = try file.doubles(name)
            for v in store.layout.views {
                guard let from = source.views.first(where: { $0.name == v.name }), from.shape == v.shape else { continue }
                for i in 0..<v.count { buffer.pointer[v.offset + i] = Float(all[from.offset + i]) }
            }
        }
        return step
    }

    /// The latest epoch N in `directory`/checkpoints with both `epoch_N.safetensors` and its
    /// state file, or nil.
    public static func latestCheckpoint(runDirectory directory: String) -> (epoch: Int, path: String)? {
        let folder = directory + "/checkpoints"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return nil }
        let epochs = names.compactMap { name -> Int? in
            guard name.hasPrefix("epoch_"), name.hasSuffix(".safetensors"), !name.hasSuffix(".state.safetensors") else { return nil }
            return Int(name.dropFirst("epoch_".count).dropLast(".safetensors".count))
        }
        for e in epochs.sorted(by: >) {
            let model = folder + "/epoch_\(e).safetensors"
            if FileManager.default.fileExists(atPath: path(forCheckpoint: model)) { return (e, model) }
        }
        return nil
    }
}
