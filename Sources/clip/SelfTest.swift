import ArgumentParser
import Collective
import Foundation

/// `clip selftest …`: checks that run under `mpirun` (the test suite launches them): every
/// collective against values each rank can compute by itself, and the death of one rank.
struct SelfTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selftest",
        abstract: "Distributed self-checks, run under mpirun (mpirun -np K clip selftest collectives).",
        subcommands: [SelfTestCollectives.self, SelfTestDie.self])
}

struct SelfTestCollectives: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collectives",
        abstract: "Runs each collective on known values; prints one line per rank and exits 1 on any mismatch.")

    func run() throws {
        let comm = try makeWorldCommunicator()
        try abortingJobOnError(comm) { try check(comm) }
    }

    func check(_ comm: any Communicator) throws {
        let r = comm.rank, k = comm.size
        var failures: [String] = []
        func expect(_ ok: Bool, _ what: String) { if !ok { failures.append(what) } }

        // broadcast: rank 0's values reach everyone.
        var b: [Double] = (0..<5).map { r == 0 ? Double($0) + 0.5 : -1 }
        try b.withUnsafeMutableBufferPointer { try comm.broadcast($0.baseAddress!, count: 5, root: 0) }
        expect(b == [0.5, 1.5, 2.5, 3.5, 4.5], "broadcast \(b)")
        // all-gather: rank q contributes [q, q+0.25, q+0.5] in rank order.
        let mine: [Float] = [Float(r), Float(r) + 0.25, Float(r) + 0.5]
        var all = [Float](repeating: -1, count: 3 * k)
        try mine.withUnsafeBufferPointer { s in try all.withUnsafeMutableBufferPointer { try comm.allGather(s.baseAddress!, count: 3, into: $0.baseAddress!) } }
        var wantAll: [Float] = []
        for q in 0..<k { wantAll += [Float(q), Float(q) + 0.25, Float(q) + 0.5] }
        expect(all == wantAll, "all-gather \(all)")
        // all-reduce: Σ_q (q+1)·i over ranks = i·K(K+1)/2 (Float and Int64).
        var sum: [Float] = (0..<7).map { Float((r + 1) * $0) }
        try sum.withUnsafeMutableBufferPointer { try comm.allReduceSum($0.baseAddress!, count: 7) }
        expect(sum == (0..<7).map { Float($0 * k * (k + 1) / 2) }, "all-reduce \(sum)")
        var ids: [Int64] = [Int64(r), 1]
        try ids.withUnsafeMutableBufferPointer { try comm.allReduceSum($0.baseAddress!, count: 2) }
        expect(ids == [Int64(k * (k - 1) / 2), Int64(k)], "all-reduce Int64 \(ids)")
        // reduce-scatter: block q of rank p holds p + 10q (2 elements); rank r gets Σ_p (p + 10r).
        let send: [Double] = (0..<k).flatMap { q in [Double(r + 10 * q), Double(r + 10 * q)] }
        var got = [Double](repeating: -1, count: 2)
        try send.withUnsafeBufferPointer { s in try got.withUnsafeMutableBufferPointer { try comm.reduceScatterSum(s.baseAddress!, into: $0.baseAddress!, countPerRank: 2) } }
        let want = Double(k * (k - 1) / 2 + 10 * r * k)
        expect(got == [want, want], "reduce-scatter \(got), expected \(want)")
        // Non-blocking all-reduce, polled, then waited.
        var async: [Double] = (0..<1000).map { Double(r) + Double($0) }
        try async.withUnsafeMutableBufferPointer { p in
            let pending = try comm.startAllReduceSum(p.baseAddress!, count: 1000)
            try comm.poll(pending)
            try comm.wait(pending)
        }
        expect(async == (0..<1000).map { Double(k * (k - 1) / 2) + Double(k * $0) }, "non-blocking all-reduce")
        try comm.barrier()
        let stats = comm.statistics.snapshot()
        expect(stats[.allReduce]?.calls == 2 && stats[.allGather]?.elements == 3 && stats[.allReduceAsync]?.calls == 1, "statistics \(stats)")
        if failures.isEmpty {
            print("rank \(r)/\(k) ok: \(comm.summary)")
        } else {
            print("rank \(r)/\(k) FAILED: " + failures.joined(separator: "; "))
        }
        try (comm as? MPICommunicator)?.finalize()
        if !failures.isEmpty { throw ExitCode(1) }
    }
}

struct SelfTestDie: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "die",
        abstract: "Rank --rank exits with status 3 while the others wait in an all-reduce: mpirun must end the job.")

    @Option(help: "The rank that dies.") var rank = 1

    func run() throws {
        let comm = try makeWorldCommunicator()
        try comm.barrier()
        if comm.rank == rank {
            FileHandle.standardError.write(Data("rank \(rank): dying on purpose\n".utf8))
            Foundation.exit(3)
        }
        var x: [Float] = [1, 2, 3]
        try x.withUnsafeMutableBufferPointer { try comm.allReduceSum($0.baseAddress!, count: 3) }
        print("rank \(comm.rank): the all-reduce returned, which it must not")
    }
}
