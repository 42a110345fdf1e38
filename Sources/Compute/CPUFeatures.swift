// Run-time detection of the CPU's vector features. Machines differ from session to session (some
// AVX2 only, some AVX-512 with BF16): code paths that depend on a feature ask here, never assume.

import Foundation

/// The vector instruction-set features of the machine this process runs on, read from
/// `/proc/cpuinfo` (Linux) once.
public struct CPUFeatures: Sendable, CustomStringConvertible {
    /// The CPU model string, e.g. "AMD EPYC 7B13".
    public let modelName: String
    public let avx2: Bool
    public let fma: Bool
    public let avx512f: Bool
    /// AVX-512 BF16 (`vdpbf16ps`): what makes OpenBLAS's `sbgemm` fast.
    public let avx512bf16: Bool
    /// AMX tiles with BF16.
    public let amxBF16: Bool

    /// The features of this machine.
    public static let current: CPUFeatures = {
        let text = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        return CPUFeatures(cpuinfo: text)
    }()

    /// Parses the text of `/proc/cpuinfo` (the first processor's `model name` and `flags`).
    public init(cpuinfo: String) {
        var model = "unknown"
        var flags = Set<Substring>()
        for line in cpuinfo.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let key = parts[0].trimmingCharacters(in: .whitespaces)
            if key == "model name", model == "unknown" {
                model = parts[1].trimmingCharacters(in: .whitespaces)
            } else if key == "flags", flags.isEmpty {
                flags = Set(parts[1].split(separator: " "))
            }
        }
        modelName = model
        avx2 = flags.contains("avx2")
        fma = flags.contains("fma")
        avx512f = flags.contains("avx512f")
        avx512bf16 = flags.contains("avx512_bf16")
        amxBF16 = flags.contains("amx_bf16")
    }

    /// A short list such as "avx2 fma avx512f avx512_bf16".
    public var summary: String {
        var names: [String] = []
        if avx2 { names.append("avx2") }
        if fma { names.append("fma") }
        if avx512f { names.append("avx512f") }
        if avx512bf16 { names.append("avx512_bf16") }
        if amxBF16 { names.append("amx_bf16") }
        return names.isEmpty ? "(no AVX2)" : names.joined(separator: " ")
    }

    public var description: String { "\(modelName) [\(summary)]" }
}

/// Which build of the C element-wise kernels (Sources/CKernels) runs: chosen once per process
/// from the CPU's features, widest first. `CLIPLAB_VECTOR_ISA=portable|avx2|avx512` narrows the
/// choice (tests use it to check every path the machine can run); asking for an instruction set
/// the CPU lacks stops the process with a message, rather than crashing on an illegal instruction.
public enum VectorISA: String, Sendable, CaseIterable {
    /// Swift's own SIMD code, for any x86-64 or ARM CPU.
    case portable
    /// 8-lane AVX2 + FMA.
    case avx2
    /// 16-lane AVX-512F.
    case avx512

    /// Whether this machine can run the kernels built for `self`.
    public func isSupported(by cpu: CPUFeatures = .current) -> Bool {
        switch self {
        case .portable: true
        case .avx2: cpu.avx2 && cpu.fma
        case .avx512: cpu.avx512f
        }
    }

    /// The widest supported set, or the one `CLIPLAB_VECTOR_ISA` names.
    public static let current: VectorISA = {
        if let raw = ProcessInfo.processInfo.environment["CLIPLAB_VECTOR_ISA"] {
            guard let isa = VectorISA(rawValue: raw) else {
                fatalError("CLIPLAB_VECTOR_ISA=\(raw): expected one of portable, avx2, avx512")
            }
            guard isa.isSupported() else {
                fatalError("CLIPLAB_VECTOR_ISA=\(raw): this CPU (\(CPUFeatures.current)) lacks it")
            }
            return isa
        }
        if VectorISA.avx512.isSupported() { return .avx512 }
        if VectorISA.avx2.isSupported() { return .avx2 }
        return .portable
    }()
}
