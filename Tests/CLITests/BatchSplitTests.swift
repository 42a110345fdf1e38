// Batch-split threading (`clip train --thread-mode batch-split`): T shards of the batch on T
// threads, the objective computed as T ranks would and the gradients summed, must reach one
// thread's parameters and training state to rounding, with the same bounds as the mpirun jobs.

import CLIP
import Foundation
import Testing

@Suite("batch-split threads", .serialized)
struct BatchSplitTests {
    @Test("2 and 4 batch-split threads reach one thread's parameters (to rounding), for every objective preset",
          arguments: ["openclip", "sogclr", "isogclr", "fastclip-v0", "fastclip-v1", "fastclip-v2", "fastclip-v3"])
    func equalsOneThread(preset: String) throws {
        let base = NSTemporaryDirectory() + "split-\(preset)-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }  // runs leave hundreds of MB
        let common = [
            "train", "--model", "nano", "--data", "shapes:512", "--epochs", "2", "--batch-size", "64", "--tokenizer", "trained",
            "--vocab-size", "600", "--eval-examples", "5", "--retrieval-size", "20", "--eval-every", "0", "--warmup", "5",
            "--objective", preset,
        ]
        let single = try runClip(common + ["--threads", "1", "--out", base + "/single"])
        #expect(single.status == 0, "one thread: \(single.err)")
        for threads in [2, 4] {
            let out = base + "/t\(threads)"
            let r = try runClip(common + ["--threads", "\(threads)", "--thread-mode", "batch-split", "--out", out])
            #expect(r.status == 0, "\(threads) threads: \(r.err)")
            guard r.status == 0 else { continue }
            let log = try String(contentsOfFile: out + "/log.txt", encoding: .utf8)
            #expect(log.contains("\(threads) thread(s) (batch-split)"), "log: \(log)")
            let config = try String(contentsOfFile: out + "/config.json", encoding: .utf8)
            #expect(config.contains("\"thread_mode\" : \"batch-split\""), "config.json: \(config)")
            try expectSameTraining(preset: preset, reference: base + "/single", run: out, label: "T = \(threads)")
            // And not bit-identical: the shards really ran (a different summation order).
            let d = try checkpointDifference(base + "/single/checkpoints/epoch_2.safetensors", out + "/checkpoints/epoch_2.safetensors")
            #expect(d > 0, "\(preset) T = \(threads): bit-identical to one thread; did the batch split?")
        }
    }

    @Test("With a CLIPA image mask and shortened captions, 2 batch-split threads reach one thread's parameters")
    func maskedEqualsOneThread() throws {
        let base = NSTemporaryDirectory() + "split-masked-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }  // runs leave hundreds of MB
        let common = [
            "train", "--model", "nano", "--data", "shapes:512", "--epochs", "2", "--batch-size", "64", "--tokenizer", "trained",
            "--vocab-size", "600", "--eval-examples", "5", "--retrieval-size", "20", "--eval-every", "0", "--warmup", "5",
            "--image-reduction", "random:0.5", "--text-length", "8", "--text-reduction", "random",
        ]
        let single = try runClip(common + ["--threads", "1", "--out", base + "/single"])
        #expect(single.status == 0, "one thread: \(single.err)")
        let r = try runClip(common + ["--threads", "2", "--thread-mode", "batch-split", "--out", base + "/t2"])
        #expect(r.status == 0, "2 threads: \(r.err)")
        guard single.status == 0 && r.status == 0 else { return }
        try expectSameTraining(preset: "openclip", reference: base + "/single", run: base + "/t2", label: "masked, T = 2")
        let d = try checkpointDifference(base + "/single/checkpoints/epoch_2.safetensors", base + "/t2/checkpoints/epoch_2.safetensors")
        #expect(d > 0, "bit-identical to one thread; did the batch split?")
    }

    @Test("--thread-mode is validated, and batch-split refuses a batch that does not split evenly")
    func validation() throws {
        let bad = try runClip(["train", "--thread-mode", "fast", "--out", NSTemporaryDirectory() + "split-bad"])
        #expect(bad.status != 0 && bad.err.contains("--thread-mode") && bad.err.contains("batch-split"), "\(bad.err)")
        let uneven = try runClip([
            "train", "--model", "nano", "--data", "shapes:256", "--batch-size", "66", "--threads", "4", "--thread-mode", "batch-split",
            "--tokenizer", "trained", "--vocab-size", "600", "--out", NSTemporaryDirectory() + "split-uneven-\(UUID().uuidString)",
        ])
        #expect(uneven.status != 0 && uneven.err.contains("--thread-mode") && uneven.err.contains("66"), "\(uneven.err)")
    }
}
