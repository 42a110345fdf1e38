// One entry point for the trainer over every objective: OpenCLIP's MBCL or an FCCO objective
// (GCL, RGCL, RGCL-g) with its per-sample state, the epoch's γ and the temperature rule's
// learning rate. The model never sees which one runs; the objective never sees the model.

import Compute
import Foundation
import Layers

public final class ContrastiveObjective<T: Scalar>: @unchecked Sendable {
    public let configuration: ObjectiveConfiguration
    public let batch: Int
    public let dimension: Int
    /// γ per epoch (FCCO objectives; unused by MBCL).
    public let innerLRSchedule: InnerLRSchedule
    /// The per-sample tables (nil for MBCL).
    public let state: SampleState?
    let miniBatch: MiniBatchContrastiveLoss<T>?
    let global: GlobalContrastiveLoss<T>?

    /// - datasetCount: the global id range of the per-sample state; epochs: the run's length
    ///   (for the γ schedule); adam: the model's Adam β and ε (reused by the per-sample τ rule).
    public init(_ configuration: ObjectiveConfiguration, batch: Int, dimension: Int, datasetCount: Int, epochs: Int, adam: AdamHyperparameters) throws {
        try configuration.validate()
        self.configuration = configuration
        self.batch = batch
        self.dimension = dimension
        innerLRSchedule = InnerLRSchedule(configuration, totalEpochs: epochs)
        let ws = Workspace<T>()
        if configuration.loss == .mbcl {
            miniBatch = MiniBatchContrastiveLoss(batch: batch, dimension: dimension, workspace: ws)
            global = nil
            state = nil
        } else {
            miniBatch = nil
            global = GlobalContrastiveLoss(batch: batch, dimension: dimension, objective: configuration, temperatureAdam: adam, workspace: ws)
            state = SampleState(count: datasetCount, individual: configuration.loss == .rgcl, temperatureInit: configuration.temperatureInit)
        }
    }

    /// Whether the global logit scale s is updated by the optimizer (learnable and rgcl-g rules).
    public var learnsLogitScale: Bool { configuration.learnsLogitScale }

    /// The learning rate of s (see `ObjectiveConfiguration.logitScaleLearningRate`).
    public func logitScaleLearningRate(modelRate: Double, peakModelRate: Double, temperature: Double) -> Double? {
        configuration.logitScaleLearningRate(modelRate: modelRate, peakModelRate: peakModelRate, temperature: temperature)
    }

    /// One step: the objective's value and statistics for raw features (B, E) each and logit
    /// scale s, with the batch's global ids, in 0-based `epoch`. Writes dL/d(features) (B, E)
    /// each (overwritten); the s-gradient is `logitScaleGradient` of the result (0 when s is not
    /// learned). FCCO objectives update their per-sample state here.
    public func step<C: Collection<Int>>(
        imageFeatures: UnsafePointer<T>, textFeatures: UnsafePointer<T>, ids: C, logitScale: T, epoch: Int,
        dImageFeatures: UnsafeMutablePointer<T>, dTextFeatures: UnsafeMutablePointer<T>
    ) -> ObjectiveStepStatistics {
        if let loss = miniBatch {
            let value = loss.forward(imageFeatures: imageFeatures, textFeatures: textFeatures, logitScale: logitScale)
            let dt = loss.backward(dImageFeatures: dImageFeatures, dTextFeatures: dTextFeatures)
            var out = ObjectiveStepStatistics()
            out.surrogate = value
            out.objective = value
            out.batchContrastive = value
            out.temperature = Foundation.exp(-Double(logitScale))
            out.logitScaleGradient = learnsLogitScale ? Double(dt) : 0
            return out
        }
        let loss = global!
        let stats = loss.forward(
            imageFeatures: imageFeatures, textFeatures: textFeatures, ids: ids,
            temperature: Foundation.exp(-Double(logitScale)), gamma: innerLRSchedule.gamma(epoch: epoch), epoch: epoch,
            state: state!, learningRateTau: configuration.learningRateTau ?? 0)
        loss.backward(dImageFeatures: dImageFeatures, dTextFeatures: dTextFeatures)
        return stats
    }
}

extension ObjectiveConfiguration {
    /// Whether the global logit scale s is updated by the optimizer (learnable and rgcl-g rules).
    public var learnsLogitScale: Bool { temperatureRule == .learnable || temperatureRule == .rgclG }

    /// The learning rate of s at a step whose model learning rate is `modelRate` (of peak
    /// `peakModelRate`), at temperature τ; nil when s is not learned by the optimizer.
    ///   learnable: lr_τ·modelRate/peakModelRate (the model's warm-up and cosine; lr_τ = lr by default)
    ///   rgcl-g:    step_thresh: lr_τ while τ > 0.03, else lr_τ/3 (lr_τ = lr by default)
    public func logitScaleLearningRate(modelRate: Double, peakModelRate: Double, temperature: Double) -> Double? {
        let base = learningRateTau ?? peakModelRate
        switch temperatureRule {
        case .learnable: return base * modelRate / peakModelRate
        case .rgclG: return stepThreshTemperatureRate(base: base, temperature: temperature)
        case .constant, .individual: return nil
        }
    }
}
