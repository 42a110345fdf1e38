// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
// ({"__metadata__": {string: string}, "<name>": {"dtype": "F32", "shape": [...],
// "data_offsets": [begin, end]}, ...}), then the tensors' little-endian bytes, contiguous with no
// gaps. This is what OpenCLIP's and Hugging Face's readers accept.
//
// Checksums: ClipLab's files record the CRC-32 of each tensor's stored bytes (zlib's crc32, the
// one of gzip and PNG: polynomial 0xEDB88320, initial value and final XOR 0xFFFFFFFF) under one
// metadata key, "cliplab.crc32", whose value is a JSON object {tensor name: 8 lower-case hex
// digits}, e.g. {"logit_scale":"6eebb5c4",…} (a new model's logit_scale: ln(1/0.07) as F32, bytes
// 51 31 2a 40). The metadata stays a flat string → string map, so other readers (OpenCLIP,
// Python's safetensors) load the file as before and ignore the key. The header itself is not
// covered: damage there shows as a malformed header or a checksum that no longer matches.
// `SafetensorsFile` checks a tensor's checksum whenever it reads the tensor's values; files
// without the key (OpenCLIP's, older ClipLab ones) are read unchecked.
//
// Files are written atomically (Compute's `writeAtomically`: a temporary file in the same folder,
// fsync, rename, fsync of the folder). A crash or a full disk leaves either the old file or the
// new one, never half a checkpoint.

import Compute
import CZlib
import Foundation

/// One tensor to write: a name, a shape and its values (Float or Double; F16 and BF16 for files
/// like those other tools write).
public struct SafetensorsTensor {
    public enum Values {
        case f32([Float])
        case f64([Double])
        /// IEEE half precision.
        case f16([Float16])
        /// bfloat16: each Float rounded to nearest even (`bf16Rounded`), its upper 16 bits stored.
        case bf16([Float])
    }
    public let name: String
    public let shape: [Int]
    public let values: Values

    public init(name: String, shape: [Int], values: Values) {
        self.name = name
        self.shape = shape
        self.values = values
    }

    var dtype: String {
        switch values {
        case .f32: "F32"
        case .f64: "F64"
        case .f16: "F16"
        case .bf16: "BF16"
        }
    }

    /// Calls `body` with the tensor's bytes as the file stores them (little-endian; BF16 rounded).
    func withStoredBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        switch values {
        case .f32(let v):
            #if _endian(little)
            return try v.withUnsafeBytes(body)
            #else
            return try v.map { $0.bitPattern.littleEndian }.withUnsafeBytes(body)
            #endif
        case .f64(let v):
            #if _endian(little)
            return try v.withUnsafeBytes(body)
            #else
            return try v.map { $0.bitPattern.littleEndian }.withUnsafeBytes(body)
            #endif
        case .f16(let v):
            #if _endian(little)
            return try v.withUnsafeBytes(body)
            #else
            return try v.map { $0.bitPattern.littleEndian }.withUnsafeBytes(body)
            #endif
        case .bf16(let v):
            return try v.map { UInt16(truncatingIfNeeded: bf16Rounded($0).bitPattern >> 16).littleEndian }.withUnsafeBytes(body)
        }
    }

    var byteCount: Int {
        switch values {
        case .f32(let v): v.count * 4
        case .f64(let v): v.count * 8
        case .f16(let v): v.count * 2
        case .bf16(let v): v.count * 2
        }
    }
}

