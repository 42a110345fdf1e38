// Stopping a run on request, cleanly: SIGTERM (Slurm's preemption and time limit, `kill`) and
// SIGINT (Ctrl-C) set a flag that the trainer reads at each step boundary; the trainer then
// writes a checkpoint there (on every rank's agreement under MPI) and stops with
// `TrainingError.stopped`, and `clip train` exits with `Preemption.exitStatus`. A second SIGINT
// exits at once, for a person who does not want to wait for the step.

import Dispatch
import Foundation
import Synchronization

/// The stop request of this process.
public enum Preemption {
    /// The exit status of a run that stopped on request after checkpointing (EX_TEMPFAIL: "try
    /// again"): the run is resumable with `clip train --resume DIR`. Slurm recipes requeue on it.
    public static let exitStatus: Int32 = 75

    private static let signalNumber = Atomic<Int32>(0)
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []
    private static let installed = Mutex(false)

    /// The signal that asked this process to stop (SIGTERM or SIGINT), or nil.
    public static var requested: Int32? {
        let s = signalNumber.load(ordering: .acquiring)
        return s == 0 ? nil : s
    }

    /// A name for the request, for logs ("SIGTERM").
    public static var requestName: String? {
        requested.map { $0 == SIGTERM ? "SIGTERM" : $0 == SIGINT ? "SIGINT" : "signal \($0)" }
    }

    /// Asks the run to stop at its next step boundary, as a signal would (for tests and embedders).
    public static func request(_ signal: Int32 = SIGTERM) {
        signalNumber.store(signal, ordering: .releasing)
    }

    /// Clears a request (a new run in the same process starts unstopped).
    public static func reset() {
        signalNumber.store(0, ordering: .releasing)
    }

    /// Routes SIGTERM and SIGINT to the flag instead of their default (terminate); idempotent.
    public static func install() {
        installed.withLock { done in
            guard !done else { return }
            done = true
            for sig in [SIGTERM, SIGINT] {
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler {
                    if sig == SIGINT && signalNumber.load(ordering: .acquiring) == SIGINT {
                        FileHandle.standardError.write(Data("second SIGINT: exiting without a checkpoint\n".utf8))
                        exit(130)
                    }
                    signalNumber.store(sig, ordering: .releasing)
                    FileHandle.standardError.write(Data("\(sig == SIGTERM ? "SIGTERM" : "SIGINT"): stopping at the next step boundary after a checkpoint (SIGINT again to exit at once)\n".utf8))
                }
                source.resume()
                sources.append(source)
            }
        }
    }
}
