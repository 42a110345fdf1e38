// The `clip` command run as a user runs it (swift-argument-parser's example-as-test pattern):
// exit status, the messages of invalid options, and the files the commands write.

import CLIP
import Data
import Foundation
import Testing

/// The `clip` executable built next to this test bundle.
func clipExecutable() throws -> URL {
    let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let candidates = [bundleDir.appendingPathComponent("clip"), bundleDir.deletingLastPathComponent().appendingPathComponent("clip")]
    guard let exe = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
        throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: candidates[0].path])
    }
    return exe
}

/// Runs `name` (an executable of this package, built next to `clip`); returns (status, stdout, stderr).
/// `environment` entries replace the inherited ones of the same name.
func runExecutable(_ name: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = try clipExecutable().deletingLastPathComponent().appendingPathComponent(name)
    p.arguments = arguments
    if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// Runs the `clip` executable built next to this test bundle; returns (status, stdout, stderr).
func runClip(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
    try runExecutable("clip", arguments, environment: environment)
}

@Suite("clip command line", .serialized)
struct CLITests {
    @Test("Invalid options fail with a message naming the option and the allowed range", arguments: [
        (["train", "--batch-size", "1"], "--batch-size"),
        (["train", "--model", "huge"], "nano, micro, tiny, small"),
        (["train", "--data", "imagenet"], "--data"),
        (["train", "--lr", "-1"], "--lr"),
        (["train", "--optimizer", "sgd"], "--optimizer"),
        (["train", "--threads", "0"], "--threads"),
        (["embed", "--checkpoint", "x.safetensors"], "--images"),
        (["data", "preview", "--count", "0"], "--count"),
        (["bench", "kernels", "--model", "huge"], "--model"),
        (["train", "--objective", "fastclip-v9"], "fastclip-v3"),
        (["train", "--loss", "infonce"], "--loss"),
        (["train", "--objective", "fastclip-v2", "--temperature-rule", "learnable"], "--temperature-rule"),
        (["train", "--objective", "fastclip-v3", "--gamma-min", "1.5"], "--gamma-min"),
        (["train", "--objective", "fastclip-v3", "--tau-derivative-weight", "2"], "--tau-derivative-weight"),
        (["train", "--inner-lr-schedule", "linear"], "cosine"),
        (["train", "--resume", "/nonexistent/run"], "/nonexistent/run/config.json"),
        (["train", "--image-reduction", "random:2"], "--image-reduction"),
        (["train", "--model", "tiny", "--image-reduction", "grid:3"], "does not divide the 8×8 patch grid"),
        (["train", "--text-reduction", "nouns"], "--text-reduction"),
        (["train", "--vision-pool", "max"], "--vision-pool"),
        (["train", "--finetune-epochs", "1", "--finetune-lr", "2"], "--finetune-lr"),
        (["bench", "train", "--image-reduction", "mask:1"], "--image-reduction"),
        (["train", "--experts", "4", "--top-k", "5"], "--top-k"),
        (["train", "--experts", "4", "--routing", "random"], "--routing"),
        (["train", "--experts", "4", "--towers", "audio"], "--towers"),
        (["train", "--model", "nano", "--experts", "4"], "places no mixture in its 1 blocks"),
        (["train", "--model", "nano", "--finetune-epochs", "1", "--finetune-upcycle", "--experts", "4"], "--experts / --every / --first-block"),
        (["train", "--finetune-upcycle", "--experts", "4"], "--finetune-upcycle"),
        (["upcycle", "--checkpoint", "/nonexistent/dense.safetensors", "--experts", "8", "--out", "moe.safetensors"], "/nonexistent/dense.safetensors"),
        (["upcycle", "--checkpoint", "/", "--experts", "0", "--out", "moe.safetensors"], "--experts"),
    ])
    func invalidOptions(arguments: [String], mentions: String) throws {
        let r = try runClip(arguments)
        #expect(r.status != 0)
        #expect(r.err.contains(mentions), "stderr: \(r.err)")
    }

    @Test("data preview writes a PNG contact sheet that decodes")
    func preview() throws {
        let path = NSTemporaryDirectory() + "preview-\(UUID().uuidString).png"
        let r = try runClip(["data", "preview", "--count", "4", "--columns", "2", "--out", path])
        #expect(r.status == 0, "stderr: \(r.err)")
        let image = try ImageDecoder.decode(path: path)
        #expect(image.width > 100 && image.height > 100)
    }

    @Test("train --objective with part overrides records the resolved parts in config.json")
    func objectiveOverrides() throws {
        let dir = NSTemporaryDirectory() + "cli-objective-\(UUID().uuidString)"
        let r = try runClip([
            "train", "--model", "nano", "--data", "shapes:256", "--epochs", "1", "--batch-size", "64", "--tokenizer", "trained",
            "--vocab-size", "600", "--eval-examples", "5", "--retrieval-size", "20", "--threads", "1", "--no-checkpoints",
            "--objective", "fastclip-v3", "--inner-lr-schedule", "constant", "--rho", "3.5", "--lr-tau", "0.01", "--out", dir,
        ])
        #expect(r.status == 0, "stderr: \(r.err)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/config.json"))) as? [String: Any]
        let objective = try #require((json?["training"] as? [String: Any])?["objective"] as? [String: Any])
        #expect(objective["preset"] as? String == "fastclip-v3")
        #expect(objective["loss"] as? String == "rgcl-g" && objective["temperatureRule"] as? String == "rgcl-g")
        #expect(objective["innerLRSchedule"] as? String == "constant")
        #expect(objective["rho"] as? Double == 3.5 && objective["learningRateTau"] as? Double == 0.01)
        #expect(r.out.contains("objective: fastclip-v3: loss rgcl-g"), "stdout: \(r.out)")
    }

    @Test("A missing checkpoint is reported with its path")
    func missingCheckpoint() throws {
        let r = try runClip(["eval", "--checkpoint", "/nonexistent/model.safetensors"])
        #expect(r.status != 0)
        #expect(r.err.contains("/nonexistent/model.safetensors"), "stderr: \(r.err)")
    }

    @Test("--help lists every command")
    func help() throws {
        let r = try runClip(["--help"])
        #expect(r.status == 0)
        for c in ["train", "upcycle", "eval", "embed", "data", "bench", "info"] { #expect(r.out.contains(c)) }
    }

    @Test("clip upcycle with the optimizer state, training from it, and bench train timing the mixture step beside the dense one")
    func upcycleCommand() throws {
        let base = NSTemporaryDirectory() + "cli-upcycle-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }  // runs leave hundreds of MB
        let common = ["--model", "nano", "--data", "shapes:256", "--batch-size", "64", "--tokenizer", "trained", "--vocab-size", "600",
                      "--eval-examples", "5", "--retrieval-size", "20", "--eval-every", "0", "--warmup", "2", "--threads", "1"]
        let dense = try runClip(["train"] + common + ["--epochs", "1", "--out", base + "/dense"])
        #expect(dense.status == 0, "\(dense.err)")
        let args = ["upcycle", "--checkpoint", base + "/dense/checkpoints/epoch_1.safetensors", "--experts", "4", "--top-k", "1",
                    "--gates", "probability", "--every", "1", "--first-block", "0", "--towers", "vision", "--copy-optimizer-state"]
        let up = try runClip(args + ["--out", base + "/moe.safetensors"])
        #expect(up.status == 0 && up.out.contains("1 mixture layers (visual.0), 4 experts, top-1") && up.out.contains("optimizer moments copied (step 4)"),
                "\(up.out)\n\(up.err)")
        // The moments beside the upcycled checkpoint: each expert's equal the dense MLP's.
        let state = try SafetensorsFile(path: base + "/moe.state.safetensors")
        #expect(state.metadata["optimizer_step"] == "4")
        let trained = try runClip(["train"] + common + ["--epochs", "1", "--init-from", base + "/moe.safetensors", "--init-optimizer-state", "--out", base + "/up"])
        #expect(trained.status == 0, "\(trained.err)")
        let steps = try String(contentsOfFile: base + "/up/steps.csv", encoding: .utf8)
        #expect(steps.split(separator: "\n").first?.contains("moe_dispatch_1") == true && steps.split(separator: "\n").first?.contains("moe_dispatch_2") == false)
        // A second upcycling of an upcycled checkpoint is refused.
        let again = try runClip(["upcycle", "--checkpoint", base + "/moe.safetensors", "--experts", "2", "--every", "1", "--first-block", "0", "--out", base + "/x.safetensors"])
        #expect(again.status != 0 && again.err.contains("already holds mixtures of experts"), "\(again.err)")
        let bench = try runClip(["bench", "train", "--model", "nano", "--batch-size", "16", "--steps", "2", "--warmup", "1", "--experts", "4", "--every", "1", "--first-block", "0"])
        #expect(bench.status == 0 && bench.out.contains("× the dense step (GMAC ratio"), "\(bench.out)\n\(bench.err)")
    }

    @Test("A CLIPA run: two stages in one command, resumable, and the token-reduced step timed against the full one")
    func clipaStages() throws {
        let dir = NSTemporaryDirectory() + "clip-clipa-\(UUID().uuidString)"
        let args = ["train", "--model", "nano", "--data", "shapes:256", "--batch-size", "32", "--epochs", "1", "--warmup", "2",
                    "--threads", "1", "--tokenizer", "trained", "--vocab-size", "600", "--eval-examples", "5", "--retrieval-size", "50",
                    "--image-reduction", "random:0.5", "--text-length", "8", "--text-reduction", "syntax", "--vision-pool", "average",
                    "--finetune-epochs", "1", "--out", dir]
        let r = try runClip(args)
        #expect(r.status == 0, "stderr: \(r.err)")
        #expect(r.out.contains("stage 1 of 2: pretrain") && r.out.contains("stage 2 of 2: finetune"), "\(r.out)")
        let metrics = try String(contentsOfFile: dir + "/metrics.csv", encoding: .utf8).split(separator: "\n")
        #expect(metrics.count == 4 && metrics[0].hasPrefix("stage,epoch,"), "\(metrics)")
        let again = try runClip(["train", "--resume", dir, "--threads", "1"])
        #expect(again.status == 0 && again.out.contains("stage 2 (finetune) finished earlier"), "\(again.out) \(again.err)")
        let bench = try runClip(["bench", "train", "--model", "nano", "--batch-size", "32", "--steps", "2", "--warmup", "1",
                                 "--threads", "1", "--image-reduction", "random:0.75"])
        #expect(bench.status == 0, "stderr: \(bench.err)")
        #expect(bench.out.contains("full tokens (image 17, text 16") && bench.out.contains("random:0.75, text 16 (image 5 tokens") && bench.out.contains("× full length"), "\(bench.out)")
    }
}
