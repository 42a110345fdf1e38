import Compute
import Testing
import TestSupport

/// Runs a kernel in Float on the Float-rounded copies of Double inputs and returns the result as
/// Double, for Float-vs-Double agreement checks.
func runInFloat(_ inputs: [[Double]], outputs: [Int], _ body: ([UnsafeMutablePointer<Float>], [UnsafeMutablePointer<Float>]) -> Void) -> [[Double]] {
    let ins = inputs.map { AlignedBuffer($0.map(Float.init)) }
    let outs = outputs.map { AlignedBuffer<Float>(count: $0) }
    // The buffers must outlive `body`, which sees only their raw pointers.
    withExtendedLifetime((ins, outs)) { body(ins.map(\.pointer), outs.map(\.pointer)) }
    return outs.map { $0.toArray().map(Double.init) }
}

func runInDouble(_ inputs: [[Double]], outputs: [Int], _ body: ([UnsafeMutablePointer<Double>], [UnsafeMutablePointer<Double>]) -> Void) -> [[Double]] {
    let ins = inputs.map { AlignedBuffer($0) }
    let outs = outputs.map { AlignedBuffer<Double>(count: $0) }
    withExtendedLifetime((ins, outs)) { body(ins.map(\.pointer), outs.map(\.pointer)) }
    return outs.map { $0.toArray() }
}

/// Float-vs-Double tolerance for the element-wise kernels: the Float result may deviate from the
/// Double result on the same (Float-rounded) inputs by at most this fraction of the result's scale
/// (a few ulps of Float accumulated over rows of ≤ 200 elements).
let floatTolerance = 2e-5

@Suite("Element-wise kernels")
struct KernelTests {
    // MARK: Float vs Double agreement

    @Test("GELU forward and backward: Float agrees with Double", arguments: GELUApproximation.allCases)
    func geluPrecision(_ approx: GELUApproximation) {
        let n = 1000
        let x = randomArray(n, seed: 4, stream: "x", std: 3), dy = randomArray(n, seed: 4, stream: "dy")
        let f = runInFloat([x, dy], outputs: [n, n]) { i, o in
            geluForward(i[0], o[0], count: n, approximation: approx)
            geluBackward(i[1], x: i[0], dx: o[1], count: n, approximation: approx)
        }
        let d = runInDouble([x, dy], outputs: [n, n]) { i, o in
            geluForward(i[0], o[0], count: n, approximation: approx)
            geluBackward(i[1], x: i[0], dx: o[1], count: n, approximation: approx)
        }
        #expect(scaledMaxError(f[0], d[0]) < floatTolerance, "\(describeMismatch(f[0], d[0], label: "forward"))")
        #expect(scaledMaxError(f[1], d[1]) < floatTolerance, "\(describeMismatch(f[1], d[1], label: "backward"))")
    }

    @Test("GELU values match known points")
    func geluValues() {
        // gelu(1) = ½(1 + erf(1/√2)) = 0.8413447460685429; tanh form 0.8411919906082768.
        #expect(abs(gelu(1.0, .exact) - 0.8413447460685429) < 1e-15)
        #expect(abs(gelu(1.0, .tanh) - 0.8411919906082768) < 1e-15)
        #expect(abs(gelu(-2.0, .exact) - -0.04550026389635842) < 1e-15)
    }

    @Test("LayerNorm forward and backward: Float agrees with Double")
    func layerNormPrecision() {
        let rows = 7, c = 96
        let x = randomArray(rows * c, seed: 5, stream: "x", std: 2).map { $0 + 3 }
        let w = randomArray(c, seed: 5, stream: "w"), b = randomArray(c, seed: 5, stream: "b")
        let dy = randomArray(rows * c, seed: 5, stream: "dy")
        func run<T: Scalar>(_ i: [UnsafeMutablePointer<T>], _ o: [UnsafeMutablePointer<T>]) {
            layerNormForward(i[0], weight: i[1], bias: i[2], o[0], mean: o[1], rstd: o[2], rows: rows, width: c)
            layerNormBackward(i[3], x: i[0], weight: i[1], mean: o[1], rstd: o[2], dx: o[3], dweight: o[4], dbias: o[5], rows: rows, width: c)
        }
        let sizes = [rows * c, rows, rows, rows * c, c, c]
        let f = runInFloat([x, w, b, dy], outputs: sizes, run)
        let d = runInDouble([x, w, b, dy], outputs: sizes, run)
        for (k, name) in ["y", "mean", "rstd", "dx", "dweight", "dbias"].enumerated() {
            #expect(scaledMaxError(f[k], d[k]) < floatTolerance, "\(describeMismatch(f[k], d[k], label: name))")
        }
    }

