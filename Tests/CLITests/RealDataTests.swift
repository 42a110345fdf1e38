// Training on real data (`clip train --data wds:… | csv:…`): shards and tables written by
// `clip data export` train; damaged samples are left out and counted per reason, or stop the
// run with where and why; a CSV without its declared columns fails before training; batch-split
// threads on real data reach one thread's parameters.

import Data
import Foundation
import Testing

@Suite("real data: clip train --data wds:/csv:", .serialized)
struct RealDataTests {
    static let common = [
        "train", "--model", "nano", "--epochs", "2", "--batch-size", "32", "--tokenizer", "trained", "--vocab-size", "600",
        "--warmup", "3", "--threads", "1",
    ]

    /// A shard of `good` valid samples, then one sample of each kind of damage, then a truncated
    /// final member; returns the shard's path.
    static func damagedShard(in folder: String, good: Int) throws -> String {
        var tar = TarWriter()
        for i in 0..<good {
            let image = RGBImage(width: 20 + i % 7, height: 16 + i % 5, fill: (UInt8(i * 37 % 256), UInt8(i * 91 % 256), UInt8(255 - i % 200)))
            tar.append(name: String(format: "%06d.png", i), data: PNGWriter.encode(image))
            tar.append(name: String(format: "%06d.txt", i), data: Array("a picture number \(i) in colour \(i % 9)".utf8))
        }
        let png = PNGWriter.encode(RGBImage(width: 8, height: 8))
        tar.append(name: "bad-image.png", data: Array(png.prefix(20)) + [1, 2, 3, 4, 5, 6, 7, 8])  // a PNG cut short
        tar.append(name: "bad-image.txt", data: Array("an image that does not decode".utf8))
        tar.append(name: "empty-caption.png", data: png)
        tar.append(name: "empty-caption.txt", data: Array("   \n".utf8))
        tar.append(name: "latin1-caption.png", data: png)
        tar.append(name: "latin1-caption.txt", data: [0x63, 0x61, 0x66, 0xE9])  // "café" in Latin-1
        tar.append(name: "no-image.txt", data: Array("a caption without its image".utf8))
        tar.append(name: "no-caption.png", data: png)
        tar.append(name: "json-caption.png", data: png)
        tar.append(name: "json-caption.json", data: Array(#"{"caption": "a caption from the json member"}"#.utf8))
        tar.append(name: "cut.png", data: png)
        var bytes = tar.finished()
        // Cut inside the last member's data: its header promises more than the file holds.
        while bytes.last == 0 { bytes.removeLast() }
        bytes.removeLast(30)
        let path = folder + "/damaged-000000.tar"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("Damaged samples are left out and counted per reason (skip), or stop the run naming shard, member and reason (fail)")
    func badSamplePolicies() throws {
        let folder = NSTemporaryDirectory() + "realdata-bad-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let shard = try Self.damagedShard(in: folder, good: 64)
        let skip = try runClip(Self.common + ["--data", "wds:\(shard)", "--out", folder + "/skip"])
        #expect(skip.status == 0, "\(skip.err)")
        guard skip.status == 0 else { return }
        let log = try String(contentsOfFile: folder + "/skip/log.txt", encoding: .utf8)
        // 64 good + the json-captioned one; left out: 1 bad image, 2 bad captions, 1 missing image,
        // 1 missing caption, 1 unreadable (the truncated member).
        #expect(log.contains("65 pairs in 1 shard(s)"), "\(log)")
        #expect(log.contains("left out 6 (1 unreadable, 1 missing_image, 1 bad_image, 1 missing_caption, 2 bad_caption)"), "\(log)")
        #expect(log.contains("latin1-caption") && log.contains("not valid UTF-8"), "\(log)")
        let metrics = try String(contentsOfFile: folder + "/skip/metrics.csv", encoding: .utf8).split(separator: "\n")
        let header = metrics[0].split(separator: ",").map(String.init)
        let last = metrics.last!.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        for (column, expected) in [("skipped_unreadable", 1), ("skipped_missing_image", 1), ("skipped_bad_image", 1),
                                   ("skipped_missing_caption", 1), ("skipped_bad_caption", 2)] {
            let i = try #require(header.firstIndex(of: column), "no \(column) in \(header)")
            #expect(Double(last[i]) == Double(expected), "\(column): \(last[i])")
        }
        let config = try String(contentsOfFile: folder + "/skip/config.json", encoding: .utf8)
        #expect(config.contains("\"samples\" : 65"), "\(config)")

        let fail = try runClip(Self.common + ["--data", "wds:\(shard)", "--bad-sample", "fail", "--out", folder + "/fail"])
        #expect(fail.status != 0)
        #expect(fail.err.contains("damaged-000000.tar") && fail.err.contains("--bad-sample skip"), "\(fail.err)")
        #expect(!FileManager.default.fileExists(atPath: folder + "/fail/metrics.csv"), "the failed run started training")
    }

    @Test("Exported shards (PNG) and a TSV (JPEG) train; a CSV without its declared columns fails before training")
    func exportedDataTrains() throws {
        let folder = NSTemporaryDirectory() + "realdata-export-\(UUID().uuidString)"
        let wds = try runClip(["data", "export", "--data", "shapes:96", "--image-size", "24", "--shard-size", "40", "--out", folder + "/wds"])
        #expect(wds.status == 0 && wds.out.contains("shapes-{000000..000002}.tar"), "\(wds.out) \(wds.err)")
        let csv = try runClip(["data", "export", "--data", "shapes:64", "--format", "csv", "--image-format", "jpg", "--image-size", "24", "--out", folder + "/csv"])
        #expect(csv.status == 0, "\(csv.err)")
        let a = try runClip(Self.common + ["--data", "wds:\(folder)/wds/shapes-{000000..000002}.tar", "--out", folder + "/a"])
        #expect(a.status == 0, "\(a.err)")
        #expect(a.out.contains("no held-out evaluation"), "\(a.out)")
        let b = try runClip(Self.common + ["--data", "csv:\(folder)/csv/train.tsv", "--out", folder + "/b"])
        #expect(b.status == 0, "\(b.err)")
        if b.status == 0 {
            let log = try String(contentsOfFile: folder + "/b/log.txt", encoding: .utf8)
            #expect(log.contains("64 pairs in 1 shard(s)") && !log.contains("left out"), "\(log)")
        }
        let wrong = try runClip(Self.common + ["--data", "csv:\(folder)/csv/train.tsv", "--csv-caption-key", "caption", "--out", folder + "/c"])
        #expect(wrong.status != 0 && wrong.err.contains("caption") && wrong.err.contains("title"), "\(wrong.err)")
        #expect(!FileManager.default.fileExists(atPath: folder + "/c/metrics.csv"))
    }

    @Test("On real data, 2 batch-split threads reach one thread's parameters; the crops depend on the epoch")
    func batchSplitOnRealData() throws {
        let folder = NSTemporaryDirectory() + "realdata-split-\(UUID().uuidString)"
        let wds = try runClip(["data", "export", "--data", "shapes:128", "--image-size", "40", "--shard-size", "64", "--out", folder + "/wds"])
        #expect(wds.status == 0, "\(wds.err)")
        let common = [
            "train", "--model", "nano", "--epochs", "2", "--batch-size", "64", "--tokenizer", "trained", "--vocab-size", "600", "--warmup", "3",
            "--data", "wds:\(folder)/wds/shapes-{000000..000001}.tar",
        ]
        let one = try runClip(common + ["--threads", "1", "--out", folder + "/t1"])
        let two = try runClip(common + ["--threads", "2", "--thread-mode", "batch-split", "--out", folder + "/t2"])
        #expect(one.status == 0 && two.status == 0, "\(one.err) \(two.err)")
        guard one.status == 0, two.status == 0 else { return }
        try expectSameTraining(preset: "openclip", reference: folder + "/t1", run: folder + "/t2", label: "real data, T = 2")
    }

    @Test("clip eval --data --zero-shot and clip train --eval-data: a model trained on exported shards beats chance on retrieval and colour classes, also on a held-out set during training; bad classes files are refused")
    func evaluateOnRealData() throws {
        let folder = NSTemporaryDirectory() + "realdata-eval-\(UUID().uuidString)"
        let wds = try runClip(["data", "export", "--data", "shapes:1200", "--image-size", "32", "--shard-size", "600", "--out", folder + "/wds"])
        #expect(wds.status == 0 && FileManager.default.fileExists(atPath: folder + "/wds/classes.json"), "\(wds.err)")
        let data = "wds:\(folder)/wds/shapes-{000000..000001}.tar"
        let train = try runClip([
            "train", "--model", "nano", "--data", data, "--epochs", "30", "--batch-size", "64", "--tokenizer", "trained", "--vocab-size", "600",
            "--threads", "2", "--lr", "2e-3", "--warmup", "20", "--out", folder + "/run",
        ])
        #expect(train.status == 0, "\(train.err)")
        guard train.status == 0 else { return }
        let checkpoint = folder + "/run/checkpoints/epoch_30.safetensors"
        let r = try runClip(["eval", "--checkpoint", checkpoint, "--data", data, "--zero-shot", folder + "/wds/classes.json", "--retrieval-size", "500"])
        #expect(r.status == 0, "\(r.err)")
        func value(_ name: String) -> Double? {
            r.out.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { line in
                line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Double($0) }
            }
        }
        // Chance: 1/10 for the colour classes, 10/500 for R@10.
        #expect(r.out.contains("[0.100]") && r.out.contains("[0.020]"), "\(r.out)")
        #expect((value("zeroshot_top1") ?? 0) > 0.2, "\(r.out)")
        #expect((value("retrieval_i2t_r10") ?? 0) > 0.2 && (value("retrieval_t2i_r10") ?? 0) > 0.2, "\(r.out)")

        try Data(#"{"classes": ["only one"], "templates": ["a {}"]}"#.utf8).write(to: URL(fileURLWithPath: folder + "/one.json"))
        let one = try runClip(["eval", "--checkpoint", checkpoint, "--data", data, "--zero-shot", folder + "/one.json"])
        #expect(one.status != 0 && one.err.contains("--zero-shot") && one.err.contains("at least 2"), "\(one.err)")
        try Data(#"{"classes": ["a", "b"], "templates": ["no placeholder"]}"#.utf8).write(to: URL(fileURLWithPath: folder + "/tpl.json"))
        let tpl = try runClip(["eval", "--checkpoint", checkpoint, "--data", data, "--zero-shot", folder + "/tpl.json"])
        #expect(tpl.status != 0 && tpl.err.contains("{}"), "\(tpl.err)")
        let missing = try runClip(["eval", "--checkpoint", checkpoint, "--data", data, "--zero-shot", folder + "/absent.json"])
        #expect(missing.status != 0 && missing.err.contains("cannot read") && missing.err.contains("absent.json"), "\(missing.err)")
        // Classes 0…9 in the shards, only 2 in the file.
        try Data(#"{"classes": ["red", "blue"], "templates": ["a {} shape"]}"#.utf8).write(to: URL(fileURLWithPath: folder + "/two.json"))
        let outside = try runClip(["eval", "--checkpoint", checkpoint, "--data", data, "--zero-shot", folder + "/two.json"])
        #expect(outside.status != 0 && outside.err.contains("outside the 2 classes"), "\(outside.err)")
        let noData = try runClip(["eval", "--checkpoint", checkpoint, "--zero-shot", folder + "/two.json"])
        #expect(noData.status != 0 && noData.err.contains("--zero-shot needs --data"), "\(noData.err)")

        // During training: a held-out set of another data seed, evaluated every 10 epochs.
        let val = try runClip(["data", "export", "--data", "shapes:400", "--data-seed", "7", "--image-size", "32", "--out", folder + "/val"])
        #expect(val.status == 0, "\(val.err)")
        let heldOut = try runClip([
            "train", "--model", "nano", "--data", data, "--eval-data", "wds:\(folder)/val/shapes-000000.tar", "--zero-shot", folder + "/val/classes.json",
            "--epochs", "30", "--eval-every", "10", "--retrieval-size", "400", "--batch-size", "64", "--tokenizer", "trained", "--vocab-size", "600",
            "--threads", "2", "--lr", "2e-3", "--warmup", "20", "--out", folder + "/held-out",
        ])
        #expect(heldOut.status == 0, "\(heldOut.err)")
        guard heldOut.status == 0 else { return }
        let rows = try String(contentsOfFile: folder + "/held-out/metrics.csv", encoding: .utf8).split(separator: "\n").map {
            $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        let zs = try #require(rows[0].firstIndex(of: "zeroshot_top1")), r10 = try #require(rows[0].firstIndex(of: "retrieval_i2t_r10"))
        let evaluated = rows.dropFirst().filter { !(Double($0[zs])?.isNaN ?? true) }.map { $0[0] }
        #expect(evaluated == ["0", "10", "20", "30"], "rows with an evaluation: \(evaluated)")
        let last = rows.last!
        #expect((Double(last[zs]) ?? 0) > 0.2 && (Double(last[r10]) ?? 0) > 0.1, "held-out zero-shot \(last[zs]), R@10 \(last[r10]) (chance 0.1, 0.025)")
        #expect(heldOut.out.contains("zeroshot_top1") && heldOut.out.contains("[0.100]"), "\(heldOut.out)")
        let orphan = try runClip(["train", "--model", "nano", "--data", data, "--zero-shot", folder + "/val/classes.json", "--out", folder + "/orphan"])
        #expect(orphan.status != 0 && orphan.err.contains("--zero-shot") && orphan.err.contains("--eval-data"), "\(orphan.err)")
    }
}
