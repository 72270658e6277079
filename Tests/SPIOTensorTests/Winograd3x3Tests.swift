import XCTest
import SPIODigest
@testable import SPIOKernels
@testable import SPIOTensor

/// Winograd F(2x2,3x3) and F(4x4,3x3) against the direct convolution computed in double precision:
/// the output, the weight gradient and the input gradient, on planes that tiles fill and ones they
/// overhang, and bitwise on 1 and 2 threads.
final class Winograd3x3Tests: XCTestCase {
    struct Case {
        let n, c, o, h, w: Int
        /// Unit-variance input, weights, bias and output gradient, drawn in that order from `seed`.
        func data(seed: UInt64) -> (x: [Float], w: [Float], bias: [Float], dy: [Float]) {
            var rng = SeededGenerator(seed: seed)
            let x = (0..<(n * c * h * w)).map { _ in Float(rng.normal()) }
            let weights = (0..<(o * c * 9)).map { _ in Float(rng.normal()) }
            let bias = (0..<o).map { _ in Float(rng.normal()) }
            let dy = (0..<(n * o * h * w)).map { _ in Float(rng.normal()) }
            return (x, weights, bias, dy)
        }
    }
    let cases = [
        Case(n: 2, c: 5, o: 3, h: 7, w: 9), Case(n: 3, c: 16, o: 8, h: 8, w: 8), Case(n: 2, c: 8, o: 16, h: 4, w: 4),
        Case(n: 1, c: 3, o: 2, h: 2, w: 3), Case(n: 4, c: 32, o: 32, h: 16, w: 16)
    ]
    /// The largest error relative to the reference's largest magnitude, per variant, found on these
    /// cases with unit-variance data (F(2x2): 3e-7; F(4x4): 4e-6), with headroom.
    let bounds: [Winograd3x3.Variant: Double] = [.f2x2: 1e-6, .f4x4: 1e-5]

    func testForwardAndGradientsMatchDirectConvolutionInDoublePrecision() {
        let saved = Winograd3x3.maxBlockTiles
        defer { Winograd3x3.maxBlockTiles = saved }
        Winograd3x3.maxBlockTiles = 8  // many blocks, and a last one that is partly filled
        for variant in Winograd3x3.Variant.allCases {
            var worst = (forward: 0.0, weights: 0.0, input: 0.0)
            for (index, k) in cases.enumerated() {
                let (x, w, bias, dy) = k.data(seed: UInt64(index + 1))
                let got = run(variant, k, x, w, bias, dy)
                let ref = Self.direct(k, x, w, bias, dy)
                worst.forward = max(worst.forward, Self.relativeError(got.y, ref.y))
                worst.weights = max(worst.weights, Self.relativeError(got.dw, ref.dw))
                worst.input = max(worst.input, Self.relativeError(got.dx, ref.dx))
            }
            let bound = bounds[variant]!
            XCTAssertLessThan(worst.forward, bound, "\(variant) forward")
            XCTAssertLessThan(worst.weights, bound, "\(variant) weight gradient")
            XCTAssertLessThan(worst.input, bound, "\(variant) input gradient")
            print("\(variant): largest relative error forward \(worst.forward), dW \(worst.weights), dx \(worst.input)")
        }
    }

    func testSameBitsOnOneAndTwoThreads() {
        let (threads, saved) = (Engine.threadCount, Winograd3x3.maxBlockTiles)
        defer { Engine.setThreadCount(threads); Winograd3x3.maxBlockTiles = saved }
        Winograd3x3.maxBlockTiles = 16
        let k = Case(n: 3, c: 12, o: 10, h: 13, w: 11)
        let (x, w, bias, dy) = k.data(seed: 7)
        for variant in Winograd3x3.Variant.allCases {
            Engine.setThreadCount(1)
            let one = run(variant, k, x, w, bias, dy)
            Engine.setThreadCount(2)
            let two = run(variant, k, x, w, bias, dy)
            XCTAssertEqual(one.y, two.y, "\(variant) forward")
            XCTAssertEqual(one.dw, two.dw, "\(variant) weight gradient")
            XCTAssertEqual(one.dx, two.dx, "\(variant) input gradient")
        }
    }

