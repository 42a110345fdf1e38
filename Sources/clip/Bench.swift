import ArgumentParser
import Benchmarks
import CLIP
import Collective
import Compute
import Foundation
import Layers
import Objectives
import TokenReduction
import Training

/// `clip bench …`: performance measurements (never tests; compare only within one run).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure kernel and training throughput.",
        subcommands: [BenchKernels.self, BenchTrain.self, BenchCollectives.self])
}

struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Training (and inference) samples/s of a preset on random data, counted like the OpenCLIP anchor.",
        discussion: "One configuration per process, so the peak RSS is this measurement's alone. Build with -c release.")

    @Option(help: "Model preset (\(CLIPConfiguration.presetNames.joined(separator: ", "))).") var model = "tiny"
    @Option(help: "Batch size.") var batchSize = 256
    @Option(help: "Threads.") var threads = 1
    @Option(help: "train or infer.") var mode = "train"
    @Option(help: "Training activations: full (fastest) or recompute (activation checkpointing: each block's forward runs again in backward, for less memory).")
    var memory = "full"
    @Option(help: "Objective preset of training steps (openclip, sogclr, isogclr, fastclip-v0 … fastclip-v3).") var objective = "openclip"
    @Option(help: "Data-parallel ranks (re-launches itself under mpirun; the global batch is split over them).") var ranks = 1
    @Option(help: "An Open MPI hostfile (with --ranks).") var hostfile: String?
    @Option(help: "Feature-gradient reduction across ranks: auto, openclip or fastclip.") var gradientReduction = "auto"
    @Option(help: "How a step uses its threads: auto, gemm or batch-split (as clip train's --thread-mode; in inference, batch-split embeds a part of the batch per thread).")
    var threadMode = "auto"
    @Option(help: "CLIPA: train on fewer image tokens (resize:PIXELS, random:RATIO, grid:K, block:RATIO); the full-length step is timed first in the same run and the speed-up printed.")
    var imageReduction = "none"
    @Option(help: "CLIPA: text context length of the timed steps (default: the model's).") var textLength: Int?
    @OptionGroup(title: "CLIP-UP: with --experts, the dense step is timed first in the same run and the mixture model's cost printed beside it")
    var mixture: MixtureOptions
    @Option(help: "Real data (wds:PATTERN or csv:FILE): time whole training steps, image loading included, on it and on a shapes world of as many pairs in the same run, and print the ratio.")
    var data: String?
    @Option(help: "Precision of the matrix products: fp32, bf16 (cblas_sbgemm; needs AVX-512 BF16 or AMX) or bf16-emulated; other than fp32, the fp32 step is timed first in the same run and the ratio printed.")
    var precision = "fp32"
    @Option(help: "Timed steps (median reported).") var steps = 20
    @Option(help: "Untimed warm-up steps.") var warmup = 3
    @Flag(help: "Print one JSON line instead of text.") var json = false

    func validate() throws {
        guard TowerShape.preset(model, batch: 1) != nil else { throw ValidationError("--model: unknown preset '\(model)'; expected one of \(CLIPConfiguration.presetNames.joined(separator: ", "))") }
        guard (2...4096).contains(batchSize) else { throw ValidationError("--batch-size must be in 2...4096, got \(batchSize)") }
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be in 1...256, got \(threads)") }
        guard ["train", "infer"].contains(mode) else { throw ValidationError("--mode must be train or infer, got '\(mode)'") }
        guard ["full", "recompute"].contains(memory) else { throw ValidationError("--memory must be full or recompute, got '\(memory)'") }
        guard ObjectiveConfiguration.preset(objective) != nil else {
            throw ValidationError("--objective: unknown preset '\(objective)'; expected one of \(ObjectiveConfiguration.presetNames.joined(separator: ", "))")
        }
        guard (1...1024).contains(ranks) else { throw ValidationError("--ranks must be in 1...1024, got \(ranks)") }
        guard ["auto", "openclip", "fastclip"].contains(gradientReduction) else {
            throw ValidationError("--gradient-reduction must be auto, openclip or fastclip, got '\(gradientReduction)'")
        }
        guard batchSize % ranks == 0 else { throw ValidationError("--batch-size \(batchSize) must split evenly over \(ranks) ranks") }
        guard ThreadMode(rawValue: threadMode) != nil else {
            throw ValidationError("--thread-mode must be \(ThreadMode.allCases.map(\.rawValue).joined(separator: ", ")), got '\(threadMode)'")
        }
        guard (1...10_000).contains(steps) else { throw ValidationError("--steps must be in 1...10000, got \(steps)") }
        do { _ = try ImageTokenReduction(parsing: imageReduction) } catch let e as TokenReductionError { throw ValidationError("--image-reduction: \(e.message)") }
        if let l = textLength, !(2...1024).contains(l) { throw ValidationError("--text-length must be in 2...1024, got \(l)") }
        guard (0...1000).contains(warmup) else { throw ValidationError("--warmup must be in 0...1000, got \(warmup)") }
        guard let p = MatmulPrecision(rawValue: precision) else {
            throw ValidationError("--precision must be \(MatmulPrecision.allCases.map(\.rawValue).joined(separator: ", ")), got '\(precision)'")
        }
        if let reason = p.unsupportedReason() { throw ValidationError("--precision bf16: " + reason) }
        if p != .fp32 && (imageReduction != "none" || textLength != nil || mixture.experts > 0) {
            throw ValidationError("--precision \(precision) times against fp32 alone; leave out --image-reduction, --text-length and --experts")
        }
    }

    func run() throws {
        if let data {
            try runOnData(data)
            return
        }
        if ranks > 1 && !MPICommunicator.launchedByMPI {
            try relaunchUnderMPI(ranks: ranks, threads: threads, hostfile: hostfile, command: "clip bench train")
            return
        }
        let comm = try makeWorldCommunicator()
        let reduction: GradientReduction = gradientReduction == "auto"
            ? (ObjectiveConfiguration.preset(objective)!.loss == .mbcl ? .openclip : .fastclip) : GradientReduction(rawValue: gradientReduction)!
        let reduced = try ImageTokenReduction(parsing: imageReduction)
        let experts = try mixture.placement()
        let reduces = reduced != .none || textLength != nil || experts != nil
        func measure(_ image: ImageTokenReduction, _ length: Int?, _ moe: (placement: MoEPlacement, towers: UpcycledTowers)?) throws -> TrainBenchResult {
            try abortingJobOnError(comm) {
                try runTrainBenchmark(
                    preset: model, batch: batchSize, threads: threads, train: mode == "train",
                    memory: ActivationMemory(rawValue: memory)!, objective: objective, communicator: comm, reduction: reduction,
                    threadMode: ThreadMode(rawValue: threadMode)!, imageReduction: image, textLength: length,
                    visionExperts: moe.flatMap { $0.towers != .text ? $0.placement : nil }, textExperts: moe.flatMap { $0.towers != .vision ? $0.placement : nil },
                    warmup: warmup, steps: steps)
            }
        }
        // With a token reduction or mixtures, the full-length dense step first, in the same process.
        let matmul = MatmulPrecision(rawValue: precision)!
        let full = reduces || matmul != .fp32 ? try measure(.none, nil, nil) : nil
        var r = try GEMMPrecision.with(matmul) { try measure(reduced, textLength, experts) }
        r.precision = matmul.rawValue
        try (comm as? MPICommunicator)?.finalize()
        guard comm.isRoot else { return }
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            if let full { print("RESULT " + String(decoding: try enc.encode(full), as: UTF8.self)) }
            print("RESULT " + String(decoding: try enc.encode(r), as: UTF8.self))
            return
        }
        if let full, let (p, towers) = experts {
            let m = p.configuration
            print(String(format: "dense (%.4f GMACs/sample): %.1f samples/s, median step %.3f s", full.gmacsPerSample, full.samplesPerSecond, full.medianStepSeconds))
            print(String(format: "mixtures (%d experts, %@, capacity factor %g, every %d from block %d, %@; %.4f GMACs/sample): %.1f samples/s, "
                         + "median step %.3f s = %.2f× the dense step (GMAC ratio %.2f×)",
                         m.experts, m.routing == .tokenChoice ? "top-\(m.topK)" : "expert choice", m.capacityFactor, p.every, p.first, towers.rawValue,
                         r.gmacsPerSample, r.samplesPerSecond, r.medianStepSeconds, r.medianStepSeconds / full.medianStepSeconds,
                         r.gmacsPerSample / full.gmacsPerSample))
        } else if let full, matmul != .fp32 {
            print(String(format: "fp32: %.1f samples/s, median step %.3f s", full.samplesPerSecond, full.medianStepSeconds))
            print(String(format: "%@: %.1f samples/s, median step %.3f s = %.2f× fp32's samples/s", matmul.rawValue, r.samplesPerSecond,
                         r.medianStepSeconds, r.samplesPerSecond / full.samplesPerSecond))
        } else if let full {
            print(String(format: "full tokens (image %d, text %d; %.4f GMACs/sample): %.1f samples/s", full.imageTokens, full.textTokens,
                         full.gmacsPerSample, full.samplesPerSecond))
            print(String(format: "%@, text %d (image %d tokens; %.4f GMACs/sample): %.1f samples/s = %.2f× full length (GMAC ratio %.2f×)",
                         r.imageReduction, r.textTokens, r.imageTokens, r.gmacsPerSample, r.samplesPerSecond,
                         r.samplesPerSecond / full.samplesPerSecond, full.gmacsPerSample / r.gmacsPerSample))
        }
        if r.ranks > 1 { print("data parallel: \(r.ranks) ranks × \(r.threads) thread(s), local batch \(r.batch / r.ranks), gradient reduction \(r.gradientReduction)") }
        print(String(format: "%@ %@%@ batch %d, %d thread(s)%@: %.1f samples/s, %.4f GFLOP/sample, %.1f GFLOP/s, median step %.3f s",
                     r.model, r.mode, r.mode == "train" ? " (\(r.objective))" : "", r.batch, r.threads, r.threads > 1 ? " (\(r.threadMode))" : "", r.samplesPerSecond, r.gflopPerSample, r.gflops, r.medianStepSeconds))
        print("kernels: OpenBLAS \(r.blasCore) (OPENBLAS_CORETYPE=\(ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] ?? "unset"), "
              + "OPENBLAS_THREAD_TIMEOUT=\(Threads.blasThreadTimeout ?? "unset")), element-wise \(r.vectorISA)")
        print(String(format: "memory (%@ activations): peak RSS %.0f MiB (activation workspace %.0f MiB, parameters + gradients + moments %.0f MiB)",
                     r.activationMemory, r.peakRSSMiB, r.workspaceMiB, r.parameterMiB))
        let perStep = r.phaseSeconds.values.reduce(0, +)
        print("per-phase profile (mean seconds per step, share of the step):")
        for (name, s) in r.phaseSeconds.sorted(by: { $0.value > $1.value }) where s > 0 {
            print("  " + name.rightPad(24) + String(format: "%7.3f s  %5.1f%%", s, 100 * s / max(perStep, 1e-12)))
        }
    }

    /// `--data`: whole training steps (loading, forward, objective, backward, optimizer) on the
    /// real data set and on a shapes world of as many pairs, alternating in this process.
    func runOnData(_ data: String) throws {
        guard mode == "train", ranks == 1, memory == "full" || memory == "recompute" else {
            throw ValidationError("--data times training steps in one process: leave out --mode infer and --ranks")
        }
        func trainer(_ source: String) throws -> Trainer {
            var c = TrainingConfiguration()
            c.model = model
            c.data = source
            c.batchSize = batchSize
            c.threads = threads
            c.threadMode = ThreadMode(rawValue: threadMode)
            c.activationMemory = ActivationMemory(rawValue: memory)!
            c.epochs = 1
            c.tokenizer = "trained"
            c.trainedVocabularySize = 1024
            c.output = NSTemporaryDirectory() + "cliplab-bench-data-\(UUID().uuidString)"
            return try Trainer(c)
        }
        print("checking \(data) …")
        let real = try trainer(data)
        let count = real.data.count
        guard count >= batchSize else { throw ValidationError("--data: \(count) usable pairs, fewer than --batch-size \(batchSize)") }
        let shapes = try trainer("shapes:\(count)")
        func median(_ x: [Double]) -> Double { let s = x.sorted(); return s[s.count / 2] }
        var realSteps: [Double] = [], shapesSteps: [Double] = []
        // Warm-up, then alternate blocks of steps so both see the same machine.
        _ = try real.timeSteps(warmup)
        _ = try shapes.timeSteps(warmup)
        let block = max(1, steps / 4)
        while realSteps.count < steps {
            realSteps += try real.timeSteps(block)
            shapesSteps += try shapes.timeSteps(block)
        }
        let r = Double(batchSize) / median(realSteps), w = Double(batchSize) / median(shapesSteps)
        print(String(format: "%@ batch %d, %d thread(s) (%@), %d pairs: shapes world %.1f samples/s, %@ %.1f samples/s = %.2f× the shapes world's (median of %d steps each, loading included)",
                     model, batchSize, threads, real.threadMode.rawValue, count, w, data, r, r / w, realSteps.count))
        for dir in [real.config.output, shapes.config.output] { try? FileManager.default.removeItem(atPath: dir) }
    }
}

