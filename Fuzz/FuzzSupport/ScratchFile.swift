// What the fuzz targets share: the input written to a file, for the readers that take a path.

#if canImport(Glibc)
import Glibc
#endif

/// The scratch files this process wrote, removed when it exits normally (after a crash the file
/// stays, holding the input that crashed).
nonisolated(unsafe) private var written: Set<String> = []

/// A per-process scratch file that holds the current input, rewritten on every iteration. It lives
/// in /dev/shm (memory) when that exists, so fuzzing does not wear the disk, else in $TMPDIR.
public enum ScratchFile {
    private static let folder: String = {
        var info = stat()
        if stat("/dev/shm", &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { return "/dev/shm" }
        if let t = getenv("TMPDIR") { return String(cString: t) }
        return "/tmp"
    }()

    /// The scratch file's path for `suffix` (a file-name ending, e.g. ".tar"), now holding the
    /// `size` bytes at `data`. Stops the program if the file cannot be written: every later input
    /// would fail the same way, and a fuzzer that only sees I/O errors tests nothing.
    public static func write(_ data: UnsafePointer<UInt8>, _ size: Int, suffix: String) -> String {
        let path = "\(folder)/cliplab-fuzz-\(getpid())\(suffix)"
        if written.insert(path).inserted, written.count == 1 {
            atexit { for path in written { unlink(path) } }
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { fatalError("ScratchFile: cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var done = 0
        while done < size {
            let n = Glibc.write(fd, data + done, size - done)
            guard n > 0 else { fatalError("ScratchFile: cannot write \(path): \(String(cString: strerror(errno)))") }
            done += n
        }
        return path
    }
}