    /// The three products of both variants pinned bit for bit on the portable kernels (SHA-256 of
    /// the outputs): on a plane that tiles overhang, in blocks that split tile rows, and on a wide
    /// plane whose rows hold runs of 8 and more tiles (where a vectorised gather or scatter works). A change
    /// meant to keep every operation (a faster gather, another loop order) must pass this; one that
    /// changes any bit changes every trained number and needs the studies re-run.
    func testResultsArePinnedBitForBit() throws {
        guard KernelPolicy.state.isPortable else { throw XCTSkip("not on the portable kernels: other sgemm bits") }
        let saved = Winograd3x3.maxBlockTiles
        defer { Winograd3x3.maxBlockTiles = saved }
        let pinned: [(Case, blockTiles: Int, [Winograd3x3.Variant: String])] = [
            (
                Case(n: 2, c: 6, o: 5, h: 15, w: 21), 7,
                [
                    .f2x2: "aca48121935dde2ef879f7bb5f3b1b69abab62037d94d7088cfa288144048a45",
                    .f4x4: "d324efeb7e78717a692c0d9a61b9b9fa281fb6048b98f53945bd12224946ea28"
                ]
            ),
            (
                Case(n: 2, c: 4, o: 3, h: 37, w: 75), 45,
                [
                    .f2x2: "e1209980dba002db0d6020d7afb1144706726f4004f426681d5c7959f11b2d7a",
                    .f4x4: "3a3cae43907edf2d63f18d2d5aa37629c3d0e7e9b83cfadc7420f3e1653c85d1"
                ]
            )
        ]
        for (index, (k, blockTiles, hashes)) in pinned.enumerated() {
            Winograd3x3.maxBlockTiles = blockTiles
            let (x, w, bias, dy) = k.data(seed: 11)
            for variant in Winograd3x3.Variant.allCases {
                let r = run(variant, k, x, w, bias, dy)
                XCTAssertEqual(SHA256.hex(floats: [r.y, r.dw, r.dx]), hashes[variant], "case \(index) \(variant)")
            }
        }
    }

    /// The flipped weights of a layer large enough that both threads take part (o c >= 2048 pairs):
    /// each pair's taps land at a transposed index in the other thread's range, so a transform that
    /// ran before the other thread's gather read stale taps (the workspace keeps the last call's,
    /// as in training, where the weights change every step). Fails without the two-pass gather.
    func testFlippedWeightsOfALargeLayerOnTwoThreads() {
        let threads = Engine.threadCount
        defer { Engine.setThreadCount(threads) }
        let (o, c) = (48, 96)
        let shared = Workspace()
        var rng = SeededGenerator(seed: 11)
        for variant in Winograd3x3.Variant.allCases {
            let wino = Winograd3x3(variant, height: 16, width: 16)
            for round in 0..<12 {
                let w = (0..<(o * c * 9)).map { _ in Float(rng.normal()) }
                var one = [Float](repeating: 0, count: wino.points * o * c), two = one
                Engine.setThreadCount(1)
                wino.transformWeights(
                    w, outChannels: o, inChannels: c, flipped: true, into: &one, workspace: Workspace())
                Engine.setThreadCount(2)
                wino.transformWeights(w, outChannels: o, inChannels: c, flipped: true, into: &two, workspace: shared)
                let differing = zip(one, two).filter { $0.bitPattern != $1.bitPattern }.count
                XCTAssertEqual(differing, 0, "\(variant) round \(round): \(differing) of \(one.count) values differ")
            }
        }
    }

    /// The layer's three products through `Winograd3x3`, as `Conv2D` calls it.
    private func run(
        _ variant: Winograd3x3.Variant, _ k: Case, _ x: [Float], _ w: [Float], _ bias: [Float], _ dy: [Float]
    ) -> (y: [Float], dw: [Float], dx: [Float]) {
        let wino = Winograd3x3(variant, height: k.h, width: k.w), ws = Workspace()
        var u = [Float](repeating: 0, count: wino.points * k.o * k.c)
        var y = [Float](repeating: .nan, count: k.n * k.o * k.h * k.w)
        var du = u, dw = [Float](repeating: 0, count: w.count), dx = x.map { _ in Float.nan }
        wino.transformWeights(w, outChannels: k.o, inChannels: k.c, flipped: false, into: &u, workspace: ws)
        wino.forward(
            x, samples: k.n, inChannels: k.c, outChannels: k.o, u: u, bias: bias, into: &y, workspace: ws)
        wino.weightGradient(x, dy, samples: k.n, inChannels: k.c, outChannels: k.o, into: &du, workspace: ws)
        wino.addWeightGradient(du, outChannels: k.o, inChannels: k.c, into: &dw, workspace: ws)
        var flipped = [Float](repeating: 0, count: u.count)
        wino.transformWeights(w, outChannels: k.o, inChannels: k.c, flipped: true, into: &flipped, workspace: ws)
        wino.forward(
            dy, samples: k.n, inChannels: k.o, outChannels: k.c, u: flipped, bias: nil, into: &dx, workspace: ws)
        return (y, dw, dx)
    }

    /// Cross-correlation with zero padding 1, its weight gradient and its input gradient, in double.
    static func direct(
        _ k: Case, _ x: [Float], _ w: [Float], _ bias: [Float], _ dy: [Float]
    )
        -> (y: [Double], dw: [Double], dx: [Double])
    {
        var y = [Double](repeating: 0, count: dy.count), dw = [Double](repeating: 0, count: w.count)
        var dx = [Double](repeating: 0, count: x.count)
        for n in 0..<k.n {
            for o in 0..<k.o {
                for r in 0..<k.h {
                    for q in 0..<k.w {
                        let out = ((n * k.o + o) * k.h + r) * k.w + q
                        var s = Double(bias[o])
                        for c in 0..<k.c {
                            for i in 0..<3 {
                                for j in 0..<3 {
                                    let (yy, xx) = (r + i - 1, q + j - 1)
                                    guard yy >= 0 && yy < k.h && xx >= 0 && xx < k.w else { continue }
                                    let inp = ((n * k.c + c) * k.h + yy) * k.w + xx, wi = (o * k.c + c) * 9 + i * 3 + j
                                    s += Double(w[wi]) * Double(x[inp])
                                    dw[wi] += Double(dy[out]) * Double(x[inp])
                                    dx[inp] += Double(dy[out]) * Double(w[wi])
                                }
                            }
                        }
                        y[out] = s
                    }
                }
            }
        }
        return (y, dw, dx)
    }

