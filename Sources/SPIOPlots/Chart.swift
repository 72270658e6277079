import Foundation

/// A line, band, error-bar or scatter chart, written as SVG (for manuscripts) and PNG (for a quick
/// look) by gnuplot: mixed-case labels with units, a legend, log axes where asked.
package struct Chart {
    /// How a series is drawn.
    package enum Style: Sendable {
        /// A line; `spread` as a shaded band (mean +- sd over seeds).
        case lines
        /// A line with markers; `spread` as error bars.
        case errorLines
        /// Markers only; `spread` as error bars.
        case points
        /// A histogram outline: `x` are the bins' left edges, `y` the counts, the last bin ends at
        /// the last `x` plus the bin width.
        case histogram
    }

    package struct Series {
        package var label: String
        package var x: [Double], y: [Double]
        /// +- this around `y` (a band for `.lines`, error bars otherwise); nil for none.
        package var spread: [Double]?
        /// A shaded band from `lower` to `upper` (an asymmetric interval) around a `.lines` series.
        package var band: (lower: [Double], upper: [Double])?
        package var style: Style
        /// The palette entry (nil: the series' place): series that belong together share one.
        package var colour: Int?

        package init(label: String, x: [Double], y: [Double], spread: [Double]? = nil, style: Style = .lines) {
            precondition(x.count == y.count && (spread?.count ?? x.count) == x.count, "Chart.Series: unequal lengths")
            self.label = label; self.x = x; self.y = y; self.spread = spread; self.style = style
        }
    }

    /// A straight line y = intercept + slope x across the plot (the identity, a fit).
    package struct Line {
        package var label: String
        package var slope: Double, intercept: Double
        package var dashed: Bool
        package init(label: String, slope: Double, intercept: Double = 0, dashed: Bool = false) {
            self.label = label; self.slope = slope; self.intercept = intercept; self.dashed = dashed
        }
    }

    package var title: String?
    /// Axis labels: enhanced text, so `µg/mm^3` is typeset with a superscript.
    package var xLabel: String, yLabel: String
    package var logX = false, logY = false
    /// Start the y axis at zero (counts, errors) instead of at the data's minimum.
    package var yFromZero = false
    package var series: [Series] = []
    package var lines: [Line] = []
    /// The legend's place, as gnuplot says it (`top right`, `bottom right`, `outside right`).
    package var legend = "top right"
    /// Size of the SVG in points; the PNG has 1.5 times as many pixels.
    package var width = 640, height = 420

    package init(title: String? = nil, xLabel: String, yLabel: String) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel
    }

    /// Writes `<base>.svg` and `<base>.png`; returns their file names.
    @discardableResult
    package func write(to base: String) throws -> [String] {
        let (data, body) = script()
        return try Gnuplot.figure(body, data: data, base: base, width: width, height: height)
    }

    /// The data blocks and the plot commands.
    package func script() -> (data: String, body: String) {
        var data = ""
        var body = ""
        if let title { body += "set title \(Gnuplot.text(title))\n" }
        body += "set xlabel \(Gnuplot.markup(xLabel))\nset ylabel \(Gnuplot.markup(yLabel))\n"
        body += "set key \(legend) box opaque samplen 2\nset grid lc rgb \"#dddddd\"\n"
        body += "set border 3\nset tics nomirror out\nset autoscale xfix\n"
        if logX { body += "set logscale x\nset format x \"10^{%L}\"\n" }
        if logY { body += "set logscale y\n" }
        if yFromZero && !logY { body += "set yrange [0:*]\n" }
        var plots: [String] = []
        for (i, s) in series.enumerated() {
            let name = "s\(i)"
            let colour = "lc rgb \"\(Gnuplot.colour(s.colour ?? i))\""
            let dash = "dt \(Gnuplot.dash(i))"
            let label = s.label.isEmpty ? "notitle" : "title \(Gnuplot.text(s.label))"
            switch s.style {
            case .histogram:
                // `steps` draws each point's count across to the next point, so bin i spans
                // [x_i, x_i + width) at y_i; the outline rises from 0 at the first edge and falls
                // back to 0 at the last bin's right edge.
                let width = s.x.count > 1 ? s.x[1] - s.x[0] : 1
                var rows = zip(s.x, s.y).map { [$0, $1] }
                if let first = s.x.first, let last = s.x.last {
                    rows = [[first, 0]] + rows + [[last + width, 0]]
                }
                data += Gnuplot.block(name, rows)
                plots.append("$\(name) using 1:2 with steps lw 2 \(colour) \(dash) \(label)")
            default:
                let rows = s.x.indices.map { j in
                    [s.x[j], s.y[j]] + (s.spread.map { [$0[j]] } ?? [])
                        + (s.band.map { [$0.lower[j], $0.upper[j]] } ?? [])
                }
                data += Gnuplot.block(name, rows)
                let markers = "pt \(7 + i % 6) ps 0.8"
                if s.band != nil {
                    let from = s.spread == nil ? 3 : 4
                    plots.append(
                        "$\(name) using 1:\(from):\(from + 1) with filledcurves fs transparent solid 0.18 noborder "
                            + "\(colour) notitle")
                }
                if s.spread != nil {
                    switch s.style {
                    case .lines:
                        plots.append(
                            "$\(name) using 1:($2-$3):($2+$3) with filledcurves fs transparent solid 0.18 noborder "
                                + "\(colour) notitle")
                    case .errorLines:
                        plots.append(
                            "$\(name) using 1:2:3 with yerrorlines lw 1.5 \(markers) \(colour) \(dash) \(label)")
                        continue
                    default:
                        plots.append("$\(name) using 1:2:3 with yerrorbars \(markers) \(colour) \(label)")
                        continue
                    }
                }
                switch s.style {
                case .points: plots.append("$\(name) using 1:2 with points \(markers) \(colour) \(label)")
                case .errorLines:
                    plots.append("$\(name) using 1:2 with linespoints lw 1.5 \(markers) \(colour) \(dash) \(label)")
                default: plots.append("$\(name) using 1:2 with lines lw 2 \(colour) \(dash) \(label)")
                }
            }
        }
        for l in lines {
            let style = l.dashed ? "dt 2 lc rgb \"#555555\"" : "dt 1 lc rgb \"#222222\""
            plots.append(
                "\(Gnuplot.number(l.intercept)) + \(Gnuplot.number(l.slope)) * x with lines lw 1.2 \(style) "
                    + "title \(Gnuplot.text(l.label))")
        }
        if plots.isEmpty { plots = ["NaN notitle"] }
        body += "plot " + plots.joined(separator: ", \\\n     ") + "\n"
        return (data, body)
    }

    /// The moving mean of `y` over `window` consecutive points (shorter at the start), which keeps
    /// a per-batch loss readable.
    package static func movingMean(_ y: [Double], window: Int) -> [Double] {
        var out: [Double] = [], sum = 0.0
        for (i, v) in y.enumerated() {
            sum += v
            if i >= window { sum -= y[i - window] }
            out.append(sum / Double(min(i + 1, window)))
        }
        return out
    }
}

