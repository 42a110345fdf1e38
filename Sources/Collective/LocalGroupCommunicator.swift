// K ranks as K threads of one process, with the collectives done through shared memory: for
// testing distributed code against single-process references in one process (in Double, to
// rounding), and for simulating K workers without mpirun.

import Foundation

/// What the K threads of a group share: a reusable barrier and each rank's posted buffer.
public final class LocalGroup: @unchecked Sendable {
    public let size: Int
    let condition = NSCondition()
    var arrived = 0
    var generation = 0
    /// Set when a rank's thread failed: the others leave their barriers with an error instead of
    /// waiting forever.
    var failed = false
    /// Each rank's posted buffer, one slot per rank (raw storage: threads write distinct slots).
    let posted: UnsafeMutablePointer<UnsafeRawPointer?>

    public init(size: Int) {
        precondition(size >= 1, "LocalGroup: size must be ≥ 1")
        self.size = size
        posted = .allocate(capacity: size)
        posted.initialize(repeating: nil, count: size)
    }

    deinit { posted.deallocate() }

    /// The communicators of the group's ranks, one per thread.
    public func communicators() -> [LocalGroupCommunicator] { (0..<size).map { LocalGroupCommunicator(group: self, rank: $0) } }

    /// Runs `body(rank, communicator)` on K threads at once and waits for all; rethrows the first
    /// error. `communicators` (this group's, one per rank, e.g. held by objectives across calls)
    /// are used when given, else new ones. With `rootOnCallingThread`, rank 0 runs on the calling
    /// thread (one thread fewer to start, and rank 0 keeps the caller's thread-bound state, such
    /// as the profiler's recording thread).
    public func run(
        communicators given: [LocalGroupCommunicator]? = nil, rootOnCallingThread: Bool = false,
        _ body: @escaping @Sendable (Int, LocalGroupCommunicator) throws -> Void
    ) throws {
        let comms = given ?? communicators()
        precondition(comms.count == size && comms.enumerated().allSatisfy { $0.element.rank == $0.offset && $0.element.group === self },
                     "LocalGroup.run: the communicators must be this group's, in rank order")
        let errors = ErrorBox()
        let done = DispatchGroup()
        for r in (rootOnCallingThread ? 1 : 0)..<size {
            done.enter()
            let comm = comms[r]
            let thread = Thread {
                do { try body(r, comm) } catch {
                    errors.set(error)
                    self.fail()
                }
                done.leave()
            }
            thread.stackSize = 16 << 20
            thread.start()
        }
        if rootOnCallingThread {
            do { try body(0, comms[0]) } catch {
                errors.set(error)
                fail()
            }
        }
        done.wait()
        if let e = errors.error { throw e }
    }

    func fail() {
        condition.lock()
        failed = true
        condition.broadcast()
        condition.unlock()
    }

    func barrier(rank: Int) throws {
        condition.lock()
        defer { condition.unlock() }
        let g = generation
        arrived += 1
        if arrived == size {
            arrived = 0
            generation += 1
            condition.broadcast()
        } else {
            while generation == g && !failed { condition.wait() }
        }
        if failed { throw CollectiveError(call: "barrier", rank: rank, message: "another rank of the group failed") }
    }
}

final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var error: Error?
    func set(_ e: Error) {
        lock.lock()
        if error == nil { error = e }
        lock.unlock()
    }
}

public final class LocalGroupCommunicator: Communicator, @unchecked Sendable {
    public let group: LocalGroup
    public let rank: Int
    public var size: Int { group.size }
    public let statistics = CommunicationStatistics()
    public var summary: String { "\(size) ranks as threads of one process" }

    init(group: LocalGroup, rank: Int) {
        self.group = group
        self.rank = rank
    }

    /// Posts `pointer`, waits for every rank, runs `read` (which may read every rank's post),
    /// then waits again so no rank changes its buffer while another still reads it.
    private func exchange(_ pointer: UnsafeRawPointer, _ read: ([UnsafeRawPointer]) -> Void) throws {
        group.posted[rank] = pointer
        try group.barrier(rank: rank)
        read((0..<size).map { group.posted[$0]! })
        try group.barrier(rank: rank)
    }

    public func barrier() throws {
        try group.barrier(rank: rank)
        statistics.record(.barrier, elements: 0, bytes: 0, blocking: 0)
    }

    public func broadcast<T: CollectiveScalar>(_ buffer: UnsafeMutablePointer<T>, count: Int, root: Int) throws {
        var copy = [T](repeating: T.zero, count: count)
        try exchange(UnsafeRawPointer(buffer)) { posts in
            let src = posts[root].assumingMemoryBound(to: T.self)
            for i in 0..<count { copy[i] = src[i] }
        }
        for i in 0..<count { buffer[i] = copy[i] }
        statistics.record(.broadcast, elements: count, bytes: count * MemoryLayout<T>.stride, blocking: 0)
    }

    public func allGather<T: CollectiveScalar>(_ send: UnsafePointer<T>, count: Int, into receive: UnsafeMutablePointer<T>) throws {
        try exchange(UnsafeRawPointer(send)) { posts in
            for (q, p) in posts.enumerated() {
                let src = p.assumingMemoryBound(to: T.self)
                for i in 0..<count { receive[q * count + i] = src[i] }
            }
        }
        statistics.record(.allGather, elements: count, bytes: count * MemoryLayout<T>.stride, blocking: 0)
    }

    /// Sums in rank order (0, 1, …), the same order on every rank, so all ranks get equal bits.
    public func allReduceSum<T: CollectiveScalar>(_ buffer: UnsafeMutablePointer<T>, count: Int) throws {
        var sum = [T](repeating: T.zero, count: count)
        try exchange(UnsafeRawPointer(buffer)) { posts in
            for p in posts {
                let src = p.assumingMemoryBound(to: T.self)
                for i in 0..<count { sum[i] = sum[i] + src[i] }
            }
        }
        for i in 0..<count { buffer[i] = sum[i] }
        statistics.record(.allReduce, elements: count, bytes: count * MemoryLayout<T>.stride, blocking: 0)
    }

    public func reduceScatterSum<T: CollectiveScalar>(_ send: UnsafePointer<T>, into receive: UnsafeMutablePointer<T>, countPerRank: Int) throws {
        var sum = [T](repeating: T.zero, count: countPerRank)
        let offset = rank * countPerRank
        try exchange(UnsafeRawPointer(send)) { posts in
            for p in posts {
                let src = p.assumingMemoryBound(to: T.self) + offset
                for i in 0..<countPerRank { sum[i] = sum[i] + src[i] }
            }
        }
        for i in 0..<countPerRank { receive[i] = sum[i] }
        statistics.record(.reduceScatter, elements: countPerRank, bytes: countPerRank * MemoryLayout<T>.stride, blocking: 0)
    }

    /// Deferred: the sum happens in `wait` (all ranks wait in the same order).
    public func startAllReduceSum<T: CollectiveScalar>(_ buffer: UnsafeMutablePointer<T>, count: Int) throws -> PendingCollective {
        let pending = PendingCollective(kind: .allReduceAsync, elements: count, bytes: count * MemoryLayout<T>.stride)
        pending.deferred = { try self.allReduceSum(buffer, count: count) }
        return pending
    }

    public func poll(_ pending: PendingCollective) throws {}

    public func wait(_ pending: PendingCollective) throws {
        guard !pending.completed else { return }
        pending.completed = true
        try pending.deferred?()
    }

    public func abort(code: Int32) -> Never { exit(code) }
}