    static func relativeError(_ got: [Float], _ ref: [Double]) -> Double {
        XCTAssertEqual(got.count, ref.count)
        let scale = ref.reduce(0) { max($0, abs($1)) }
        return zip(got, ref).reduce(0) { max($0, abs(Double($1.0) - $1.1)) } / scale
    }
}

/// The direct kernel against the same double-precision reference: the output, the weight gradient
/// and the input gradient (also with 2 input channels, a partial block of the input gradient's
/// filters), and bitwise on 1 and 2 threads.
final class Direct3x3Tests: XCTestCase {
    typealias Case = Winograd3x3Tests.Case
    let cases = [
        Case(n: 2, c: 4, o: 4, h: 5, w: 16), Case(n: 5, c: 16, o: 8, h: 16, w: 32), Case(n: 3, c: 2, o: 4, h: 9, w: 48),
        Case(n: 1, c: 8, o: 16, h: 1, w: 16)
    ]

    func testForwardAndGradientsMatchDirectConvolutionInDoublePrecision() {
        var worst = (forward: 0.0, weights: 0.0, input: 0.0)
        for (index, k) in cases.enumerated() {
            let (x, w, bias, dy) = k.data(seed: UInt64(index + 11))
            let got = run(k, x, w, bias, dy)
            let ref = Winograd3x3Tests.direct(k, x, w, bias, dy)
            worst.forward = max(worst.forward, Winograd3x3Tests.relativeError(got.y, ref.y))
            worst.weights = max(worst.weights, Winograd3x3Tests.relativeError(got.dw, ref.dw))
            worst.input = max(worst.input, Winograd3x3Tests.relativeError(got.dx, ref.dx))
        }
        print("direct: largest relative error forward \(worst.forward), dW \(worst.weights), dx \(worst.input)")
        XCTAssertLessThan(worst.forward, 1e-6, "forward")
        XCTAssertLessThan(worst.weights, 1e-6, "weight gradient")
        XCTAssertLessThan(worst.input, 1e-6, "input gradient")
    }

    func testSameBitsOnOneAndTwoThreads() {
        let threads = Engine.threadCount
        defer { Engine.setThreadCount(threads) }
        let k = Case(n: 7, c: 8, o: 12, h: 6, w: 32)
        let (x, w, bias, dy) = k.data(seed: 5)
        Engine.setThreadCount(1)
        let one = run(k, x, w, bias, dy)
        Engine.setThreadCount(2)
        let two = run(k, x, w, bias, dy)
        XCTAssertEqual(one.y, two.y, "forward")
        XCTAssertEqual(one.dw, two.dw, "weight gradient")
        XCTAssertEqual(one.dx, two.dx, "input gradient")
    }

    /// The layer's three products through `Direct3x3`, as `Conv2D` calls it.
    private func run(
        _ k: Case, _ x: [Float], _ w: [Float], _ bias: [Float], _ dy: [Float]
    ) -> (
        y: [Float], dw: [Float], dx: [Float]
    ) {
        let ws = Workspace()
        var packed = [Float](repeating: .nan, count: Direct3x3.packedCount(outChannels: k.o, inChannels: k.c))
        var y = [Float](repeating: .nan, count: k.n * k.o * k.h * k.w)
        var dw = [Float](repeating: 0, count: w.count), dx = x.map { _ in Float.nan }
        Direct3x3.pack(w, outChannels: k.o, inChannels: k.c, flipped: false, into: &packed)
        Direct3x3.forward(
            x, samples: k.n, inChannels: k.c, outChannels: k.o, height: k.h, width: k.w, packed: packed, bias: bias,
            into: &y, workspace: ws)
        Direct3x3.addWeightGradient(
            x, dy, samples: k.n, inChannels: k.c, outChannels: k.o, height: k.h, width: k.w, into: &dw, workspace: ws)
        var flipped = [Float](repeating: .nan, count: Direct3x3.packedCount(outChannels: k.c, inChannels: k.o))
        Direct3x3.pack(w, outChannels: k.o, inChannels: k.c, flipped: true, into: &flipped)
        Direct3x3.forward(
            dy, samples: k.n, inChannels: k.o, outChannels: k.c, height: k.h, width: k.w, packed: flipped, bias: nil,
            into: &dx, workspace: ws)
        return (y, dw, dx)
    }
}
