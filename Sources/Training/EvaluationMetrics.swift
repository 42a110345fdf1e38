// The held-out metrics, as pure functions of embeddings: zero-shot classification with prompt
// ensembles (OpenCLIP's `build_zero_shot_classifier`) and image↔text retrieval recall at k
// (OpenCLIP's `get_clip_metrics`).

import Compute

public enum EvaluationMetrics {
    /// The zero-shot classifier weights: for each class, the mean of its L2-normalised template
    /// embeddings, normalised again. `templateEmbeddings` is (classes × templates, E), class-major.
    public static func classifier(templateEmbeddings: [Double], classes: Int, templates: Int, dimension e: Int) -> [Double] {
        precondition(templateEmbeddings.count == classes * templates * e, "classifier: \(templateEmbeddings.count) values for \(classes)×\(templates)×\(e)")
        var w = [Double](repeating: 0, count: classes * e)
        for c in 0..<classes {
            for t in 0..<templates {
                let row = (c * templates + t) * e
                let n = (0..<e).reduce(0.0) { $0 + templateEmbeddings[row + $1] * templateEmbeddings[row + $1] }.squareRoot()
                for j in 0..<e { w[c * e + j] += templateEmbeddings[row + j] / max(n, 1e-12) }
            }
            let n = (0..<e).reduce(0.0) { $0 + w[c * e + $1] * w[c * e + $1] }.squareRoot()
            for j in 0..<e { w[c * e + j] /= max(n, 1e-12) }
        }
        return w
    }

    /// Top-1 accuracy: the share of images whose highest-scoring class (dot product with the
    /// classifier) is their label. Ties go to the lower class index.
    public static func zeroShotTop1(imageEmbeddings u: [Double], classifier w: [Double], labels: [Int], dimension e: Int) -> Double {
        let n = labels.count, k = w.count / e
        precondition(u.count == n * e, "zeroShotTop1: \(u.count) values for \(n) images of dimension \(e)")
        var scores = [Double](repeating: 0, count: n * k)
        gemm(transB: true, m: n, n: k, k: e, a: u, lda: e, b: w, ldb: e, c: &scores, ldc: k)
        var correct = 0
        for i in 0..<n {
            var best = 0
            for c in 1..<k where scores[i * k + c] > scores[i * k + best] { best = c }
            if best == labels[i] { correct += 1 }
        }
        return Double(correct) / Double(max(n, 1))
    }

    /// Recall at each k in `ks`, both directions, for n matched pairs (image i ↔ text i):
    /// the share of queries whose match ranks among the top k (rank = number of candidates scoring
    /// strictly higher than the match). Returns (imageToText, textToImage), each aligned with `ks`.
    public static func retrievalRecall(imageEmbeddings u: [Double], textEmbeddings v: [Double], dimension e: Int, ks: [Int])
        -> (imageToText: [Double], textToImage: [Double])
    {
        let n = u.count / e
        precondition(v.count == n * e, "retrievalRecall: \(u.count / e) images but \(v.count / e) texts")
        var sim = [Double](repeating: 0, count: n * n)
        gemm(transB: true, m: n, n: n, k: e, a: u, lda: e, b: v, ldb: e, c: &sim, ldc: n)
        var i2t = [Int](repeating: 0, count: ks.count), t2i = [Int](repeating: 0, count: ks.count)
        for q in 0..<n {
            let match = sim[q * n + q]
            var rankI2T = 0, rankT2I = 0
            for c in 0..<n where c != q {
                if sim[q * n + c] > match { rankI2T += 1 }
                if sim[c * n + q] > match { rankT2I += 1 }
            }
            for (j, k) in ks.enumerated() {
                if rankI2T < k { i2t[j] += 1 }
                if rankT2I < k { t2i[j] += 1 }
            }
        }
        return (i2t.map { Double($0) / Double(n) }, t2i.map { Double($0) / Double(n) })
    }
}
