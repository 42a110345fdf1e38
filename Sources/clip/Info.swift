import ArgumentParser
import Compute

/// `clip info`: what this machine and build offer (CPU features, BLAS, threads).
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the CPU features, BLAS build and thread budget ClipLab sees.")

    func run() throws {
        let cpu = CPUFeatures.current
        print("cpu:          \(cpu.modelName)")
        print("features:     \(cpu.summary)")
        print("cores:        \(Threads.available)")
        print("openblas:     \(Threads.blasConfig)")
        print("blas kernel:  \(Threads.blasCoreName)")
        print("blas idle:    OPENBLAS_THREAD_TIMEOUT=\(Threads.blasThreadTimeout ?? "unset (OpenBLAS default)")")
        print("checks:       \(BuildChecks.summary) in the numerical modules")
        print("bf16 gemm:    \(cpu.avx512bf16 ? "fast (avx512_bf16 present)" : "slow on this CPU (no avx512_bf16)")")
    }
}
