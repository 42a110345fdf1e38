// The live progress line of a long run: step, samples/s, loss and ETA, redrawn in place on a
// terminal and printed as plain lines (at most every few seconds) when the output is a file or pipe.

import Foundation

#if canImport(Glibc)
import Glibc
#endif

public final class ProgressLine {
    public let total: Int
    public let label: String
    let interactive: Bool
    let start = Date()
    var lastPrint = Date.distantPast
    let plainInterval: TimeInterval

    /// `interactive` defaults to whether standard output is a terminal.
    public init(total: Int, label: String, interactive: Bool? = nil, plainInterval: TimeInterval = 10) {
        self.total = total
        self.label = label
        self.interactive = interactive ?? (isatty(STDOUT_FILENO) != 0)
        self.plainInterval = plainInterval
    }

    /// Reports progress `done` of `total` with extra fields (e.g. ["loss": 1.23]).
    public func update(_ done: Int, samplesPerSecond: Double, fields: [(String, String)] = []) {
        let now = Date()
        let elapsed = now.timeIntervalSince(start)
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        var text = "\(label) step \(done)/\(total)  \(String(format: "%.1f", samplesPerSecond)) samples/s"
        for (k, v) in fields { text += "  \(k) \(v)" }
        text += "  ETA \(Self.duration(eta))"
        if interactive {
            print("\r\u{1B}[2K" + text, terminator: "")
            fflush(nil)
        } else if now.timeIntervalSince(lastPrint) >= plainInterval || done == total {
            print(text)
            fflush(nil)
            lastPrint = now
        }
    }

    /// Ends the in-place line (a newline on a terminal).
    public func finish() {
        if interactive {
            print("")
            fflush(nil)
        }
    }

    /// "1h02m", "3m05s", "12s".
    public static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        if t >= 3600 { return String(format: "%dh%02dm", t / 3600, (t % 3600) / 60) }
        if t >= 60 { return String(format: "%dm%02ds", t / 60, t % 60) }
        return "\(t)s"
    }
}
