// The contract between datasets and the trainer: a dataset is a numbered list of (image, caption)
// pairs. Images are delivered already rendered, decoded or resized to the model's square input, as
// channel-major floats in [0, 1]; normalisation by OpenCLIP's mean and std is the model's job.

/// An image–text dataset: the trainer reads images as (3, S, S) Float CHW in [0, 1] and captions as strings.
public protocol ImageTextDataset: Sendable {
    /// Number of (image, caption) pairs; valid indices are `0..<count`.
    var count: Int { get }
    /// The training caption of pair `index`.
    func caption(_ index: Int) -> String
    /// Writes image `index` resized/rendered to size×size as (3, S, S) channel-major Float in [0, 1].
    func loadImage(_ index: Int, size: Int, into pixels: UnsafeMutablePointer<Float>) throws
    /// Image `index` as training sees it in `epoch` (see the extension's default).
    func loadTrainingImage(_ index: Int, size: Int, seed: UInt64, epoch: Int, into pixels: UnsafeMutablePointer<Float>) throws
}

extension ImageTextDataset {
    /// Image `index` as training sees it in `epoch`: by default the evaluation view
    /// (`loadImage`); a data set with augmentation (a random-resized crop) draws it from
    /// (seed, epoch, index).
    public func loadTrainingImage(_ index: Int, size: Int, seed: UInt64, epoch: Int, into pixels: UnsafeMutablePointer<Float>) throws {
        try loadImage(index, size: size, into: pixels)
    }
}
