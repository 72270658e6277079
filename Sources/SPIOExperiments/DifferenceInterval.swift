import Foundation
import SPIOTensor

/// A difference B - A with its 95 % confidence interval: the statistic behind every "B beats A"
/// and "not a finding" of `spio compare` and the reports.
///
/// Two kinds of replicate, two tests:
/// - **Paired images** (`paired`): two models evaluated on the same test images. The per-image
///   differences are the sample; the interval is the percentile bootstrap of their mean (10,000
///   resamples from a fixed seed, so the same numbers give the same interval). It says how sure we
///   are of the difference on images like these, for these trained models.
/// - **Training seeds** (`overReplicates`): each side is a few training seeds' means. Welch's
///   unequal-variance t interval on the difference of the two groups' means (Welch-Satterthwaite
///   degrees of freedom). It says how sure we are that the recipes differ, not just two models.
package struct DifferenceInterval: Equatable, Sendable {
    /// The mean of B - A (paired) or mean(B) - mean(A) (replicates).
    package let difference: Double
    package let low: Double, high: Double
    /// Pairs (paired) or replicates per side (replicates: A's, then B's).
    package let counts: [Int]
    /// "paired bootstrap" or "Welch t".
    package let method: String

    /// Whether the interval excludes 0: a finding at the 5 % level.
    package var excludesZero: Bool { low > 0 || high < 0 }

    /// One line, e.g. "-0.112 [-0.140, -0.085] (paired bootstrap, n = 200)".
    package var text: String {
        let n = counts.count == 1 ? "n = \(counts[0])" : "n = \(counts.map(String.init).joined(separator: " and "))"
        return String(format: "%+.3f [%+.3f, %+.3f]", difference, low, high) + " (\(method), \(n))"
    }

    /// The percentile-bootstrap interval of the mean of `b[i] - a[i]`, or nil when the arrays
    /// differ in length or are empty.
    package static func paired(
        _ a: [Double], _ b: [Double], resamples: Int = 10_000, seed: UInt64 = 20_261_207
    ) -> DifferenceInterval? {
        guard a.count == b.count, !a.isEmpty, resamples > 0 else { return nil }
        let d = zip(a, b).map { $1 - $0 }
        let n = d.count
        var rng = SeededGenerator(seed: seed)
        var means = [Double](repeating: 0, count: resamples)
        for r in 0..<resamples {
            var sum = 0.0
            for _ in 0..<n { sum += d[rng.int(in: 0...(n - 1))] }
            means[r] = sum / Double(n)
        }
        means.sort()
        return DifferenceInterval(
            difference: d.reduce(0, +) / Double(n), low: quantile(means, 0.025), high: quantile(means, 0.975),
            counts: [n], method: "paired bootstrap")
    }

    /// The percentile-bootstrap interval of the mean of `values` itself (the difference from 0),
    /// e.g. a model's mean NMAE over its test images.
    package static func ofMean(_ values: [Double]) -> DifferenceInterval? {
        guard let i = paired([Double](repeating: 0, count: values.count), values) else { return nil }
        return DifferenceInterval(
            difference: i.difference, low: i.low, high: i.high, counts: i.counts, method: "bootstrap of the mean")
    }

    /// Welch's t interval of mean(b) - mean(a), or nil with fewer than two values on a side or no
    /// spread on either.
    package static func overReplicates(_ a: [Double], _ b: [Double], level: Double = 0.95) -> DifferenceInterval? {
        guard a.count >= 2, b.count >= 2 else { return nil }
        func meanAndVariance(_ x: [Double]) -> (Double, Double) {
            let m = x.reduce(0, +) / Double(x.count)
            return (m, x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1))
        }
        let (ma, va) = meanAndVariance(a), (mb, vb) = meanAndVariance(b)
        let sa = va / Double(a.count), sb = vb / Double(b.count)
        guard sa + sb > 0 else { return nil }
        let df = (sa + sb) * (sa + sb) / (sa * sa / Double(a.count - 1) + sb * sb / Double(b.count - 1))
        let half = StudentT.quantile(0.5 + level / 2, degreesOfFreedom: df) * (sa + sb).squareRoot()
        let d = mb - ma
        return DifferenceInterval(
            difference: d, low: d - half, high: d + half, counts: [a.count, b.count], method: "Welch t")
    }

    /// The q-quantile of sorted values, linear between order statistics (NumPy's default).
    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        let h = q * Double(sorted.count - 1)
        let i = Int(h.rounded(.down)), f = h - Double(i)
        return i + 1 < sorted.count ? sorted[i] + f * (sorted[i + 1] - sorted[i]) : sorted[i]
    }
}

/// Student's t distribution: its CDF through the regularised incomplete beta function and its
/// quantile by bisection (none of the project's dependencies has them).
package enum StudentT {
    /// P(T <= t) for `degreesOfFreedom` (any positive real).
    package static func cdf(_ t: Double, degreesOfFreedom v: Double) -> Double {
        let tail = 0.5 * incompleteBeta(v / (v + t * t), a: v / 2, b: 0.5)
        return t >= 0 ? 1 - tail : tail
    }

    /// The t with P(T <= t) = p, for 0 < p < 1.
    package static func quantile(_ p: Double, degreesOfFreedom v: Double) -> Double {
        precondition(p > 0 && p < 1 && v > 0, "StudentT.quantile needs 0 < p < 1 and positive degrees of freedom")
        var lo = -1.0, hi = 1.0
        while cdf(lo, degreesOfFreedom: v) > p { lo *= 2 }
        while cdf(hi, degreesOfFreedom: v) < p { hi *= 2 }
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if cdf(mid, degreesOfFreedom: v) < p { lo = mid } else { hi = mid }
            if hi - lo < 1e-12 * max(1, abs(mid)) { break }
        }
        return (lo + hi) / 2
    }

    /// The regularised incomplete beta function I_x(a, b), by its continued fraction (Lentz).
    static func incompleteBeta(_ x: Double, a: Double, b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logFront: Double = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log(1 - x)
        let front = exp(logFront)
        // The fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
        if x > (a + 1) / (a + b + 2) { return 1 - incompleteBeta(1 - x, a: b, b: a) }
        let tiny = 1e-300
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        d = 1 / (abs(d) < tiny ? tiny : d)
        var f = d
        for m in 1...500 {
            let m = Double(m)
            let even: Double = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            d = 1 + even * d; d = 1 / (abs(d) < tiny ? tiny : d)
            c = 1 + even / c; if abs(c) < tiny { c = tiny }
            f *= d * c
            let odd: Double = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1 + odd * d; d = 1 / (abs(d) < tiny ? tiny : d)
            c = 1 + odd / c; if abs(c) < tiny { c = tiny }
            let step = d * c
            f *= step
            if abs(step - 1) < 1e-15 { break }
        }
        return front * f / a
    }
}