    @Test("Softmax, log-sum-exp and L2-normalize: Float agrees with Double", arguments: [false, true])
    func rowKernelsPrecision(causal: Bool) {
        let t = 9, blocks = 4, rows = t * blocks
        let x = randomArray(rows * t, seed: 6, stream: "x", std: 4), g = randomArray(rows * t, seed: 6, stream: "g")
        func run<T: Scalar>(_ i: [UnsafeMutablePointer<T>], _ o: [UnsafeMutablePointer<T>]) {
            softmaxRowsForward(i[0], o[0], rows: rows, cols: t, scale: T(0.7), causal: causal)
            o[1].update(from: i[1], count: rows * t)
            softmaxRowsBackwardInPlace(o[1], y: o[0], rows: rows, cols: t, scale: T(0.7))
            logSumExpRows(i[0], o[2], rows: rows, cols: t)
            l2NormalizeForward(i[0], o[3], norms: o[4], rows: rows, cols: t)
            l2NormalizeBackward(i[1], y: o[3], norms: o[4], dx: o[5], rows: rows, cols: t)
        }
        let sizes = [rows * t, rows * t, rows, rows * t, rows, rows * t]
        let f = runInFloat([x, g], outputs: sizes, run)
        let d = runInDouble([x, g], outputs: sizes, run)
        for (k, name) in ["softmax", "softmax backward", "logsumexp", "l2 forward", "norms", "l2 backward"].enumerated() {
            #expect(scaledMaxError(f[k], d[k]) < floatTolerance, "\(describeMismatch(f[k], d[k], label: name))")
        }
    }

