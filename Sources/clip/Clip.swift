// The `clip` command: train, upcycle, eval, embed, data, bench, info.

import ArgumentParser
import Compute

#if canImport(Glibc)
import Glibc
#endif

@main
struct Clip: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clip",
        abstract: "ClipLab: train CLIP models fast on CPUs, and re-run the FastCLIP, CLIPA and CLIP-UP experiments.",
        version: "0.1.0",
        subcommands: [Train.self, Upcycle.self, Eval.self, Embed.self, DataCommand.self, Bench.self, Info.self, SelfTest.self])

    /// Ignores SIGXFSZ, sets OpenBLAS's idle-thread timeout (a re-exec, see
    /// `Threads.reexecWithBLASThreadTimeout`), then parses the command line and runs the subcommand.
    static func main() {
        // A write past the file-size limit (RLIMIT_FSIZE, `ulimit -f`) raises SIGXFSZ, whose default
        // action ends the process on the spot, with no message and its temporary file left
        // behind. Ignored, the write fails with EFBIG ("File too large") instead: the atomic writer
        // removes its temporary file, the previous checkpoint stays, and the error names the file.
        signal(SIGXFSZ, SIG_IGN)
        Threads.reexecWithBLASThreadTimeout()
        main(nil)
    }
}
