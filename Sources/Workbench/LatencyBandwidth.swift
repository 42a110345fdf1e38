// The latency–bandwidth (Hockney) model of ring collectives, as FastCLIP §7.3 counts them: a
// collective over K ranks takes `steps` message rounds and moves `moved` elements per rank, and
// costs t = steps·α + moved·bytes·β. Fitted by least squares to measured collectives, it projects
// the communication of a training step to more ranks than were measured.

import Foundation

/// A collective whose cost the model knows. The payload n is what `CommunicationStatistics`
/// records: the per-rank send count of an all-gather, the per-rank result of a reduce-scatter,
/// the buffer of an all-reduce.
public enum RingCollective: String, CaseIterable, Sendable, Codable {
    case allGather = "all_gather", reduceScatter = "reduce_scatter", allReduce = "all_reduce"

    /// Message rounds of the ring algorithm: K−1 for an all-gather or a reduce-scatter, 2(K−1)
    /// for an all-reduce (a reduce-scatter then an all-gather).
    public func steps(ranks k: Int) -> Double {
        switch self {
        case .allGather, .reduceScatter: Double(k - 1)
        case .allReduce: Double(2 * (k - 1))
        }
    }

    /// Elements each rank sends for payload n (§7.3): (K−1)·n for an all-gather of n per rank or
    /// a reduce-scatter to n per rank, 2(K−1)·n/K for an all-reduce of n.
    public func moved(elements n: Double, ranks k: Int) -> Double {
        switch self {
        case .allGather, .reduceScatter: Double(k - 1) * n
        case .allReduce: 2 * Double(k - 1) * n / Double(k)
        }
    }
}

/// t = steps·α + moved bytes·β.
public struct LatencyBandwidthModel: Sendable, Hashable {
    /// Seconds per message round (latency).
    public let alpha: Double
    /// Seconds per byte moved by one rank (inverse bandwidth).
    public let beta: Double

    public init(alpha: Double, beta: Double) {
        self.alpha = alpha
        self.beta = beta
    }

    /// Seconds of `kind` with payload `elements` of `bytesPerElement` bytes over `ranks` ranks
    /// (0 with one rank).
    public func seconds(_ kind: RingCollective, elements: Double, ranks: Int, bytesPerElement: Double = 4) -> Double {
        guard ranks > 1 else { return 0 }
        return kind.steps(ranks: ranks) * alpha + kind.moved(elements: elements, ranks: ranks) * bytesPerElement * beta
    }

    /// A measured collective.
    public struct Sample: Sendable, Hashable {
        public let kind: RingCollective
        public let ranks: Int
        public let elements: Double
        public let bytesPerElement: Double
        public let seconds: Double
        public init(kind: RingCollective, ranks: Int, elements: Double, bytesPerElement: Double = 4, seconds: Double) {
            self.kind = kind
            self.ranks = ranks
            self.elements = elements
            self.bytesPerElement = bytesPerElement
            self.seconds = seconds
        }
    }

    /// The α, β ≥ 0 that minimise Σ ((steps·α + bytes·β − t) / t)² over `samples`: relative error,
    /// so microsecond latencies weigh as much as millisecond transfers. Needs two samples that are
    /// not proportional (in steps and bytes); if the unconstrained optimum has a negative
    /// coefficient, that coefficient is 0 and the other is fitted alone.
    public static func fit(_ samples: [Sample]) throws -> LatencyBandwidthModel {
        let rows = samples.filter { $0.ranks > 1 && $0.seconds > 0 && $0.seconds.isFinite }
        guard rows.count >= 2 else {
            throw WorkbenchError.malformed(what: "latency–bandwidth fit", reason: "needs at least two timed collectives over ≥ 2 ranks, got \(rows.count)")
        }
        // Normal equations of the weighted problem: rows (s/t, m/t), target 1.
        var ss = 0.0, sm = 0.0, mm = 0.0, s1 = 0.0, m1 = 0.0
        for r in rows {
            let s = r.kind.steps(ranks: r.ranks) / r.seconds
            let m = r.kind.moved(elements: r.elements, ranks: r.ranks) * r.bytesPerElement / r.seconds
            ss += s * s; sm += s * m; mm += m * m; s1 += s; m1 += m
        }
        let det = ss * mm - sm * sm
        guard det > 1e-12 * ss * mm else {
            throw WorkbenchError.malformed(what: "latency–bandwidth fit", reason: "the timed collectives do not vary in size; time several payloads")
        }
        let alpha = (s1 * mm - m1 * sm) / det
        let beta = (m1 * ss - s1 * sm) / det
        if alpha >= 0 && beta >= 0 { return LatencyBandwidthModel(alpha: alpha, beta: beta) }
        // One coefficient alone: minimise Σ(x·c/t − 1)² → x = Σ(c/t) / Σ(c/t)².
        return alpha < 0 ? LatencyBandwidthModel(alpha: 0, beta: m1 / mm) : LatencyBandwidthModel(alpha: s1 / ss, beta: 0)
    }
}