    @Test("Vector kernels: Float agrees with Double")
    func vectorPrecision() {
        let n = 100_003
        let x = randomArray(n, seed: 7, stream: "x"), y = randomArray(n, seed: 7, stream: "y")
        func run<T: Scalar>(_ i: [UnsafeMutablePointer<T>], _ o: [UnsafeMutablePointer<T>]) {
            vectorAdd(i[0], i[1], o[0], count: n)
            o[1].update(from: i[1], count: n)
            axpy(T(0.3), i[0], o[1], count: n)
            vectorScale(T(-2), i[0], into: o[2], count: n)
            o[3][0] = vectorSum(i[0], count: n)
            o[3][1] = dot(i[0], i[1], count: n)
        }
        let f = runInFloat([x, y], outputs: [n, n, n, 2], run)
        let d = runInDouble([x, y], outputs: [n, n, n, 2], run)
        for k in 0..<3 { #expect(scaledMaxError(f[k], d[k]) < 1e-6) }
        // Sums over 1e5 elements: Float accumulation error grows like √n·ε.
        #expect(abs(f[3][0] - d[3][0]) < 1e-2 && abs(f[3][1] - d[3][1]) < 1e-2, "sum/dot: \(f[3]) vs \(d[3])")
        // Double results against a plain loop.
        #expect(abs(d[3][0] - x.reduce(0, +)) < 1e-9)
        #expect(abs(d[3][1] - zip(x, y).map { $0 * $1 }.reduce(0, +)) < 1e-9)
        #expect(d[1].indices.allSatisfy { abs(d[1][$0] - (y[$0] + 0.3 * x[$0])) < 1e-15 })
    }

    // MARK: Gradients in Double against finite differences

    @Test("GELU derivative equals finite differences", arguments: GELUApproximation.allCases)
    func geluGradient(_ approx: GELUApproximation) {
        let n = 50
        let x = randomBuffer(n, seed: 8, stream: "x", std: 2), dy = randomBuffer(n, seed: 8, stream: "dy")
        let y = AlignedBuffer<Double>(count: n), dx = AlignedBuffer<Double>(count: n)
        let reports = checkGradients([CheckedTensor(name: "x", values: x.pointer, gradient: dx.pointer, count: n)]) {
            geluForward(x.pointer, y.pointer, count: n, approximation: approx)
            return dot(dy.pointer, y.pointer, count: n)
        } backward: {
            geluBackward(dy.pointer, x: x.pointer, dx: dx.pointer, count: n, approximation: approx)
        }
        for r in reports { #expect(r.error < 1e-8 && r.accumulationError < 1e-14, "\(r)") }
    }

    @Test("LayerNorm backward equals finite differences")
    func layerNormGradient() {
        let rows = 5, c = 12
        let x = randomBuffer(rows * c, seed: 9, stream: "x", std: 1.5)
        let w = randomBuffer(c, seed: 9, stream: "w"), b = randomBuffer(c, seed: 9, stream: "b")
        let dy = randomBuffer(rows * c, seed: 9, stream: "dy")
        let y = AlignedBuffer<Double>(count: rows * c), mean = AlignedBuffer<Double>(count: rows), rstd = AlignedBuffer<Double>(count: rows)
        let dx = AlignedBuffer<Double>(count: rows * c), dw = AlignedBuffer<Double>(count: c), db = AlignedBuffer<Double>(count: c)
        let reports = checkGradients([
            CheckedTensor(name: "x", values: x.pointer, gradient: dx.pointer, count: rows * c),
            CheckedTensor(name: "weight", values: w.pointer, gradient: dw.pointer, count: c),
            CheckedTensor(name: "bias", values: b.pointer, gradient: db.pointer, count: c),
        ]) {
            layerNormForward(x.pointer, weight: w.pointer, bias: b.pointer, y.pointer, mean: mean.pointer, rstd: rstd.pointer, rows: rows, width: c)
            return dot(dy.pointer, y.pointer, count: rows * c)
        } backward: {
            layerNormBackward(dy.pointer, x: x.pointer, weight: w.pointer, mean: mean.pointer, rstd: rstd.pointer,
                              dx: dx.pointer, dweight: dw.pointer, dbias: db.pointer, rows: rows, width: c)
        }
        // Tolerance: central differences with h = 1e-5 in Double are accurate to ~1e-9 here.
        for r in reports { #expect(r.error < 1e-7 && r.accumulationError < 1e-14, "\(r)") }
    }

    @Test("Softmax backward equals finite differences", arguments: [false, true])
    func softmaxGradient(causal: Bool) {
        let t = 6, rows = 2 * t, n = rows * t
        let x = randomBuffer(n, seed: 10, stream: "x", std: 2), dy = randomBuffer(n, seed: 10, stream: "dy")
        let y = AlignedBuffer<Double>(count: n), g = AlignedBuffer<Double>(count: n), dx = AlignedBuffer<Double>(count: n)
        let scale = 0.35
        let reports = checkGradients([CheckedTensor(name: "x", values: x.pointer, gradient: dx.pointer, count: n)]) {
            softmaxRowsForward(x.pointer, y.pointer, rows: rows, cols: t, scale: scale, causal: causal)
            return dot(dy.pointer, y.pointer, count: n)
        } backward: {
            g.pointer.update(from: dy.pointer, count: n)
            softmaxRowsBackwardInPlace(g.pointer, y: y.pointer, rows: rows, cols: t, scale: scale)
            axpy(1, g.pointer, dx.pointer, count: n)
        }
        for r in reports { #expect(r.error < 1e-8, "\(r)") }
        if causal {
            // Masked entries are exactly zero and rows sum to one.
            softmaxRowsForward(x.pointer, y.pointer, rows: rows, cols: t, scale: scale, causal: true)
            for row in 0..<rows {
                let i = row % t
                #expect((i + 1..<t).allSatisfy { y[row * t + $0] == 0 })
                #expect(abs((0..<t).map { y[row * t + $0] }.reduce(0, +) - 1) < 1e-14)
            }
        }
    }

    @Test("Log-sum-exp equals the naive formula and its gradient is the softmax")
    func logSumExp() {
        let rows = 4, cols = 7
        let x = randomBuffer(rows * cols, seed: 11, stream: "x", std: 3)
        let out = AlignedBuffer<Double>(count: rows)
        logSumExpRows(x.pointer, out.pointer, rows: rows, cols: cols)
        for r in 0..<rows {
            let naive = Double.log((0..<cols).map { Double.exp(x[r * cols + $0]) }.reduce(0, +))
            #expect(abs(out[r] - naive) < 1e-13)
        }
        // Large values: the naive formula overflows, the kernel does not.
        let big = AlignedBuffer<Double>([1000, 999, 998])
        logSumExpRows(big.pointer, out.pointer, rows: 1, cols: 3)
        #expect(abs(out[0] - (1000 + Double.log(1 + Double.exp(-1) + Double.exp(-2)))) < 1e-12)
        let bigF = AlignedBuffer<Float>([100, 99, 98]), outF = AlignedBuffer<Float>(count: 1)
        logSumExpRows(bigF.pointer, outF.pointer, rows: 1, cols: 3)
        #expect(outF[0].isFinite && abs(outF[0] - 100.40761) < 1e-4)
        // d/dx LSE = softmax(x): finite differences of the kernel.
        let dx = AlignedBuffer<Double>(count: rows * cols), w = randomBuffer(rows, seed: 11, stream: "w")
        let sm = AlignedBuffer<Double>(count: rows * cols)
        let reports = checkGradients([CheckedTensor(name: "x", values: x.pointer, gradient: dx.pointer, count: rows * cols)]) {
            logSumExpRows(x.pointer, out.pointer, rows: rows, cols: cols)
            return dot(w.pointer, out.pointer, count: rows)
        } backward: {
            softmaxRowsForward(x.pointer, sm.pointer, rows: rows, cols: cols)
            for r in 0..<rows { for j in 0..<cols { dx[r * cols + j] += w[r] * sm[r * cols + j] } }
        }
        for r in reports { #expect(r.error < 1e-8, "\(r)") }
    }

    @Test("L2-normalize backward equals finite differences")
    func l2NormalizeGradient() {
        let rows = 4, cols = 9, n = rows * cols
        let x = randomBuffer(n, seed: 12, stream: "x"), dy = randomBuffer(n, seed: 12, stream: "dy")
        let y = AlignedBuffer<Double>(count: n), norms = AlignedBuffer<Double>(count: rows), dx = AlignedBuffer<Double>(count: n)
        let reports = checkGradients([CheckedTensor(name: "x", values: x.pointer, gradient: dx.pointer, count: n)]) {
            l2NormalizeForward(x.pointer, y.pointer, norms: norms.pointer, rows: rows, cols: cols)
            return dot(dy.pointer, y.pointer, count: n)
        } backward: {
            l2NormalizeBackward(dy.pointer, y: y.pointer, norms: norms.pointer, dx: dx.pointer, rows: rows, cols: cols)
        }
        for r in reports { #expect(r.error < 1e-8 && r.accumulationError < 1e-14, "\(r)") }
        for r in 0..<rows {
            #expect(abs(dot(y.pointer + r * cols, y.pointer + r * cols, count: cols) - 1) < 1e-14)
        }
    }

    // MARK: Threading

    @Test("parallelFor covers every index exactly once, at 1 and 2 threads")
    func parallelForCoverage() {
        for threads in [1, 2] {
            Threads.set(threads)
            for count in [0, 1, 5, 4096, 10_001] {
                let hits = AlignedBuffer<Int32>(count: max(1, count))
                let p = hits.pointer
                Threads.parallelFor(count, grain: 7) { r in for i in r { p[i] += 1 } }
                #expect((0..<count).allSatisfy { hits[$0] == 1 }, "threads \(threads), count \(count)")
            }
        }
        Threads.set(1)
    }

    @Test("Row kernels give identical results at 1 and 2 threads")
    func kernelsThreadIndependent() {
        let rows = 300, c = 64, n = rows * c
        let x = randomBuffer(n, seed: 13, stream: "x"), w = randomBuffer(c, seed: 13, stream: "w"), b = randomBuffer(c, seed: 13, stream: "b")
        var outputs: [[Double]] = []
        for threads in [1, 2] {
            Threads.set(threads)
            let y = AlignedBuffer<Double>(count: n), m = AlignedBuffer<Double>(count: rows), r = AlignedBuffer<Double>(count: rows)
            let s = AlignedBuffer<Double>(count: n), g = AlignedBuffer<Double>(count: n)
            layerNormForward(x.pointer, weight: w.pointer, bias: b.pointer, y.pointer, mean: m.pointer, rstd: r.pointer, rows: rows, width: c)
            softmaxRowsForward(x.pointer, s.pointer, rows: rows, cols: c)
            geluForward(x.pointer, g.pointer, count: n)
            outputs.append(y.toArray() + s.toArray() + g.toArray())
        }
        Threads.set(1)
        #expect(outputs[0] == outputs[1])
    }

    @Test("Aligned buffers are 64-byte aligned and zeroed")
    func alignment() {
        for count in [1, 3, 17, 1000] {
            let b = AlignedBuffer<Float>(count: count)
            #expect(b.isAligned)
            #expect(b.toArray().allSatisfy { $0 == 0 })
        }
    }

    @Test("CPU feature parsing reads model name and flags")
    func cpuFeatures() {
        let text = "processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse avx2 fma avx512f avx512_bf16\n\nprocessor\t: 1\nflags\t: fpu\n"
        let f = CPUFeatures(cpuinfo: text)
        #expect(f.modelName == "Test CPU 9000")
        #expect(f.avx2 && f.fma && f.avx512f && f.avx512bf16 && !f.amxBF16)
        let g = CPUFeatures(cpuinfo: "model name : X\nflags : sse2 avx2\n")
        #expect(g.avx2 && !g.avx512f && !g.avx512bf16)
    }
}
