// The activation workspace: every buffer a forward or backward pass needs (outputs, caches,
// scratch), allocated once per (model, batch size) before the first step, so the training step
// itself allocates nothing.

import Compute

/// Owns the activation and scratch buffers of one model at one batch size.
///
/// Layers request their buffers with `allocate` while the model is being set up; `seal()` then
/// forbids further requests, which turns an accidental allocation inside the step into an
/// immediate, named failure instead of a silent slowdown.
public final class Workspace<T: Scalar>: @unchecked Sendable {
    private var buffers: [(label: String, buffer: AlignedBuffer<T>)] = []
    public private(set) var isSealed = false

    public init() {}

    /// A zeroed, 64-byte-aligned buffer of `count` elements, valid for the workspace's lifetime.
    /// `label` names it in `report()` and in the error if the workspace is already sealed.
    public func allocate(_ count: Int, label: String) -> UnsafeMutablePointer<T> {
        // fatalError, not precondition: this check must hold in -Ounchecked release builds too.
        if isSealed { fatalError("Workspace: '\(label)' requested after the workspace was sealed (allocation inside the step)") }
        let b = AlignedBuffer<T>(count: count)
        buffers.append((label, b))
        return b.pointer
    }

    /// Forbids further allocations.
    public func seal() { isSealed = true }

    /// Total elements held.
    public var totalElements: Int { buffers.reduce(0) { $0 + $1.buffer.count } }
    /// Total bytes held.
    public var totalBytes: Int { totalElements * MemoryLayout<T>.stride }

    /// Bytes per label prefix (the text before the first "."), largest first: what dominates memory.
    public func report() -> [(label: String, bytes: Int)] {
        var byLabel: [String: Int] = [:]
        for (label, b) in buffers {
            let key = String(label.split(separator: ".").first ?? Substring(label))
            byLabel[key, default: 0] += b.count * MemoryLayout<T>.stride
        }
        return byLabel.sorted { $0.value > $1.value }.map { ($0.key, $0.value) }
    }
}
