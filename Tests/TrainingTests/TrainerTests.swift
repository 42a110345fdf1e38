import CLIP
import Foundation
import Testing
import Training

@Suite("Trainer", .serialized)
struct TrainerTests {
    func config(out: String, seed: UInt64 = 0, epochs: Int, count: Int, batch: Int) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.model = "nano"
        c.data = "shapes:\(count)"
        c.epochs = epochs
        c.batchSize = batch
        c.learningRate = 2e-3
        c.warmupSteps = 20
        c.seed = seed
        c.threads = 2
        c.tokenizer = "trained"
        c.trainedVocabularySize = 1024
        c.evalExamplesPerClass = 20
        c.retrievalCount = 200
        c.output = out
        return c
    }

    func tempDir() -> String { NSTemporaryDirectory() + "cliplab-train-\(UUID().uuidString)" }

    /// metrics.csv without its wall-clock column.
    func metricsWithoutTime(_ dir: String) throws -> [[Double]] {
        let m = try MetricsCSV.read(path: dir + "/metrics.csv")
        let t = try #require(m.columns.firstIndex(of: "seconds"))
        return m.rows.map { row in row.enumerated().filter { $0.offset != t }.map(\.element) }
    }

    @Test("The same seed gives identical metrics.csv (but for wall-clock seconds) and identical checkpoints")
    func determinism() throws {
        let a = tempDir(), b = tempDir(), c = tempDir()
        for (dir, seed) in [(a, UInt64(1)), (b, 1), (c, 2)] {
            _ = try Trainer(config(out: dir, seed: seed, epochs: 2, count: 512, batch: 64)).run()
        }
        let ma = try metricsWithoutTime(a), mb = try metricsWithoutTime(b), mc = try metricsWithoutTime(c)
        #expect(ma.count == 3)
        // NaN ≠ NaN, so compare the text of the cells.
        #expect(ma.map { $0.map { "\($0)" } } == mb.map { $0.map { "\($0)" } })
        #expect(ma.map { $0.map { "\($0)" } } != mc.map { $0.map { "\($0)" } })
        let ca = try Data(contentsOf: URL(fileURLWithPath: a + "/checkpoints/epoch_2.safetensors"))
        let cb = try Data(contentsOf: URL(fileURLWithPath: b + "/checkpoints/epoch_2.safetensors"))
        #expect(ca == cb)
        for f in ["config.json", "log.txt", "metrics.csv", "checkpoints/epoch_1.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: a + "/" + f), "missing \(f)")
        }
    }

    @Test("A few hundred nano steps lower the loss and lift held-out accuracy clearly above chance")
    func learns() throws {
        let dir = tempDir()
        let trainer = try Trainer(config(out: dir, epochs: 8, count: 4096, batch: 128))  // 256 steps
        let summary = try trainer.run()
        #expect(summary.steps == 256)
        let m = try MetricsCSV.read(path: dir + "/metrics.csv")
        func column(_ name: String) throws -> [Double] {
            let i = try #require(m.columns.firstIndex(of: name))
            return m.rows.map { $0[i] }
        }
        let loss = try column("loss"), mean = try column("eval_mean")
        let chance = trainer.chanceLevels
        // Training loss falls (ln 128 = 4.85 at chance) and the held-out mean rises well past chance.
        #expect(loss.last! < loss[1] - 0.3, "loss per epoch \(loss)")
        #expect(mean.last! > chance["eval_mean"]! + 0.08, "eval_mean per epoch \(mean), chance \(chance["eval_mean"]!)")
        let zeroShot = try ["shape", "colour", "count", "position"].map { try column("zeroshot_\($0)_top1").last! }
        let zeroShotChance = ["shape", "colour", "count", "position"].map { chance["zeroshot_\($0)_top1"]! }
        let lift = zip(zeroShot, zeroShotChance).map { $0 - $1 }.reduce(0, +) / 4
        #expect(lift > 0.05, "zero-shot top-1 \(zeroShot) vs chance \(zeroShotChance)")
        // The checkpoint reloads and evaluates to the same numbers as the last metrics row.
        let (model, tokenizer) = try (CLIPModel<Float>.load(from: dir + "/checkpoints/epoch_8.safetensors"), trainer.tokenizer)
        let again = try Evaluator(model: model, world: trainer.world, tokenizer: tokenizer, batch: 128).run(examplesPerClass: 20, retrievalCount: 200)
        #expect(abs(again["eval_mean"]! - mean.last!) < 1e-9)
    }

    @Test("Invalid options are refused with the option's name")
    func validation() {
        var c = config(out: tempDir(), epochs: 1, count: 100, batch: 8)
        c.batchSize = 1
        #expect(throws: TrainingError.self) { try c.validate() }
        do { try c.validate() } catch { #expect("\(error)".contains("--batch-size")) }
        c = config(out: tempDir(), epochs: 1, count: 100, batch: 8)
        c.data = "imagenet"
        do { try c.validate(); Issue.record("accepted --data imagenet") } catch { #expect("\(error)".contains("--data")) }
        c = config(out: tempDir(), epochs: 1, count: 100, batch: 8)
        c.model = "huge"
        do { try c.validate(); Issue.record("accepted --model huge") } catch { #expect("\(error)".contains("nano, tiny, small")) }
    }
}