struct BenchKernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "GFLOP/s of the GEMM entry point on the preset models' shapes, and GB/s of the element-wise kernels.",
        discussion: """
            Runs in Float32 at each requested thread count. Rates are medians of repeated timings; on a
            shared machine compare only numbers from the same invocation. Build with -c release.
            """)

    @Option(name: .customLong("model"), parsing: .upToNextOption, help: "Presets whose step GEMMs are measured (\(CLIPConfiguration.presetNames.joined(separator: ", "))).")
    var models: [String] = ["tiny", "small"]

    @Option(help: "Batch size the shapes are taken at.")
    var batchSize: Int = 256

    @Option(parsing: .upToNextOption, help: "Thread counts to measure at.")
    var threads: [Int] = [1, 2]

    @Option(help: "Minimum seconds of timing per measurement.")
    var minTime: Double = 0.25

    @Flag(help: "Skip the element-wise kernels.")
    var gemmOnly = false

    @Option(help: "Also write every measurement as JSON to this file.")
    var json: String?

    func validate() throws {
        for m in models where TowerShape.preset(m, batch: 1) == nil {
            throw ValidationError("--model: unknown preset '\(m)'; expected one of \(CLIPConfiguration.presetNames.joined(separator: ", "))")
        }
        guard (1...4096).contains(batchSize) else { throw ValidationError("--batch-size must be in 1...4096, got \(batchSize)") }
        guard !threads.isEmpty, threads.allSatisfy({ (1...256).contains($0) }) else {
            throw ValidationError("--threads: each count must be in 1...256, got \(threads)")
        }
        guard minTime > 0, minTime <= 60 else { throw ValidationError("--min-time must be in (0, 60] seconds, got \(minTime)") }
    }

    func run() throws {
        let cpu = CPUFeatures.current
        print("ClipLab kernel benchmark: \(cpu.modelName) [\(cpu.summary)], \(Threads.available) cores")
        print("OpenBLAS: \(Threads.blasConfig); OPENBLAS_THREAD_TIMEOUT=\(Threads.blasThreadTimeout ?? "default"); Float32; batch \(batchSize); median of repeated runs, ≥ \(minTime) s each")
        #if DEBUG
        print("warning: this is a debug build; measure with `swift run -c release clip bench kernels`")
        #endif
        var all: [BenchMeasurement] = []

        // GEMM: a large square for the machine's peak, then each preset's step shapes.
        let square = GemmCase(label: "square 1024³", m: 1024, n: 1024, k: 1024, transA: false, transB: false, batch: 1, perStep: 1)
        let towers = models.flatMap { TowerShape.preset($0, batch: batchSize)! }
        let cases = [square] + towers.flatMap(\.gemmCases)
        var rates: [Int: [String: Double]] = [:]
        for t in threads {
            Threads.set(t)
            for c in cases {
                let (gf, s) = measureGemm(c, minTime: minTime)
                rates[t, default: [:]][c.label] = gf
                all.append(BenchMeasurement(label: "gemm " + c.label, threads: t, rate: gf, seconds: s))
            }
        }
        let threadHeader = threads.map { "\($0) thr".leftPad(9) }.joined()
        print("\nGEMM GFLOP/s")
        print("shape".rightPad(30) + "M".leftPad(7) + "N".leftPad(6) + "K".leftPad(7) + " op" + "batch".leftPad(6) + threadHeader)
        for c in cases {
            let op = (c.transA ? "T" : "N") + (c.transB ? "T" : "N")
            var row = c.label.rightPad(30) + "\(c.m)".leftPad(7) + "\(c.n)".leftPad(6) + "\(c.k)".leftPad(7)
            row += " " + op + "\(c.batch)".leftPad(6)
            for t in threads { row += fmt(rates[t]?[c.label] ?? 0).leftPad(9) }
            print(row)
        }
        print("\nStep GEMM rate (FLOP-weighted over one forward+backward step's products), GFLOP/s")
        for m in models {
            let cs = TowerShape.preset(m, batch: batchSize)!.flatMap(\.gemmCases)
            let flops = cs.reduce(0) { $0 + $1.flops * Double($1.perStep) }
            var row = "\(m) (\(fmt(flops / 1e9)) GFLOP per step)".rightPad(56)
            for t in threads {
                let r = stepGemmRate(cs, rates: rates[t] ?? [:])
                row += fmt(r).leftPad(9)
                all.append(BenchMeasurement(label: "step gemm \(m)", threads: t, rate: r, seconds: flops / (r * 1e9)))
            }
            print(row)
        }

        if !gemmOnly {
            let tower = towers.first!
            let rows = tower.batch * tower.tokens
            print("\nElement-wise GB/s on (\(rows), \(4 * tower.width)) activations (\(tower.name) MLP hidden size)")
            print("kernel".rightPad(24) + "elements".leftPad(12) + threadHeader)
            let buffers = ElementwiseBuffers(rows: rows, width: 4 * tower.width)
            for e in elementwiseCases(rows: rows, width: 4 * tower.width) {
                var row = e.label.rightPad(24) + "\(e.elements)".leftPad(12)
                for t in threads {
                    Threads.set(t)
                    let s = medianSeconds(minTime: minTime) { e.run(buffers) }
                    let gbs = e.bytes / s / 1e9
                    all.append(BenchMeasurement(label: "elementwise " + e.label, threads: t, rate: gbs, seconds: s))
                    row += fmt(gbs).leftPad(9)
                }
                print(row)
            }
        }
        if let json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            try writeAtomically(enc.encode(all), to: json)
            print("\nwrote \(json)")
        }
    }
}

func fmt(_ x: Double) -> String { String(format: "%.1f", x) }

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? " " + self : String(repeating: " ", count: n - count) + self }
    func rightPad(_ n: Int) -> String { count >= n ? self + " " : self + String(repeating: " ", count: n - count) }
}
