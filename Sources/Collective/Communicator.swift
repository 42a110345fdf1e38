// Moving buffers between the processes of a data-parallel job: the `Communicator` protocol, its
// statistics (every call timed, its elements counted), and the single-process implementation.
// Nothing here knows about models: a communicator sees pointers, counts and element types.

import Foundation

/// The element types a collective moves.
public enum CollectiveElementType: String, Sendable {
    case float32, float64, int32, int64
}

/// A type a collective can move (Float, Double, Int32, Int64).
public protocol CollectiveScalar: Sendable {
    static var collectiveType: CollectiveElementType { get }
    static var zero: Self { get }
    static func + (a: Self, b: Self) -> Self
}
extension Float: CollectiveScalar { public static var collectiveType: CollectiveElementType { .float32 } }
extension Double: CollectiveScalar { public static var collectiveType: CollectiveElementType { .float64 } }
extension Int32: CollectiveScalar { public static var collectiveType: CollectiveElementType { .int32 } }
extension Int64: CollectiveScalar { public static var collectiveType: CollectiveElementType { .int64 } }

/// The kinds of collective, as the statistics name them.
public enum CollectiveKind: String, CaseIterable, Sendable, Codable {
    case barrier, broadcast, allGather = "all_gather", allReduce = "all_reduce", reduceScatter = "reduce_scatter"
    case allReduceAsync = "all_reduce_async"
}

/// What a collective failing means: which call, on which rank, and MPI's message.
public struct CollectiveError: Error, CustomStringConvertible {
    public let call: String
    public let rank: Int
    public let message: String
    public init(call: String, rank: Int, message: String) {
        self.call = call
        self.rank = rank
        self.message = message
    }
    public var description: String { "rank \(rank): \(call) failed: \(message)" }
}

/// Per-kind totals: calls; elements and bytes of each call's per-rank payload n, from which the
/// ring volumes of FastCLIP §7.3 follow: an all-gather's per-rank contribution (moves (K−1)n), a
/// reduce-scatter's per-rank result (moves (K−1)n), an all-reduce's or broadcast's buffer (an
/// all-reduce moves 2(K−1)n/K); seconds blocked in calls; and for non-blocking calls the seconds
/// between start and wait (communication overlapped with computation).
public struct CollectiveTotals: Sendable, Codable, Equatable {
    public var calls = 0
    public var elements = 0
    public var bytes = 0
    public var blockingSeconds = 0.0
    public var overlappedSeconds = 0.0
    public init() {}
}

/// The running statistics of one communicator (thread-safe).
public final class CommunicationStatistics: @unchecked Sendable {
    private let lock = NSLock()
    private var totals: [CollectiveKind: CollectiveTotals] = [:]

    public init() {}

    public func record(_ kind: CollectiveKind, elements: Int, bytes: Int, blocking: Double, overlapped: Double = 0, call: Bool = true) {
        lock.lock()
        defer { lock.unlock() }
        var t = totals[kind] ?? CollectiveTotals()
        if call { t.calls += 1 }
        t.elements += elements
        t.bytes += bytes
        t.blockingSeconds += blocking
        t.overlappedSeconds += overlapped
        totals[kind] = t
    }

    /// A copy of the totals so far, per kind.
    public func snapshot() -> [CollectiveKind: CollectiveTotals] {
        lock.lock()
        defer { lock.unlock() }
        return totals
    }

    public func reset() {
        lock.lock()
        totals = [:]
        lock.unlock()
    }

    /// Seconds blocked in collectives, summed over kinds.
    public var blockingSeconds: Double { snapshot().values.reduce(0) { $0 + $1.blockingSeconds } }
    /// Seconds of non-blocking collectives overlapped with computation.
    public var overlappedSeconds: Double { snapshot().values.reduce(0) { $0 + $1.overlappedSeconds } }
}

/// A started non-blocking collective; `wait` completes it.
public final class PendingCollective: @unchecked Sendable {
    let kind: CollectiveKind
    let elements: Int
    let bytes: Int
    let started: ContinuousClock.Instant
    /// The MPI request (opaque to everything outside the MPI communicator).
    var request: OpaquePointer?
    /// Work done at `wait` by communicators without real non-blocking calls.
    var deferred: (() throws -> Void)?
    var completed = false

    init(kind: CollectiveKind, elements: Int, bytes: Int, request: OpaquePointer? = nil) {
        self.kind = kind
        self.elements = elements
        self.bytes = bytes
        self.request = request
        started = ContinuousClock.now
    }
}

