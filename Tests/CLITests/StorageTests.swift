// A full disk and bad storage, as a nightly job meets them: `clip` under a file-size limit
// (`ulimit -f`, RLIMIT_FSIZE: a write past it fails with EFBIG, "File too large", as a write to a
// full disk fails with ENOSPC), and a checkpoint with a damaged byte. Nothing written before may
// be lost, nothing may be left half-written, and the errors must say which file and why.

import CLIP
import Foundation
import Testing

/// Runs `clip` under `/bin/sh -c 'ulimit -f BLOCKS; exec clip …'`; returns the exit status, whether
/// it exited (rather than being killed by a signal) and its standard error.
///
/// TMPDIR names no folder in that process. `clip train` and `clip data export` use none, and a
/// ThreadSanitizer build would otherwise die at start-up: its runtime writes a 512 KiB file
/// (`$TMPDIR/tsan.rodata.PID`, the shadow of read-only data) and maps it whole, so the write cut
/// short by the limit ends in SIGBUS. Without a temporary folder it skips that file.
private func runClipLimited(fileSizeBlocks blocks: Int, _ arguments: [String]) throws -> (status: Int32, exited: Bool, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", "ulimit -f \(blocks) && exec \"$0\" \"$@\"", try clipExecutable().path] + arguments
    p.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": "/nonexistent/cliplab-no-temporary-folder"]) { $1 }
    let err = Pipe()
    p.standardOutput = FileHandle.nullDevice
    p.standardError = err
    try p.run()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, p.terminationReason == .exit, String(decoding: e, as: UTF8.self))
}

/// The size of the file at `path` in bytes.
private func fileSize(_ path: String) throws -> Int {
    try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
}

/// The names in `folder` that are temporary files of the atomic writer (`.<name>.tmp-…`).
private func temporaryFiles(in folder: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.contains(".tmp-") }
}

@Suite("Full disk and bad storage", .serialized)
struct StorageTests {
    // `ulimit -f` counts 512-byte blocks in dash (Debian's /bin/sh) and 1024-byte ones in bash;
    // each limit below holds for both: the small files fit, the large ones do not.

