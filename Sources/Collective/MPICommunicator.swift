// The Open MPI implementation of `Communicator` over MPI_COMM_WORLD. Errors return codes
// (MPI_ERRORS_RETURN) instead of aborting inside the library, and each is turned into a
// `CollectiveError` naming the call, the rank and MPI's own message.

import CMPI
import Foundation

public final class MPICommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    public let statistics = CommunicationStatistics()
    public let libraryVersion: String
    private var finalized = false

    /// Whether this process was started by an MPI launcher (mpirun, srun with PMIx).
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil || env["PMI_RANK"] != nil
    }

    /// Initialises MPI (once per process) and reads rank and size.
    public init() throws {
        var flag: Int32 = 0
        MPI_Initialized(&flag)
        if flag == 0 {
            var provided: Int32 = 0
            let rc = MPI_Init_thread(nil, nil, Int32(MPI_THREAD_FUNNELED), &provided)
            guard rc == MPI_SUCCESS else { throw CollectiveError(call: "MPI_Init_thread", rank: -1, message: "code \(rc)") }
            // Only the main thread calls MPI (the worker threads compute), so FUNNELED suffices.
            guard provided >= Int32(MPI_THREAD_FUNNELED) else {
                throw CollectiveError(call: "MPI_Init_thread", rank: -1, message: "the library provides thread level \(provided), below MPI_THREAD_FUNNELED")
            }
        }
        var r: Int32 = 0, s: Int32 = 0
        var rc = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN)
        guard rc == MPI_SUCCESS else { throw CollectiveError(call: "MPI_Comm_set_errhandler", rank: -1, message: "code \(rc)") }
        rc = MPI_Comm_rank(MPI_COMM_WORLD, &r)
        guard rc == MPI_SUCCESS else { throw CollectiveError(call: "MPI_Comm_rank", rank: -1, message: "code \(rc)") }
        rc = MPI_Comm_size(MPI_COMM_WORLD, &s)
        guard rc == MPI_SUCCESS else { throw CollectiveError(call: "MPI_Comm_size", rank: Int(r), message: "code \(rc)") }
        rank = Int(r)
        size = Int(s)
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_LIBRARY_VERSION_STRING) + 1)
        var length: Int32 = 0
        MPI_Get_library_version(&buffer, &length)
        let full = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        libraryVersion = full.split(separator: ",").first.map(String.init) ?? full
    }

    public var summary: String { "\(libraryVersion), \(size) rank\(size == 1 ? "" : "s")" }

    /// Ends MPI for this process (after the last collective); called once, by the owner.
    public func finalize() throws {
        guard !finalized else { return }
        finalized = true
        try check(MPI_Finalize(), "MPI_Finalize")
    }

    func check(_ rc: Int32, _ call: String) throws {
        guard rc != MPI_SUCCESS else { return }
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        MPI_Error_string(rc, &buffer, &length)
        let message = String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        throw CollectiveError(call: call, rank: rank, message: "\(message) (code \(rc))")
    }

    static func datatype<T: CollectiveScalar>(_: T.Type) -> MPI_Datatype {
        switch T.collectiveType {
        case .float32: MPI_FLOAT
        case .float64: MPI_DOUBLE
        case .int32: MPI_INT
        case .int64: MPI_INT64_T
        }
    }

    func checkedCount(_ n: Int, _ call: String) throws -> Int32 {
        guard n >= 0, n <= Int(Int32.max) else { throw CollectiveError(call: call, rank: rank, message: "count \(n) outside 0...\(Int32.max)") }
        return Int32(n)
    }

    public func barrier() throws {
        let t0 = ContinuousClock.now
        try check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier")
        statistics.record(.barrier, elements: 0, bytes: 0, blocking: elapsedSeconds(since: t0))
    }

    public func broadcast<T: CollectiveScalar>(_ buffer: UnsafeMutablePointer<T>, count: Int, root: Int) throws {
        guard root >= 0 && root < size else { throw CollectiveError(call: "MPI_Bcast", rank: rank, message: "root \(root) outside 0..<\(size)") }
        let t0 = ContinuousClock.now
        try check(MPI_Bcast(buffer, try checkedCount(count, "MPI_Bcast"), Self.datatype(T.self), Int32(root), MPI_COMM_WORLD), "MPI_Bcast")
        statistics.record(.broadcast, elements: count, bytes: count * MemoryLayout<T>.stride, blocking: elapsedSeconds(since: t0))
    }

    public func allGather<T: CollectiveScalar>(_ send: UnsafePointer<T>, count: Int, into receive: UnsafeMutablePointer<T>) throws {
        let t0 = ContinuousClock.now
        let n = try checkedCount(count, "MPI_Allgather"), type = Self.datatype(T.self)
        try check(MPI_Allgather(send, n, type, receive, n, type, MPI_COMM_WORLD), "MPI_Allgather")
        statistics.record(.allGather, elements: count, bytes: count * MemoryLayout<T>.stride, blocking: elapsedSeconds(since: t0))
    }

    public func allReduceSum<T: CollectiveScalar>(_ buffer: UnsafeMutablePointer<T>, count: Int) throws {
        let t0 = ContinuousClock.now
        try check(MPI_Allreduce(MPI_IN_PLACE, buffer, try checkedCount(count, "MPI_Allreduce"), Self.datatype(T.self), MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce")
        statistics.record(.allReduce, elements: count, bytes: count * MemoryLayout<T>.stride, blocking: elapsedSeconds(since: t0))
    }

    public func reduceScatterSum<T: CollectiveScalar>(_ send: UnsafePointer<T>, into receive: UnsafeMutablePointer<T>, countPerRank: Int) throws {
        let t0 = ContinuousClock.now
        try check(
            MPI_Reduce_scatter_block(send, receive, try checkedCount(countPerRank, "MPI_Reduce_scatter_block"), Self.datatype(T.self), MPI_SUM, MPI_COMM_WORLD),
            "MPI_Reduce_scatter_block")
        statistics.record(.reduceScatter, elements: countPerRank, bytes: countPerRank * MemoryLayout<T>.stride, blocking: elapsedSeconds(since: t0))
    }

    public func startAllReduceSum<T: CollectiveScalar>(_ buffer: UnsafeMutablePointer<T>, count: Int) throws -> PendingCollective {
        let t0 = ContinuousClock.now
        var request: MPI_Request? = MPI_REQUEST_NULL
        try check(
            MPI_Iallreduce(MPI_IN_PLACE, buffer, try checkedCount(count, "MPI_Iallreduce"), Self.datatype(T.self), MPI_SUM, MPI_COMM_WORLD, &request),
            "MPI_Iallreduce")
        let pending = PendingCollective(kind: .allReduceAsync, elements: count, bytes: count * MemoryLayout<T>.stride, request: request)
        statistics.record(.allReduceAsync, elements: 0, bytes: 0, blocking: elapsedSeconds(since: t0), call: false)
        return pending
    }

    public func poll(_ pending: PendingCollective) throws {
        guard !pending.completed else { return }
        let t0 = ContinuousClock.now
        var done: Int32 = 0
        var request = pending.request
        try check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test")
        pending.request = request
        statistics.record(.allReduceAsync, elements: 0, bytes: 0, blocking: elapsedSeconds(since: t0), call: false)
        if done != 0 { finish(pending, blocked: 0) }
    }

    public func wait(_ pending: PendingCollective) throws {
        guard !pending.completed else { return }
        let t0 = ContinuousClock.now
        var request = pending.request
        try check(MPI_Wait(&request, MPI_STATUS_IGNORE), "MPI_Wait")
        pending.request = request
        finish(pending, blocked: elapsedSeconds(since: t0), waitStarted: t0)
    }

    /// Records a completed non-blocking call: the time from its start to the wait (or to the poll
    /// that saw it done) counts as overlapped, the time blocked in the wait as blocking.
    private func finish(_ pending: PendingCollective, blocked: Double, waitStarted: ContinuousClock.Instant? = nil) {
        pending.completed = true
        let end = waitStarted ?? ContinuousClock.now
        let d = end - pending.started
        let overlapped = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
        statistics.record(pending.kind, elements: pending.elements, bytes: pending.bytes, blocking: blocked, overlapped: max(0, overlapped))
    }

    public func abort(code: Int32) -> Never {
        MPI_Abort(MPI_COMM_WORLD, code)
        exit(code)
    }
}

/// The communicator of this process: MPI's when started by an MPI launcher, else a single process.
public func makeWorldCommunicator() throws -> any Communicator {
    MPICommunicator.launchedByMPI ? try MPICommunicator() : SingleProcessCommunicator()
}
