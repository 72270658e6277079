import Foundation

#if canImport(FoundationXML)
import FoundationXML
#endif

/// What a check of a figure needs from a gnuplot SVG: whether it is well-formed XML, its texts,
/// and the vertices of each plot element's first path (in drawing coordinates), by the element's
/// title. Tests use it to check that a figure draws the store's values.
package struct SVGFigure {
    package let text: String

    package init(path: String) throws { text = try String(contentsOfFile: path, encoding: .utf8) }

    package var isWellFormedXML: Bool { XMLParser(data: Data(text.utf8)).parse() }

    /// The strings drawn as text (legend entries, axis labels).
    package var texts: [String] {
        matches(of: "<(?:tspan|text)[^>]*>([^<]+)</(?:tspan|text)>").map { $0[1] }
    }

    /// The first path drawn in each `gnuplot_plot_N` element, keyed by the element's title.
    package var paths: [String: [(x: Double, y: Double)]] {
        var out: [String: [(x: Double, y: Double)]] = [:]
        let groups = text.components(separatedBy: "<g id=\"gnuplot_plot_").dropFirst()
        for g in groups {
            guard let t = g.range(of: "<title>"), let e = g.range(of: "</title>") else { continue }
            let title = String(g[t.upperBound..<e.lowerBound])
            guard out[title] == nil, let d = g.range(of: " d='"), let end = g[d.upperBound...].firstIndex(of: "'")
            else { continue }
            let points = g[d.upperBound..<end].split(whereSeparator: { " \t\n".contains($0) }).compactMap { v in
                let xy = v.drop { $0 == "M" || $0 == "L" }.split(separator: ",")
                return xy.count == 2 ? Double(xy[0]).flatMap { x in Double(xy[1]).map { (x, $0) } } : nil
            }
            out[title] = points
        }
        return out
    }

    private func matches(of pattern: String) -> [[String]] {
        let re = try! NSRegularExpression(pattern: pattern)
        let ns = text as NSString
        return re.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { m in
            (0..<m.numberOfRanges).map { ns.substring(with: m.range(at: $0)) }
        }
    }

    /// Whether `drawn` is an affine image of `data` (x and y scaled and shifted, y flipped as SVG's
    /// axis points down, each within `tolerance` of the drawn extent): the figure shows these
    /// values, whatever the axes' ranges. Linear axes only.
    package static func isAffineImage(
        _ drawn: [(x: Double, y: Double)], of data: [(x: Double, y: Double)], tolerance: Double
    ) -> Bool {
        guard drawn.count == data.count, data.count >= 3 else { return false }
        func check(_ p: [Double], _ q: [Double], flipped: Bool) -> Bool {
            guard let i = q.indices.max(by: { abs(q[$0] - q[0]) < abs(q[$1] - q[0]) }), q[i] != q[0] else {
                return false
            }
            let scale = (p[i] - p[0]) / (q[i] - q[0])
            if flipped ? scale >= 0 : scale <= 0 { return false }
            let span = abs(p[i] - p[0])
            return zip(p, q).allSatisfy { abs(($1 - q[0]) * scale - ($0 - p[0])) <= tolerance * span }
        }
        return check(drawn.map(\.x), data.map(\.x), flipped: false)
            && check(drawn.map(\.y), data.map(\.y), flipped: true)
    }
}