    @Test("clip train resumed onto a full disk: the epoch's checkpoint fails naming the file and the reason, the previous one stays loadable, no temporary file is left, and a later resume finishes")
    func trainOnFullDisk() throws {
        let dir = NSTemporaryDirectory() + "clip-full-disk-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let checkpoints = dir + "/checkpoints"
        let train = ["train", "--model", "nano", "--data", "shapes:256", "--epochs", "3", "--batch-size", "64", "--tokenizer", "trained",
                     "--vocab-size", "600", "--eval-examples", "5", "--retrieval-size", "20", "--warmup", "2", "--threads", "1", "--out", dir]
        let first = try runClip(train)
        #expect(first.status == 0, "\(first.err)")
        // A run stopped after its first epoch: its later checkpoints are not there yet.
        for epoch in [2, 3] {
            for suffix in [".safetensors", ".state.safetensors"] { try FileManager.default.removeItem(atPath: "\(checkpoints)/epoch_\(epoch)\(suffix)") }
        }
        let model = checkpoints + "/epoch_1.safetensors", state = checkpoints + "/epoch_1.state.safetensors"
        let before = try [model, state].map { try Data(contentsOf: URL(fileURLWithPath: $0)) }
        // The sizes the limit sits between: every file of the run but the checkpoints is small.
        let small = try ["config.json", "metrics.csv", "steps.csv", "log.txt"].map { try fileSize(dir + "/" + $0) }.max()!
        let largest = try fileSize(model)
        #expect(small < 51_200 && largest > 102_400, "small files up to \(small) bytes, the checkpoint \(largest)")

        // Resumed with room for the logs but not for a checkpoint (100 blocks: 50 or 100 KiB).
        let full = try runClipLimited(fileSizeBlocks: 100, ["train", "--resume", dir, "--threads", "1"])
        #expect(full.exited, "clip was killed by signal \(full.status) instead of failing the write: \(full.err)")
        #expect(full.status != 0)
        #expect(full.err.contains("\(checkpoints)/epoch_2.safetensors") && full.err.contains("File too large"), "\(full.err)")
        #expect(try temporaryFiles(in: checkpoints) == [])
        #expect(try temporaryFiles(in: dir) == [])
        #expect(!FileManager.default.fileExists(atPath: checkpoints + "/epoch_2.safetensors"))
        // Epoch 1's checkpoint and state are untouched and load.
        #expect(try [model, state].map { try Data(contentsOf: URL(fileURLWithPath: $0)) } == before)
        let loaded = try CLIPModel<Float>.load(from: model)
        #expect(loaded.store.values.count > 0)
        let stateFile = try SafetensorsFile(path: state)
        #expect(try stateFile.doubles("optimizer.first_moment").count == loaded.store.values.count)
        let eval = try runClip(["eval", "--checkpoint", model, "--eval-examples", "5", "--retrieval-size", "20", "--threads", "1"])
        #expect(eval.status == 0, "\(eval.err)")

        // With room again, the run resumes from epoch 1 and finishes; metrics.csv has each epoch once
        // (0 is the evaluation before training).
        let again = try runClip(["train", "--resume", dir, "--threads", "1"])
        #expect(again.status == 0, "\(again.err)")
        #expect(again.out.contains("resumed after epoch 1"), "\(again.out)")
        let rows = try String(contentsOfFile: dir + "/metrics.csv", encoding: .utf8).split(separator: "\n").dropFirst()
        #expect(rows.map { $0.split(separator: ",").first.map(String.init) } == ["0", "1", "2", "3"], "\(rows)")
        #expect(try CLIPModel<Float>.load(from: checkpoints + "/epoch_3.safetensors").config == loaded.config)
    }

    @Test("A data shard that does not fit leaves the old shard as it was and no temporary file, and the error names the shard and the reason")
    func exportOnFullDisk() throws {
        let dir = NSTemporaryDirectory() + "clip-full-export-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let export = ["data", "export", "--data", "shapes:200", "--shard-size", "200", "--out", dir]
        let first = try runClip(export)
        #expect(first.status == 0, "\(first.err)")
        let shard = dir + "/shapes-000000.tar"
        let old = try Data(contentsOf: URL(fileURLWithPath: shard))
        #expect(old.count > 102_400, "\(old.count) bytes")
        let full = try runClipLimited(fileSizeBlocks: 100, export + ["--data-seed", "1"])
        #expect(full.exited && full.status != 0, "status \(full.status): \(full.err)")
        #expect(full.err.contains(shard) && full.err.contains("File too large"), "\(full.err)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: shard)) == old)
        #expect(try temporaryFiles(in: dir) == [])
    }

    @Test("clip eval of a checkpoint with a damaged byte fails, naming the file, the tensor and both checksums")
    func damagedCheckpoint() throws {
        let dir = NSTemporaryDirectory() + "clip-damaged-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/model.safetensors"
        let model = try CLIPModel<Float>(#require(CLIPConfiguration.preset("nano", vocabularySize: 100)))
        model.initialize(seed: 3)
        try model.save(to: path)
        let file = try SafetensorsFile(path: path)
        let name = "token_embedding.weight", stored = try #require(file.checksums[name])
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let n = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let entry = try #require(file.entries[name])
        let at = 8 + n + entry.begin + 7
        bytes[at] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: path))
        let r = try runClip(["eval", "--checkpoint", path, "--eval-examples", "5", "--retrieval-size", "20", "--threads", "1"])
        #expect(r.status != 0)
        #expect(r.err.contains(path) && r.err.contains("'\(name)'") && r.err.contains(String(format: "%08x", stored)), "\(r.err)")
    }
}
