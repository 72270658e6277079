import XCTest
import CFFTW
@testable import SPIOTensor

final class TensorTests: XCTestCase {
    func testShapeAndIndexing() {
        let t = Tensor(shape: [2, 3, 4, 5])
        XCTAssertEqual(t.count, 120)
        t[1, 2, 3, 4] = 7
        XCTAssertEqual(t[119], 7)
        XCTAssertEqual(t.dim(-1), 5)
    }

    func testReshapeReusesStorageWhenSmaller() {
        let t = Tensor(shape: [4, 4])
        let p = t.data
        t.reshape(to: [2, 8]); XCTAssertEqual(t.data, p)
        t.reshape(to: [3]); XCTAssertEqual(t.data, p)
        t.reshape(to: [5, 5]); XCTAssertEqual(t.count, 25)
    }

    func testLayoutRoundTrip() {
        let (n, c, plane) = (3, 4, 5)
        let src = (0..<(n * c * plane)).map(Float.init)
        var cn = [Float](repeating: 0, count: src.count), back = cn
        src.withUnsafeBufferPointer { s in
            cn.withUnsafeMutableBufferPointer {
                Layout.nchwToCN(s.baseAddress!, samples: n, channels: c, plane: plane, into: $0.baseAddress!)
            }
        }
        XCTAssertEqual(cn[1 * plane], Float(1 * c * plane))  // channel 0 of sample 1
        cn.withUnsafeBufferPointer { s in
            back.withUnsafeMutableBufferPointer {
                Layout.cnToNCHW(s.baseAddress!, samples: n, channels: c, plane: plane, into: $0.baseAddress!)
            }
        }
        XCTAssertEqual(back, src)
    }

    func testGemmAgainstLoops() {
        var rng = SeededGenerator(seed: 5)
        let (m, n, k) = (7, 5, 9)
        let a = (0..<(m * k)).map { _ in Float(rng.normal()) }, b = (0..<(k * n)).map { _ in Float(rng.normal()) }
        var c = [Float](repeating: 0, count: m * n)
        Gemm.sgemm(m: m, n: n, k: k, a: a, b: b, c: &c)
        for i in 0..<m {
            for j in 0..<n {
                let ref = (0..<k).reduce(0.0) { $0 + Double(a[i * k + $1]) * Double(b[$1 * n + j]) }
                XCTAssertEqual(Double(c[i * n + j]), ref, accuracy: 1e-4)
            }
        }
        // Transposed operands: A stored k x m, B stored n x k.
        let at = (0..<(k * m)).map { a[($0 % m) * k + $0 / m] }, bt = (0..<(n * k)).map { b[($0 % k) * n + $0 / k] }
        var c2 = [Float](repeating: 0, count: m * n)
        Gemm.sgemm(transA: true, transB: true, m: m, n: n, k: k, a: at, b: bt, c: &c2)
        for i in 0..<(m * n) { XCTAssertEqual(c2[i], c[i], accuracy: 1e-5) }
    }

    /// The FFTW single-precision system target links and computes a DFT.
    func testFFTWLinks() {
        let n = 8
        let input = fftwf_alloc_complex(n)!, output = fftwf_alloc_complex(n)!
        defer { fftwf_free(input); fftwf_free(output) }
        let plan = fftwf_plan_dft_1d(Int32(n), input, output, FFTW_FORWARD, FFTW_ESTIMATE)
        defer { fftwf_destroy_plan(plan) }
        for i in 0..<n { input[i].0 = Float(i); input[i].1 = 0 }
        fftwf_execute(plan)
        for k in 0..<n {
            var re = 0.0, im = 0.0
            for j in 0..<n {
                let ang = -2 * Double.pi * Double(j * k) / Double(n); re += Double(j) * cos(ang);
                im += Double(j) * sin(ang)
            }
            XCTAssertEqual(Double(output[k].0), re, accuracy: 1e-4)
            XCTAssertEqual(Double(output[k].1), im, accuracy: 1e-4)
        }
    }
}
