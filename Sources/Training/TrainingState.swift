// What a run needs besides the model's parameters to continue exactly after a stop: the
// optimizer's moments and step count, the epoch and step reached, and the objective's per-sample
// tables (u, and for individual temperatures τ, its Adam moments and the bounds). Written per epoch
// next to the model checkpoint as `epoch_N.state.safetensors` (F32 moments, F64 tables), atomically
// and with each tensor's CRC-32, like the checkpoint (`Safetensors.write`).
// A step checkpoint (`step_S.safetensors`, written every `--save-every-steps` and when a run is
// stopped) also records how far into its epoch the run was and the epoch's running sums (the
// `resume.*` metadata), so the epoch's metrics come out as an unbroken run's.

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
        configuration: TrainingConfiguration, learningRateScale: Double = 1, resume: [String: String] = [:]
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
        var meta = [
            "epoch": "\(epoch)", "step": "\(step)", "optimizer_step": "\(optimizer.step)",
            configurationKey: String(decoding: try enc.encode(configuration), as: UTF8.self),
        ]
        for (k, v) in resume { meta["resume." + k] = v }
        // Only after a rollback (`--on-divergence rollback`), so other state files stay as they were.
        if learningRateScale != 1 { meta["lr_scale"] = "\(learningRateScale)" }
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
        /// Epochs completed.
        var epoch: Int
        /// Global steps completed.
        var step: Int
        var optimizerStep: Int
        /// A step checkpoint's `resume.*` metadata (without the prefix); empty for an epoch checkpoint.
        var resume: [String: String]
        /// The learning-rate factor of rollbacks so far (1 without).
        var learningRateScale: Double = 1
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
        recorded = recorded.withOperationalFields(of: configuration)
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
        var resume: [String: String] = [:]
        for (k, v) in file.metadata where k.hasPrefix("resume.") { resume[String(k.dropFirst("resume.".count))] = v }
        return Restored(epoch: try field("epoch"), step: try field("step"), optimizerStep: try field("optimizer_step"), resume: resume,
                        learningRateScale: file.metadata["lr_scale"].flatMap { Double($0) } ?? 1)
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

    /// A checkpoint a run can continue from: the model file (whose state file sits beside it).
    public struct Resumable: Sendable, Equatable {
        /// `epoch_N.safetensors` or `step_S.safetensors`.
        public let path: String
        /// Epochs completed when it was written.
        public let epoch: Int
        /// Global steps completed when it was written.
        public let step: Int
        /// Whether it was written inside an epoch (a step checkpoint).
        public let insideEpoch: Bool
    }

    /// The checkpoints in `directory`/checkpoints that have their state file, oldest first (by
    /// global step; an epoch checkpoint before a step checkpoint of the same step).
    public static func checkpoints(runDirectory directory: String) -> [Resumable] {
        let folder = directory + "/checkpoints"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
        var found: [Resumable] = []
        for name in names where name.hasSuffix(".safetensors") && !name.hasSuffix(".state.safetensors") {
            let stem = name.dropLast(".safetensors".count)
            let model = folder + "/" + name
            guard stem.hasPrefix("epoch_") || stem.hasPrefix("step_"), FileManager.default.fileExists(atPath: path(forCheckpoint: model)),
                  let meta = try? SafetensorsFile(path: path(forCheckpoint: model)).metadata,
                  let epoch = meta["epoch"].flatMap({ Int($0) }), let step = meta["step"].flatMap({ Int($0) })
            else { continue }
            found.append(Resumable(path: model, epoch: epoch, step: step, insideEpoch: stem.hasPrefix("step_")))
        }
        return found.sorted { ($0.step, $0.insideEpoch ? 1 : 0) < ($1.step, $1.insideEpoch ? 1 : 0) }
    }

    /// The checkpoint the run in `directory` continues from: the one of the most global steps
    /// (epoch or step checkpoint) with its state file, or nil.
    public static func latestCheckpoint(runDirectory directory: String) -> Resumable? {
        checkpoints(runDirectory: directory).last
    }

    /// Removes step checkpoints (and their state files) of `directory` beyond the newest `keep`.
    static func pruneStepCheckpoints(runDirectory directory: String, keep: Int) {
        let steps = checkpoints(runDirectory: directory).filter(\.insideEpoch)
        for old in steps.dropLast(keep) {
            // State file first: a model file without its state is never taken for a checkpoint.
            try? FileManager.default.removeItem(atPath: path(forCheckpoint: old.path))
            try? FileManager.default.removeItem(atPath: old.path)
        }
    }
}

/// An epoch's running sums: the step means of metrics.csv's epoch row are these over the steps.
/// A step checkpoint stores them (`encoded`, every Double as its bit pattern, so nothing rounds),
/// and a run resumed inside the epoch carries on from them.
struct EpochSums: Equatable {
    var loss = 0.0
    var surrogate = 0.0
    var batch = 0.0
    /// Per-step timing and element counts, summed (`StepRecord.timing`).
    var timing: [String: Double] = [:]
    /// A mixture model's routing sums and steps (`MixtureReport.accumulated`).
    var mixture: (sums: [String: Double], steps: Int)?

    init() {}

    static func == (a: EpochSums, b: EpochSums) -> Bool {
        a.encoded == b.encoded
    }

    /// A JSON object: {"loss": "hex", …, "timing": {k: "hex"}, "mixture": {"steps": n, "sums": {k: "hex"}}}.
    var encoded: String {
        func hex(_ v: Double) -> String { String(v.bitPattern, radix: 16) }
        var object: [String: Any] = [
            "loss": hex(loss), "surrogate": hex(surrogate), "batch": hex(batch), "timing": timing.mapValues(hex),
        ]
        if let m = mixture { object["mixture"] = ["steps": m.steps, "sums": m.sums.mapValues(hex)] as [String: Any] }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// Reads `encoded`; nil when it is not such an object.
    init?(encoded text: String) {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else { return nil }
        func value(_ any: Any?) -> Double? { (any as? String).flatMap { UInt64($0, radix: 16) }.map(Double.init(bitPattern:)) }
        func table(_ any: Any?) -> [String: Double]? {
            guard let t = any as? [String: Any] else { return nil }
            var out: [String: Double] = [:]
            for (k, v) in t {
                guard let d = value(v) else { return nil }
                out[k] = d
            }
            return out
        }
        guard let l = value(object["loss"]), let s = value(object["surrogate"]), let b = value(object["batch"]),
              let t = table(object["timing"]) else { return nil }
        (loss, surrogate, batch, timing) = (l, s, b, t)
        if let m = object["mixture"] as? [String: Any] {
            guard let steps = m["steps"] as? Int, let sums = table(m["sums"]) else { return nil }
            mixture = (sums, steps)
        }
    }
}
