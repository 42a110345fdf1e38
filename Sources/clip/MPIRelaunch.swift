import ArgumentParser
import Collective
import Foundation
import Training

/// Runs the current command again under `mpirun` with `ranks` ranks and returns when the job ends;
/// throws its exit status if non-zero. On one machine `threads` is split between the ranks, with a
/// hostfile it is per rank; with `threadsArePerRank` it is per rank either way. `--ranks`,
/// `--hostfile` and `--threads` are replaced by what the launch sets (`--threads` per rank).
func relaunchUnderMPI(ranks: Int, threads: Int, threadsArePerRank: Bool = false, hostfile: String?, command: String) throws {
    var args = Array(CommandLine.arguments.dropFirst())
    var k = 0
    while k < args.count {
        let a = args[k]
        if ["--ranks", "--hostfile", "--threads"].contains(a) {
            args.removeSubrange(k..<min(k + 2, args.count))
        } else if ["--ranks=", "--hostfile=", "--threads="].contains(where: { a.hasPrefix($0) }) {
            args.remove(at: k)
        } else {
            k += 1
        }
    }
    // On this machine the threads are split between the ranks; with a hostfile --threads is per rank.
    let perRank = hostfile == nil && !threadsArePerRank ? max(1, threads / ranks) : threads
    args += ["--threads", "\(perRank)"]
    let launch = MPILaunch(ranks: ranks, threadsPerRank: perRank, hostfile: hostfile)
    let program = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    print("\(command): launching \(ranks) ranks × \(perRank) thread(s) with mpirun "
          + launch.arguments(program: program, programArguments: args).joined(separator: " "))
    fflush(nil)  // all C streams: the launch line before the ranks' output
    let status = try launch.run(program: program, programArguments: args)
    if status != 0 { throw ExitCode(status) }
}

/// The default thread count of a process: $CLIPLAB_THREADS when set (the launcher sets it), else
/// this machine's cores divided by the ranks mpirun started on it, else all cores.
func defaultThreads() -> Int {
    let env = ProcessInfo.processInfo.environment
    if let t = env["CLIPLAB_THREADS"].flatMap(Int.init), t >= 1 { return t }
    let cores = ProcessInfo.processInfo.activeProcessorCount
    if let local = env["OMPI_COMM_WORLD_LOCAL_SIZE"].flatMap(Int.init), local >= 1 { return max(1, cores / local) }
    return cores
}

/// Runs `body`; if it throws on one rank of several, prints the error with the rank and ends the
/// whole job, so no other rank is left waiting in a collective. In one process it rethrows.
func abortingJobOnError<T>(_ comm: any Communicator, _ body: () throws -> T) throws -> T {
    do { return try body() } catch {
        // A stop on request is agreed by every rank, which all end here: nothing to abort.
        let stopped = if case TrainingError.stopped = error { true } else { false }
        if comm.size > 1 && !stopped {
            FileHandle.standardError.write(Data("rank \(comm.rank): \(error)\n".utf8))
            comm.abort(code: 1)
        }
        throw error
    }
}
