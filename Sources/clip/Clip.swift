// The `clip` command: train, upcycle, eval, embed, data, bench, info.

import ArgumentParser
import Compute

@main
struct Clip: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clip",
        abstract: "ClipLab: train CLIP models fast on CPUs, and re-run the FastCLIP, CLIPA and CLIP-UP experiments.",
        version: "0.1.0",
        subcommands: [Train.self, Upcycle.self, Eval.self, Embed.self, DataCommand.self, Bench.self, Info.self, SelfTest.self])

    /// Sets OpenBLAS's idle-thread timeout (a re-exec, see `Threads.reexecWithBLASThreadTimeout`),
    /// then parses the command line and runs the subcommand.
    static func main() {
        Threads.reexecWithBLASThreadTimeout()
        main(nil)
    }
}
