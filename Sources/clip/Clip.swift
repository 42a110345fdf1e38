// The `clip` command: train, eval, embed, bench, data. This scope: `clip bench kernels`
// and `clip info`; the trainer and data commands join as their modules land.

import ArgumentParser

@main
struct Clip: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clip",
        abstract: "ClipLab: train CLIP models fast on CPUs, and re-run the FastCLIP, CLIPA and CLIP-UP experiments.",
        version: "0.1.0",
        subcommands: [Bench.self, Info.self])
}
