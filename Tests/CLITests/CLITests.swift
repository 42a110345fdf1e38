// The `clip` command run as a user runs it (swift-argument-parser's example-as-test pattern):
// exit status, the messages of invalid options, and the files the commands write.

import Data
import Foundation
import Testing

/// Runs the `clip` executable built next to this test bundle; returns (status, stdout, stderr).
func runClip(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
    let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    let candidates = [bundleDir.appendingPathComponent("clip"), bundleDir.deletingLastPathComponent().appendingPathComponent("clip")]
    guard let exe = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0.path) }) else {
        throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: candidates[0].path])
    }
    let p = Process()
    p.executableURL = exe
    p.arguments = arguments
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

@Suite("clip command line", .serialized)
struct CLITests {
    @Test("Invalid options fail with a message naming the option and the allowed range", arguments: [
        (["train", "--batch-size", "1"], "--batch-size"),
        (["train", "--model", "huge"], "nano, tiny, small"),
        (["train", "--data", "imagenet"], "--data"),
        (["train", "--lr", "-1"], "--lr"),
        (["train", "--optimizer", "sgd"], "--optimizer"),
        (["train", "--threads", "0"], "--threads"),
        (["embed", "--checkpoint", "x.safetensors"], "--images"),
        (["data", "preview", "--count", "0"], "--count"),
        (["bench", "kernels", "--model", "huge"], "--model"),
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
        for c in ["train", "eval", "embed", "data", "bench", "info"] { #expect(r.out.contains(c)) }
    }
}
