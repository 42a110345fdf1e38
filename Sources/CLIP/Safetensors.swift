// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
// ({"__metadata__": {string: string}, "<name>": {"dtype": "F32", "shape": [...],
// "data_offsets": [begin, end]}, ...}), then the tensors' little-endian bytes, contiguous with no
// gaps. This is what OpenCLIP's and Hugging Face's readers accept.
//
// Files are written atomically: a temporary file in the same folder, fsync, rename, fsync of the
// folder. A crash leaves either the old file or the new one, never half a checkpoint.

import Compute
import Foundation

#if canImport(Glibc)
import Glibc
#endif

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
    let data: Data  // the bytes after the header
    let dataStart: Int

    /// Reads and validates the header of `path` (offsets in range, sizes match shapes and dtypes,
    /// no overlaps or gaps).
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
        self.metadata = meta
        self.entries = entries
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

    /// The values of tensor `name` converted to Double (F32, F64, F16 or BF16).
    public func doubles(_ name: String) throws -> [Double] {
        guard let e = entries[name] else {
            throw CheckpointError.mismatch(path: path, problems: ["tensor '\(name)' is missing"])
        }
        let count = e.shape.reduce(1, *)
        return try data.withUnsafeBytes { raw -> [Double] in
            let base = raw.baseAddress! + dataStart + e.begin
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

    /// Copies tensor `name` (F32, F64, F16 or BF16) into `destination` as Float or Double.
    public func copy<T: BinaryFloatingPoint>(_ name: String, into destination: UnsafeMutablePointer<T>) throws {
        let values = try doubles(name)
        for (i, v) in values.enumerated() { destination[i] = T(v) }
    }
}

public enum Safetensors {
    /// The complete file bytes for `tensors` (written in the given order) and `metadata`.
    public static func encode(_ tensors: [SafetensorsTensor], metadata: [String: String]) -> Data {
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
        var out = Data(capacity: 8 + headerBytes.count + offset)
        var n = UInt64(headerBytes.count).littleEndian
        withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
        out.append(contentsOf: headerBytes)
        for t in tensors {
            switch t.values {
            case .f32(let v):
                v.withUnsafeBufferPointer { p in
                    p.withMemoryRebound(to: UInt32.self) { u in
                        out.append(contentsOf: u.map { $0.littleEndian }.withUnsafeBytes { Array($0) })
                    }
                }
            case .f64(let v):
                v.withUnsafeBufferPointer { p in
                    p.withMemoryRebound(to: UInt64.self) { u in
                        out.append(contentsOf: u.map { $0.littleEndian }.withUnsafeBytes { Array($0) })
                    }
                }
            case .f16(let v):
                out.append(contentsOf: v.map { $0.bitPattern.littleEndian }.withUnsafeBytes { Array($0) })
            case .bf16(let v):
                out.append(contentsOf: v.map { UInt16(truncatingIfNeeded: bf16Rounded($0).bitPattern >> 16).littleEndian }.withUnsafeBytes { Array($0) })
            }
        }
        return out
    }

    /// Writes `tensors` to `path` atomically (temporary file, fsync, rename, fsync of the folder).
    public static func write(_ tensors: [SafetensorsTensor], metadata: [String: String], to path: String) throws {
        try writeAtomically(encode(tensors, metadata: metadata), to: path)
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

/// Writes `data` to `path` so that readers see either the old file or the complete new one.
public func writeAtomically(_ data: Data, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let folder = url.deletingLastPathComponent().path
    let tmp = folder + "/." + url.lastPathComponent + ".tmp-\(getpid())"
    let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw CheckpointError.unwritable(path: path, reason: String(cString: strerror(errno))) }
    var ok = true
    var reason = ""
    data.withUnsafeBytes { raw in
        var done = 0
        while done < raw.count {
            let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
            if n <= 0 {
                ok = false
                reason = String(cString: strerror(errno))
                return
            }
            done += n
        }
    }
    if ok && fsync(fd) != 0 { ok = false; reason = "fsync: " + String(cString: strerror(errno)) }
    close(fd)
    guard ok else {
        unlink(tmp)
        throw CheckpointError.unwritable(path: path, reason: reason)
    }
    guard rename(tmp, path) == 0 else {
        let r = String(cString: strerror(errno))
        unlink(tmp)
        throw CheckpointError.unwritable(path: path, reason: "rename: " + r)
    }
    let dfd = open(folder.isEmpty ? "." : folder, O_RDONLY)
    if dfd >= 0 { fsync(dfd); close(dfd) }
}
