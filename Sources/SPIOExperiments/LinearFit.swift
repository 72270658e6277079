/// Ordinary least squares y = intercept + slope x, with the coefficient of determination.
package struct LinearFit {
    package let slope: Double, intercept: Double
    /// 1 - (residual sum of squares) / (total sum of squares of y); NaN when y does not vary.
    package let r2: Double

    package init(_ x: [Double], _ y: [Double]) {
        precondition(x.count == y.count, "LinearFit needs as many x as y values")
        let n = Double(x.count)
        let mx = x.reduce(0, +) / n, my = y.reduce(0, +) / n
        var sxx = 0.0, sxy = 0.0, syy = 0.0
        for (a, b) in zip(x, y) { sxx += (a - mx) * (a - mx); sxy += (a - mx) * (b - my); syy += (b - my) * (b - my) }
        slope = sxx > 0 ? sxy / sxx : .nan
        intercept = my - slope * mx
        var residual = 0.0
        for (a, b) in zip(x, y) { residual += (b - intercept - slope * a) * (b - intercept - slope * a) }
        r2 = syy > 0 ? 1 - residual / syy : .nan
    }
}
