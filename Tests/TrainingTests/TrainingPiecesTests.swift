import CLIP
import Data
import Layers
import Objectives
import Foundation
import Testing
import TestSupport
import Training

@Suite("Training building blocks")
struct TrainingPiecesTests {
    @Test("A trained BPE that stopped early round-trips through a checkpoint's metadata at the embedding's size")
    func earlyStoppedTokenizerRoundTrip() throws {
        // Four short captions cannot fill 1,024 ids: the trainer stops early and keeps the size.
        let captions = ["a red circle", "a blue square", "two red circles", "a green star on the left"]
        let trained = try CLIPTokenizer.trainBPE(captions: captions, vocabularySize: 1024)
        #expect(trained.vocabularySize == 1024 && 512 + trained.merges.count + 2 < 1024)
        let metadata = TokenizerMetadata.entries(kind: "trained", tokenizer: trained)
        let loaded = try #require(try TokenizerMetadata.tokenizer(from: metadata, path: "x.safetensors", vocabularySize: 1024) as? CLIPTokenizer)
        #expect(loaded.vocabularySize == 1024 && loaded.endOfText == trained.endOfText)
        for c in captions + ["three green stars"] { #expect(loaded.tokenize(c, contextLength: 16) == trained.tokenize(c, contextLength: 16)) }
        // An embedding too small for the merges is refused, naming the file.
        #expect {
            _ = try TokenizerMetadata.tokenizer(from: metadata, path: "x.safetensors", vocabularySize: 512 + trained.merges.count)
        } throws: { "\($0)".contains("x.safetensors") && "\($0)".contains("only") }
    }

    @Test("The thread-mode rule: batch-split for one process, even shards of ≥ 16 and models from tiny up; errors name --thread-mode")
    func threadModeRule() throws {
        let nano = try CLIPModel<Float>(CLIPConfiguration.preset("nano")!).forwardFlopsPerSample
        let tiny = try CLIPModel<Float>(CLIPConfiguration.preset("tiny")!).forwardFlopsPerSample
        // The threshold lies between the two presets it was measured on.
        #expect(nano < ThreadMode.minimumForwardFlopsPerSample && ThreadMode.minimumForwardFlopsPerSample < tiny)
        #expect(ThreadMode.rule(threads: 2, localBatch: 256, ranks: 1, forwardFlopsPerSample: tiny) == .batchSplit)
        #expect(ThreadMode.rule(threads: 1, localBatch: 256, ranks: 1, forwardFlopsPerSample: tiny) == .gemm)
        #expect(ThreadMode.rule(threads: 2, localBatch: 256, ranks: 1, forwardFlopsPerSample: nano) == .gemm)
        #expect(ThreadMode.rule(threads: 2, localBatch: 256, ranks: 2, forwardFlopsPerSample: tiny) == .gemm)
        #expect(ThreadMode.rule(threads: 2, localBatch: 30, ranks: 1, forwardFlopsPerSample: tiny) == .gemm)  // shards of 15
        #expect(ThreadMode.rule(threads: 4, localBatch: 130, ranks: 1, forwardFlopsPerSample: tiny) == .gemm)  // uneven
        #expect(try ThreadMode.auto.resolved(threads: 2, localBatch: 64, ranks: 1, forwardFlopsPerSample: tiny) == .batchSplit)
        #expect(try ThreadMode.batchSplit.resolved(threads: 2, localBatch: 8, ranks: 1, forwardFlopsPerSample: nano) == .batchSplit)
        #expect(try ThreadMode.batchSplit.resolved(threads: 1, localBatch: 8, ranks: 1, forwardFlopsPerSample: nano) == .gemm)
        #expect(try ThreadMode.gemm.resolved(threads: 2, localBatch: 256, ranks: 1, forwardFlopsPerSample: tiny) == .gemm)
        for (threads, batch, ranks) in [(2, 64, 2), (4, 66, 1)] {
            #expect {
                _ = try ThreadMode.batchSplit.resolved(threads: threads, localBatch: batch, ranks: ranks, forwardFlopsPerSample: tiny)
            } throws: { "\($0)".contains("--thread-mode") }
        }
    }

    @Test("Zero-shot top-1 on hand-made embeddings")
    func zeroShot() {
        // Two classes along the axes, one template each; image 2 is misclassified.
        let w = EvaluationMetrics.classifier(templateEmbeddings: [2, 0, 0, 3], classes: 2, templates: 1, dimension: 2)
        #expect(w == [1, 0, 0, 1])
        let u: [Double] = [0.9, 0.1, 0.2, 0.8, 0.7, 0.3]
        #expect(EvaluationMetrics.zeroShotTop1(imageEmbeddings: u, classifier: w, labels: [0, 1, 1], dimension: 2) == 2.0 / 3)
        // Template averaging: the mean of normalised templates, renormalised.
        let w2 = EvaluationMetrics.classifier(templateEmbeddings: [1, 0, 0, 5], classes: 1, templates: 2, dimension: 2)
        #expect(abs(w2[0] - 0.5.squareRoot()) < 1e-15 && abs(w2[1] - 0.5.squareRoot()) < 1e-15)
    }

    @Test("Retrieval recall equals brute-force ranking")
    func retrieval() {
        let n = 40, e = 6
        let u = randomArray(n * e, seed: 1, stream: "u")
        var v = randomArray(n * e, seed: 1, stream: "v")
        for i in 0..<(n * e) { v[i] = 0.6 * v[i] + u[i] }  // correlated pairs
        let ks = [1, 5, 10]
        let got = EvaluationMetrics.retrievalRecall(imageEmbeddings: u, textEmbeddings: v, dimension: e, ks: ks)
        func sim(_ i: Int, _ j: Int) -> Double { (0..<e).map { u[i * e + $0] * v[j * e + $0] }.reduce(0, +) }
        for (idx, k) in ks.enumerated() {
            var i2t = 0, t2i = 0
            for q in 0..<n {
                let byText = (0..<n).sorted { sim(q, $0) > sim(q, $1) }
                if byText.prefix(k).contains(q) { i2t += 1 }
                let byImage = (0..<n).sorted { sim($0, q) > sim($1, q) }
                if byImage.prefix(k).contains(q) { t2i += 1 }
            }
            #expect(got.imageToText[idx] == Double(i2t) / Double(n))
            #expect(got.textToImage[idx] == Double(t2i) / Double(n))
        }
        #expect(got.imageToText[0] > 0.3)  // correlated pairs are found far above chance (1/40)
    }

    @Test("metrics.csv text is exact and reads back")
    func csv() throws {
        let path = NSTemporaryDirectory() + "metrics-\(UUID().uuidString).csv"
        let m = try MetricsCSV(path: path, columns: ["epoch", "step", "loss", "lr"])
        try m.append(["epoch": 0, "step": 0, "loss": 4.1588830833596715, "lr": 0])
        try m.append(["epoch": 1, "step": 105, "loss": 2.5, "lr": 1e-3])
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == "epoch,step,loss,lr\n0,0,4.1588830833596715,0\n1,105,2.5,0.001\n")
        let back = try MetricsCSV.read(path: path)
        #expect(back.columns == ["epoch", "step", "loss", "lr"])
        #expect(back.rows == [[0, 0, 4.1588830833596715, 0], [1, 105, 2.5, 0.001]])
        #expect(throws: TrainingError.self) { try m.append(["epoch": 2]) }
    }

    @Test("Epoch orders are permutations, reproducible, and differ between epochs")
    func loader() {
        let l = EpochLoader(datasetCount: 1000, batchSize: 64, seed: 7)
        #expect(l.stepsPerEpoch == 15)
        let o0 = l.order(epoch: 0), o1 = l.order(epoch: 1)
        #expect(o0.sorted() == Array(0..<1000) && o1.sorted() == Array(0..<1000))
        #expect(o0 != o1 && o0 == EpochLoader(datasetCount: 1000, batchSize: 64, seed: 7).order(epoch: 0))
        #expect(o0 != EpochLoader(datasetCount: 1000, batchSize: 64, seed: 8).order(epoch: 0))
        let batches = (0..<15).flatMap { Array(l.batch($0, of: o0)) }
        #expect(Set(batches).count == 960 && Array(batches) == Array(o0.prefix(960)))
    }

    @Test("Durations print compactly")
    func durations() {
        #expect(ProgressLine.duration(12.4) == "12s")
        #expect(ProgressLine.duration(185) == "3m05s")
        #expect(ProgressLine.duration(3725) == "1h02m")
    }
}

