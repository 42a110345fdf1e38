// CLIPA's two-stage training: a run stopped at the stage boundary and resumed gives the numbers of
// an unbroken run, the combined metrics continue across the boundary, and bad token-reduction
// options are refused with the option named.

import CLIP
import Foundation
import Testing
import TokenReduction
import Training

@Suite("Staged training (CLIPA)", .serialized)
struct StagedTrainingTests {
    func config(out: String, image: String?, text: String?, carry: Bool) -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.model = "nano"
        c.data = "shapes:256"
        c.epochs = 2
        c.batchSize = 32
        c.learningRate = 2e-3
        c.warmupSteps = 4
        c.threads = 1
        c.tokenizer = "trained"
        c.trainedVocabularySize = 600
        c.evalExamplesPerClass = 10
        c.retrievalCount = 100
        c.imageReduction = image
        c.textReduction = text
        c.textLength = 8
        c.output = out
        var f = FinetuneStage(epochs: 1, learningRate: 2e-4, warmupSteps: 2)
        f.carryOptimizerState = carry
        c.finetune = f
        return c
    }

    func tempDir() -> String { NSTemporaryDirectory() + "cliplab-staged-\(UUID().uuidString)" }

    /// The cells of a metrics file as text, without its wall-clock columns.
    func cells(_ path: String) throws -> (columns: [String], rows: [[String]]) {
        let m = try MetricsCSV.read(path: path)
        let keep = m.columns.indices.filter { !m.columns[$0].hasSuffix("seconds") }
        return (keep.map { m.columns[$0] }, m.rows.map { row in keep.map { "\(row[$0])" } })
    }

    @Test("Stopping at the stage boundary and resuming gives an unbroken run's numbers", arguments: [
        ("random:0.5", "syntax", false), ("resize:8", "block", true),
    ])
    func resumeAcrossTheBoundary(image: String, text: String, carry: Bool) throws {
        let a = tempDir(), b = tempDir()
        _ = try StagedTraining.run(config(out: a, image: image, text: text, carry: carry))
        // b: the first stage alone (as if stopped after it), then a resumed staged run.
        let cb = config(out: b, image: image, text: text, carry: carry)
        let stages = try StagedTraining.stageConfigurations(cb)
        _ = try Trainer(stages[0]).run()
        var said: [String] = []
        _ = try StagedTraining.run(cb, resume: true, announce: { said.append($0) })
        #expect(said.first?.contains("finished earlier") == true, "\(said)")
        let ma = try cells(a + "/metrics.csv"), mb = try cells(b + "/metrics.csv")
        #expect(ma.rows.count == 4 && ma.rows == mb.rows)
        let fa = try Data(contentsOf: URL(fileURLWithPath: a + "/finetune/checkpoints/epoch_1.safetensors"))
        let fb = try Data(contentsOf: URL(fileURLWithPath: b + "/finetune/checkpoints/epoch_1.safetensors"))
        let same = fa == fb
        #expect(same, "the fine-tuned checkpoints are bit-identical")
        // The fine-tuning's tables are the full model's: 16 px (4×4 + 1) and the preset's 16 tokens.
        let tuned = try CLIPModel<Float>.load(from: a + "/finetune/checkpoints/epoch_1.safetensors")
        #expect(tuned.config.vision.imageSize == 16 && tuned.config.text.contextLength == 16)
        let pre = try CLIPModel<Float>.load(from: a + "/pretrain/checkpoints/epoch_2.safetensors")
        #expect(pre.config.text.contextLength == 8)
        #expect(pre.config.vision.imageSize == (image.hasPrefix("resize") ? 8 : 16))
    }

    @Test("The combined metrics continue epochs, samples and compute across the stages")
    func combinedMetrics() throws {
        let dir = tempDir()
        _ = try StagedTraining.run(config(out: dir, image: "random:0.75", text: nil, carry: false))
        let m = try MetricsCSV.read(path: dir + "/metrics.csv")
        func column(_ name: String) -> [Double] { let i = m.columns.firstIndex(of: name)!; return m.rows.map { $0[i] } }
        #expect(column("stage") == [1, 1, 1, 2])
        #expect(column("epoch") == [0, 1, 2, 3])
        #expect(column("samples_seen") == [0, 256, 512, 768])
        let gmacs = column("gmacs_per_sample"), compute = column("compute_gmacs")
        // Masking 75% of the patches makes the first stage's samples cheaper than the full ones.
        #expect(gmacs[1] < gmacs[3])
        let v = try #require(CLIPConfiguration.preset("nano", vocabularySize: 600)?.vision)
        let t = try #require(CLIPConfiguration.preset("nano", vocabularySize: 600)?.text)
        #expect(abs(gmacs[1] - (ComputeAccounting.imageMACs(v, keptPatches: 4) + ComputeAccounting.textMACs(t, length: 8)) / 1e9) < 1e-12)
        #expect(abs(gmacs[3] - (ComputeAccounting.imageMACs(v) + ComputeAccounting.textMACs(t)) / 1e9) < 1e-12)
        #expect(abs(compute[3] - (512 * gmacs[1] + 256 * gmacs[3])) < 1e-9)
        #expect(FileManager.default.fileExists(atPath: dir + "/pretrain/log.txt"))
        #expect(FileManager.default.fileExists(atPath: dir + "/finetune/log.txt"))
        let log = try String(contentsOfFile: dir + "/finetune/log.txt", encoding: .utf8)
        #expect(log.contains("initialised from") && log.contains("positional_embedding"))
    }

    @Test("Token-reduction options are checked, naming the option")
    func validation() {
        func message(_ edit: (inout TrainingConfiguration) -> Void) -> String {
            var c = config(out: tempDir(), image: nil, text: nil, carry: false)
            edit(&c)
            do {
                try c.validate()
                return ""
            } catch { return "\(error)" }
        }
        #expect(message { $0.imageReduction = "random:1.2" }.contains("--image-reduction"))
        #expect(message { $0.imageReduction = "resize:10" }.contains("multiple of the patch size 4"))
        #expect(message { $0.imageReduction = "resize:32" }.contains("at most the model's 16 px"))
        #expect(message { $0.imageReduction = "grid:3" }.contains("does not divide"))
        #expect(message { $0.imageReduction = "block:0.3" }.contains("rectangle"))
        #expect(message { $0.textReduction = "nouns" }.contains("--text-reduction"))
        #expect(message { $0.textLength = 1 }.contains("--text-length"))
        let finetune = message { $0.finetune!.learningRate = 0 }
        #expect(finetune.contains("--finetune-lr"))
        #expect(message { _ in }.isEmpty)
    }

    @Test("Carrying the optimizer: same-shaped tensors keep their moments, resized tables start at zero; the tokenizer is the checkpoint's")
    func carriedState() throws {
        let dir = tempDir()
        var c = config(out: dir, image: "resize:8", text: nil, carry: true)
        c.finetune?.data = "shapes:64"  // a subset: a BPE trained on it would differ from the pre-training's
        let stages = try StagedTraining.stageConfigurations(c)
        _ = try Trainer(stages[0]).run()
        let tune = try Trainer(stages[1])
        let store = tune.model.store
        let state = try SafetensorsFile(path: dir + "/pretrain/checkpoints/epoch_2.state.safetensors")
        let source = try CLIPModel<Float>.load(from: dir + "/pretrain/checkpoints/epoch_2.safetensors")
        let moments = try state.doubles("optimizer.first_moment")
        for name in ["visual.conv1.weight", "token_embedding.weight", "visual.positional_embedding", "positional_embedding"] {
            let v = store.view(name), from = source.store.view(name)
            let carried = (0..<v.count).map { Double(store.firstMoment.pointer[v.offset + $0]) }
            if from.shape == v.shape {
                #expect(carried == (0..<v.count).map { Double(Float(moments[from.offset + $0])) }, "\(name) carried")
                #expect(carried.contains { $0 != 0 })
            } else {
                #expect(carried.allSatisfy { $0 == 0 }, "\(name) was resized: its moments start at zero")
            }
        }
        #expect(store.view("visual.positional_embedding").shape != source.store.view("visual.positional_embedding").shape)
        // The fine-tuning tokenizes with the pre-training's BPE (read from the checkpoint).
        #expect(tune.tokenizer.vocabularySize == 600)
        #expect(tune.tokenizer.encode("a pair of striped cyan hexagons") == (try Trainer(stages[0], resume: true)).tokenizer.encode("a pair of striped cyan hexagons"))
    }

    @Test("A staged run refuses a directory holding one unless resumed; a mask keeping every patch is no mask")
    func refusalsAndFullMasks() throws {
        let dir = tempDir()
        _ = try StagedTraining.run(config(out: dir, image: "random:0", text: nil, carry: false))
        do {
            _ = try StagedTraining.run(config(out: dir, image: "random:0", text: nil, carry: false))
            Issue.record("reused a staged run's directory without --resume")
        } catch {
            #expect("\(error)".contains("--resume \(dir)"), "\(error)")
        }
        // Second-stage options are checked before the first stage runs, under their own names.
        var c = config(out: tempDir(), image: nil, text: nil, carry: false)
        c.finetune?.imageReduction = "grid:3"
        #expect(throws: TrainingError.self) { try c.validate() }
        do { try c.validate() } catch { #expect("\(error)".contains("--finetune-image-reduction"), "\(error)") }
        c.finetune?.imageReduction = nil
        c.finetune?.data = "shapes:16"  // fewer pairs than the batch of 32
        do {
            try c.validate()
            Issue.record("accepted a fine-tuning data set smaller than its batch")
        } catch { #expect("\(error)".contains("--finetune-batch-size") || "\(error)".contains("--finetune-data"), "\(error)") }
    }
}
