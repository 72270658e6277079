import Foundation
import SPIOImageIO

/// A scalar image drawn through a colour map, scaled up by whole pixels, with an optional title
/// above and a colour bar (with its minimum and maximum written beside it) on the right.
package struct ImagePanel {
    package var values: [Float]
    package let width: Int, height: Int
    package var colourMap: ColourMap = .grey
    /// Display range; nil means the data's minimum and maximum.
    package var range: (Float, Float)?
    package var title: String?
    package var colourBar = true
    /// Whole-pixel magnification (0: choose so the image is about 256 pixels wide).
    package var zoom = 0

    package init(values: [Float], width: Int, height: Int) {
        precondition(values.count == width * height, "ImagePanel: \(values.count) values for \(width) x \(height)")
        self.values = values; self.width = width; self.height = height
    }

    /// A square map drawn at once: the common case of the report and preview figures.
    package static func render(
        _ values: [Float], size: Int, title: String, colourMap: ColourMap, range: (Float, Float)? = nil,
        zoom: Int
    ) -> RGBImage {
        var p = ImagePanel(values: values, width: size, height: size)
        (p.title, p.colourMap, p.range, p.zoom) = (title, colourMap, range, zoom)
        return p.render()
    }

    package var displayRange: (Float, Float) {
        if let range { return range }
        let finite = values.filter { $0.isFinite }
        let lo = finite.min() ?? 0, hi = finite.max() ?? 1
        return hi > lo ? (lo, hi) : (lo, lo + 1)
    }

    /// Formats a bar label: 3 significant digits, exponent form outside [1e-2, 1e4).
    package static func label(_ v: Float) -> String {
        let a = abs(Double(v))
        if a != 0 && (a < 1e-2 || a >= 1e4) { return String(format: "%.2e", Double(v)) }
        return String(format: a >= 100 ? "%.0f" : a >= 10 ? "%.1f" : "%.2f", Double(v))
    }

    package func render() -> RGBImage {
        let z = zoom > 0 ? zoom : Swift.max(1, 256 / Swift.max(width, height))
        let (lo, hi) = displayRange
        let titleH = title == nil ? 0 : 14, margin = 4
        let labels = [ImagePanel.label(hi), ImagePanel.label(lo)]
        let barW = colourBar ? 12 + 4 + (labels.map { BitmapFont.width($0) }.max() ?? 0) + margin : 0
        var out = RGBImage(
            width: margin + width * z + (colourBar ? margin : 0) + barW + margin,
            height: titleH + margin + height * z + margin)
        if let title { BitmapFont.draw(title, into: &out, x: margin, y: 4) }
        let top = titleH + margin
        for y in 0..<height {
            for x in 0..<width {
                let t = Double((values[y * width + x] - lo) / (hi - lo))
                let c = colourMap.rgb(t)
                for dy in 0..<z { for dx in 0..<z { out[margin + x * z + dx, top + y * z + dy] = c } }
            }
        }
        if colourBar {
            let bx = margin + width * z + margin, bh = height * z
            for j in 0..<bh {
                let c = colourMap.rgb(1 - Double(j) / Double(Swift.max(1, bh - 1)))
                for i in 0..<12 { out[bx + i, top + j] = c }
            }
            BitmapFont.draw(labels[0], into: &out, x: bx + 16, y: top)
            BitmapFont.draw(labels[1], into: &out, x: bx + 16, y: top + bh - BitmapFont.glyphHeight)
        }
        return out
    }

    /// Places panels side by side on a white background.
    package static func row(_ images: [RGBImage], gap: Int = 6) -> RGBImage {
        let w = images.reduce(0) { $0 + $1.width } + gap * Swift.max(0, images.count - 1)
        var out = RGBImage(width: w, height: images.map(\.height).max() ?? 0)
        var x = 0
        for im in images { out.paste(im, x: x, y: 0); x += im.width + gap }
        return out
    }

    /// Stacks images top to bottom with a white gap.
    package static func column(_ images: [RGBImage], gap: Int = 6) -> RGBImage {
        let h = images.reduce(0) { $0 + $1.height } + gap * Swift.max(0, images.count - 1)
        var out = RGBImage(width: images.map(\.width).max() ?? 0, height: h)
        var y = 0
        for im in images { out.paste(im, x: 0, y: y); y += im.height + gap }
        return out
    }
}