/// Everything that can go wrong reading or writing a checkpoint, each naming the file.
public enum CheckpointError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case unwritable(path: String, reason: String)
    /// The bytes are not a safetensors file (header, offsets, sizes).
    case malformed(path: String, reason: String)
    /// A valid safetensors file whose metadata cannot be used (a model configuration that does
    /// not decode).
    case invalidMetadata(path: String, reason: String)
    /// A valid safetensors file without ClipLab's model configuration (an OpenCLIP checkpoint,
    /// say), loaded without an architecture; `suggestion` says which preset its shapes match.
    case noConfiguration(path: String, tensorCount: Int, suggestion: String?)
    /// Names, shapes or dtypes that differ from the model's, every one listed.
    case mismatch(path: String, problems: [String])
    /// The same for a file without ClipLab metadata, with what its shapes say about its
    /// architecture (a matching preset, or the widths and depths to put in a model config).
    case openCLIPMismatch(path: String, problems: [String], suggestion: String?)
    /// The CRC-32 of a tensor's bytes differs from the one the file records (`Safetensors.checksumKey`):
    /// the file changed after it was written (bad storage, a bad copy).
    case checksumMismatch(path: String, tensor: String, stored: UInt32, computed: UInt32)

    public var description: String {
        func listed(_ p: String, _ problems: [String]) -> String {
            "\(p): checkpoint does not match the model (\(problems.count) problem\(problems.count == 1 ? "" : "s")):\n"
                + problems.map { "  - " + $0 }.joined(separator: "\n")
        }
        switch self {
        case .unreadable(let p, let r): return "\(p): cannot read checkpoint: \(r)"
        case .unwritable(let p, let r): return "\(p): cannot write checkpoint: \(r)"
        case .malformed(let p, let r): return "\(p): not a valid safetensors file: \(r)"
        case .invalidMetadata(let p, let r): return "\(p): a valid safetensors file, but its metadata is unusable: \(r)"
        case .noConfiguration(let p, let n, let suggestion):
            return "\(p): a valid safetensors file holding \(n) tensor\(n == 1 ? "" : "s"), but it has no '\(CLIPModel<Float>.configurationKey)' "
                + "metadata, so it is not a ClipLab checkpoint (an OpenCLIP one, for example). Give its architecture with "
                + "--model PRESET or --model-config open_clip_config.json."
                + (suggestion.map { "\n" + $0 } ?? "")
        case .mismatch(let p, let problems): return listed(p, problems)
        case .openCLIPMismatch(let p, let problems, let suggestion): return listed(p, problems) + (suggestion.map { "\n" + $0 } ?? "")
        case .checksumMismatch(let p, let t, let stored, let computed):
            return "\(p): tensor '\(t)' is damaged: the CRC-32 of its bytes is \(Safetensors.hex(computed)), but the file records "
                + "\(Safetensors.hex(stored)) ('\(Safetensors.checksumKey)'); the file changed after it was written (bad storage or a bad copy)"
        }
    }
}

/// A safetensors file read into memory.
public struct SafetensorsFile {
    public struct Entry: Equatable {
        public let dtype: String
        public let shape: [Int]
        public let begin: Int
        public let end: Int
    }
    public let path: String
    public let metadata: [String: String]
    public let entries: [String: Entry]
    /// The CRC-32 the file records for each tensor (`Safetensors.checksumKey`); empty for a file
    /// written without them. Reading a tensor's values checks its bytes against it.
    public let checksums: [String: UInt32]
    let data: Data  // the whole file
    let dataStart: Int

    /// Reads and validates the header of `path` (offsets in range, sizes match shapes and dtypes,
    /// no overlaps or gaps, checksums well formed).
    public init(path: String) throws {
        let bytes: Data
        do {
            bytes = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw CheckpointError.unreadable(path: path, reason: (error as NSError).localizedDescription)
        }
        try self.init(bytes: bytes, path: path)
    }

