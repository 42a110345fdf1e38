// Real `mpirun` jobs of the `clip` executable: every collective at K = 1, 2 and 4 ranks
// (oversubscribed on a 2-core machine), and a dying rank ending the whole job quickly.

import Collective
import Foundation
import Testing

/// Runs `clip` under `mpirun` with the flags `MPILaunch` builds; kills it after `timeout` seconds
/// (a hung job then fails the test instead of stalling the suite). Returns (status, output, seconds).
func runMPI(ranks: Int, _ arguments: [String], timeout: Double = 120) throws -> (status: Int32, output: String, seconds: Double, timedOut: Bool) {
    let clip = try clipExecutable()
    let mpirun = try #require(MPILaunch.mpirunPath(), "mpirun is not installed (scripts/bootstrap.sh installs openmpi-bin)")
    let p = Process()
    p.executableURL = URL(fileURLWithPath: mpirun)
    p.arguments = MPILaunch(ranks: ranks, threadsPerRank: 1).arguments(program: clip.path, programArguments: arguments)
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    let start = Date()
    try p.run()
    let killer = DispatchWorkItem { if p.isRunning { p.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    killer.cancel()
    let seconds = Date().timeIntervalSince(start)
    return (p.terminationStatus, String(decoding: data, as: UTF8.self), seconds, seconds >= timeout)
}

@Suite("mpirun jobs", .serialized)
struct MPITests {
    @Test("Every collective gives the values each rank expects", arguments: [1, 2, 4])
    func collectives(ranks: Int) throws {
        let r = try runMPI(ranks: ranks, ["selftest", "collectives"])
        #expect(r.status == 0, "output: \(r.output)")
        for rank in 0..<ranks { #expect(r.output.contains("rank \(rank)/\(ranks) ok: Open MPI"), "output: \(r.output)") }
    }

    @Test("A rank that dies ends the whole job with a non-zero status, naming the rank, within seconds")
    func rankDeath() throws {
        let r = try runMPI(ranks: 3, ["selftest", "die", "--rank", "1"], timeout: 60)
        #expect(!r.timedOut, "the job hung: \(r.output)")
        #expect(r.status != 0)
        #expect(r.seconds < 30, "took \(r.seconds) s")
        #expect(r.output.contains("rank 1: dying on purpose"), "output: \(r.output)")
        #expect(r.output.contains("],1]"), "mpirun's report names process 1: \(r.output)")
        #expect(!r.output.contains("must not"), "a surviving rank got past the all-reduce: \(r.output)")
    }

    @Test("The launcher's mpirun flags")
    func launchArguments() {
        let plain = MPILaunch(ranks: 2, threadsPerRank: 1, asRoot: false, cores: 2).arguments(program: "clip", programArguments: ["train"])
        #expect(plain == ["-np", "2", "--bind-to", "none", "-x", "OPENBLAS_NUM_THREADS=1", "-x", "CLIPLAB_THREADS=1",
                          "-x", "OMPI_MCA_btl_vader_single_copy_mechanism=none", "clip", "train"])
        let busy = MPILaunch(ranks: 4, threadsPerRank: 1, asRoot: true, cores: 2).arguments(program: "clip", programArguments: [])
        #expect(busy.contains("--oversubscribe") && busy.contains("--allow-run-as-root"))
        let hosts = MPILaunch(ranks: 8, threadsPerRank: 2, hostfile: "hosts.txt", asRoot: false, cores: 2).arguments(program: "clip", programArguments: [])
        #expect(!hosts.contains("--oversubscribe") && hosts.contains("hosts.txt") && hosts.contains("OPENBLAS_NUM_THREADS=2"))
    }
}
