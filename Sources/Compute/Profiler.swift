// A per-phase wall-clock profile of the training step (patch/token embedding, attention, MLP, layer
// norms, loss, optimizer, communication). Off by default; when on, each instrumented call adds its
// duration to its phase. Only the thread that drives the step records (kernels' worker threads do
// not), so the totals partition the step's wall time; nested phases are not double-counted because
// layers record only their outermost call.

import Foundation
import Synchronization

/// The phases of a step, as `clip bench train` reports them.
public enum Phase: Int, CaseIterable, Sendable {
    case embedding, attention, mlp, layerNorm, loss, optimizer, communication
    public var name: String {
        switch self {
        case .embedding: "patch/token embedding"
        case .attention: "attention"
        case .mlp: "MLP"
        case .layerNorm: "layer norms"
        case .loss: "loss"
        case .optimizer: "optimizer"
        case .communication: "communication"
        }
    }
}

public final class Profiler: @unchecked Sendable {
    /// The process-wide profiler.
    public static let shared = Profiler()
    private let on = Atomic<Bool>(false)
    private var seconds = [Double](repeating: 0, count: Phase.allCases.count)
    /// The thread that turned recording on: the only one that records (batch-split training runs
    /// one shard on it and the others on threads of their own, which this leaves out).
    private var owner = pthread_self()

    /// Starts (or stops) recording on the calling thread; `reset` clears the totals.
    public func enable(_ value: Bool) {
        if value { owner = pthread_self() }
        on.store(value, ordering: .relaxed)
    }
    public var isEnabled: Bool { on.load(ordering: .relaxed) }
    /// Whether this thread's calls are recorded now.
    @usableFromInline var isRecording: Bool { isEnabled && pthread_equal(pthread_self(), owner) != 0 }
    public func reset() { for i in seconds.indices { seconds[i] = 0 } }

    /// Seconds recorded per phase since the last reset.
    public var totals: [Phase: Double] {
        Dictionary(uniqueKeysWithValues: Phase.allCases.map { ($0, seconds[$0.rawValue]) })
    }

    /// Runs `body`, adding its wall time to `phase` when recording.
    @inlinable
    public func measure<R>(_ phase: Phase, _ body: () throws -> R) rethrows -> R {
        guard isRecording else { return try body() }
        let start = ContinuousClock.now
        defer { add(phase, start) }
        return try body()
    }

    @usableFromInline func add(_ phase: Phase, _ start: ContinuousClock.Instant) {
        let d = ContinuousClock.now - start
        seconds[phase.rawValue] += Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }
}

/// Wall-clock seconds since `start`.
@inlinable public func elapsedSeconds(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
