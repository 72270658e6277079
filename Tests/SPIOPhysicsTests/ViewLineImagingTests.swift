import XCTest
@testable import SPIOPhysics

/// The imaging tests of forward-model.md section 4, on a uniform proton density.
final class ViewLineImagingTests: XCTestCase {
    let n = 64, fov = 50.0

    private func imager(samples: Int = 32, edge: Double = 0.25, readoutBandwidthHz: Double = 50000) -> ViewLineImager {
        var seq = ViewLineSequence()
        seq.samplesPerPixel = samples; seq.sliceEdgeFraction = edge; seq.readoutBandwidthHz = readoutBandwidthHz
        return ViewLineImager(sequence: seq, pixels: n, fovMM: fov)
    }

    private var rho: [Float] { [Float](repeating: 1, count: n * n) }

    /// (centroid mm, integral mm) of stripe k in column x: signal-weighted mean of pixel centres
    /// within +-pitch of `around`, and the summed signal times the pixel size.
    private func stripe(_ image: [Float], k: Int, x: Int, around: Double) -> (Double, Double) {
        let d = fov / Double(n), ch = (k & 1) * n * n
        var m = 0.0, mz = 0.0
        for r in 0..<n {
            let z = -fov / 2 + (Double(r) + 0.5) * d
            if abs(z - around) <= 2 { let v = Double(image[ch + r * n + x]); m += v; mz += v * z }
        }
        return (mz / m, m * d)
    }

    private func uniformField(_ hz: Double, samples: Int) -> [Float] {
        [Float](repeating: Float(hz), count: n * samples * n)
    }

    func testNoFieldGivesStraightStripesOfWidthW() {
        let im = imager()
        let image = im.image(protonDensity: rho, fineConcentration: nil, fieldHz: nil, dFieldDyHzPerMM: nil)
        let centres = im.sequence.stripeCentresMM(fovMM: fov)
        XCTAssertEqual(centres.first!, -24, accuracy: 1e-12); XCTAssertEqual(centres.last!, 24, accuracy: 1e-12)
        for k in 1..<(centres.count - 1) {
            let (c, width) = stripe(image, k: k, x: 0, around: centres[k])
            XCTAssertEqual(c, centres[k], accuracy: 0.01, "stripe \(k) centre")
            XCTAssertEqual(width, 1.0, accuracy: 0.02, "stripe \(k) width")
            for x in 1..<n {  // straight: every column identical
                for r in 0..<n {
                    XCTAssertEqual(image[(k & 1) * n * n + r * n + x], image[(k & 1) * n * n + r * n], "column \(x)")
                }
            }
        }
        // Even stripes only in channel 0, odd only in channel 1.
        let d = fov / Double(n)
        for r in 0..<n {
            let z = -fov / 2 + (Double(r) + 0.5) * d
            let nearest = Int(((z + fov / 2) / 2 - 0.5).rounded())
            if abs(z - centres[max(0, min(24, nearest))]) < 0.3 {
                XCTAssertEqual(image[((nearest + 1) & 1) * n * n + r * n], 0, "row \(r) in the other channel")
            }
        }
    }

    /// A uniform offset b shifts every stripe by exactly b (1/G_ro - 1/G_ex). b is chosen so the
    /// excited band moves by a whole number of fine samples, which makes the discrete answer exact.
    func testUniformOffsetShiftsStripesExactly() {
        let s = 32, im = imager(samples: s)
        let d = fov / Double(n), step = d / Double(s)
        let gEx = im.sequence.excitationHzPerMM, gRo = im.sequence.readoutHzPerMM(fovMM: fov)
        for m in [-7, 3, 20] {
            let b = Double(m) * step * gEx
            let base = im.image(protonDensity: rho, fineConcentration: nil, fieldHz: nil, dFieldDyHzPerMM: nil)
            let shifted = im.image(
                protonDensity: rho, fineConcentration: nil, fieldHz: uniformField(b, samples: s), dFieldDyHzPerMM: nil)
            let expected = b * (1 / gRo - 1 / gEx)
            let centres = im.sequence.stripeCentresMM(fovMM: fov)
            for k in 2..<(centres.count - 2) {
                let (c0, w0) = stripe(base, k: k, x: 5, around: centres[k])
                let (c1, w1) = stripe(shifted, k: k, x: 5, around: centres[k] + expected)
                XCTAssertEqual(c1 - c0, expected, accuracy: 1e-4, "b = \(b) Hz, stripe \(k)")
                XCTAssertEqual(w1, w0, accuracy: 1e-4)
            }
        }
    }