@Suite("Evaluation in batch-split shards")
struct ShardedEvaluationTests {
    @Test("Embeddings and metrics computed in the trainer's shards or in inference lanes, on their threads, equal one set of buffers'")
    func shardsEqualSingle() throws {
        let model = try CLIPModel<Float>(CLIPConfiguration.preset("nano", vocabularySize: 600)!)
        model.initialize(seed: 3)
        let world = ShapesWorld(ShapesWorld.Configuration(seed: 0, count: 64))
        let tokenizer = try CLIPTokenizer.trainBPE(captions: (0..<64).map { world.caption($0) }, vocabularySize: 600)
        let evaluator = Evaluator(model: model, world: world, tokenizer: tokenizer, examplesPerClass: 6, retrievalCount: 50)
        let split = try BatchSplitStep(
            model: model, threads: 3, batch: 48, memory: .full, objective: ObjectiveConfiguration.preset("openclip")!,
            reduction: .fastclip, datasetCount: 64, epochs: 1, adam: .vit)
        let single = Evaluator.Buffers.single(model.makeActivations(batch: 48, memory: .inference))
        // 50 scenes over 3 shards of 16: parts of 17, 17 and 16, each in chunks of 16.
        let scenes = world.retrievalSet(count: 50).map(\.scene)
        let a = try evaluator.embedScenes(scenes, in: single), b = try evaluator.embedScenes(scenes, in: .lanes(split))
        #expect(a.count == 50 * model.config.embedDimension && b.count == a.count)
        let worst = zip(a, b).map { abs($0 - $1) }.max()!
        #expect(worst < 1e-5, "scene embeddings differ by \(worst)")
        #expect(a.contains { $0 != 0 })
        let inference = Evaluator.Buffers.lanes(InferenceLanes(model: model, threads: 2, batch: 20))
        let c = try evaluator.embedScenes(scenes, in: inference)
        let worstInference = zip(a, c).map { abs($0 - $1) }.max()!
        #expect(worstInference < 1e-5, "scene embeddings in inference lanes differ by \(worstInference)")
        let m1 = try evaluator.run(in: single), m2 = try evaluator.run(in: .lanes(split)), m3 = try evaluator.run(in: inference)
        #expect(Set(m1.keys) == Set(m2.keys) && m1.count == Trainer.evalMetricNames.count + 1)
        for (k, v) in m1 {
            #expect(abs(v - m2[k]!) < 1e-9, "\(k): \(v) vs \(m2[k]!) in the trainer's shards")
            #expect(abs(v - m3[k]!) < 1e-9, "\(k): \(v) vs \(m3[k]!) in inference lanes")
        }
    }
}
