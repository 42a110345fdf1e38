// Heap buffers aligned to 64 bytes (one cache line, one AVX-512 register), the storage behind the
// flat parameter store, the optimizer moments and the activation workspace.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The alignment, in bytes, of every `AlignedBuffer`.
public let bufferAlignment = 64

/// A fixed-size, 64-byte-aligned, zero-initialised buffer of `count` elements.
///
/// A reference type so that layers, optimizers and communicators can share one buffer without
/// copies; it is `@unchecked Sendable` because ClipLab's kernels partition it between threads by
/// disjoint index ranges and never resize it. Access goes through `pointer` in hot code.
public final class AlignedBuffer<Element: BitwiseCopyable>: @unchecked Sendable {
    /// Number of elements.
    public let count: Int
    /// The first element; valid for `count` elements for the buffer's lifetime.
    public let pointer: UnsafeMutablePointer<Element>

    /// Allocates `count` elements, all bits zero (0.0 for floating point).
    public init(count: Int) {
        precondition(count >= 0, "AlignedBuffer: count must be ≥ 0, got \(count)")
        self.count = count
        let bytes = max(1, count * MemoryLayout<Element>.stride)
        var raw: UnsafeMutableRawPointer?
        let rc = posix_memalign(&raw, bufferAlignment, bytes)
        guard rc == 0, let raw else {
            fatalError("AlignedBuffer: cannot allocate \(bytes) bytes (posix_memalign returned \(rc))")
        }
        memset(raw, 0, bytes)
        pointer = raw.bindMemory(to: Element.self, capacity: max(1, count))
    }

    /// Allocates a buffer holding a copy of `values`.
    public convenience init(_ values: [Element]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit { free(pointer) }

    /// The whole buffer as a mutable buffer pointer.
    @inlinable public var buffer: UnsafeMutableBufferPointer<Element> {
        UnsafeMutableBufferPointer(start: pointer, count: count)
    }

    /// Element access (bounds-checked in debug builds).
    @inlinable public subscript(i: Int) -> Element {
        get {
            assert(i >= 0 && i < count, "AlignedBuffer index \(i) out of range 0..<\(count)")
            return pointer[i]
        }
        set {
            assert(i >= 0 && i < count, "AlignedBuffer index \(i) out of range 0..<\(count)")
            pointer[i] = newValue
        }
    }

    /// Sets every byte to zero.
    public func zero() { memset(pointer, 0, count * MemoryLayout<Element>.stride) }

    /// The contents as an array (a copy; for tests, checkpoints and printing, not hot code).
    public func toArray() -> [Element] { Array(buffer) }

    /// Overwrites the contents with `values`, which must have `count` elements.
    public func copy(from values: [Element]) {
        precondition(values.count == count, "AlignedBuffer.copy: \(values.count) values for \(count) slots")
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: count) }
        }
    }

    /// True when `pointer` is 64-byte aligned (always; exposed for tests).
    public var isAligned: Bool { Int(bitPattern: pointer) % bufferAlignment == 0 }
}
