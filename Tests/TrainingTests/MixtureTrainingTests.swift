// Training a mixture-of-experts model (CLIP-UP): from an upcycled checkpoint, resumed, from
// scratch, and the routing columns of steps.csv and metrics.csv.

import CLIP
import Foundation
import Layers
import Testing
import Training

@Suite("Training mixtures of experts", .serialized)
struct MixtureTrainingTests {
    func config(out: String, epochs: Int) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.model = "micro"
        c.data = "shapes:384"
        c.epochs = epochs
        c.batchSize = 64
        c.learningRate = 1e-3
        c.warmupSteps = 4
        c.threads = 2
        c.tokenizer = "trained"
        c.trainedVocabularySize = 1024
        c.evalExamplesPerClass = 5
        c.retrievalCount = 50
        c.evalEvery = 0
        c.output = out
        return c
    }

    func tempDir() -> String { NSTemporaryDirectory() + "cliplab-moe-\(UUID().uuidString)" }

    func withoutTime(_ path: String) throws -> [[String]] {
        let m = try MetricsCSV.read(path: path)
        let keep = m.columns.indices.filter { !m.columns[$0].hasSuffix("seconds") }
        return m.rows.map { row in keep.map { "\(row[$0])" } }
    }

    /// A dense micro run of 2 epochs, upcycled (top-2 of 4 experts in block 1 of both towers) into `moe.safetensors`.
    func upcycledCheckpoint(_ base: String, copyMoments: Bool = false) throws -> (path: String, placement: MoEPlacement) {
        var dense = config(out: base + "/dense", epochs: 2)
        dense.threads = 1
        _ = try Trainer(dense).run()
        let checkpoint = base + "/dense/checkpoints/epoch_2.safetensors"
        let model = try CLIPModel<Float>.load(from: checkpoint)
        let placement = MoEPlacement(MoEConfiguration(experts: 4, topK: 2))
        let moe = try model.upcycled(placement: placement, routerSeed: 1)
        let meta = try SafetensorsFile(path: checkpoint).metadata.filter { $0.key != CLIPModel<Float>.configurationKey && $0.key != "format" }
        try moe.save(to: base + "/moe.safetensors", metadata: meta)
        return (base + "/moe.safetensors", placement)
    }

    @Test("Upcycle → train → resume equals the unbroken run (checkpoint bytes, metrics, routing columns)", arguments: [ThreadMode.gemm, .batchSplit])
    func resume(threadMode: ThreadMode) throws {
        let base = tempDir()
        let (moe, placement) = try upcycledCheckpoint(base)
        let dir = base + "/up"
        var c = config(out: dir, epochs: 3)
        c.initFrom = moe
        c.threadMode = threadMode
        let trainer = try Trainer(c)
        // The run took the checkpoint's mixtures without being told.
        #expect(trainer.model.config.vision.experts == placement && trainer.model.config.text.experts == placement)
        _ = try trainer.run()
        let files = ["epoch_3.safetensors", "epoch_3.state.safetensors", "epoch_2.safetensors", "epoch_2.state.safetensors"]
        let unbroken = try files.map { try Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoints/" + $0)) }
        let metrics = try withoutTime(dir + "/metrics.csv"), steps = try withoutTime(dir + "/steps.csv")
        for f in files { try FileManager.default.removeItem(atPath: dir + "/checkpoints/" + f) }
        let resumed = try Trainer(resuming: dir)
        #expect(resumed.startEpoch == 1)
        _ = try resumed.run()
        for (f, (a, b)) in zip(files, zip(unbroken, try files.map { try Data(contentsOf: URL(fileURLWithPath: dir + "/checkpoints/" + $0)) })) {
            let same = a == b
            #expect(same, "\(threadMode): \(f) differs after resuming")
        }
        #expect(try withoutTime(dir + "/metrics.csv") == metrics)
        #expect(try withoutTime(dir + "/steps.csv") == steps)
        // The trained checkpoint still holds the mixtures and loads as such.
        let trained = try CLIPModel<Float>.load(from: dir + "/checkpoints/epoch_3.safetensors")
        #expect(trained.config.vision.experts == placement)
    }

    @Test("The routing columns: dispatch shares sum to 1, the layers' loads to the kept assignments, the auxiliary loss is positive")
    func routingColumns() throws {
        let dir = tempDir()
        var c = config(out: dir, epochs: 2)
        // From scratch: mixtures in every block of the vision tower, top-1 with raw gates, a tight capacity.
        c.visionExperts = MoEPlacement(MoEConfiguration(experts: 4, topK: 1, capacityFactor: 1, gates: .probability), every: 1, first: 0)
        c.threadMode = .gemm
        _ = try Trainer(c).run()
        let steps = try MetricsCSV.read(path: dir + "/steps.csv"), metrics = try MetricsCSV.read(path: dir + "/metrics.csv")
        func column(_ m: (columns: [String], rows: [[Double]]), _ name: String) -> [Double] {
            let i = m.columns.firstIndex(of: name)!
            return m.rows.map { $0[i] }
        }
        #expect(steps.rows.count == 12 && !steps.columns.contains("moe_dispatch_2"))
        let d0 = column(steps, "moe_dispatch_0"), d1 = column(steps, "moe_dispatch_1")
        for (a, b) in zip(d0, d1) { #expect(abs(a + b - 1) < 1e-12) }
        #expect(column(steps, "moe_aux_loss").allSatisfy { $0 > 0 && $0.isFinite })
        #expect(column(steps, "moe_over_capacity").contains { $0 > 0 }, "capacity factor 1 should drop some tokens")
        // Per epoch: the mean over the two layers of Σ_e load_e equals Σ_n n·dispatch_n.
        let last = metrics.rows.count - 1
        var loads = 0.0
        for layer in ["visual.0", "visual.1"] {
            for e in 0..<4 { loads += column(metrics, "moe.\(layer).load_\(e)")[last] / 2 }
        }
        #expect(abs(loads - column(metrics, "moe_dispatch_1")[last]) < 1e-12)
        #expect(column(metrics, "moe_dispatch_0")[0].isNaN)  // the row before training
    }

    @Test("Mixtures that differ from the checkpoint's, or on a dense checkpoint, are refused naming the option")
    func refusals() throws {
        let base = tempDir()
        let (moe, _) = try upcycledCheckpoint(base)
        var c = config(out: base + "/other", epochs: 1)
        c.initFrom = moe
        c.visionExperts = MoEPlacement(MoEConfiguration(experts: 8, topK: 2))
        #expect { try Trainer(c) } throws: { "\($0)".contains("--experts (vision)") && "\($0)".contains("holds other mixtures") }
        c.initFrom = base + "/dense/checkpoints/epoch_2.safetensors"
        c.visionExperts = MoEPlacement(MoEConfiguration(experts: 4, topK: 2))
        #expect { try Trainer(c) } throws: { "\($0)".contains("is a dense model; upcycle it first") }
    }
}
