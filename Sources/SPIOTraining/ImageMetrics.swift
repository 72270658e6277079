import Foundation

/// The metrics a reviewer of susceptibility (QSM) maps expects beside the paper's NMAE, for one
/// predicted and one true concentration map (n x n, ug/mm^3), each in double precision.
///
/// - `rmse`: root mean squared error, ug/mm^3.
/// - `hfen`: high-frequency error norm, ||LoG(p) - LoG(t)||_2 / ||LoG(t)||_2, with the 15 x 15
///   Laplacian-of-Gaussian kernel of sigma 1.5 pixels that the QSM reconstruction challenges use
///   (MATLAB's `fspecial('log', 15, 1.5)`, applied as `imfilter(.., 'same')`: correlation, zero
///   padding).
/// - `ssim`: structural similarity (Wang et al. 2004) with an 11 x 11 Gaussian window of sigma
///   1.5, K1 = 0.01, K2 = 0.03 and the truth's range as L, averaged over the windows that lie
///   inside the image.
/// - `ironErrorFraction`: the relative error of the total iron, (sum p - sum t) / sum t (the sum of
///   C over the slice is proportional to its dipole moment).
package struct ImageMetrics: Equatable, Sendable {
    package var rmse: Double
    package var hfen: Double?
    package var ssim: Double
    package var ironErrorFraction: Double?

    /// Metrics of one pair of maps; `hfen` and `ironErrorFraction` are nil when the truth has no
    /// high frequencies or no iron.
    package init(prediction p: UnsafePointer<Float>, truth t: UnsafePointer<Float>, size n: Int) {
        let count = n * n
        var se = 0.0, sumP = 0.0, sumT = 0.0
        for i in 0..<count {
            let d = Double(p[i]) - Double(t[i])
            se += d * d; sumP += Double(p[i]); sumT += Double(t[i])
        }
        rmse = (se / Double(count)).squareRoot()
        ironErrorFraction = sumT != 0 ? (sumP - sumT) / sumT : nil
        let lp = Self.filtered(p, size: n, kernel: Self.logKernel, width: 15)
        let lt = Self.filtered(t, size: n, kernel: Self.logKernel, width: 15)
        var num = 0.0, den = 0.0
        for i in 0..<count { num += (lp[i] - lt[i]) * (lp[i] - lt[i]); den += lt[i] * lt[i] }
        hfen = den > 0 ? (num / den).squareRoot() : nil
        ssim = Self.ssim(p, t, size: n)
    }

    /// MATLAB's `fspecial('log', 15, 1.5)`: a Gaussian normalised to sum 1, times
    /// (r^2 - 2 sigma^2) / sigma^4, shifted to sum 0.
    static let logKernel: [Double] = {
        let (w, sigma) = (15, 1.5)
        let half = w / 2
        var g = [Double](repeating: 0, count: w * w)
        for y in 0..<w {
            for x in 0..<w {
                let (dx, dy) = (Double(x - half), Double(y - half))
                g[y * w + x] = exp(-(dx * dx + dy * dy) / (2 * sigma * sigma))
            }
        }
        let total = g.reduce(0, +)
        var h = [Double](repeating: 0, count: w * w)
        for y in 0..<w {
            for x in 0..<w {
                let (dx, dy) = (Double(x - half), Double(y - half))
                h[y * w + x] = g[y * w + x] / total * (dx * dx + dy * dy - 2 * sigma * sigma) / pow(sigma, 4)
            }
        }
        let mean = h.reduce(0, +) / Double(w * w)
        return h.map { $0 - mean }
    }()

    /// Correlation of an n x n image with a w x w kernel, zero padding, same size.
    static func filtered(_ image: UnsafePointer<Float>, size n: Int, kernel: [Double], width w: Int) -> [Double] {
        let half = w / 2
        var out = [Double](repeating: 0, count: n * n)
        for y in 0..<n {
            for x in 0..<n {
                var s = 0.0
                for ky in 0..<w {
                    let yy = y + ky - half
                    guard yy >= 0 && yy < n else { continue }
                    for kx in 0..<w {
                        let xx = x + kx - half
                        guard xx >= 0 && xx < n else { continue }
                        s += kernel[ky * w + kx] * Double(image[yy * n + xx])
                    }
                }
                out[y * n + x] = s
            }
        }
        return out
    }

    /// Normalised 11 x 11 Gaussian window of sigma 1.5.
    static let ssimWindow: [Double] = {
        let g = (0..<11).map { exp(-Double(($0 - 5) * ($0 - 5)) / (2 * 1.5 * 1.5)) }
        let w = (0..<121).map { g[$0 / 11] * g[$0 % 11] }
        let total = w.reduce(0, +)
        return w.map { $0 / total }
    }()

    /// Mean SSIM over the 11 x 11 windows inside the image (1 for identical images). Constant
    /// truth (range 0) uses L = 1.
    static func ssim(_ p: UnsafePointer<Float>, _ t: UnsafePointer<Float>, size n: Int) -> Double {
        guard n >= 11 else { return .nan }
        var lo = Double.infinity, hi = -Double.infinity
        for i in 0..<(n * n) { lo = min(lo, Double(t[i])); hi = max(hi, Double(t[i])) }
        let range = hi > lo ? hi - lo : 1
        let (c1, c2) = ((0.01 * range) * (0.01 * range), (0.03 * range) * (0.03 * range))
        var total = 0.0, windows = 0
        for y in 0...(n - 11) {
            for x in 0...(n - 11) {
                var mp = 0.0, mt = 0.0, pp = 0.0, tt = 0.0, pt = 0.0
                for ky in 0..<11 {
                    for kx in 0..<11 {
                        let w = ssimWindow[ky * 11 + kx], i = (y + ky) * n + x + kx
                        let (a, b) = (Double(p[i]), Double(t[i]))
                        mp += w * a; mt += w * b; pp += w * a * a; tt += w * b * b; pt += w * a * b
                    }
                }
                let (vp, vt, cov) = (pp - mp * mp, tt - mt * mt, pt - mp * mt)
                total += ((2 * mp * mt + c1) * (2 * cov + c2)) / ((mp * mp + mt * mt + c1) * (vp + vt + c2))
                windows += 1
            }
        }
        return total / Double(windows)
    }
}
