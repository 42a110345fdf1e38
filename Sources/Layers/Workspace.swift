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
    private var scratchByLabel: [String: AlignedBuffer<T>] = [:]
    public private(set) var isSealed = false
    /// How much the layers keep for the backward pass (see `ActivationMemory`).
    public let memory: ActivationMemory
    /// Stands in for every backward-only buffer of a forward-only workspace.
    private let absent = AlignedBuffer<T>(count: 16)

    public init(memory: ActivationMemory = .full) { self.memory = memory }

    /// Whether backward passes are impossible with these buffers (`memory == .inference`).
    public var isForwardOnly: Bool { memory == .inference }

    /// A buffer only the backward pass uses (gradients of activations). A forward-only workspace
    /// allocates nothing and returns a placeholder that must never be read or written: models
    /// refuse to run backward on such a workspace.
    public func allocateGradient(_ count: Int, label: String) -> UnsafeMutablePointer<T> {
        if isForwardOnly { return absent.pointer }
        return allocate(count, label: label)
    }

    /// A zeroed, 64-byte-aligned buffer of `count` elements, valid for the workspace's lifetime.
    /// `label` names it in `report()` and in the error if the workspace is already sealed.
    public func allocate(_ count: Int, label: String) -> UnsafeMutablePointer<T> {
        // fatalError, not precondition: this check must hold in -Ounchecked release builds too.
        if isSealed { fatalError("Workspace: '\(label)' requested after the workspace was sealed (allocation inside the step)") }
        let b = AlignedBuffer<T>(count: count)
        buffers.append((label, b))
        return b.pointer
    }

    /// Scratch shared by every request of the same label: a buffer live only inside one layer's
    /// forward or backward (or only while one tower runs), which every block of every tower can
    /// therefore use in turn. The first request of a label allocates; a later request reuses that
    /// buffer when it is large enough, else gets a larger one (which later requests then reuse).
    public func scratch(_ count: Int, label: String) -> UnsafeMutablePointer<T> {
        if let b = scratchByLabel[label], b.count >= count { return b.pointer }
        if isSealed { fatalError("Workspace: scratch '\(label)' requested after the workspace was sealed (allocation inside the step)") }
        let b = AlignedBuffer<T>(count: count)
        buffers.append((label, b))
        scratchByLabel[label] = b
        return b.pointer
    }

    /// Shared scratch that only the backward pass uses (see `allocateGradient`, `scratch`).
    public func gradientScratch(_ count: Int, label: String) -> UnsafeMutablePointer<T> {
        if isForwardOnly { return absent.pointer }
        return scratch(count, label: label)
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

/// How much of the forward pass the layers keep for the backward pass.
public enum ActivationMemory: String, Sendable, Codable, CaseIterable {
    /// Every block keeps its activations: the fastest training, and the most memory.
    case full
    /// Activation checkpointing: each transformer block keeps only its input, and the backward
    /// pass re-runs the block's forward (all but the last block of each tower) before
    /// backpropagating through it. Costs about (L−1)/L of one forward pass more per step
    /// (+25% of the step's FLOPs for a 4-layer tower), and stores one block's activations per
    /// tower instead of L. Results are bit-identical to `.full`: the forward is deterministic.
    case recompute
    /// Forward only (embedding, evaluation): one block's activations reused by every layer, two
    /// ping-pong hidden-state buffers, no gradient buffers. Backward is refused.
    case inference
}
