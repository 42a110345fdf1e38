// Compute's `writeAtomically`, the one writer of every file a later reader trusts: the new bytes
// replace the old file whole, and a failure at any step leaves the old file and no temporary one.
// (A write that fails for lack of room, EFBIG under a file-size limit, is tested end to end in
// Tests/CLITests/StorageTests.swift, in a child process with `ulimit -f`.)

import Compute
import Foundation
import Testing

@Suite("Atomic file writes")
struct AtomicWriteTests {
    func temporaryFolder() throws -> String {
        let d = NSTemporaryDirectory() + "cliplab-atomic-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    func names(_ folder: String) throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: folder).sorted() }

    @Test("Writing replaces the file whole, leaves only it in the folder, readable by group and others")
    func replaces() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/table.csv"
        try writeAtomically("a,b\n1,2\n", to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "a,b\n1,2\n")
        try writeAtomically([UInt8](repeating: 7, count: 100_000), to: path)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(repeating: 7, count: 100_000))
        try writeAtomically(to: path) { sink in
            try sink.write(Data("x".utf8))
            try sink.write([UInt8]("yz".utf8))
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "xyz")
        #expect(try names(folder) == ["table.csv"])
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode.map { $0 & 0o044 } == 0o044)
    }

    @Test("A failure halfway through leaves the old file as it was and no temporary file")
    func failureKeepsOldFile() throws {
        struct Interrupted: Error {}
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/epoch_1.safetensors"
        try writeAtomically("the old contents", to: path)
        var sawTemporary = false
        #expect(throws: Interrupted.self) {
            try writeAtomically(to: path) { sink in
                try sink.write([UInt8](repeating: 1, count: 1 << 20))
                // The bytes so far are in a temporary file beside the destination.
                sawTemporary = try names(folder).contains { $0.hasPrefix(".epoch_1.safetensors.tmp-") }
                throw Interrupted()
            }
        }
        #expect(sawTemporary)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "the old contents")
        #expect(try names(folder) == ["epoch_1.safetensors"])
    }

    @Test("A failing system call throws an error naming the destination, the step and the system's reason, and leaves no temporary file")
    func systemErrors() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // No such folder: the temporary file cannot be created.
        let missing = folder + "/no/such/metrics.json"
        do {
            try writeAtomically("{}", to: missing)
            Issue.record("wrote into a folder that does not exist")
        } catch let e as FileWriteError {
            #expect(e.path == missing && e.step == .create && e.code == ENOENT)
            #expect(e.description == "\(missing): cannot create a temporary file beside it: No such file or directory")
        }
        // The destination is a folder that holds a file: the rename fails after every byte was
        // written, and the temporary file goes.
        let occupied = folder + "/config.json"
        try FileManager.default.createDirectory(atPath: occupied, withIntermediateDirectories: true)
        try writeAtomically("keep", to: occupied + "/inside")
        do {
            try writeAtomically("{}", to: occupied)
            Issue.record("renamed a file over a folder")
        } catch let e as FileWriteError {
            #expect(e.path == occupied && e.step == .rename && e.code == EISDIR)
            #expect(e.description.hasPrefix("\(occupied): cannot rename the temporary file into place: "))
        }
        #expect(try names(folder) == ["config.json"])
        #expect(try String(contentsOfFile: occupied + "/inside", encoding: .utf8) == "keep")
    }
}
