import ArgumentParser
import Collective
import Compute
import Foundation
import Workbench

/// `clip bench collectives --ranks K`: times all-gather, reduce-scatter and all-reduce of Float32
/// payloads from a few hundred elements to millions, and fits to each collective the
/// latency–bandwidth model t = rounds·α + bytes·β of FastCLIP §7.3's ring collectives. The `gradient-reduction`
/// study projects its per-iteration communication to more ranks with this fit.
struct BenchCollectives: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collectives",
        abstract: "Time MPI collectives over payload sizes and fit a latency–bandwidth model.",
        discussion: "Needs --ranks ≥ 2 (re-launches itself under mpirun) or a launch by mpirun. Build with -c release.")

    @Option(help: "Ranks (re-launches itself under mpirun).") var ranks = 2
    @Option(help: "An Open MPI hostfile (with --ranks).") var hostfile: String?
    @Option(help: "Threads per rank (the collectives use one).") var threads = 1
    @Option(help: "Smallest payload, log2 of Float32 elements per rank.") var minLog2 = 8
    @Option(help: "Largest payload, log2 of Float32 elements per rank (≤ 24).") var maxLog2 = 22
    @Option(help: "Timed repetitions per payload (the median is kept).") var repetitions = 9
    @Option(help: "Write the measurements as CSV (kind, ranks, elements, bytes_moved, seconds, model_seconds) to this file.") var csv: String?

    func validate() throws {
        guard (1...1024).contains(ranks) else { throw ValidationError("--ranks must be in 1...1024, got \(ranks)") }
        guard (0...24).contains(minLog2), (0...24).contains(maxLog2), minLog2 < maxLog2 else {
            throw ValidationError("--min-log2 and --max-log2 must satisfy 0 ≤ min < max ≤ 24 (the fit needs two sizes), got \(minLog2) and \(maxLog2)")
        }
        guard (1...1000).contains(repetitions) else { throw ValidationError("--repetitions must be in 1...1000, got \(repetitions)") }
    }

    func run() throws {
        if !MPICommunicator.launchedByMPI {
            guard ranks > 1 else { throw ValidationError("--ranks: collectives need at least 2 ranks") }
            try relaunchUnderMPI(ranks: ranks, threads: threads, threadsArePerRank: true, hostfile: hostfile, command: "clip bench collectives")
            return
        }
        let comm = try makeWorldCommunicator()
        let samples = try abortingJobOnError(comm) { try measure(comm) }
        try (comm as? MPICommunicator)?.finalize()
        guard comm.isRoot else { return }
        // One model per collective: Open MPI picks a different algorithm for each (its reduce-scatter
        // is far slower per byte than its all-reduce on shared memory), so one α, β would fit none.
        // A fit that fails (say, every time 0) still leaves the measurements written, with no model.
        var models: [RingCollective: LatencyBandwidthModel] = [:]
        var failures: [String] = []
        for kind in RingCollective.allCases {
            do { models[kind] = try LatencyBandwidthModel.fit(samples.filter { $0.kind == kind }) } catch { failures.append("\(kind.rawValue): \(error)") }
        }
        var rows: [[Cell]] = []
        for s in samples {
            let moved = s.kind.moved(elements: s.elements, ranks: s.ranks) * 4
            rows.append([.text(s.kind.rawValue), .number(Double(s.ranks)), .number(s.elements), .number(moved), .number(s.seconds),
                         .number(models[s.kind]?.seconds(s.kind, elements: s.elements, ranks: s.ranks) ?? .nan)])
        }
        let text = CSV.render(columns: ["kind", "ranks", "elements", "bytes_moved", "seconds", "model_seconds"], rows: rows)
        if let path = csv {
            try writeAtomically(text, to: path)
            print("wrote \(path)")
        } else {
            print(text, terminator: "")
        }
        print("latency–bandwidth fits over \(comm.size) ranks (t = rounds·α + bytes moved·β):")
        for kind in RingCollective.allCases {
            guard let m = models[kind] else { continue }
            print(String(format: "  %@ α = %.2f µs per round, β = %.3f ns per byte (%.2f GB/s)", kind.rawValue.padding(toLength: 15, withPad: " ", startingAt: 0),
                         m.alpha * 1e6, m.beta * 1e9, m.beta > 0 ? 1e-9 / m.beta : .infinity))
        }
        for f in failures { print("  no fit for " + f) }
    }

    /// Median seconds (the slowest rank's, per repetition) of each collective and payload.
    func measure(_ comm: any Communicator) throws -> [LatencyBandwidthModel.Sample] {
        let k = comm.size
        let largest = 1 << maxLog2
        let send = UnsafeMutablePointer<Float>.allocate(capacity: k * largest)
        let receive = UnsafeMutablePointer<Float>.allocate(capacity: k * largest)
        defer { send.deallocate(); receive.deallocate() }
        for i in 0..<(k * largest) { send[i] = Float(i % 97) * 0.01 }
        var times = [Double](repeating: 0, count: k)
        var samples: [LatencyBandwidthModel.Sample] = []
        for kind in RingCollective.allCases {
            for e in minLog2...maxLog2 {
                let n = 1 << e
                var medianOf: [Double] = []
                for rep in -2..<repetitions {  // two untimed warm-ups
                    try comm.barrier()
                    let start = ContinuousClock.now
                    switch kind {
                    case .allGather: try comm.allGather(UnsafePointer(send), count: n, into: receive)
                    case .reduceScatter: try comm.reduceScatterSum(UnsafePointer(send), into: receive, countPerRank: n)
                    case .allReduce: try comm.allReduceSum(send, count: n)
                    }
                    let d = ContinuousClock.now - start
                    var mine = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
                    try times.withUnsafeMutableBufferPointer { try comm.allGather(&mine, count: 1, into: $0.baseAddress!) }
                    if rep >= 0 { medianOf.append(times.max()!) }
                    // The all-reduce sums in place: keep the payload bounded.
                    if kind == .allReduce { for i in 0..<n { send[i] = Float(i % 97) * 0.01 } }
                }
                medianOf.sort()
                samples.append(.init(kind: kind, ranks: k, elements: Double(n), seconds: medianOf[medianOf.count / 2]))
            }
        }
        return samples
    }
}
