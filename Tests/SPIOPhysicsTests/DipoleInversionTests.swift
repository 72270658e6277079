import Foundation
import XCTest
@testable import SPIOPhysics

/// The classical baseline's pieces against exact references: a uniform field offset read back
/// from the stripes, the slab kernel's adjoint, and the inversions of a field the kernel made.
final class DipoleInversionTests: XCTestCase {
    func config(_ n: Int = 128) -> SimulationConfig {
        var c = SimulationConfig()
        c.imageSize = n
        c.fovMM = 50
        return c
    }

    /// A uniform offset b shifts every stripe by b (1/G_ro - 1/G_ex) (forward-model.md section 4):
    /// the estimator reads b back at every stripe of every column, to a few Hz, up to the shift
    /// where a stripe would leave its window.
    func testUniformOffsetIsReadBackFromEveryStripe() {
        let c = config()
        let n = c.imageSize
        let imager = ViewLineImager(sequence: c.sequence, pixels: n, fovMM: c.fovMM)
        let estimator = StripeFieldEstimator(simulation: c)
        XCTAssertEqual(estimator.hzPerMMShift, 2000, accuracy: 1e-9, "1 / (1/1000 - 1/2000) Hz/mm")
        for b in [-1500.0, -300, 40, 700, 2000] {
            let image = imager.image(
                protonDensity: [Float](repeating: 1, count: n * n), fineConcentration: nil,
                fieldHz: [Float](repeating: Float(b), count: n * c.sequence.samplesPerPixel * n),
                dFieldDyHzPerMM: [Float](repeating: 0, count: n * c.sequence.samplesPerPixel * n))
            let samples = estimator.samples(image)
            // Stripes at the edge of the view may leave it (and wrap); all others are read.
            XCTAssertGreaterThanOrEqual(samples.count, n * (c.sequence.lineCount - 2), "b = \(b)")
            let errors = samples.map { abs($0.fieldHz - b) }.sorted()
            XCTAssertLessThan(errors[errors.count / 2], 20, "median, b = \(b)")
            XCTAssertLessThan(errors.last!, 40, "worst, b = \(b)")
            XCTAssertEqual(
                samples.map(\.row).max()! - samples.map(\.row).min()!, Double(n) - 2 * 128 / 50 * 2, accuracy: 8,
                "every stripe but the edge ones")
        }
    }

    /// K^T is the adjoint of K: <K x, y> = <x, K^T y> for random maps; and K of a single pixel is
    /// the field its column makes, odd in neither axis (a dipole's field is even about its source).
    func testSlabKernelAdjointAndSymmetry() {
        let c = config(32)
        let kernel = SlabDipoleKernel(simulation: c, slabThicknessMM: 16)
        let scratch = SlabDipoleKernel.Scratch(padded: kernel.padded)
        var rng = SystemRandomNumberGenerator()
        let x = (0..<(32 * 32)).map { _ in Float.random(in: -1...1, using: &rng) }
        let y = (0..<(32 * 32)).map { _ in Float.random(in: -1...1, using: &rng) }
        let kx = kernel.apply(x, .field, scratch: scratch), kty = kernel.apply(y, .adjoint, scratch: scratch)
        let a = zip(kx, y).reduce(0.0) { $0 + Double($1.0 * $1.1) },
            b = zip(x, kty).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        XCTAssertEqual(a, b, accuracy: 1e-4 * max(abs(a), 1))
        var delta = [Float](repeating: 0, count: 32 * 32)
        delta[16 * 32 + 16] = 1
        let psf = kernel.apply(delta, .field, scratch: scratch)
        XCTAssertEqual(psf[16 * 32 + 20], psf[16 * 32 + 12], accuracy: 1e-3 * abs(psf[16 * 32 + 20]))
        XCTAssertEqual(psf[20 * 32 + 16], psf[12 * 32 + 16], accuracy: 1e-3 * abs(psf[20 * 32 + 16]))
        // Along B0 (z, rows) the field of a column is positive, across it (x) negative.
        XCTAssertGreaterThan(psf[19 * 32 + 16], 0)
        XCTAssertLessThan(psf[16 * 32 + 19], 0)
    }

    /// A map's own slab-model field inverts back to it: the non-negative solve to within a few per
    /// cent of its iron; TKD, which zeroes the kernel's cone, further off but still far better than
    /// the all-zero map.
    func testInversionsRecoverAMapFromItsSlabField() {
        let c = config(32)
        let kernel = SlabDipoleKernel(simulation: c, slabThicknessMM: 16)
        let scratch = SlabDipoleKernel.Scratch(padded: kernel.padded)
        var truth = [Float](repeating: 0, count: 32 * 32)
        for r in 0..<32 {
            for x in 0..<32 where (r - 12) * (r - 12) + (x - 18) * (x - 18) <= 9 { truth[r * 32 + x] = 5 }
        }
        let field = kernel.apply(truth, .field, scratch: scratch)
        func nmae(_ m: [Float]) -> Double {
            zip(m, truth).reduce(0.0) { $0 + Double(abs($1.0 - $1.1)) } / truth.reduce(0.0) { $0 + Double($1) }
        }
        let sparse = DipoleInversion.nonNegativeSparse(
            fieldHz: field, weight: [Float](repeating: 1, count: 32 * 32), kernel: kernel, lambda: 1, iterations: 500,
            scratch: scratch)
        XCTAssertLessThan(nmae(sparse), 0.1)
        XCTAssertEqual(sparse.reduce(0, +) / truth.reduce(0, +), 1, accuracy: 0.05)
        XCTAssertTrue(sparse.allSatisfy { $0 >= 0 })
        let tkd = DipoleInversion.thresholdedDivision(fieldHz: field, kernel: kernel, threshold: 0.05, scratch: scratch)
        XCTAssertLessThan(nmae(tkd), 0.6)
    }
}