    /// The same checks on a file's bytes already in memory; `path` names the file in errors.
    public init(bytes: Data, path: String) throws {
        self.path = path
        guard bytes.count >= 8 else {
            throw CheckpointError.malformed(path: path, reason: "file has \(bytes.count) bytes, fewer than the 8-byte header length")
        }
        var n: UInt64 = 0
        for i in 0..<8 { n |= UInt64(bytes[bytes.startIndex + i]) << (8 * UInt64(i)) }
        guard n > 0, n <= UInt64(bytes.count - 8), n < 100_000_000 else {
            throw CheckpointError.malformed(path: path, reason: "header length \(n) does not fit in a file of \(bytes.count) bytes")
        }
        let headerData = bytes.subdata(in: (bytes.startIndex + 8)..<(bytes.startIndex + 8 + Int(n)))
        guard let json = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw CheckpointError.malformed(path: path, reason: "the \(n)-byte header is not a JSON object")
        }
        var meta: [String: String] = [:]
        var entries: [String: Entry] = [:]
        for (key, value) in json {
            if key == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw CheckpointError.malformed(path: path, reason: "__metadata__ is not an object")
                }
                for (k, v) in m {
                    guard let s = v as? String else {
                        throw CheckpointError.malformed(path: path, reason: "__metadata__[\"\(k)\"] is not a string")
                    }
                    meta[k] = s
                }
                continue
            }
            guard let e = value as? [String: Any], let dtype = e["dtype"] as? String,
                let shape = (e["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                let offsets = (e["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }), offsets.count == 2
            else {
                throw CheckpointError.malformed(path: path, reason: "tensor '\(key)' lacks a dtype, shape or data_offsets pair")
            }
            entries[key] = Entry(dtype: dtype, shape: shape, begin: offsets[0], end: offsets[1])
        }
        let dataBytes = bytes.count - 8 - Int(n)
        // Offsets must tile the data region exactly.
        var cursor = 0
        for (name, e) in entries.sorted(by: { $0.value.begin < $1.value.begin }) {
            let size = Self.elementSize(e.dtype)
            if e.end > dataBytes {
                throw CheckpointError.malformed(
                    path: path, reason: "file is truncated: tensor '\(name)' ends at data byte \(e.end) but the file holds \(dataBytes)")
            }
            guard e.begin == cursor, e.end >= e.begin, e.end <= dataBytes else {
                throw CheckpointError.malformed(
                    path: path, reason: "tensor '\(name)' occupies bytes \(e.begin)..<\(e.end), expected to start at \(cursor) within \(dataBytes) data bytes")
            }
            // The header's numbers can be anything: a negative size, or sizes whose product
            // overflows, is refused here rather than trapping (or wrapping) when multiplied.
            guard let count = Self.elementCount(e.shape) else {
                throw CheckpointError.malformed(
                    path: path, reason: "tensor '\(name)' has shape \(e.shape): sizes must be ≥ 0 and their product must fit in 64 bits")
            }
            if let size {
                let (needed, overflows) = count.multipliedReportingOverflow(by: size)
                guard !overflows, e.end - e.begin == needed else {
                    throw CheckpointError.malformed(
                        path: path, reason: "tensor '\(name)' has \(e.end - e.begin) bytes, but \(e.dtype) \(e.shape) needs \(overflows ? "more than an Int can count" : String(needed))")
                }
            }
            cursor = e.end
        }
        guard cursor == dataBytes else {
            throw CheckpointError.malformed(path: path, reason: "the tensors cover \(cursor) of \(dataBytes) data bytes (truncated or padded file)")
        }
        var checksums: [String: UInt32] = [:]
        if let text = meta[Safetensors.checksumKey] {
            guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw CheckpointError.invalidMetadata(path: path, reason: "'\(Safetensors.checksumKey)' is not a JSON object")
            }
            for (name, value) in object {
                guard let hex = value as? String, hex.utf8.count == 8, let crc = UInt32(hex, radix: 16) else {
                    throw CheckpointError.invalidMetadata(
                        path: path, reason: "'\(Safetensors.checksumKey)' gives tensor '\(name)' \(value), not 8 hex digits")
                }
                checksums[name] = crc
            }
        }
        self.metadata = meta
        self.entries = entries
        self.checksums = checksums
        self.data = bytes
        self.dataStart = 8 + Int(n)
    }

    /// The product of `shape`'s sizes; nil when one is negative or the product overflows Int.
    static func elementCount(_ shape: [Int]) -> Int? {
        var count = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (product, overflows) = count.multipliedReportingOverflow(by: d)
            if overflows { return nil }
            count = product
        }
        return count
    }

    static func elementSize(_ dtype: String) -> Int? {
        switch dtype {
        case "F64", "I64", "U64": 8
        case "F32", "I32", "U32": 4
        case "F16", "BF16", "I16", "U16": 2
        case "I8", "U8", "BOOL": 1
        default: nil
        }
    }

    /// The dtypes `doubles` and `copy` read (every value of F16 and BF16 is exact in Float).
    public static let floatDTypes: Set<String> = ["F32", "F64", "F16", "BF16"]

    /// The values of tensor `name` converted to Double (F32, F64, F16 or BF16), after checking its
    /// bytes against the CRC-32 the file records for it (`CheckpointError.checksumMismatch`).
    public func doubles(_ name: String) throws -> [Double] {
        guard let e = entries[name] else {
            throw CheckpointError.mismatch(path: path, problems: ["tensor '\(name)' is missing"])
        }
        let count = e.shape.reduce(1, *)
        return try data.withUnsafeBytes { raw -> [Double] in
            let base = raw.baseAddress! + dataStart + e.begin
            if let stored = checksums[name] {
                let computed = Safetensors.crc32(UnsafeRawBufferPointer(start: base, count: e.end - e.begin))
                guard computed == stored else {
                    throw CheckpointError.checksumMismatch(path: path, tensor: name, stored: stored, computed: computed)
                }
            }
            switch e.dtype {
            case "F32":
                return (0..<count).map { Double(Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))) }
            case "F64":
                return (0..<count).map { Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))) }
            case "F16":
                return (0..<count).map { Double(Float16(bitPattern: UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)))) }
            case "BF16":
                // bfloat16 is the upper half of a Float.
                return (0..<count).map {
                    Double(Float(bitPattern: UInt32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16))
                }
            default:
                throw CheckpointError.mismatch(path: path, problems: ["tensor '\(name)' has dtype \(e.dtype); expected F32, F64, F16 or BF16"])
            }
        }
    }

    /// Copies tensor `name` (F32, F64, F16 or BF16) into `destination` as Float or Double, checked
    /// against its CRC-32 like `doubles`.
    public func copy<T: BinaryFloatingPoint>(_ name: String, into destination: UnsafeMutablePointer<T>) throws {
        let values = try doubles(name)
        for (i, v) in values.enumerated() { destination[i] = T(v) }
    }
}

