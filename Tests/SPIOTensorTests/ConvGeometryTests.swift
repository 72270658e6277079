import XCTest
@testable import SPIOTensor

final class ConvGeometryTests: XCTestCase {
    private func random(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return (0..<n).map { _ in Float(rng.normal()) }
    }

    /// im2col entries equal the padded input pixels they stand for (checked element by element).
    func testIm2colMatchesDefinition() {
        for (k, s, p, w) in [(3, 1, 1, 6), (3, 2, 1, 6), (3, 2, 1, 37), (1, 1, 0, 6), (2, 2, 0, 6), (5, 1, 2, 6)] {
            let g = ConvGeometry(channels: 3, inH: 7, inW: w, kernelH: k, kernelW: k, stride: s, padding: p)
            let samples = 2
            let x = random(samples * g.inPlaneVolume, seed: 1)
            var col = [Float](repeating: .nan, count: g.rows * samples * g.outPlane)
            x.withUnsafeBufferPointer { xs in
                col.withUnsafeMutableBufferPointer {
                    g.im2col(xs.baseAddress!, samples: samples, into: $0.baseAddress!)
                }
            }
            for r in 0..<g.rows {
                let c = r / (k * k), ky = (r / k) % k, kx = r % k
                for n in 0..<samples {
                    for oy in 0..<g.outH {
                        for ox in 0..<g.outW {
                            let iy = oy * s - p + ky, ix = ox * s - p + kx
                            let expected: Float =
                                (iy >= 0 && iy < 7 && ix >= 0 && ix < w) ? x[((n * 3 + c) * 7 + iy) * w + ix] : 0
                            XCTAssertEqual(
                                col[r * samples * g.outPlane + n * g.outPlane + oy * g.outW + ox], expected, "\(g)")
                        }
                    }
                }
            }
        }
    }

    /// col2im is the adjoint of im2col: <im2col(x), c> = <x, col2im(c)>.
    func testCol2imIsAdjoint() {
        for (k, s, p) in [(3, 1, 1), (3, 2, 1), (2, 2, 0), (4, 3, 1)] {
            let g = ConvGeometry(channels: 2, inH: 9, inW: 8, kernelH: k, kernelW: k, stride: s, padding: p)
            let samples = 3
            let x = random(samples * g.inPlaneVolume, seed: 2)
            let c = random(g.rows * samples * g.outPlane, seed: 3)
            var col = [Float](repeating: 0, count: c.count)
            var back = [Float](repeating: 0, count: x.count)
            x.withUnsafeBufferPointer { xs in
                col.withUnsafeMutableBufferPointer {
                    g.im2col(xs.baseAddress!, samples: samples, into: $0.baseAddress!)
                }
            }
            c.withUnsafeBufferPointer { cs in
                back.withUnsafeMutableBufferPointer {
                    g.col2im(cs.baseAddress!, samples: samples, into: $0.baseAddress!)
                }
            }
            let lhs = zip(col, c).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let rhs = zip(x, back).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            XCTAssertEqual(lhs, rhs, accuracy: 1e-4 * max(1, abs(lhs)), "\(g)")
        }
    }

    /// col2im equals its definition bitwise: every pixel is the sum, from zero, of the column
    /// entries standing for it, added in column-row order. Covers the 3 x 3 / 2 fast path at widths
    /// below, at and above its 8-wide step, the general loop (odd width, other strides) and batches.
    func testCol2imMatchesDefinitionBitwise() {
        let cases = [
            (3, 2, 1, 16, 16), (3, 2, 1, 6, 34), (3, 2, 1, 5, 18), (3, 2, 1, 4, 2), (3, 2, 1, 7, 9),
            (3, 1, 1, 5, 6), (2, 2, 0, 6, 8), (4, 3, 1, 9, 8)
        ]
        for (k, s, p, h, w) in cases {
            let g = ConvGeometry(channels: 3, inH: h, inW: w, kernelH: k, kernelW: k, stride: s, padding: p)
            let samples = 2
            let c = random(g.rows * samples * g.outPlane, seed: 4)
            var expected = [Float](repeating: 0, count: samples * g.inPlaneVolume)
            for r in 0..<g.rows {
                let ch = r / (k * k), ky = (r / k) % k, kx = r % k
                for n in 0..<samples {
                    for oy in 0..<g.outH {
                        for ox in 0..<g.outW {
                            let iy = oy * s - p + ky, ix = ox * s - p + kx
                            guard iy >= 0 && iy < h && ix >= 0 && ix < w else { continue }
                            expected[((n * 3 + ch) * h + iy) * w + ix] +=
                                c[r * samples * g.outPlane + n * g.outPlane + oy * g.outW + ox]
                        }
                    }
                }
            }
            var back = [Float](repeating: 0, count: expected.count)
            c.withUnsafeBufferPointer { cs in
                back.withUnsafeMutableBufferPointer {
                    g.col2im(cs.baseAddress!, samples: samples, into: $0.baseAddress!)
                }
            }
            XCTAssertEqual(back.map(\.bitPattern), expected.map(\.bitPattern), "\(g)")
        }
    }

    func testOutputSizes() {
        XCTAssertEqual(
            ConvGeometry(channels: 1, inH: 64, inW: 64, kernelH: 3, kernelW: 3, stride: 2, padding: 1).outH, 32)
        XCTAssertEqual(ConvGeometry(channels: 1, inH: 5, inW: 5, kernelH: 3, kernelW: 3, stride: 1, padding: 1).outW, 5)
    }
}
