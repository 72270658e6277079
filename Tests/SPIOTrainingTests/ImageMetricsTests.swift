import Foundation
import XCTest
@testable import SPIOImageIO
@testable import SPIOTensor
@testable import SPIOTraining

/// RMSE, HFEN, SSIM and the total-iron error against exact values and against an independent
/// NumPy implementation of the same definitions (MATLAB's fspecial('log', 15, 1.5) with
/// imfilter's zero padding; Wang et al.'s SSIM with an 11 x 11 Gaussian window of sigma 1.5).
final class ImageMetricsTests: XCTestCase {
    func maps(_ seed: UInt64, n: Int = 24) -> ([Float], [Float]) {
        var rng = SeededGenerator(seed: seed)
        var t = [Float](repeating: 0, count: n * n), p = t
        for y in 0..<n {
            for x in 0..<n {
                let d = Double((y - 9) * (y - 9) + (x - 13) * (x - 13))
                t[y * n + x] = Float(8 * exp(-d / 18))
                p[y * n + x] = t[y * n + x] + Float(rng.normal()) * 0.5
            }
        }
        return (p, t)
    }

    func testExactValues() {
        let (_, t) = maps(1)
        let same = ImageMetrics(prediction: t, truth: t, size: 24)
        XCTAssertEqual(same.rmse, 0); XCTAssertEqual(same.hfen, 0); XCTAssertEqual(same.ironErrorFraction, 0)
        XCTAssertEqual(same.ssim, 1, accuracy: 1e-12)
        let doubled = ImageMetrics(prediction: t.map { 2 * $0 }, truth: t, size: 24)
        XCTAssertEqual(doubled.ironErrorFraction!, 1, accuracy: 1e-12, "twice the iron is +100 %")
        XCTAssertEqual(doubled.hfen!, 1, accuracy: 1e-12, "LoG is linear: ||2L - L|| / ||L|| = 1")
        let rms = (t.reduce(0.0) { $0 + Double($1) * Double($1) } / 576).squareRoot()
        XCTAssertEqual(doubled.rmse, rms, accuracy: 1e-9)
        XCTAssertEqual(ImageMetrics.logKernel.reduce(0, +), 0, accuracy: 1e-15, "the LoG kernel sums to zero")
        let zero = [Float](repeating: 0, count: 576)
        let none = ImageMetrics(prediction: t, truth: zero, size: 24)
        XCTAssertNil(none.hfen); XCTAssertNil(none.ironErrorFraction)
    }

    func testAgainstNumPy() throws {
        let (p, t) = maps(2)
        let dir = NSTemporaryDirectory() + "spio-metrics-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try NPYArray(shape: [24, 24], values: p).write(to: dir + "/p.npy")
        try NPYArray(shape: [24, 24], values: t).write(to: dir + "/t.npy")
        let script = """
            import numpy as np
            p = np.load('\(dir)/p.npy').astype(np.float64); t = np.load('\(dir)/t.npy').astype(np.float64)
            x = np.arange(15) - 7; X, Y = np.meshgrid(x, x); s = 1.5
            g = np.exp(-(X**2 + Y**2) / (2 * s * s)); g /= g.sum()
            h = g * (X**2 + Y**2 - 2 * s * s) / s**4; h -= h.mean()
            def filt(a):
                q = np.pad(a, 7)
                return np.array([[np.sum(h * q[i:i + 15, j:j + 15]) for j in range(a.shape[1])] for i in \
                range(a.shape[0])])
            hfen = np.linalg.norm(filt(p) - filt(t)) / np.linalg.norm(filt(t))
            w1 = np.exp(-(np.arange(11) - 5)**2 / (2 * 1.5**2)); w = np.outer(w1, w1); w /= w.sum()
            L = t.max() - t.min(); c1, c2 = (0.01 * L)**2, (0.03 * L)**2
            vals = []
            for i in range(24 - 10):
                for j in range(24 - 10):
                    a, b = p[i:i + 11, j:j + 11], t[i:i + 11, j:j + 11]
                    ma, mb = (w * a).sum(), (w * b).sum()
                    va, vb, cv = (w * a * a).sum() - ma * ma, (w * b * b).sum() - mb * mb, (w * a * b).sum() - ma * mb
                    vals.append((2 * ma * mb + c1) * (2 * cv + c2) / ((ma * ma + mb * mb + c1) * (va + vb + c2)))
            print(*[repr(float(v)) for v in (np.sqrt(np.mean((p - t)**2)), hfen, np.mean(vals), (p.sum() - \
            t.sum()) / t.sum())])
            """
        let proc = Process(), pipe = Pipe()
        proc.executableURL = URL(fileURLWithPath: "/usr/bin/env"); proc.arguments = ["python3", "-c", script]
        proc.standardOutput = pipe
        try proc.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        proc.waitUntilExit()
        guard proc.terminationStatus == 0 else {
            throw XCTSkip("numpy unavailable or failed (status \(proc.terminationStatus))")
        }
        let ref = out.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        guard ref.count == 4 else { return XCTFail("unexpected NumPy output: \(out)") }
        let m = ImageMetrics(prediction: p, truth: t, size: 24)
        print("metrics: ours", m.rmse, m.hfen!, m.ssim, m.ironErrorFraction!, "numpy", ref)
        XCTAssertEqual(m.rmse, ref[0], accuracy: 1e-12 * ref[0])
        XCTAssertEqual(m.hfen!, ref[1], accuracy: 1e-10 * ref[1])
        XCTAssertEqual(m.ssim, ref[2], accuracy: 1e-10)
        XCTAssertEqual(m.ironErrorFraction!, ref[3], accuracy: 1e-9 * abs(ref[3]) + 1e-12)
    }
}