extension SafetensorsFile {
    /// Every float tensor's values as bit patterns (of their Double conversion) by name: two
    /// files' tensors compare exactly, whatever their metadata.
    public func tensorBitPatterns() throws -> [String: [UInt64]] {
        var out: [String: [UInt64]] = [:]
        for (name, _) in entries { out[name] = try doubles(name).map(\.bitPattern) }
        return out
    }
}

public enum Safetensors {
    /// The metadata key of the per-tensor CRC-32s: a JSON object {tensor name: 8 lower-case hex
    /// digits}, the CRC-32 (zlib's `crc32`) of the tensor's bytes as stored in the file.
    public static let checksumKey = "cliplab.crc32"

    /// zlib's CRC-32 of `bytes`.
    public static func crc32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc = CZlib.crc32(0, nil, 0)
        guard var p = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return UInt32(crc) }
        var left = bytes.count
        while left > 0 {  // zlib's length is 32 bits
            let n = min(left, 1 << 30)
            crc = CZlib.crc32(crc, p, uInt(n))
            p += n
            left -= n
        }
        return UInt32(crc)
    }

    /// `crc` as 8 lower-case hex digits.
    static func hex(_ crc: UInt32) -> String {
        let digits = String(crc, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// The complete file bytes for `tensors` (written in the given order) and `metadata`; with
    /// `checksums` (the default) the metadata also records each tensor's CRC-32 under
    /// `checksumKey`. Without, any `checksumKey` entry of `metadata` is left out too.
    public static func encode(_ tensors: [SafetensorsTensor], metadata: [String: String], checksums: Bool = true) -> Data {
        var out = Data()
        emit(tensors, metadata: metadata, checksums: checksums) { out.append(contentsOf: $0) }
        return out
    }

    /// Writes `tensors` to `path` atomically (Compute's `writeAtomically`: temporary file, fsync,
    /// rename, fsync of the folder), as `encode` lays them out. A failure leaves `path` as it was
    /// and throws `CheckpointError.unwritable` with the system's reason ("No space left on device").
    public static func write(_ tensors: [SafetensorsTensor], metadata: [String: String], to path: String, checksums: Bool = true) throws {
        do {
            try writeAtomically(to: path) { file in
                try emit(tensors, metadata: metadata, checksums: checksums) { try file.write($0) }
            }
        } catch let e as FileWriteError {
            throw CheckpointError.unwritable(path: path, reason: e.step == .write ? e.reason : e.problem)
        }
    }

    /// Sends the file's bytes to `sink` in order: header length, header, each tensor's bytes.
    static func emit(
        _ tensors: [SafetensorsTensor], metadata: [String: String], checksums: Bool, to sink: (UnsafeRawBufferPointer) throws -> Void
    ) rethrows {
        var metadata = metadata
        metadata[checksumKey] = nil
        if checksums {
            let crcs = tensors.map { t in t.withStoredBytes { crc32($0) } }
            let fields = zip(tensors, crcs).sorted { $0.0.name < $1.0.name }.map { "\(jsonString($0.name)):\"\(hex($1))\"" }
            metadata[checksumKey] = "{" + fields.joined(separator: ",") + "}"
        }
        var header = "{"
        var fields: [String] = []
        if !metadata.isEmpty {
            let m = metadata.sorted { $0.key < $1.key }.map { "\(jsonString($0.key)):\(jsonString($0.value))" }
            fields.append("\"__metadata__\":{" + m.joined(separator: ",") + "}")
        }
        var offset = 0
        for t in tensors {
            let shape = t.shape.map(String.init).joined(separator: ",")
            fields.append("\(jsonString(t.name)):{\"dtype\":\"\(t.dtype)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.byteCount)]}")
            offset += t.byteCount
        }
        header += fields.joined(separator: ",") + "}"
        var headerBytes = Array(header.utf8)
        while headerBytes.count % 8 != 0 { headerBytes.append(0x20) }  // pad with spaces, as the reference writer does
        var n = UInt64(headerBytes.count).littleEndian
        try withUnsafeBytes(of: &n) { try sink($0) }
        try headerBytes.withUnsafeBytes { try sink($0) }
        for t in tensors { try t.withStoredBytes { try sink($0) } }
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += String(format: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
