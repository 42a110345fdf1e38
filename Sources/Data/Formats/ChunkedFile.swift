// A file read front to back in fixed-size chunks with POSIX read(), or at explicit offsets with
// pread(): the byte source under the tar and CSV readers, which never hold a whole file in memory.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// POSIX read(), under a name the methods called `read` do not hide.
private func systemRead(_ fd: Int32, _ destination: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, destination, count)
}

/// A failure of an open, read or seek: the text of `errno` and what was being done. Callers turn
/// it into their own error type, which names the file.
struct FileReadFailure: Error {
    let problem: String
}

/// An open file with a logical position.
///
/// Sequential mode (`chunkSize > 0`): bytes come from read() through a buffer of `chunkSize`
/// bytes; `skip` uses lseek past whatever the buffer does not hold (on files that are not regular,
/// such as pipes, it reads and discards). Positional mode (`chunkSize == 0`): every read is one
/// pread() at the position, and `skip` only moves the position — nothing skipped is read.
final class ChunkedFile {
    let path: String
    /// The file's size when it was opened (0 for pipes and other non-regular files).
    let size: Int
    /// Whether lseek and pread work (a regular file).
    let seekable: Bool
    /// The offset of the next byte `read` returns.
    private(set) var position = 0

    private let fd: Int32
    private let chunkSize: Int
    private var buffer: [UInt8]
    private var bufferNext = 0
    private var bufferEnd = 0

    /// Opens `path` read-only.
    init(path: String, chunkSize: Int = 1 << 16) throws(FileReadFailure) {
        self.path = path
        self.chunkSize = chunkSize
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileReadFailure(problem: "cannot open (\(ChunkedFile.errorText()))") }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let failure = FileReadFailure(problem: "cannot stat (\(ChunkedFile.errorText()))")
            close(fd)
            throw failure
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            close(fd)
            throw FileReadFailure(problem: "is a directory")
        }
        seekable = (info.st_mode & S_IFMT) == S_IFREG
        size = seekable ? Int(info.st_size) : 0
        precondition(chunkSize > 0 || seekable, "ChunkedFile: positional reads need a regular file")
        buffer = [UInt8](repeating: 0, count: max(chunkSize, 0))
    }

    deinit { close(fd) }

    static func errorText() -> String { String(cString: strerror(errno)) }

    /// Up to `count` bytes from the position on; fewer only where the file ends (for a regular
    /// file, where it ended when it was opened).
    func read(_ count: Int) throws(FileReadFailure) -> [UInt8] {
        precondition(count >= 0)
        // A regular file holds no more than `size - position` bytes: the buffer is allocated for
        // those, not for `count`, so a damaged tar header that declares a 1 GiB member in a file of
        // a few kilobytes does not allocate a gigabyte.
        let wanted = seekable ? min(count, max(size - position, 0)) : count
        if wanted == 0 { return [] }
        var out = [UInt8](repeating: 0, count: wanted)
        let got = try out.withUnsafeMutableBytes { destination in
            Result { () throws(FileReadFailure) -> Int in try fill(destination.baseAddress!, count: wanted) }
        }.get()
        if got < wanted { out.removeLast(wanted - got) }
        return out
    }

    /// Moves the position on by up to `count` bytes without reading them where the file allows;
    /// returns how far it moved (less than `count` only where the file ends).
    func skip(_ count: Int) throws(FileReadFailure) -> Int {
        precondition(count >= 0)
        if chunkSize == 0 {
            let moved = min(count, max(size - position, 0))
            position += moved
            return moved
        }
        let fromBuffer = min(count, bufferEnd - bufferNext)
        bufferNext += fromBuffer
        position += fromBuffer
        var remaining = count - fromBuffer
        if remaining == 0 { return count }
        if seekable {
            // The descriptor stands at `position` once the buffer is empty.
            let moved = min(remaining, max(size - position, 0))
            guard lseek(fd, off_t(position + moved), SEEK_SET) >= 0 else {
                throw FileReadFailure(problem: "cannot seek to byte \(position + moved) (\(ChunkedFile.errorText()))")
            }
            position += moved
            return fromBuffer + moved
        }
        var discard = [UInt8](repeating: 0, count: min(remaining, 1 << 16))
        while remaining > 0 {
            let want = min(remaining, discard.count)
            let got = try discard.withUnsafeMutableBytes { scratch in
                Result { () throws(FileReadFailure) -> Int in try fill(scratch.baseAddress!, count: want) }
            }.get()
            remaining -= got
            if got < want { break }
        }
        return count - remaining
    }

    /// Exactly the bytes `offset..<offset+count` with pread (fewer where the file ends); the
    /// position does not move. Safe to call from several threads at once.
    func read(at offset: Int, count: Int) throws(FileReadFailure) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, count - got, off_t(offset + got)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileReadFailure(problem: "cannot read at byte \(offset + got) (\(ChunkedFile.errorText()))")
            }
            if n == 0 { break }
            got += n
        }
        if got < count { out.removeLast(count - got) }
        return out
    }

    /// Copies up to `count` bytes to `destination`, advancing the position; returns the count
    /// copied (less only at the end of the file).
    private func fill(_ destination: UnsafeMutableRawPointer, count: Int) throws(FileReadFailure) -> Int {
        if chunkSize == 0 {
            let bytes = try read(at: position, count: count)
            bytes.withUnsafeBytes { destination.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            position += bytes.count
            return bytes.count
        }
        var copied = 0
        while copied < count {
            if bufferNext == bufferEnd {
                if count - copied >= chunkSize {
                    // A large request: straight into the destination, past the buffer.
                    let n = try readSome(destination + copied, count: count - copied)
                    if n == 0 { break }
                    copied += n
                    position += n
                    continue
                }
                let n = try buffer.withUnsafeMutableBytes { storage in
                    Result { () throws(FileReadFailure) -> Int in try readSome(storage.baseAddress!, count: chunkSize) }
                }.get()
                if n == 0 { break }
                bufferNext = 0
                bufferEnd = n
            }
            let take = min(count - copied, bufferEnd - bufferNext)
            buffer.withUnsafeBytes { destination.advanced(by: copied).copyMemory(from: $0.baseAddress! + bufferNext, byteCount: take) }
            bufferNext += take
            copied += take
            position += take
        }
        return copied
    }

    /// One read() of at most `count` bytes (retried on EINTR); 0 at the end of the file.
    private func readSome(_ destination: UnsafeMutableRawPointer, count: Int) throws(FileReadFailure) -> Int {
        while true {
            let n = systemRead(fd, destination, count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw FileReadFailure(problem: "cannot read at byte \(position) (\(ChunkedFile.errorText()))")
        }
    }
}
