import Foundation

/// Raster images (inputs, concentration maps, Grad-CAM, feature maps) in a grid of labelled panels,
/// each with its colour bar and unit, drawn by gnuplot to PNG. Panels that are compared share one
/// colour scale by being given the same `range`.
package struct ImageGrid {
    package struct Panel {
        package var values: [Float]
        package let width: Int, height: Int
        package var title: String
        package var colourMap: ColourMap
        /// Colour scale; nil: the data's minimum and maximum.
        package var range: (Float, Float)?
        /// The unit of the colour bar (`µg/mm^3`, `Hz`, `a.u.`), written after the title; nil for none.
        package var unit: String?
        /// Two channels drawn as red and green (the View Line stripes, as the paper's Fig. 2d)
        /// instead of `values` through the colour map; each scaled by `range`'s upper end.
        package var redGreen: ([Float], [Float])?

        package init(
            _ values: [Float], width: Int, height: Int, title: String, colourMap: ColourMap = .grey,
            range: (Float, Float)? = nil, unit: String? = nil
        ) {
            precondition(
                values.count == width * height, "ImageGrid.Panel: \(values.count) values for \(width) x \(height)")
            self.values = values; self.width = width; self.height = height; self.title = title
            self.colourMap = colourMap; self.range = range; self.unit = unit
        }

        /// A square panel.
        package init(
            _ values: [Float], size: Int, title: String, colourMap: ColourMap = .grey, range: (Float, Float)? = nil,
            unit: String? = nil
        ) {
            self.init(values, width: size, height: size, title: title, colourMap: colourMap, range: range, unit: unit)
        }

        /// The colour scale drawn: `range`, else the finite data's extent (widened when flat).
        package var displayRange: (Float, Float) {
            if let range { return range }
            let finite = values.filter(\.isFinite)
            let lo = finite.min() ?? 0, hi = finite.max() ?? 1
            return hi > lo ? (lo, hi) : (lo, lo + 1)
        }
    }

    /// Rows of panels; a nil cell is left empty.
    package var rows: [[Panel?]]
    package var title: String?
    /// Pixels per panel cell (the image, its title and its colour bar).
    package var cellWidth = 290, cellHeight = 240

    package init(rows: [[Panel?]], title: String? = nil) { self.rows = rows; self.title = title }

    /// One row.
    package init(row: [Panel], title: String? = nil) { self.init(rows: [row], title: title) }

    /// Each column of `columns` becomes a column of the grid (strips of input, truth, prediction).
    package init(columns: [[Panel]], title: String? = nil) {
        let height = columns.map(\.count).max() ?? 0
        self.init(rows: (0..<height).map { r in columns.map { r < $0.count ? $0[r] : nil } }, title: title)
    }

    package func writePNG(to path: String) throws {
        let columns = rows.map(\.count).max() ?? 0
        guard columns > 0 else { return }
        let titleSpace = title == nil ? 0 : 36
        var data = ""
        var body = "set multiplot layout \(rows.count),\(columns)"
        if let title { body += " title \(Gnuplot.text(title)) font \"\(Gnuplot.font),14\"" }
        body += "\nunset key\nunset xtics\nunset ytics\nunset border\nset size ratio -1\n"
        body += "set lmargin 2\nset rmargin 8\nset tmargin 2\nset bmargin 0.5\nset cbtics out nomirror\n"
        for (r, row) in rows.enumerated() {
            for c in 0..<columns {
                guard c < row.count, let p = row[c] else {
                    body += "set multiplot next\n"
                    continue
                }
                let name = "p\(r)_\(c)"
                let (lo, hi) = p.displayRange
                let unit = p.unit.map { $0.isEmpty ? "" : " (\($0))" } ?? ""
                body +=
                    "set title \(Gnuplot.text(p.title))\(unit.isEmpty ? "" : " . " + Gnuplot.markup(unit)) "
                    + "font \"\(Gnuplot.font),11\"\n"
                body += "set xrange [-0.5:\(Double(p.width) - 0.5)]\nset yrange [\(Double(p.height) - 0.5):-0.5]\n"
                if let (red, green) = p.redGreen {
                    var lines: [String] = []
                    for y in 0..<p.height {
                        for x in 0..<p.width {
                            let i = y * p.width + x
                            func level(_ v: Float) -> Int {
                                Int((255 * min(1, max(0, (v - lo) / (hi - lo)))).rounded())
                            }
                            lines.append("\(x) \(y) \(level(red[i])) \(level(green[i])) 0")
                        }
                    }
                    data += "$\(name) << EOD\n" + lines.joined(separator: "\n") + "\nEOD\n"
                    body += "unset colorbox\nplot $\(name) using 1:2:3:4:5 with rgbimage\nset colorbox\n"
                } else {
                    let matrix = (0..<p.height).map { y in
                        (0..<p.width).map { x in Double(p.values[y * p.width + x]) }
                    }
                    data += Gnuplot.block(name, matrix)
                    body += "set palette \(p.colourMap.gnuplotPalette)\n"
                    body += "set cbrange [\(Gnuplot.number(Double(lo))):\(Gnuplot.number(Double(hi)))]\n"
                    body += "plot $\(name) matrix with image\n"
                }
            }
        }
        body += "unset multiplot\n"
        try Gnuplot.draw(
            body, data: data,
            to: [
                .png(path, width: cellWidth * columns, height: cellHeight * rows.count + titleSpace, fontSize: 11)
            ])
    }
}
