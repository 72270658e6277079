import Foundation
import SPIOTensor

/// The scaling law of an error against optimizer steps S: `error = floor + scale * S^-exponent`,
/// the form of the neural scaling-law papers (Kaplan et al. 2020, Hoffmann et al. 2022) with an
/// irreducible floor, fitted by least squares.
///
/// For a fixed exponent the model is linear in (floor, scale), so those are solved exactly, held
/// non-negative (an error that grows with steps, or a floor below zero, is not this law); the
/// exponent is chosen on a log grid from 0.01 to 4 and refined by golden-section search. With as
/// few points as a study has (4 or 5 per series) the fit is close to an interpolation: its
/// uncertainty is what `ScalingCurve` bootstraps.
package struct PowerLawFit: Equatable, Sendable {
    package let floor: Double, scale: Double, exponent: Double
    /// The residual sum of squares.
    package let residual: Double

    /// Nil with fewer than 3 points, a non-positive step or a non-finite value.
    package init?(steps: [Double], values: [Double]) {
        guard steps.count == values.count, steps.count >= 3, steps.allSatisfy({ $0 > 0 && $0.isFinite }),
            values.allSatisfy(\.isFinite)
        else { return nil }
        func solve(_ c: Double) -> (floor: Double, scale: Double, residual: Double) {
            let x = steps.map { pow($0, -c) }, n = Double(x.count)
            let mx = x.reduce(0, +) / n, my = values.reduce(0, +) / n
            var sxx = 0.0, sxy = 0.0
            for (a, b) in zip(x, values) { sxx += (a - mx) * (a - mx); sxy += (a - mx) * (b - my) }
            var b = sxx > 0 ? sxy / sxx : 0, a = my - b * mx
            if b < 0 {
                (a, b) = (my, 0)
            } else if a < 0 {
                let xx = x.reduce(0) { $0 + $1 * $1 }
                (a, b) = (0, max(0, zip(x, values).reduce(0) { $0 + $1.0 * $1.1 } / xx))
            }
            let r = zip(x, values).reduce(0.0) { $0 + ($1.1 - a - b * $1.0) * ($1.1 - a - b * $1.0) }
            return (a, b, r)
        }
        let grid = (0..<400).map { 0.01 * pow(400, Double($0) / 399) }
        let residuals = grid.map { solve($0).residual }
        let best = residuals.indices.min { residuals[$0] < residuals[$1] }!
        var (lo, hi) = (grid[max(0, best - 1)], grid[min(grid.count - 1, best + 1)])
        let golden = (5.0.squareRoot() - 1) / 2
        for _ in 0..<60 {
            let (m1, m2) = (hi - golden * (hi - lo), lo + golden * (hi - lo))
            if solve(m1).residual < solve(m2).residual { hi = m2 } else { lo = m1 }
        }
        let c = [grid[best], (lo + hi) / 2].min { solve($0).residual < solve($1).residual }!
        let s = solve(c)
        (floor, scale, exponent, residual) = (s.floor, s.scale, c, s.residual)
    }

    /// The fitted error at `steps`.
    package func value(atSteps steps: Double) -> Double { floor + scale * pow(steps, -exponent) }

    /// The steps at which the fitted error reaches `target`, or infinity where the floor lies at or
    /// above it.
    package func steps(toReach target: Double) -> Double {
        guard target > floor, scale > 0 else { return scale == 0 && floor < target ? 0 : .infinity }
        return pow(scale / (target - floor), 1 / exponent)
    }
}

/// A series' test error against steps with its uncertainty over the test images: the same images
/// measured at every checkpoint, so a bootstrap resample draws images (with replacement) once and
/// takes every checkpoint's mean over them, then refits the law. Percentile intervals (2.5 %,
/// 97.5 %) of the floor, the exponent, the steps to each target and the curve itself. It is the
/// uncertainty of this test set, for these trained weights: another training seed moves a curve
/// too, and is not in the band.
package struct ScalingCurve: Sendable {
    package let steps: [Double]
    /// The mean error at each step over the images every checkpoint measured.
    package let means: [Double]
    package let images: Int
    package let fit: PowerLawFit
    package let floorInterval: (low: Double, high: Double)
    package let exponentInterval: (low: Double, high: Double)
    /// Per target: the fitted steps to reach it and its interval (infinity: the floor lies above).
    package let toReach: [(target: Double, steps: Double, low: Double, high: Double)]
    /// The fitted curve and its pointwise band at `curveSteps`.
    package let curveSteps: [Double]
    package let curve: [Double], curveLow: [Double], curveHigh: [Double]

    /// `perImage[k][i]`: image i's error at `steps[k]` (nil: no error for that image, e.g. no SPIO
    /// in its truth); images missing at any step are left out of every step. Nil when the law cannot
    /// be fitted.
    package init?(
        steps: [Double], perImage: [[Double?]], targets: [Double], curveSteps: [Double], resamples: Int = 1000,
        seed: UInt64 = 20_261_207
    ) {
        guard steps.count == perImage.count, let width = perImage.map(\.count).min(), width > 0 else { return nil }
        let kept = (0..<width).filter { i in perImage.allSatisfy { $0[i] != nil } }
        guard !kept.isEmpty else { return nil }
        let table = perImage.map { row in kept.map { row[$0]! } }
        func meansOf(_ rows: [[Double]], _ pick: [Int]) -> [Double] {
            rows.map { r in pick.reduce(0.0) { $0 + r[$1] } / Double(pick.count) }
        }
        let n = kept.count
        let means = meansOf(table, Array(0..<n))
        guard let fit = PowerLawFit(steps: steps, values: means) else { return nil }
        var rng = SeededGenerator(seed: seed)
        var floors: [Double] = [], exponents: [Double] = [], reach = targets.map { _ in [Double]() }
        var curves = curveSteps.map { _ in [Double]() }
        for _ in 0..<resamples {
            let pick = (0..<n).map { _ in rng.int(in: 0...(n - 1)) }
            guard let f = PowerLawFit(steps: steps, values: meansOf(table, pick)) else { continue }
            floors.append(f.floor); exponents.append(f.exponent)
            for (t, target) in targets.enumerated() { reach[t].append(f.steps(toReach: target)) }
            for (j, s) in curveSteps.enumerated() { curves[j].append(f.value(atSteps: s)) }
        }
        guard !floors.isEmpty else { return nil }
        func interval(_ v: [Double]) -> (low: Double, high: Double) {
            let s = v.sorted()
            // Infinity (never reached) sorts last; between two infinities the linear rule gives NaN.
            func q(_ p: Double) -> Double {
                let i = Int((p * Double(s.count - 1)).rounded(.down))
                return s[i].isInfinite ? .infinity : DifferenceInterval.quantile(s, p)
            }
            return (q(0.025), q(0.975))
        }
        self.steps = steps; self.means = means; images = n; self.fit = fit
        floorInterval = interval(floors); exponentInterval = interval(exponents)
        toReach = targets.enumerated().map { t, target in
            let i = interval(reach[t])
            return (target, fit.steps(toReach: target), i.low, i.high)
        }
        self.curveSteps = curveSteps
        curve = curveSteps.map(fit.value)
        let bands = curves.map(interval)
        curveLow = bands.map(\.low); curveHigh = bands.map(\.high)
    }
}
