// The deterministic order of training: each epoch is a permutation of the dataset drawn from
// (seed, epoch), cut into global batches of B consecutive entries (the last partial batch is
// dropped, as OpenCLIP does). Each batch carries the samples' global dataset indices, which the
// FastCLIP objectives use to index their per-sample state, and which a rank uses to take its slice.

import Compute

public struct EpochLoader: Sendable {
    public let datasetCount: Int
    public let batchSize: Int
    public let seed: UInt64

    public init(datasetCount: Int, batchSize: Int, seed: UInt64) {
        precondition(batchSize >= 1 && batchSize <= datasetCount, "EpochLoader: batch size \(batchSize) must be in 1...\(datasetCount)")
        self.datasetCount = datasetCount
        self.batchSize = batchSize
        self.seed = seed
    }

    /// Global batches per epoch.
    public var stepsPerEpoch: Int { datasetCount / batchSize }

    /// The dataset order of `epoch` (a permutation of 0..<count, a pure function of seed and epoch).
    public func order(epoch: Int) -> [Int] {
        CounterRNG(seed: seed, streamNamed: "epoch-order.\(epoch)").permutation(datasetCount)
    }

    /// The global sample ids of batch `step` (0-based within the epoch) of an epoch's order.
    public func batch(_ step: Int, of order: [Int]) -> ArraySlice<Int> {
        precondition(step >= 0 && step < stepsPerEpoch, "EpochLoader: step \(step) outside 0..<\(stepsPerEpoch)")
        return order[(step * batchSize)..<((step + 1) * batchSize)]
    }
}
