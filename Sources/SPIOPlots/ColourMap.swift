import SPIOImageIO

/// Colour maps from scalar values in [0, 1] to RGB, by linear interpolation between anchors.
package struct ColourMap: Sendable {
    package let name: String
    let anchors: [(Double, Double, Double)]

    package static let grey = ColourMap(name: "grey", anchors: [(0, 0, 0), (1, 1, 1)])
    /// matplotlib's viridis at 9 evenly spaced points (perceptually uniform; concentrations).
    package static let viridis = ColourMap(
        name: "viridis",
        anchors: [
            (0.267, 0.005, 0.329), (0.279, 0.175, 0.483), (0.230, 0.322, 0.546), (0.173, 0.449, 0.558),
            (0.128, 0.567, 0.551), (0.153, 0.680, 0.504), (0.362, 0.786, 0.388), (0.678, 0.864, 0.190),
            (0.993, 0.906, 0.144)
        ])
    /// A blue-white-red diverging map (signed quantities such as field offsets).
    package static let diverging = ColourMap(
        name: "diverging",
        anchors: [
            (0.230, 0.299, 0.754), (0.552, 0.690, 0.996), (0.865, 0.865, 0.865), (0.958, 0.604, 0.482),
            (0.706, 0.016, 0.150)
        ])

    package static func named(_ name: String) -> ColourMap? { [grey, viridis, diverging].first { $0.name == name } }

    /// The map as gnuplot's `set palette defined (...)`.
    package var gnuplotPalette: String {
        let n = anchors.count - 1
        return "defined ("
            + anchors.enumerated().map { i, a in
                String(format: "%.4f %.4f %.4f %.4f", Double(i) / Double(n), a.0, a.1, a.2)
            }.joined(separator: ", ") + ")"
    }

    package func rgb(_ t: Double) -> (UInt8, UInt8, UInt8) {
        let u = t.isFinite ? Swift.min(1, Swift.max(0, t)) * Double(anchors.count - 1) : 0
        let i = Swift.min(anchors.count - 2, Int(u)), f = u - Double(i)
        let (a, b) = (anchors[i], anchors[i + 1])
        func mix(_ p: Double, _ q: Double) -> UInt8 { UInt8((255 * (p + (q - p) * f)).rounded()) }
        return (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}