/// Grouped bars with error bars: one group per category (a run), one bar per member (a test set),
/// mean +- sd; SVG and PNG like `Chart`.
package struct BarChart {
    package var title: String?
    package var yLabel: String
    package var categories: [String]
    /// One entry per bar of each group: its label and, per category, mean and sd (NaN: no bar).
    package var members: [(label: String, mean: [Double], sd: [Double])] = []
    package var yFromZero = true
    package var width = 640, height = 420

    package init(title: String? = nil, yLabel: String, categories: [String]) {
        self.title = title; self.yLabel = yLabel; self.categories = categories
    }

    @discardableResult
    package func write(to base: String) throws -> [String] {
        var data = "$bars << EOD\n"
        for (c, name) in categories.enumerated() {
            let cells = members.flatMap { [Gnuplot.number($0.mean[c]), Gnuplot.number($0.sd[c])] }
            data +=
                (["\"" + name.replacingOccurrences(of: "\"", with: "'") + "\""] + cells).joined(separator: " ") + "\n"
        }
        data += "EOD\n"
        var body = ""
        if let title { body += "set title \(Gnuplot.text(title))\n" }
        body += "set ylabel \(Gnuplot.markup(yLabel))\nset key top right box opaque\n"
        body += "set style data histogram\nset style histogram errorbars gap 1 lw 1\n"
        body += "set style fill solid 0.85 border -1\nset boxwidth 0.9\nset grid ytics lc rgb \"#dddddd\"\n"
        body += "set border 3\nset tics nomirror out\nset xtics rotate by -30 noenhanced\n"
        // The last label runs right of its bar at 30 degrees, past the default margin: room for it
        // (cos 30 of its length, in character widths).
        if let last = categories.last {
            body += "set rmargin \(max(3, Int((Double(last.count) * 0.87).rounded(.up))))\n"
        }
        if yFromZero { body += "set yrange [0:*]\n" }
        let plots = members.enumerated().map { i, m in
            "$bars using \(2 + 2 * i):\(3 + 2 * i)\(i == 0 ? ":xtic(1)" : "") lc rgb \"\(Gnuplot.colour(i))\" "
                + "title \(Gnuplot.text(m.label))"
        }
        body += "plot " + plots.joined(separator: ", \\\n     ") + "\n"
        return try Gnuplot.figure(body, data: data, base: base, width: width, height: height)
    }
}
