// Thread-count control for the two kinds of parallel work in a step: OpenBLAS's own threads for
// matrix products, and `parallelFor` for the element-wise kernels. Both use the same count, the
// per-process budget (cores ÷ ranks when several MPI ranks share a machine).

import CBLAS
import Dispatch
import Foundation
import Synchronization

/// The process-wide thread budget.
public enum Threads {
    private static let current = Atomic<Int>(1)

    /// Logical processors the operating system lets this process run on.
    public static var available: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// The thread count currently in force for element-wise work and OpenBLAS.
    public static var count: Int { current.load(ordering: .relaxed) }

    /// Sets both OpenBLAS's thread count and the element-wise parallel width to `n` (≥ 1).
    ///
    /// Call once at start-up, before the first product; `OPENBLAS_NUM_THREADS` is overridden.
    public static func set(_ n: Int) {
        precondition(n >= 1, "Threads.set: thread count must be ≥ 1, got \(n)")
        current.store(n, ordering: .relaxed)
        openblas_set_num_threads(Int32(n))
    }

    /// Runs `body` with the whole budget (OpenBLAS and `parallelFor`) set to `n`, then restores
    /// the budget in force before. For regions that run their own threads, one piece of work per
    /// thread (batch-split shards), whose kernels must then stay on their thread.
    public static func withBudget<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        let budget = count
        if n == budget { return try body() }
        set(n)
        defer { set(budget) }
        return try body()
    }

    /// Runs `body` with OpenBLAS limited to `n` threads, then restores the budget. For regions
    /// that parallelise over many small products themselves (one product per thread), where
    /// OpenBLAS's own threading of each tiny product only adds hand-off cost.
    @inlinable
    public static func withBLASThreads<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        let budget = count
        if n == budget { return try body() }
        openblas_set_num_threads(Int32(n))
        defer { openblas_set_num_threads(Int32(budget)) }
        return try body()
    }

    /// The environment variable through which OpenBLAS takes its idle-thread timeout.
    public static let blasThreadTimeoutVariable = "OPENBLAS_THREAD_TIMEOUT"
    /// The timeout ClipLab runs OpenBLAS with: idle BLAS threads spin 2^4 cycles, then sleep.
    public static let preferredBLASThreadTimeout = 4

    /// Makes OpenBLAS's idle threads go to sleep at once instead of spinning, by re-executing
    /// the process with `OPENBLAS_THREAD_TIMEOUT=4` when that variable is unset.
    ///
    /// Why: between two products, OpenBLAS's worker threads spin in `sched_yield` for about
    /// 2^28 cycles (its default timeout). During that time the step runs element-wise kernels
    /// on `parallelFor`'s threads, and the spinning threads compete with them for the two cores:
    /// on a 2-core machine this cost 10–13% of tiny's training and inference throughput
    /// (measured in docs/performance.md). OpenBLAS reads the variable once, when the library
    /// loads, before any Swift code runs; so the only way to set it from inside is to set it and
    /// `exec` the same binary again. A value the user set is kept. If `exec` fails the process
    /// goes on with OpenBLAS's default. Call first thing in `main`, before any thread starts.
    public static func reexecWithBLASThreadTimeout() {
        guard getenv(blasThreadTimeoutVariable) == nil else { return }
        setenv(blasThreadTimeoutVariable, String(preferredBLASThreadTimeout), 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }

    /// The idle-thread timeout OpenBLAS runs with in this process, as the environment gave it
    /// (nil: OpenBLAS's default).
    public static var blasThreadTimeout: String? {
        getenv(blasThreadTimeoutVariable).map { String(cString: $0) }
    }

    /// The thread count OpenBLAS reports it will use.
    public static var blasThreads: Int { Int(openblas_get_num_threads()) }

    /// OpenBLAS's build configuration string (version, kernel target, threading model).
    public static var blasConfig: String { String(cString: openblas_get_config()) }

    /// The CPU kernel family OpenBLAS selected at run time (e.g. "Zen", "SkylakeX", "Haswell").
    public static var blasCoreName: String { String(cString: openblas_get_corename()) }

    /// Runs `body` over disjoint contiguous sub-ranges covering `0..<count`, on up to
    /// `Threads.count` threads. Ranges are at least `grain` long (except the last), so small
    /// jobs run inline with no thread hand-off. The split depends only on `count`, `grain` and
    /// the thread count, never on timing, so results are deterministic for a given thread count
    /// (and independent of it when `body` writes only to its own range, as every kernel does).
    @inlinable
    public static func parallelFor(_ count: Int, grain: Int = 4096, _ body: (Range<Int>) -> Void) {
        let threads = Threads.count
        let tasks = min(threads, max(1, count / max(1, grain)))
        if tasks <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        let chunk = (count + tasks - 1) / tasks
        withoutActuallyEscaping(body) { body in
            let box = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: tasks) { t in
                let lo = t * chunk
                let hi = min(count, lo + chunk)
                if lo < hi { box.value(lo..<hi) }
            }
        }
    }
}

/// Wraps a value whose cross-thread use the caller has made safe by construction (disjoint index
/// ranges); used to hand kernel bodies to `DispatchQueue.concurrentPerform`.
public struct UncheckedSendable<Value>: @unchecked Sendable {
    public let value: Value
    @inlinable public init(_ value: Value) { self.value = value }
}