    /// With G_ro = G_ex and the same polarity the readout undoes the excitation shift: a uniform
    /// offset changes nothing, and any field leaves the signal inside the undistorted stripe bands.
    func testEqualGradientsCancel() {
        let s = 16
        let im = imager(samples: s, readoutBandwidthHz: 2000 * fov)  // G_ro = 2000 Hz/mm = G_ex
        XCTAssertEqual(im.sequence.readoutHzPerMM(fovMM: fov), im.sequence.excitationHzPerMM)
        let d = fov / Double(n), step = d / Double(s)
        let base = im.image(protonDensity: rho, fineConcentration: nil, fieldHz: nil, dFieldDyHzPerMM: nil)
        let uniform = im.image(
            protonDensity: rho, fineConcentration: nil, fieldHz: uniformField(5 * step * 2000, samples: s),
            dFieldDyHzPerMM: nil)
        for (a, b) in zip(base, uniform) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        // A smooth non-uniform field of up to 1.6 kHz (0.8 mm of excitation shift).
        var field = [Float](repeating: 0, count: n * s * n)
        for f in 0..<(n * s) {
            for x in 0..<n {
                let z = -fov / 2 + (Double(f) + 0.5) * step, xm = -fov / 2 + (Double(x) + 0.5) * d
                field[f * n + x] = Float(1600 * sin(z / 3) * cos(xm / 5))
            }
        }
        let bent = im.image(protonDensity: rho, fineConcentration: nil, fieldHz: field, dFieldDyHzPerMM: nil)
        let centres = im.sequence.stripeCentresMM(fovMM: fov)
        for ch in 0..<2 {
            for r in 0..<n {
                for x in 0..<n where bent[ch * n * n + r * n + x] > 1e-6 {
                    let z = -fov / 2 + (Double(r) + 0.5) * d
                    let near = centres.enumerated().filter { $0.offset & 1 == ch }.map { abs($0.element - z) }.min()!
                    XCTAssertLessThan(near, 0.5 * 1.25 + d, "signal at z = \(z) outside every stripe band")
                }
            }
        }
    }

    /// The splat distributes every excited sample's signal completely: the image total equals the
    /// sum over fine samples of rho x profile / samplesPerPixel, for an arbitrary field.
    func testSplatConservesSignal() {
        let s = 8, im = imager(samples: s, edge: 0.1)
        let d = fov / Double(n), step = d / Double(s)
        var field = [Float](repeating: 0, count: n * s * n)
        for f in 0..<(n * s) {
            for x in 0..<n {
                let z = -fov / 2 + (Double(f) + 0.5) * step, xm = -fov / 2 + (Double(x) + 0.5) * d
                field[f * n + x] = Float(3000 * exp(-(z * z + xm * xm) / 40))
            }
        }
        let image = im.image(protonDensity: rho, fineConcentration: nil, fieldHz: field, dFieldDyHzPerMM: nil)
        let centres = im.sequence.stripeCentresMM(fovMM: fov)
        var expected = 0.0
        for f in 0..<(n * s) {
            for x in 0..<n {
                let z = -fov / 2 + (Double(f) + 0.5) * step
                let u = z + Double(field[f * n + x]) / im.sequence.excitationHzPerMM
                for c in centres { expected += im.sequence.profile(u - c) / Double(s) }
            }
        }
        let total = image.reduce(0.0) { $0 + Double($1) }
        XCTAssertEqual(total, expected, accuracy: 1e-4 * expected)
        XCTAssertGreaterThan(total, 0)
    }

    func testSliceProfileHasUnitIntegral() {
        var seq = ViewLineSequence()
        for edge in [0.0, 0.1, 0.5] {
            seq.sliceEdgeFraction = edge
            let h = 1e-4
            let integral = stride(from: -1.0, to: 1.0, by: h).reduce(0.0) { $0 + seq.profile($1 + h / 2) * h }
            XCTAssertEqual(integral, 1, accuracy: 1e-6, "edge \(edge)")
        }
    }
}
