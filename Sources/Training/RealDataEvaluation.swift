// Evaluation on a user's data set (`clip eval --data wds:… | csv:…`): image↔text retrieval over
// its first N pairs, and, given a classes.json, zero-shot top-1 over the samples that carry a class
// (a WebDataset `.cls` member), with a prompt ensemble per class as OpenCLIP builds it.
//
// classes.json: {"classes": ["name", …], "templates": ["a photo of a {}.", …]}; `{}` is replaced
// by the class name, and a class's embedding is the normalised mean of its prompts' embeddings.

import CLIP
import Compute
import Data
import Foundation

/// The zero-shot label set of a data set: class names and prompt templates.
public struct ZeroShotClasses: Sendable, Codable {
    public let classes: [String]
    public let templates: [String]

    public init(classes: [String], templates: [String]) {
        self.classes = classes
        self.templates = templates
    }

    /// Reads classes.json, with errors naming the file and the field.
    public static func load(path: String) throws -> ZeroShotClasses {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainingError.invalid(option: "--zero-shot", reason: "cannot read \(path)")
        }
        let c: ZeroShotClasses
        do { c = try JSONDecoder().decode(ZeroShotClasses.self, from: data) } catch {
            throw TrainingError.invalid(option: "--zero-shot", reason: "\(path): expected {\"classes\": [names], \"templates\": [\"… {} …\"]}: \(error)")
        }
        guard c.classes.count >= 2 else { throw TrainingError.invalid(option: "--zero-shot", reason: "\(path): \"classes\" needs at least 2 names, got \(c.classes.count)") }
        guard !c.templates.isEmpty, c.templates.allSatisfy({ $0.contains("{}") }) else {
            throw TrainingError.invalid(option: "--zero-shot", reason: "\(path): \"templates\" must be a non-empty list of texts that each contain {}")
        }
        return c
    }

    /// The prompts, class-major: classes × templates.
    public var prompts: [String] { classes.flatMap { name in templates.map { $0.replacingOccurrences(of: "{}", with: name) } } }
}

/// Retrieval and zero-shot metrics of a model on a real data set.
public enum RealDataEvaluation {
    /// `retrieval_{i2t,t2i}_r{1,5,10}` over the first `retrievalCount` pairs (all when fewer),
    /// `zeroshot_top1` over every sample with a class when `classes` is given, and `eval_mean`,
    /// their mean. Images get the evaluation transform (shorter side resized, centre crop).
    public static func run(
        model: CLIPModel<Float>, tokenizer: any Tokenizer, data: RealImageTextData, retrievalCount: Int,
        classes: ZeroShotClasses?, batch: Int = 256
    ) throws -> [String: Double] {
        let e = model.config.embedDimension, ctx = model.config.text.contextLength, s = model.config.vision.imageSize
        let activations = model.makeActivations(batch: batch, memory: .inference)
        let pixels = AlignedBuffer<Float>(count: batch * 3 * s * s)
        func embedImages(_ indices: [Int]) throws -> [Double] {
            var out: [Double] = []
            out.reserveCapacity(indices.count * e)
            var start = 0
            while start < indices.count {
                let chunk = Array(indices[start..<min(indices.count, start + batch)])
                let base = UncheckedSendable(pixels.pointer), plane = 3 * s * s
                let failures = FirstError()
                Threads.parallelFor(chunk.count, grain: 4) { r in
                    for k in r {
                        do { try data.loadImage(chunk[k], size: s, into: base.value + k * plane) } catch { failures.record(error) }
                    }
                }
                if let error = failures.error { throw error }
                ImageNormalization.apply(pixels.pointer, batch: chunk.count, size: s)
                out += model.embedImages(pixels.pointer, count: chunk.count, activations: activations).map(Double.init)
                start += chunk.count
            }
            return out
        }
        func embedTexts(_ texts: [String]) -> [Double] {
            let ids = texts.flatMap { tokenizer.tokenize($0, contextLength: ctx) }
            var out: [Double] = []
            var start = 0
            while start < texts.count {
                let n = min(batch, texts.count - start)
                out += ids.withUnsafeBufferPointer { model.embedTexts($0.baseAddress! + start * ctx, count: n, activations: activations) }.map(Double.init)
                start += n
            }
            return out
        }
        var metrics: [String: Double] = [:]
        let n = min(retrievalCount, data.count)
        if n >= 2 {
            let pairs = Array(0..<n)
            let r = EvaluationMetrics.retrievalRecall(
                imageEmbeddings: try embedImages(pairs), textEmbeddings: embedTexts(pairs.map(data.caption)), dimension: e, ks: [1, 5, 10])
            for (i, k) in [1, 5, 10].enumerated() {
                metrics["retrieval_i2t_r\(k)"] = r.imageToText[i]
                metrics["retrieval_t2i_r\(k)"] = r.textToImage[i]
            }
        }
        if let classes {
            let labelled = (0..<data.count).filter { data.labels[$0] != nil }
            guard !labelled.isEmpty else {
                throw TrainingError.invalid(option: "--zero-shot", reason: "no sample of the data set carries a class (a WebDataset .cls member)")
            }
            let labels = labelled.map { data.labels[$0]! }
            if let bad = labels.first(where: { !(0..<classes.classes.count).contains($0) }) {
                throw TrainingError.invalid(option: "--zero-shot", reason: "a sample's class \(bad) is outside the \(classes.classes.count) classes of the classes file")
            }
            let w = EvaluationMetrics.classifier(
                templateEmbeddings: embedTexts(classes.prompts), classes: classes.classes.count, templates: classes.templates.count, dimension: e)
            metrics["zeroshot_top1"] = EvaluationMetrics.zeroShotTop1(imageEmbeddings: try embedImages(labelled), classifier: w, labels: labels, dimension: e)
        }
        if !metrics.isEmpty { metrics["eval_mean"] = metrics.values.reduce(0, +) / Double(metrics.count) }
        return withExtendedLifetime((activations, pixels)) { metrics }
    }

    /// Chance levels of those metrics: k/N for recall at k over N pairs, 1/classes for zero-shot.
    public static func chanceLevels(retrievalCount n: Int, classes: Int?) -> [String: Double] {
        var out: [String: Double] = [:]
        for k in [1, 5, 10] {
            out["retrieval_i2t_r\(k)"] = min(1, Double(k) / Double(max(n, 1)))
            out["retrieval_t2i_r\(k)"] = min(1, Double(k) / Double(max(n, 1)))
        }
        if let c = classes { out["zeroshot_top1"] = 1 / Double(c) }
        return out
    }
}