/// The collectives a data-parallel trainer needs. Buffers are raw pointers with counts; every
/// call is collective (all ranks call it in the same order with matching counts), timed, and
/// counted in `statistics`; every failure throws a `CollectiveError` naming the call and rank.
public protocol Communicator: AnyObject, Sendable {
    var rank: Int { get }
    var size: Int { get }
    var statistics: CommunicationStatistics { get }
    /// A short description for logs ("single process", "Open MPI 4.1.4, 2 ranks").
    var summary: String { get }

    func barrier() throws
    /// Copies `count` elements from `root`'s buffer into every rank's.
    func broadcast<T: CollectiveScalar>(_ buffer: UnsafeMutablePointer<T>, count: Int, root: Int) throws
    /// Every rank's `count` elements, concatenated in rank order into `receive` (count·size).
    func allGather<T: CollectiveScalar>(_ send: UnsafePointer<T>, count: Int, into receive: UnsafeMutablePointer<T>) throws
    /// Element-wise sum over ranks, in place.
    func allReduceSum<T: CollectiveScalar>(_ buffer: UnsafeMutablePointer<T>, count: Int) throws
    /// `send` holds size blocks of `countPerRank`; rank r receives the sum over ranks of block r.
    func reduceScatterSum<T: CollectiveScalar>(_ send: UnsafePointer<T>, into receive: UnsafeMutablePointer<T>, countPerRank: Int) throws
    /// Starts an in-place sum over ranks; the buffer must not be touched until `wait`.
    func startAllReduceSum<T: CollectiveScalar>(_ buffer: UnsafeMutablePointer<T>, count: Int) throws -> PendingCollective
    /// Lets a started collective progress without blocking (MPI progresses only inside its calls).
    func poll(_ pending: PendingCollective) throws
    /// Completes a started collective.
    func wait(_ pending: PendingCollective) throws
    /// Ends every process of the job with `code` (a rank that cannot go on must not leave the
    /// others waiting in a collective).
    func abort(code: Int32) -> Never
}

extension Communicator {
    public var isRoot: Bool { rank == 0 }
}

@inlinable func elapsedSeconds(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

/// One process: every collective is a copy or nothing, still timed and counted (with zero
/// elements moved between processes, the counts are those of the call's buffers).
public final class SingleProcessCommunicator: Communicator, @unchecked Sendable {
    public let rank = 0
    public let size = 1
    public let statistics = CommunicationStatistics()
    public var summary: String { "single process" }

    public init() {}

    public func barrier() throws { statistics.record(.barrier, elements: 0, bytes: 0, blocking: 0) }

    public func broadcast<T: CollectiveScalar>(_ buffer: UnsafeMutablePointer<T>, count: Int, root: Int) throws {
        guard root == 0 else { throw CollectiveError(call: "broadcast", rank: 0, message: "root \(root) outside 0..<1") }
        statistics.record(.broadcast, elements: count, bytes: count * MemoryLayout<T>.stride, blocking: 0)
    }

    public func allGather<T: CollectiveScalar>(_ send: UnsafePointer<T>, count: Int, into receive: UnsafeMutablePointer<T>) throws {
        let t0 = ContinuousClock.now
        if UnsafePointer(receive) != send { receive.update(from: send, count: count) }
        statistics.record(.allGather, elements: count, bytes: count * MemoryLayout<T>.stride, blocking: elapsedSeconds(since: t0))
    }

    public func allReduceSum<T: CollectiveScalar>(_ buffer: UnsafeMutablePointer<T>, count: Int) throws {
        statistics.record(.allReduce, elements: count, bytes: count * MemoryLayout<T>.stride, blocking: 0)
    }

    public func reduceScatterSum<T: CollectiveScalar>(_ send: UnsafePointer<T>, into receive: UnsafeMutablePointer<T>, countPerRank: Int) throws {
        let t0 = ContinuousClock.now
        if UnsafePointer(receive) != send { receive.update(from: send, count: countPerRank) }
        statistics.record(.reduceScatter, elements: countPerRank, bytes: countPerRank * MemoryLayout<T>.stride, blocking: elapsedSeconds(since: t0))
    }

    public func startAllReduceSum<T: CollectiveScalar>(_ buffer: UnsafeMutablePointer<T>, count: Int) throws -> PendingCollective {
        PendingCollective(kind: .allReduceAsync, elements: count, bytes: count * MemoryLayout<T>.stride)
    }

    public func poll(_ pending: PendingCollective) throws {}

    public func wait(_ pending: PendingCollective) throws {
        guard !pending.completed else { return }
        pending.completed = true
        statistics.record(pending.kind, elements: pending.elements, bytes: pending.bytes, blocking: 0)
    }

    public func abort(code: Int32) -> Never { exit(code) }
}
