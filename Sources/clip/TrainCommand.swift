import ArgumentParser
import CLIP
import Collective
import Compute
import Data
import Foundation
import Layers
import Objectives
import Training

/// `clip train`: single-process training. Option names follow OpenCLIP's where one exists.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a CLIP model.",
        discussion: """
            Writes the run directory given by --out: config.json (the resolved configuration),
            metrics.csv (one row before training and one per epoch), log.txt,
            steps.csv (one row per step) and checkpoints/epoch_N.safetensors (OpenCLIP parameter
            names) with epoch_N.state.safetensors (optimizer moments and per-sample tables).

            --objective picks a preset: openclip, sogclr, isogclr, fastclip-v0, fastclip-v1,
            fastclip-v2 or fastclip-v3 (FastCLIP §6). The part options (--loss,
            --temperature-rule, --inner-lr-schedule, --gamma-min, ...) override its parts one by
            one; config.json records the resolved parts.

            Examples:
              clip train --model tiny --data shapes:cc3m-mini --epochs 10 --batch-size 256 --out runs/tiny
              clip train --objective fastclip-v3 --epochs 10 --out runs/v3
              clip train --objective fastclip-v1 --inner-lr-schedule constant --out runs/sogclr-like
              clip train --resume runs/v3            (continue a stopped run from its last checkpoint)

            CLIPA (train on fewer tokens, then fine-tune at full length):
              --image-reduction resize:16 | random:0.75 | grid:2 | block:0.75 picks how images lose
              tokens; --text-length 8 with --text-reduction truncate | random | shuffle | block |
              syntax how captions do. --finetune-epochs N adds a second stage at full tokens (its
              own --finetune-lr and --finetune-warmup), started from the first stage's last
              checkpoint with the positional tables resized; the run directory then holds
              pretrain/ and finetune/, and metrics.csv has both stages' rows.
              clip train --model micro --image-reduction resize:16 --text-length 8 --text-reduction syntax --epochs 10 --finetune-epochs 1 --out runs/clipa
            """)

    @Option(help: "Model preset: \(CLIPConfiguration.presetNames.joined(separator: ", ")) (the clipa-* ladder: 64 px, patch 8, for CLIPA's studies); default tiny.")
    var model: String?
    @Option(help: ArgumentHelp(
        "Instead of --model: an OpenCLIP model config, open_clip_config.json ({\"model_cfg\": …}) or a model_configs/*.json (e.g. to --init-from an OpenCLIP checkpoint).",
        valueName: "file"))
    var modelConfig: String?
    @Option(name: [.customLong("data"), .customLong("train-data")], help: "shapes:<scale> (cc3m-mini, cc12m-mini, laion315m-mini) or shapes:<count> (the synthetic world); wds:PATTERN (WebDataset tar shards, e.g. 'data/train-{000000..000009}.tar', '::' between patterns) or csv:FILE (a CSV/TSV of image paths and captions, see --csv-separator) for your own pairs.")
    var data = "shapes:cc3m-mini"
    @Option(help: "Seed of the synthetic data.") var dataSeed: UInt64 = 0
    @Option(help: "Real data: a sample that cannot be used (damaged tar member, undecodable image, missing, empty or non-UTF-8 caption, missing image file) is left out and counted (skip), or stops the run before training with where and why (fail).")
    var badSample = "skip"
    @Option(help: "csv:FILE: the field separator, one character or \\t (OpenCLIP's --csv-separator; default tab).") var csvSeparator = "\\t"
    @Option(help: "csv:FILE: the column of image paths (OpenCLIP's --csv-img-key); relative paths are read beside the CSV, else from the working directory.")
    var csvImgKey = "filepath"
    @Option(help: "csv:FILE: the column of captions (OpenCLIP's --csv-caption-key).") var csvCaptionKey = "title"
    @Option(help: "A held-out data set (wds:PATTERN or csv:FILE) evaluated every --eval-every epochs instead of the shapes world's tasks: retrieval over its first --retrieval-size pairs, zero-shot with --zero-shot.")
    var evalData: String?
    @Option(help: "With --eval-data: a classes.json ({\"classes\": [names], \"templates\": [\"a photo of a {}.\"]}) for zero-shot top-1 over its .cls-labelled samples.")
    var zeroShot: String?
    @Option(help: "Epochs.") var epochs = 10
    @Option(help: "Global batch size.") var batchSize = 256
    @Option(help: "Peak learning rate.") var lr = 1e-3
    @Option(help: "Floor of the cosine schedule.") var lrMin = 0.0
    @Option(help: "Decoupled weight decay (not on gains, biases or logit_scale).") var wd = 0.1
    @Option(help: "Linear warm-up steps.") var warmup = 500
    @Option(help: "Training seed (initialisation and data order).") var seed: UInt64 = 0
    @Option(help: "Optimizer: adamw or lamb.") var optimizer = "adamw"
    @Option(help: "Adam β₁.") var beta1 = 0.9
    @Option(help: "Adam β₂.") var beta2 = 0.98
    @Option(help: "Adam ε.") var eps = 1e-6
    @Option(help: "Clip gradients to this global norm (default: no clipping).") var gradClipNorm: Double?
    @Option(help: "Threads (default: all cores; under mpirun, the cores divided by the ranks on this machine).") var threads = defaultThreads()
    @Option(help: "How a step uses its threads: auto (batch-split in one process for models from tiny up when each thread gets ≥ \(ThreadMode.minimumShardBatch) samples, else gemm), gemm (every matrix product and kernel threaded) or batch-split (a shard of the batch per thread).")
    var threadMode = "auto"
    @Option(help: "Activations kept for backward: full (fastest) or recompute (activation checkpointing: less memory, about +25% compute, same results).")
    var activationMemory = "full"
    @Option(help: "Precision of the matrix products: fp32, bf16 (bf16 operands, fp32 accumulation, through OpenBLAS's cblas_sbgemm; needs AVX-512 BF16 or AMX) or bf16-emulated (bf16's rounding at fp32 speed on any CPU). Master weights, optimizer state and every other operation stay fp32.")
    var precision = "fp32"
    @Option(help: "Objective preset: \(ObjectiveConfiguration.presetNames.joined(separator: ", ")).") var objective = "openclip"
    @Option(help: "Override the preset's loss: mbcl, gcl, rgcl or rgcl-g.") var loss: String?
    @Option(help: "Override the temperature rule: constant, learnable, individual or rgcl-g (step_thresh).") var temperatureRule: String?
    @Option(help: "Override the inner-LR (γ) schedule: constant, cosine or drrho.") var innerLrSchedule: String?
    @Option(help: "γ_min of the inner-LR schedule (default 0.2).") var gammaMin: Double?
    @Option(help: "Epochs of the cosine γ decay (default: half the epochs).") var gammaDecayEpochs: Int?
    @Option(help: "ρ of RGCL and RGCL-g.") var rho: Double?
    @Option(help: "Learning rate of the temperature (default per preset; = --lr for learnable).") var lrTau: Double?
    @Option(help: "Initial temperature τ.") var tauInit: Double?
    @Option(help: "ε of the FCCO objectives (default 1e-14).") var fastclipEps: Double?
    @Option(help: "Weight of RGCL-g's τ·∂τ g term: 1 (reference code, default) or 0.5 (exact derivative).") var tauDerivativeWeight: Double?
    @Option(help: "Where ε applies for individual temperatures: shifted (reference, default) or unshifted.") var epsilonScale: String?
    @Option(help: "Continue the run in this directory from its latest checkpoint (epoch or step), with its recorded configuration (other options but --threads and the checkpoint and stop options below are ignored).")
    var resume: String?
    @Option(help: "Also checkpoint every N steps inside an epoch (step_S.safetensors; 0: epoch checkpoints only).")
    var saveEverySteps: Int?
    @Option(help: "Step checkpoints kept: the newest N (default 2; epoch checkpoints all stay).")
    var keepStepCheckpoints: Int?
    @Option(help: "Stop after this many seconds of this invocation, as on SIGTERM: a checkpoint at the next step, exit status 75.")
    var timeLimit: Double?
    @Option(help: "Stop after this many epochs of this invocation (after their checkpoints), exit status 75.")
    var stopAfterEpochs: Int?
    @Option(help: "On NaN or ∞ in the loss, gradients, u or τ: stop (naming the step, tensor and last good checkpoint) or rollback (reload that checkpoint with a lower learning rate; under MPI every rank, at the same step).")
    var onDivergence = "stop"
    @Option(help: "With --on-divergence rollback: the learning-rate factor per rollback.") var rollbackLRFactor = 0.5
    @Option(help: "With --on-divergence rollback: the most rollbacks before the run stops.") var maxRollbacks = 3
    @Option(help: "Data-parallel ranks: re-launches itself under mpirun with K ranks (or run mpirun -np K clip train … yourself).")
    var ranks = 1
    @Option(help: "An Open MPI hostfile for ranks on several machines (with --ranks; --threads is then per rank).") var hostfile: String?
    @Option(help: "Feature-gradient reduction across ranks: auto (fastclip for FastCLIP's objectives, openclip for OpenCLIP's), openclip or fastclip.")
    var gradientReduction = "auto"
    @Flag(help: "Sum the parameter gradients after the backward pass instead of overlapping the text tower's share with the vision tower's backward.")
    var noOverlap = false
    @Option(help: "Tokenizer: auto, clip or trained.") var tokenizer = "auto"
    @Option(help: "Vocabulary size of a trained tokenizer.") var vocabSize = 2048
    @Option(help: "Held-out zero-shot examples per class.") var evalExamples = 50
    @Option(help: "Held-out retrieval pairs.") var retrievalSize = 1000
    @Option(help: "Evaluate every N epochs (0: only after the last).") var evalEvery = 1
    @Flag(help: "Do not write per-epoch checkpoints.") var noCheckpoints = false
    @Option(name: [.customLong("out"), .customShort("o")], help: "Run directory.") var out = "runs/default"
    @Option(help: "Image token reduction: none, resize:PIXELS, random:RATIO, grid:K[:fixed|image|window] or block:RATIO (RATIO = share of patches dropped).")
    var imageReduction = "none"
    @Option(help: "Caption token reduction to --text-length: truncate, random, shuffle, block or syntax.") var textReduction = "truncate"
    @Option(help: "Text context length while training (default: the model's).") var textLength: Int?
    @Option(help: "Vision pooling: class, average (patch tokens, CLIPA's GAP) or average-with-class.") var visionPool = "class"
    @Option(help: "Vision positional table: learned or sincos (fixed 2-D sine-cosine, recomputed for any grid).") var visionPositional = "learned"
    @Option(help: "Start from this checkpoint's parameters (positional tables of another grid or length are resized).") var initFrom: String?
    @Flag(help: "With --init-from, also start from its optimizer moments.") var initOptimizerState = false
    @OptionGroup(title: "Mixtures of experts (CLIP-UP; --init-from an upcycled checkpoint needs none of these)") var mixture: MixtureOptions
    @Option(help: "CLIPA's second stage: fine-tune this many epochs at full tokens after --epochs.") var finetuneEpochs: Int?
    @Option(help: "Peak learning rate of the fine-tuning (default: --lr / 10).") var finetuneLr: Double?
    @Option(help: "Warm-up steps of the fine-tuning (default: 10% of its steps).") var finetuneWarmup: Int?
    @Option(help: "Image token reduction while fine-tuning (default none; CLIPA-v2 uses random:0.3).") var finetuneImageReduction = "none"
    @Option(help: "Caption reduction while fine-tuning (default truncate).") var finetuneTextReduction = "truncate"
    @Option(help: "Text length while fine-tuning (default: the model's).") var finetuneTextLength: Int?
    @Option(help: "Data of the fine-tuning (default: --data; shapes:N with fewer pairs is a subset of the same world).") var finetuneData: String?
    @Option(help: "Global batch of the fine-tuning (default: --batch-size).") var finetuneBatchSize: Int?
    @Option(help: "Vision positional table of the fine-tuning: learned or sincos (default: --vision-positional).") var finetuneVisionPositional: String?
    @Flag(help: "Carry the optimizer moments into the fine-tuning (default: start them afresh, as CLIPA).") var finetuneCarryOptimizer = false
    @Flag(help: "CLIP-UP: upcycle the first stage's model with the --experts options before the second stage, which then trains the mixtures.")
    var finetuneUpcycle = false

    func configuration() throws -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.model = model ?? "tiny"
        if let path = modelConfig {
            guard model == nil else { throw ValidationError("--model and --model-config: give one of them, not both") }
            guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("--model-config: \(path) does not exist") }
            do { c.modelArchitecture = try OpenCLIPConfig.load(path: path).configuration } catch let e as ConfigurationError {
                throw ValidationError("--model-config: " + e.message)
            }
        }
        c.data = data
        c.dataSeed = dataSeed
        c.epochs = epochs
        c.batchSize = batchSize
        c.learningRate = lr
        c.learningRateFloor = lrMin
        c.weightDecay = wd
        c.warmupSteps = warmup
        c.seed = seed
        guard let kind = OptimizerKind(rawValue: optimizer) else {
            throw ValidationError("--optimizer: expected adamw or lamb, got '\(optimizer)'")
        }
        c.optimizer = kind
        c.beta1 = beta1
        c.beta2 = beta2
        c.epsilon = eps
        c.gradientClipNorm = gradClipNorm
        c.threads = threads
        guard let mode = ThreadMode(rawValue: threadMode) else {
            throw ValidationError("--thread-mode: expected \(ThreadMode.allCases.map(\.rawValue).joined(separator: ", ")), got '\(threadMode)'")
        }
        c.threadMode = mode
        guard let memory = ActivationMemory(rawValue: activationMemory), memory != .inference else {
            throw ValidationError("--activation-memory: expected full or recompute, got '\(activationMemory)'")
        }
        c.activationMemory = memory
        guard let policy = BadSamplePolicy(rawValue: badSample) else {
            throw ValidationError("--bad-sample: expected skip or fail, got '\(badSample)'")
        }
        c.badSamples = policy == .skip ? nil : policy
        c.csvSeparator = csvSeparator == "\\t" ? nil : csvSeparator
        c.csvImageKey = csvImgKey == "filepath" ? nil : csvImgKey
        c.csvCaptionKey = csvCaptionKey == "title" ? nil : csvCaptionKey
        c.evalData = evalData
        c.zeroShotClasses = zeroShot
        guard let matmul = MatmulPrecision(rawValue: precision) else {
            throw ValidationError("--precision: expected \(MatmulPrecision.allCases.map(\.rawValue).joined(separator: ", ")), got '\(precision)'")
        }
        c.precision = matmul == .fp32 ? nil : matmul
        c.objective = try objectiveConfiguration()
        c.tokenizer = tokenizer
        c.trainedVocabularySize = vocabSize
        c.evalExamplesPerClass = evalExamples
        c.retrievalCount = retrievalSize
        c.evalEvery = evalEvery
        c.checkpoints = !noCheckpoints
        if onDivergence != "stop" {
            c.onDivergence = DivergencePolicy(rawValue: onDivergence)
            c.rollbackLRFactor = rollbackLRFactor
            c.maxRollbacks = maxRollbacks
        }
        applyOperational(to: &c)
        c.output = out
        c.overlapCommunication = !noOverlap
        c.imageReduction = imageReduction == "none" ? nil : imageReduction
        c.textReduction = textReduction == "truncate" ? nil : textReduction
        c.textLength = textLength
        guard let pool = VisionPooling(rawValue: visionPool) else {
            throw ValidationError("--vision-pool: expected \(VisionPooling.allCases.map(\.rawValue).joined(separator: ", ")), got '\(visionPool)'")
        }
        c.visionPool = pool == .classToken ? nil : pool
        guard let positional = VisionPositional(rawValue: visionPositional) else {
            throw ValidationError("--vision-positional: expected \(VisionPositional.allCases.map(\.rawValue).joined(separator: ", ")), got '\(visionPositional)'")
        }
        c.visionPositional = positional == .learned ? nil : positional
        let experts = try mixture.placement()
        if finetuneUpcycle {
            guard finetuneEpochs != nil, experts != nil else {
                throw ValidationError("--finetune-upcycle: needs --finetune-epochs (the stage after the upcycling) and --experts (the mixtures)")
            }
        } else if let (placement, towers) = experts {
            if towers != .text { c.visionExperts = placement }
            if towers != .vision { c.textExperts = placement }
        }
        if let path = initFrom {
            guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("--init-from: \(path) does not exist") }
            c.initFrom = path
            c.initOptimizerState = initOptimizerState ? true : nil
        }
        if let n = finetuneEpochs {
            let tuneData: DataSource
            do { tuneData = try DataSource(finetuneData ?? data) } catch TrainingError.invalid(_, let reason) {
                throw ValidationError((finetuneData == nil ? "--data: " : "--finetune-data: ") + reason)
            }
            let warmup: Int
            if case .shapes(let count, _) = tuneData {
                warmup = finetuneWarmup ?? n * (count / max(1, finetuneBatchSize ?? batchSize)) / 10
            } else {
                guard let w = finetuneWarmup else {
                    throw ValidationError("--finetune-warmup: give it with a fine-tuning stage on real data (the default, a tenth of the stage's steps, needs the data set's size, known only once it is checked)")
                }
                warmup = w
            }
            var f = FinetuneStage(epochs: n, learningRate: finetuneLr ?? lr / 10, warmupSteps: warmup)
            f.imageReduction = finetuneImageReduction == "none" ? nil : finetuneImageReduction
            f.textReduction = finetuneTextReduction == "truncate" ? nil : finetuneTextReduction
            f.textLength = finetuneTextLength
            f.data = finetuneData
            f.batchSize = finetuneBatchSize
            if let p = finetuneVisionPositional {
                guard let v = VisionPositional(rawValue: p) else {
                    throw ValidationError("--finetune-vision-positional: expected \(VisionPositional.allCases.map(\.rawValue).joined(separator: ", ")), got '\(p)'")
                }
                f.visionPositional = v
            }
            f.carryOptimizerState = finetuneCarryOptimizer
            if finetuneUpcycle, let (placement, towers) = experts {
                // The moments travel through the upcycled checkpoint's state file.
                f.upcycle = UpcycleSpec(placement: placement, towers: towers, copyOptimizerState: finetuneCarryOptimizer)
                f.carryOptimizerState = false
            }
            c.finetune = f
        }
        switch gradientReduction {
        case "auto": c.gradientReduction = c.objective.loss == .mbcl ? .openclip : .fastclip
        default:
            guard let r = GradientReduction(rawValue: gradientReduction) else {
                throw ValidationError("--gradient-reduction: expected auto, openclip or fastclip, got '\(gradientReduction)'")
            }
            c.gradientReduction = r
        }
        return c
    }

    /// The preset with the part options applied on top.
    func objectiveConfiguration() throws -> ObjectiveConfiguration {
        let scale = data.hasPrefix("shapes:") ? String(data.dropFirst("shapes:".count)) : nil
        guard var o = ObjectiveConfiguration.preset(objective, dataScale: scale) else {
            throw ValidationError("--objective: unknown preset '\(objective)'; expected one of \(ObjectiveConfiguration.presetNames.joined(separator: ", "))")
        }
        func parse<E: RawRepresentable & CaseIterable>(_ text: String?, _ option: String, as: E.Type) throws -> E? where E.RawValue == String {
            guard let text else { return nil }
            guard let v = E(rawValue: text) else {
                throw ValidationError("\(option): expected one of \(E.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text)'")
            }
            return v
        }
        if let v = try parse(loss, "--loss", as: LossKind.self) { o.loss = v }
        if let v = try parse(temperatureRule, "--temperature-rule", as: TemperatureRule.self) { o.temperatureRule = v }
        if let v = try parse(innerLrSchedule, "--inner-lr-schedule", as: InnerLRScheduleKind.self) { o.innerLRSchedule = v }
        if let v = try parse(epsilonScale, "--epsilon-scale", as: EpsilonScale.self) { o.epsilonScale = v }
        if let v = gammaMin { o.gammaMin = v }
        if let v = gammaDecayEpochs { o.gammaDecayEpochs = v }
        if let v = rho { o.rho = v }
        if let v = lrTau { o.learningRateTau = v }
        if let v = tauInit { o.temperatureInit = v }
        if let v = fastclipEps { o.epsilon = v }
        if let v = tauDerivativeWeight { o.tauDerivativeWeight = v }
        return o
    }

    /// The checkpoint cadence and stop options, on a new run's configuration or a resumed one's.
    /// The cadence carries over from the recorded configuration unless given again; the stop
    /// conditions hold for one invocation only (a resumed run stops only if they are given again).
    func applyOperational(to c: inout TrainingConfiguration) {
        if let v = saveEverySteps { c.saveEverySteps = v }
        if let v = keepStepCheckpoints { c.keepStepCheckpoints = v }
        c.timeLimitSeconds = timeLimit
        c.stopAfterEpochs = stopAfterEpochs
    }

    func validate() throws {
        guard (1...1024).contains(ranks) else { throw ValidationError("--ranks: must be in 1...1024, got \(ranks)") }
        if let h = hostfile, !FileManager.default.fileExists(atPath: h) { throw ValidationError("--hostfile: \(h) does not exist") }
        guard DivergencePolicy(rawValue: onDivergence) != nil else {
            throw ValidationError("--on-divergence: expected stop or rollback, got '\(onDivergence)'")
        }
        if resume == nil && batchSize % ranks != 0 {
            throw ValidationError("--batch-size: the global batch \(batchSize) must split evenly over --ranks \(ranks)")
        }
        if resume != nil { return }
        do { try configuration().validate() } catch let e as TrainingError { throw ValidationError(e.description) }
    }

    func run() throws {
        if ranks > 1 && !MPICommunicator.launchedByMPI {
            // The launcher waits for mpirun, which forwards SIGTERM and SIGINT to the ranks; they
            // stop together after a checkpoint and leave a `stopped` note, and this process then
            // exits as they do (status 75, whatever mpirun's own status says).
            Preemption.install()
            let launched = Date()
            do { try relaunchUnderMPI(ranks: ranks, threads: threads, hostfile: hostfile, command: "clip train") } catch let failure as ExitCode {
                let note = (resume ?? out) + "/stopped.json"
                let written = (try? FileManager.default.attributesOfItem(atPath: note))?[.modificationDate] as? Date
                if let written, written >= launched.addingTimeInterval(-1) { throw ExitCode(Preemption.exitStatus) }
                throw failure
            }
            return
        }
        let comm = try makeWorldCommunicator()
        if ranks > 1 && comm.size != ranks {
            throw ValidationError("--ranks \(ranks) but mpirun started \(comm.size) ranks")
        }
        // One rank that cannot go on must not leave the others waiting in a collective.
        if comm.isRoot, resume == nil, let path = modelConfig { printNotes(try OpenCLIPConfig.load(path: path).notes) }
        // SIGTERM / SIGINT: a checkpoint at the next step boundary, then exit status 75.
        Preemption.install()
        let trained: (Trainer?, TrainingSummary)
        do {
            trained = try abortingJobOnError(comm) { () -> (Trainer?, TrainingSummary) in
                var recorded = try resume.map { try StagedTraining.recordedConfiguration(runDirectory: $0) }
                if recorded != nil { applyOperational(to: &recorded!) }
                let config = try recorded ?? configuration()
                if config.finetune != nil {
                    let say: (String) -> Void = comm.isRoot ? { print($0); fflush(nil) } : { _ in }
                    return try StagedTraining.run(config, resume: resume != nil, threads: resume != nil ? threads : nil, communicator: comm, announce: say)
                }
                let t = try resume.map { directory -> Trainer in
                    var c = config
                    c.output = directory
                    c.threads = threads
                    return try Trainer(c, resume: true, communicator: comm)
                } ?? Trainer(config, communicator: comm)
                return (t, try t.run())
            }
        } catch TrainingError.stopped(let reason, let step, let checkpoint) {
            try (comm as? MPICommunicator)?.finalize()
            if comm.isRoot {
                FileHandle.standardError.write(Data(
                    "stopped at step \(step) (\(reason)); checkpoint \(checkpoint); continue with: clip train --resume \(resume ?? out)\n".utf8))
                // For a launcher that cannot see this process's status (mpirun reports its own).
                let note: [String: Any] = ["reason": reason, "step": step, "checkpoint": checkpoint, "exit_status": Int(Preemption.exitStatus)]
                if let json = try? JSONSerialization.data(withJSONObject: note, options: [.sortedKeys]) {
                    try? json.write(to: URL(fileURLWithPath: (resume ?? out) + "/stopped.json"), options: .atomic)
                }
            }
            throw ExitCode(Preemption.exitStatus)
        }
        let (trainer, summary) = trained
        try (comm as? MPICommunicator)?.finalize()
        guard comm.isRoot else { return }
        if trainer.map({ $0.evaluates }) ?? true {
            print(MetricsReport.table(summary.finalMetrics, title: "held-out metrics after \(summary.steps) steps (chance in brackets)",
                                      chance: trainer?.chanceLevels ?? [:]))
        } else {
            print("no held-out evaluation after \(summary.steps) steps (the shapes world's tasks apply to --data shapes:… only; give --eval-data for your own)")
        }
        print(String(format: "wall time %@, %.1f samples/s while training; run directory %@",
                     ProgressLine.duration(summary.wallSeconds), 1 / summary.trainSecondsPerSample, resume ?? out))
    }
}
