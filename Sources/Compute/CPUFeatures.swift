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
