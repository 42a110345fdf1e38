// Learning-rate schedules: pure functions of the step, as OpenCLIP's `scheduler.py` builds them.

import Foundation

/// A learning rate as a pure function of the (0-based) optimizer step.
public protocol LearningRateSchedule: Sendable {
    func callAsFunction(_ step: Int) -> Double
}

/// The same rate at every step.
public struct ConstantSchedule: LearningRateSchedule, Hashable, Codable {
    public let rate: Double
    public init(rate: Double) { self.rate = rate }
    public func callAsFunction(_ step: Int) -> Double { rate }
}

/// Linear warm-up followed by cosine decay to a floor (OpenCLIP's `cosine_lr`, FastCLIP §8.1):
///
///   step < W:  lr·(step + 1)/W
///   step ≥ W:  floor + ½·(lr − floor)·(1 + cos(π·(step − W)/(S − W)))
///
/// with W = `warmupSteps`, S = `totalSteps`. Past S the rate stays at the floor.
public struct CosineSchedule: LearningRateSchedule, Hashable, Codable {
    public let baseRate: Double
    public let warmupSteps: Int
    public let totalSteps: Int
    public let floor: Double

    public init(baseRate: Double, warmupSteps: Int, totalSteps: Int, floor: Double = 0) {
        precondition(warmupSteps >= 0 && totalSteps >= 0, "CosineSchedule: steps must be ≥ 0")
        self.baseRate = baseRate
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.floor = floor
    }

    public func callAsFunction(_ step: Int) -> Double {
        if step < warmupSteps { return baseRate * Double(step + 1) / Double(warmupSteps) }
        let span = totalSteps - warmupSteps
        if span <= 0 || step >= totalSteps { return span <= 0 ? baseRate : floor }
        let progress = Double(step - warmupSteps) / Double(span)
        return floor + 0.5 * (baseRate - floor) * (1 + cos(Double.pi * progress))
    }
}
