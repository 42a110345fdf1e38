// The one way ClipLab writes a file that a later reader trusts (checkpoints, state files,
// config.json, shards, PNGs, TSV and JSON files, study outputs): a temporary file in the
// destination's folder, every byte written, fsync, rename over the destination, fsync of the
// folder. A crash, a full disk or a file-size limit leaves either the old file or the complete
// new one, never a part of it, and no temporary file: on any failure the temporary file is
// removed and the error names the destination and the system's reason ("No space left on
// device", "File too large").
//
// Files that grow row by row (metrics.csv, steps.csv, log.txt, a study's run logs) are appended
// to in place instead, each row flushed as it is written: a failed append loses that row only.
//
// It lives in Compute, the lowest module, so that every module that writes files can use it.

import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file that could not be written: the destination, the step that failed and the system's
/// reason. Whatever the step, the destination holds what it held before (the temporary file is
/// removed), except after `folderSync`, when the new file is in place but may not survive a crash.
public struct FileWriteError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Step: String, Sendable {
        case create = "cannot create a temporary file beside it"
        case write = "cannot write"
        case sync = "cannot fsync"
        case close = "cannot close"
        case rename = "cannot rename the temporary file into place"
        case folderSync = "written, but cannot fsync its folder"
    }
    /// The destination file.
    public let path: String
    public let step: Step
    /// The `errno` of the failed call.
    public let code: Int32
    /// The system's text for `code`, e.g. "No space left on device".
    public var reason: String { String(cString: strerror(code)) }
    /// The step and the reason, e.g. "cannot write: File too large".
    public var problem: String { "\(step.rawValue): \(reason)" }

    public init(path: String, step: Step, code: Int32) {
        self.path = path
        self.step = step
        self.code = code
    }

    /// "path: step: reason".
    public var description: String { "\(path): \(problem)" }
}

/// Where `writeAtomically(to:_:)` sends the bytes: the temporary file.
public struct AtomicFileSink {
    let fd: Int32
    let path: String

    /// Appends `bytes` to the temporary file (the whole buffer: short writes are continued).
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        guard var base = bytes.baseAddress else { return }
        var left = bytes.count
        while left > 0 {
            let n = systemWrite(fd, base, left)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileWriteError(path: path, step: .write, code: errno)
            }
            base += n
            left -= n
        }
    }

    /// Appends `bytes` (a `Data`, a `[UInt8]`, …).
    public func write(_ bytes: some ContiguousBytes) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }
}

/// Writes the file at `path` from what `body` sends to its sink, atomically: the bytes go to a
/// temporary file `.<name>.tmp-<pid>-<random>` in the same folder (created with mode 0666 less
/// the umask), which is fsynced, closed and renamed over `path`; then the folder is fsynced so
/// that the rename itself is durable. If `body` or any step fails, the temporary file is removed
/// and the error is rethrown (a `FileWriteError` for the system calls), and `path` is untouched.
///
/// Writing past the process's file-size limit (RLIMIT_FSIZE) raises SIGXFSZ, which ends a process
/// that has not set it to be ignored; with it ignored, the write fails with EFBIG ("File too
/// large") like any other error (`clip` and `study` ignore it).
public func writeAtomically(to path: String, _ body: (AtomicFileSink) throws -> Void) throws {
    let slash = path.lastIndex(of: "/")
    let folder = slash.map { String(path[..<$0]) } ?? "."
    let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
    guard !name.isEmpty else { throw FileWriteError(path: path, step: .create, code: EISDIR) }
    let folderPath = folder.isEmpty ? "/" : folder
    // At most 200 bytes of the name, so that the temporary one stays within NAME_MAX (255).
    let stem = name.utf8.count > 200 ? String(decoding: name.utf8.prefix(200), as: UTF8.self) : name
    var temporary = ""
    var fd: Int32 = -1
    for _ in 0..<100 {
        temporary = "\(folderPath)/.\(stem).tmp-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        if fd >= 0 || errno != EEXIST { break }
    }
    guard fd >= 0 else { throw FileWriteError(path: path, step: .create, code: errno) }
    var isOpen = true
    do {
        try body(AtomicFileSink(fd: fd, path: path))
        guard fsync(fd) == 0 else { throw FileWriteError(path: path, step: .sync, code: errno) }
        isOpen = false
        // close can report a deferred write error (NFS); the descriptor is released either way.
        guard close(fd) == 0 else { throw FileWriteError(path: path, step: .close, code: errno) }
        guard rename(temporary, path) == 0 else { throw FileWriteError(path: path, step: .rename, code: errno) }
    } catch {
        if isOpen { close(fd) }
        unlink(temporary)
        throw error
    }
    let directory = open(folderPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard directory >= 0 else { return }  // a folder we may write but not read: nothing to sync with
    defer { close(directory) }
    // Some file systems cannot fsync a folder (EINVAL); that is no failure of this write.
    if fsync(directory) != 0 {
        let code = errno
        if code != EINVAL && code != ENOTSUP { throw FileWriteError(path: path, step: .folderSync, code: code) }
    }
}

/// write(2), named apart from `AtomicFileSink.write`.
private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int { write(fd, bytes, count) }

/// Writes `bytes` (a `Data`, a `[UInt8]`, …) to `path` atomically (see `writeAtomically(to:_:)`).
public func writeAtomically(_ bytes: some ContiguousBytes, to path: String) throws {
    try writeAtomically(to: path) { try $0.write(bytes) }
}

/// Writes `text` as UTF-8 to `path` atomically (see `writeAtomically(to:_:)`).
public func writeAtomically(_ text: String, to path: String) throws {
    try writeAtomically(Array(text.utf8), to: path)
}
