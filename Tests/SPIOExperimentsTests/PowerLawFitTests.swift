import XCTest
@testable import SPIOExperiments

final class PowerLawFitTests: XCTestCase {
    let steps: [Double] = [1710, 3420, 6840, 13680]

    /// Exact points of a law are recovered, and the steps to a target invert it.
    func testRecoversAnExactLaw() throws {
        let law = { (s: Double) in 0.2 + 5 * pow(s, -0.5) }
        let fit = try XCTUnwrap(PowerLawFit(steps: steps + [27360], values: (steps + [27360]).map(law)))
        XCTAssertEqual(fit.floor, 0.2, accuracy: 1e-6)
        XCTAssertEqual(fit.scale, 5, accuracy: 1e-4)
        XCTAssertEqual(fit.exponent, 0.5, accuracy: 1e-6)
        XCTAssertEqual(fit.steps(toReach: 0.3), 2500, accuracy: 0.01)  // (5 / 0.1)^2
        XCTAssertEqual(fit.steps(toReach: 0.2), .infinity)
        XCTAssertEqual(fit.steps(toReach: 0.1), .infinity, "the floor lies above the target")
        XCTAssertEqual(fit.value(atSteps: 10_000), 0.25, accuracy: 1e-6)
    }

    /// Noisy points: the same optimum as SciPy's `curve_fit` (bounded trust-region least squares,
    /// tolerances 1e-14) found for them: a = 0.69377991, b = 37.45052773, c = 0.75003893, residual
    /// sum of squares 2.18871e-05.
    func testMatchesSciPyCurveFit() throws {
        let fit = try XCTUnwrap(PowerLawFit(steps: steps, values: [0.834, 0.78, 0.74, 0.725]))
        XCTAssertEqual(fit.floor, 0.69377991, accuracy: 1e-5)
        XCTAssertEqual(fit.exponent, 0.75003893, accuracy: 1e-4)
        XCTAssertEqual(fit.scale, 37.45052773, accuracy: 0.02)
        XCTAssertEqual(fit.residual, 2.188709779e-05, accuracy: 1e-10)
    }

    /// An error that grows with steps is a flat line at its mean, not a negative scale; too few
    /// points are no fit.
    func testConstraintsAndRefusals() throws {
        let fit = try XCTUnwrap(PowerLawFit(steps: steps, values: [0.5, 0.6, 0.7, 0.8]))
        XCTAssertEqual(fit.scale, 0)
        XCTAssertEqual(fit.floor, 0.65, accuracy: 1e-12)
        XCTAssertNil(PowerLawFit(steps: [1, 2], values: [1, 0.5]))
        XCTAssertNil(PowerLawFit(steps: [0, 1, 2], values: [1, 0.5, 0.4]))
        XCTAssertNil(PowerLawFit(steps: [1, 2, 3], values: [1, .nan, 0.4]))
    }

    /// The bootstrap over images: the band holds the fit, intervals are ordered, images missing at
    /// any step are left out everywhere, and the same numbers give the same band.
    func testScalingCurveBootstrapsOverImages() throws {
        // 50 images, each the law plus its own offset (a hard or easy image at every step).
        let offsets = (0..<50).map { Double(($0 * 37) % 50) / 50 - 0.49 }
        var perImage = steps.map { s in offsets.map { Optional(0.3 + 20 * pow(s, -0.6) + 0.2 * $0) } }
        perImage[2][7] = nil
        let curve = try XCTUnwrap(
            ScalingCurve(steps: steps, perImage: perImage, targets: [0.30, 0.17], curveSteps: [1000, 100_000]))
        XCTAssertEqual(curve.images, 49)
        XCTAssertLessThanOrEqual(curve.floorInterval.low, curve.fit.floor)
        XCTAssertGreaterThanOrEqual(curve.floorInterval.high, curve.fit.floor)
        XCTAssertLessThan(curve.floorInterval.high - curve.floorInterval.low, 0.2)
        for j in curve.curveSteps.indices {
            XCTAssertLessThanOrEqual(curve.curveLow[j], curve.curve[j] + 1e-12)
            XCTAssertGreaterThanOrEqual(curve.curveHigh[j], curve.curve[j] - 1e-12)
        }
        // 0.17 lies below every resample's floor (about 0.3): never reached.
        XCTAssertEqual(curve.toReach[1].steps, .infinity)
        XCTAssertEqual(curve.toReach[1].low, .infinity)
        let again = try XCTUnwrap(
            ScalingCurve(steps: steps, perImage: perImage, targets: [0.30, 0.17], curveSteps: [1000, 100_000]))
        XCTAssertEqual(again.curveLow, curve.curveLow)
        XCTAssertEqual(again.floorInterval.high, curve.floorInterval.high)
    }
}
