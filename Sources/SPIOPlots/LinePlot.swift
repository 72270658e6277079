import Foundation
import SPIOImageIO

/// A line plot for reports: axes with ticks and numbers, axis labels, a title, several series in
/// distinct colours with optional markers and error bars, a legend, linear or log-10 y axis.
package struct LinePlot {
    /// One curve: points (x, y) and, optionally, a symmetric error per point.
    package struct Series {
        package var label: String
        package var points: [(x: Double, y: Double)]
        package var errors: [Double]?
        package var markers: Bool
        package init(label: String, points: [(x: Double, y: Double)], errors: [Double]? = nil, markers: Bool = false) {
            self.label = label; self.points = points; self.errors = errors; self.markers = markers
        }
    }

    package var title: String
    package var xLabel: String, yLabel: String
    package var series: [Series] = []
    package var logY = false
    package var width = 560, height = 360

    package init(title: String, xLabel: String, yLabel: String) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel
    }

    /// Tableau-like colours, distinguishable on white.
    package static let palette: [(UInt8, UInt8, UInt8)] = [
        (31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14),
        (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127),
        (188, 189, 34), (23, 190, 207)
    ]

    package func render() -> RGBImage {
        var img = RGBImage(width: width, height: height)
        let (left, right, top, bottom) = (62, 16, 24, 40)
        let (pw, ph) = (width - left - right, height - top - bottom)
        let finite = series.flatMap { s in
            s.points.enumerated().flatMap { i, p -> [(Double, Double)] in
                let e = s.errors?[i] ?? 0
                return [(p.x, p.y - e), (p.x, p.y + e)].filter { $0.0.isFinite && $0.1.isFinite && (!logY || $0.1 > 0) }
            }
        }
        BitmapFont.draw(title.uppercased(), into: &img, x: left, y: 6)
        guard !finite.isEmpty else { return img }
        func ty(_ y: Double) -> Double { logY ? log10(y) : y }
        var (x0, x1) = (finite.map(\.0).min()!, finite.map(\.0).max()!)
        var (y0, y1) = (finite.map { ty($0.1) }.min()!, finite.map { ty($0.1) }.max()!)
        if x1 <= x0 { x0 -= 1; x1 += 1 }
        if y1 <= y0 { y0 -= 1; y1 += 1 }
        let pad = (y1 - y0) * 0.05
        (y0, y1) = (y0 - pad, y1 + pad)
        if !logY && y0 < 0 && finite.allSatisfy({ $0.1 >= 0 }) { y0 = 0 }
        func px(_ x: Double) -> Int { left + Int((x - x0) / (x1 - x0) * Double(pw - 1)) }
        func py(_ y: Double) -> Int { top + ph - 1 - Int((ty(y) - y0) / (y1 - y0) * Double(ph - 1)) }
        let axis: (UInt8, UInt8, UInt8) = (0, 0, 0), grid: (UInt8, UInt8, UInt8) = (225, 225, 225)
        // Ticks and grid lines at "nice" steps.
        for t in Self.ticks(x0, x1) {
            let x = px(t)
            for y in top..<(top + ph) { img.plot(x, y, grid) }
            for k in 0..<4 { img.plot(x, top + ph + k, axis) }
            let s = Self.format(t)
            BitmapFont.draw(s, into: &img, x: x - BitmapFont.width(s) / 2, y: top + ph + 6)
        }
        for t in logY ? Self.logTicks(y0, y1) : Self.ticks(y0, y1) {
            let y = top + ph - 1 - Int((t - y0) / (y1 - y0) * Double(ph - 1))
            for x in left..<(left + pw) { img.plot(x, y, grid) }
            for k in 1...4 { img.plot(left - k, y, axis) }
            let s = Self.format(logY ? pow(10, t) : t)
            BitmapFont.draw(s, into: &img, x: left - 6 - BitmapFont.width(s), y: y - 3)
        }
        for x in left..<(left + pw) { img.plot(x, top + ph - 1, axis) }
        for y in top..<(top + ph) { img.plot(left, y, axis) }
        BitmapFont.draw(
            xLabel.uppercased(), into: &img, x: left + pw / 2 - BitmapFont.width(xLabel) / 2, y: height - 14)
        BitmapFont.drawVertical(yLabel.uppercased(), into: &img, x: 4, y: top + ph / 2 + BitmapFont.width(yLabel) / 2)
        for (k, s) in series.enumerated() {
            let c = Self.palette[k % Self.palette.count]
            let pts = s.points.filter { $0.x.isFinite && $0.y.isFinite && (!logY || $0.y > 0) }
            for (a, b) in zip(pts, pts.dropFirst()) { Self.line(&img, px(a.x), py(a.y), px(b.x), py(b.y), c) }
            for (i, p) in s.points.enumerated() where p.x.isFinite && p.y.isFinite && (!logY || p.y > 0) {
                if let e = s.errors?[i], e > 0 {
                    let (xa, lo, hi) = (px(p.x), py(logY ? max(p.y - e, p.y * 1e-3) : p.y - e), py(p.y + e))
                    Self.line(&img, xa, lo, xa, hi, c)
                    Self.line(&img, xa - 3, lo, xa + 3, lo, c); Self.line(&img, xa - 3, hi, xa + 3, hi, c)
                }
                if s.markers || pts.count == 1 {
                    for dy in -2...2 { for dx in -2...2 { img.plot(px(p.x) + dx, py(p.y) + dy, c) } }
                }
            }
        }
        // Legend, top right inside the plot.
        let legendW = (series.map { BitmapFont.width($0.label.uppercased()) }.max() ?? 0) + 26
        var ly = top + 6
        for (k, s) in series.enumerated() where !s.label.isEmpty {
            let lx = left + pw - legendW - 4
            for x in lx..<(lx + legendW) { for y in (ly - 3)..<(ly + 10) { img.plot(x, y, (255, 255, 255)) } }
            Self.line(&img, lx + 2, ly + 3, lx + 16, ly + 3, Self.palette[k % Self.palette.count])
            Self.line(&img, lx + 2, ly + 4, lx + 16, ly + 4, Self.palette[k % Self.palette.count])
            BitmapFont.draw(s.label.uppercased(), into: &img, x: lx + 20, y: ly)
            ly += 12
        }
        return img
    }

    /// The mean of the last `window` points' y at each point (fewer at the start): noisy per-step
    /// curves such as batch losses.
    package static func movingMean(_ p: [(Double, Double)], window: Int) -> [(x: Double, y: Double)] {
        var out: [(x: Double, y: Double)] = [], sum = 0.0
        for i in p.indices {
            sum += p[i].1
            if i >= window { sum -= p[i - window].1 }
            out.append((p[i].0, sum / Double(min(i + 1, window))))
        }
        return out
    }

    /// About five round steps (1, 2 or 5 times a power of ten) covering [lo, hi].
    static func ticks(_ lo: Double, _ hi: Double) -> [Double] {
        let raw = (hi - lo) / 5, mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var t = ceil(lo / step) * step, out: [Double] = []
        while t <= hi + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return out
    }

    /// Whole powers of ten inside [lo, hi] (log10 units); plain ticks when fewer than two.
    static func logTicks(_ lo: Double, _ hi: Double) -> [Double] {
        let whole = Array(stride(from: ceil(lo), through: floor(hi), by: 1))
        return whole.count >= 2 ? whole : ticks(lo, hi)
    }

    static func format(_ v: Double) -> String {
        let a = abs(v)
        if a == 0 { return "0" }
        if a >= 1e4 || a < 1e-2 { return String(format: "%.0e", v) }
        if a == a.rounded() { return String(format: "%.0f", v) }
        return String(format: a >= 10 ? "%.1f" : "%.2f", v).replacingOccurrences(
            of: #"0+$"#, with: "", options: .regularExpression)
    }

    /// Bresenham line, two pixels thick vertically for visibility.
    static func line(_ img: inout RGBImage, _ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ c: (UInt8, UInt8, UInt8)) {
        var (x, y) = (x0, y0)
        let (dx, dy) = (abs(x1 - x0), -abs(y1 - y0))
        let (sx, sy) = (x0 < x1 ? 1 : -1, y0 < y1 ? 1 : -1)
        var err = dx + dy
        while true {
            img.plot(x, y, c); img.plot(x, y + 1, c)
            if x == x1 && y == y1 { break }
            let e2 = 2 * err
            if e2 >= dy { err += dy; x += sx }
            if e2 <= dx { err += dx; y += sy }
        }
    }
}
