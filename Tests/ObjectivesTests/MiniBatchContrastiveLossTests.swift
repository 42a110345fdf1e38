import Compute
import Foundation
import Layers
import Objectives
import Testing
import TestSupport

@Suite("OpenCLIP mini-batch contrastive loss")
struct MiniBatchContrastiveLossTests {
    /// The loss by its definition, in Double, with plain loops.
    func bruteForce(_ x: [Double], _ y: [Double], t: Double, b: Int, e: Int) -> Double {
        func normalized(_ m: [Double]) -> [Double] {
            var out = m
            for i in 0..<b {
                let n = (0..<e).map { m[i * e + $0] * m[i * e + $0] }.reduce(0, +).squareRoot()
                for j in 0..<e { out[i * e + j] = m[i * e + j] / n }
            }
            return out
        }
        let u = normalized(x), v = normalized(y), s = Foundation.exp(t)
        var l = [[Double]](repeating: [Double](repeating: 0, count: b), count: b)
        for i in 0..<b { for j in 0..<b { l[i][j] = s * (0..<e).map { u[i * e + $0] * v[j * e + $0] }.reduce(0, +) } }
        var total = 0.0
        for i in 0..<b { total += Foundation.log((0..<b).map { Foundation.exp(l[i][$0]) }.reduce(0, +)) - l[i][i] }
        for j in 0..<b { total += Foundation.log((0..<b).map { Foundation.exp(l[$0][j]) }.reduce(0, +)) - l[j][j] }
        return total / Double(2 * b)
    }

    @Test("Value equals the brute-force formula", arguments: [(2, 3), (5, 4), (8, 16)])
    func value(b: Int, e: Int) {
        let x = randomArray(b * e, seed: 1, stream: "x"), y = randomArray(b * e, seed: 1, stream: "y")
        let ws = Workspace<Double>()
        let loss = MiniBatchContrastiveLoss<Double>(batch: b, dimension: e, workspace: ws)
        let got = loss.forward(imageFeatures: x, textFeatures: y, logitScale: 2.3)
        #expect(abs(got - bruteForce(x, y, t: 2.3, b: b, e: e)) < 1e-12)
    }

    @Test("With a vanishing logit scale the loss is ln B")
    func chance() {
        let b = 7, e = 5
        let x = randomArray(b * e, seed: 2, stream: "x"), y = randomArray(b * e, seed: 2, stream: "y")
        let loss = MiniBatchContrastiveLoss<Double>(batch: b, dimension: e, workspace: Workspace())
        #expect(abs(loss.forward(imageFeatures: x, textFeatures: y, logitScale: -40) - Foundation.log(7)) < 1e-12)
    }

    @Test("Feature and logit-scale gradients equal finite differences", arguments: [(3, 4), (6, 5)])
    func gradients(b: Int, e: Int) {
        let x = randomBuffer(b * e, seed: 3, stream: "x"), y = randomBuffer(b * e, seed: 3, stream: "y")
        let t = AlignedBuffer<Double>([1.7])
        let dx = AlignedBuffer<Double>(count: b * e), dy = AlignedBuffer<Double>(count: b * e), dt = AlignedBuffer<Double>(count: 1)
        let sx = AlignedBuffer<Double>(count: b * e), sy = AlignedBuffer<Double>(count: b * e)
        let loss = MiniBatchContrastiveLoss<Double>(batch: b, dimension: e, workspace: Workspace())
        let reports = checkGradients([
            CheckedTensor(name: "image features", values: x.pointer, gradient: dx.pointer, count: b * e),
            CheckedTensor(name: "text features", values: y.pointer, gradient: dy.pointer, count: b * e),
            CheckedTensor(name: "logit scale", values: t.pointer, gradient: dt.pointer, count: 1),
        ]) {
            loss.forward(imageFeatures: x.pointer, textFeatures: y.pointer, logitScale: t[0])
        } backward: {
            // The loss writes its gradients; add them so the checker's accumulation test applies.
            let g = loss.backward(dImageFeatures: sx.pointer, dTextFeatures: sy.pointer)
            axpy(1, sx.pointer, dx.pointer, count: b * e)
            axpy(1, sy.pointer, dy.pointer, count: b * e)
            dt[0] += g
        }
        for r in reports { #expect(r.error < 1e-7, "\(r)") }
    }

    @Test("Float agrees with Double")
    func precision() {
        let b = 16, e = 32
        let x = randomArray(b * e, seed: 4, stream: "x"), y = randomArray(b * e, seed: 4, stream: "y")
        let ld = MiniBatchContrastiveLoss<Double>(batch: b, dimension: e, workspace: Workspace())
        let lf = MiniBatchContrastiveLoss<Float>(batch: b, dimension: e, workspace: Workspace())
        let vd = ld.forward(imageFeatures: x, textFeatures: y, logitScale: 4.6)
        let vf = lf.forward(imageFeatures: x.map(Float.init), textFeatures: y.map(Float.init), logitScale: 4.6)
        #expect(abs(vd - vf) < 1e-4 * max(1, abs(vd)))
        var gd = [Double](repeating: 0, count: b * e), hd = gd
        var gf = [Float](repeating: 0, count: b * e), hf = gf
        let td = ld.backward(dImageFeatures: &gd, dTextFeatures: &hd)
        let tf = lf.backward(dImageFeatures: &gf, dTextFeatures: &hf)
        #expect(scaledMaxError(gf.map(Double.init), gd) < 1e-4)
        #expect(abs(Double(tf) - td) < 1e-4 * max(1, abs(td)))
    }
}
