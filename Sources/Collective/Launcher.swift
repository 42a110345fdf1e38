// Building the `mpirun` command line for K ranks of this program (FastCLIP-style data parallelism
// on one machine or several): the flags a user would otherwise have to know.

import Foundation

public struct MPILaunch: Sendable, Equatable {
    /// Ranks.
    public var ranks: Int
    /// BLAS and element-wise threads per rank (OPENBLAS_NUM_THREADS).
    public var threadsPerRank: Int
    /// A hostfile for several machines; nil for this machine only.
    public var hostfile: String?
    /// Whether this process runs as root (mpirun refuses root without a flag).
    public var asRoot: Bool
    /// Cores of this machine (oversubscription is allowed only when needed).
    public var cores: Int

    public init(ranks: Int, threadsPerRank: Int, hostfile: String? = nil, asRoot: Bool = getuid() == 0, cores: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.ranks = ranks
        self.threadsPerRank = threadsPerRank
        self.hostfile = hostfile
        self.asRoot = asRoot
        self.cores = cores
    }

    /// The arguments after `mpirun`, then the program and its arguments:
    /// - `-np K`, `--bind-to none` (Open MPI binds each rank to one core by default, which would
    ///   starve the rank's BLAS threads); on one machine `--oversubscribe`, since Open MPI counts
    ///   one slot per physical core and refuses more ranks than slots (harmless otherwise);
    /// - `-x OPENBLAS_NUM_THREADS=t` and `-x CLIPLAB_THREADS=t` (threads per rank);
    /// - `-x OMPI_MCA_btl_vader_single_copy_mechanism=none` (containers without CAP_SYS_PTRACE
    ///   fail the single-copy path with "Read -1, expected …");
    /// - `--mca odls_base_sigkill_timeout 10`: on SIGTERM (a preemption) mpirun passes it to the
    ///   ranks and kills them this many seconds later (Open MPI's default is 1), time for them to
    ///   reach a step boundary and write their checkpoint; a dying rank still ends the job within it;
    /// - `--allow-run-as-root` only when root; `--hostfile F` when given.
    public func arguments(program: String, programArguments: [String]) -> [String] {
        var a = ["-np", "\(ranks)", "--bind-to", "none", "--mca", "odls_base_sigkill_timeout", "10"]
        if hostfile == nil { a.append("--oversubscribe") }
        if asRoot { a.append("--allow-run-as-root") }
        if let h = hostfile { a += ["--hostfile", h] }
        a += [
            "-x", "OPENBLAS_NUM_THREADS=\(threadsPerRank)", "-x", "CLIPLAB_THREADS=\(threadsPerRank)",
            "-x", "OMPI_MCA_btl_vader_single_copy_mechanism=none",
        ]
        return a + [program] + programArguments
    }

    /// The `mpirun` executable: $CLIPLAB_MPIRUN, else the first `mpirun` on PATH.
    public static func mpirunPath() -> String? {
        let env = ProcessInfo.processInfo.environment
        if let p = env["CLIPLAB_MPIRUN"], FileManager.default.isExecutableFile(atPath: p) { return p }
        for dir in (env["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/mpirun"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }

    /// Runs `mpirun` with these arguments, standard output and error passed through; returns
    /// its exit status (non-zero when any rank failed: mpirun ends the whole job then).
    public func run(program: String, programArguments: [String]) throws -> Int32 {
        guard let mpirun = Self.mpirunPath() else {
            throw CollectiveError(call: "mpirun", rank: -1, message: "mpirun not found on PATH (install openmpi-bin, or set CLIPLAB_MPIRUN)")
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: mpirun)
        p.arguments = arguments(program: program, programArguments: programArguments)
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }
}
