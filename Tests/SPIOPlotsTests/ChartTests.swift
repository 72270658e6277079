import Foundation
import SPIOImageIO
import SPIOTestSupport
import XCTest

@testable import SPIOPlots

final class ChartTests: ScratchDirectoryTestCase {
    func assertPNG(_ path: String, width: Int, height: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        let image = try RGBImage.readPNG(path)
        XCTAssertEqual([image.width, image.height], [width, height], path, file: file, line: line)
    }

    /// The line's vertices are the data (up to the axes' scale), the legend shows the label as
    /// written (an underscore is not a subscript), and both files are valid.
    func testALineChartDrawsItsDataAndLabels() throws {
        let data: [(x: Double, y: Double)] = [(1, 0.9), (2, 0.4), (3, 0.55), (4, 0.2), (5, 0.25)]
        var chart = Chart(xLabel: "epoch", yLabel: "concentration (µg/mm^3)")
        chart.series = [Chart.Series(label: "lr_1e-3 {a}", x: data.map(\.x), y: data.map(\.y))]
        XCTAssertEqual(try chart.write(to: dir + "/line"), ["line.svg", "line.png"])
        try assertPNG(dir + "/line.png", width: 960, height: 630)
        let svg = try SVGFigure(path: dir + "/line.svg")
        XCTAssertTrue(svg.isWellFormedXML)
        XCTAssertTrue(svg.texts.contains("lr_1e-3 {a}"), "\(svg.texts)")
        XCTAssertTrue(svg.texts.contains("epoch"))
        let drawn = try XCTUnwrap(svg.paths["lr_1e-3 {a}"])
        XCTAssertTrue(SVGFigure.isAffineImage(drawn, of: data, tolerance: 0.005), "\(drawn)")
        // A figure that draws other values is told apart.
        XCTAssertFalse(SVGFigure.isAffineImage(drawn, of: data.map { ($0.x, $0.y * $0.y) }, tolerance: 0.005))
        // The same input gives the same bytes: reports reproduce.
        let first = try Data(contentsOf: URL(fileURLWithPath: dir + "/line.svg"))
        let firstPNG = try Data(contentsOf: URL(fileURLWithPath: dir + "/line.png"))
        try chart.write(to: dir + "/line")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/line.svg")), first)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dir + "/line.png")), firstPNG)
    }

    /// A histogram draws bin i over [x_i, x_i + width) at count i: its outline's corners are the
    /// bins' edges and counts, from 0 and back to 0 (not each count over the previous bin).
    func testAHistogramDrawsEachCountOverItsOwnBin() throws {
        var chart = Chart(xLabel: "NMAE", yLabel: "images")
        chart.series = [Chart.Series(label: "counts", x: [1, 2, 3, 4], y: [3, 5, 2, 1], style: .histogram)]
        try chart.write(to: dir + "/histogram")
        let drawn = try XCTUnwrap(try SVGFigure(path: dir + "/histogram.svg").paths["counts"])
        let outline: [(x: Double, y: Double)] = [
            (1, 0), (1, 3), (2, 3), (2, 5), (3, 5), (3, 2), (4, 2), (4, 1), (5, 1), (5, 0)
        ]
        XCTAssertTrue(SVGFigure.isAffineImage(drawn, of: outline, tolerance: 0.005), "\(drawn)")
        let shiftedLeft: [(x: Double, y: Double)] = [
            (1, 0), (1, 5), (2, 5), (2, 2), (3, 2), (3, 1), (4, 1), (4, 1), (5, 1), (5, 0)
        ]
        XCTAssertFalse(SVGFigure.isAffineImage(drawn, of: shiftedLeft, tolerance: 0.005))
    }

    /// Bands, error bars, markers, histograms, reference lines, log axes and grouped bars render.
    func testEveryKindOfChartRenders() throws {
        var chart = Chart(title: "all kinds", xLabel: "SNR (dB)", yLabel: "NMAE")
        let x = [1.0, 10, 100, 1000]
        chart.series = [
            Chart.Series(label: "band", x: x, y: [0.9, 0.7, 0.5, 0.4], spread: [0.1, 0.1, 0.05, 0.05]),
            Chart.Series(
                label: "error lines", x: x, y: [0.8, 0.6, 0.5, 0.3], spread: [0.1, 0.1, 0.1, 0.1], style: .errorLines),
            Chart.Series(
                label: "points", x: x, y: [0.7, 0.5, 0.3, 0.2], spread: [0.05, 0.05, 0.05, 0.05], style: .points),
            Chart.Series(label: "histogram", x: [1, 2, 3, 4], y: [3, 5, 2, 1], style: .histogram)
        ]
        chart.lines = [Chart.Line(label: "identity", slope: 1, dashed: true)]
        (chart.logX, chart.logY) = (true, true)
        try chart.write(to: dir + "/kinds")
        try assertPNG(dir + "/kinds.png", width: 960, height: 630)
        let svg = try SVGFigure(path: dir + "/kinds.svg")
        XCTAssertTrue(svg.isWellFormedXML)
        for label in ["band", "error lines", "points", "histogram", "identity", "all kinds"] {
            XCTAssertTrue(svg.texts.contains(label), "no \(label) in \(svg.texts)")
        }
        var bars = BarChart(yLabel: "NMAE", categories: ["run 2 deepspio", "run 5 unet"])
        bars.members = [("brain", [0.6, 0.9], [0.1, 0.2]), ("breast", [0.7, .nan], [0.1, .nan])]
        try bars.write(to: dir + "/bars")
        try assertPNG(dir + "/bars.png", width: 960, height: 630)
        let barSVG = try SVGFigure(path: dir + "/bars.svg")
        XCTAssertTrue(barSVG.isWellFormedXML)
        XCTAssertTrue(barSVG.texts.contains("run 5 unet") && barSVG.texts.contains("breast"), "\(barSVG.texts)")
    }

    /// Each panel's pixels follow its colour scale: a half-black, half-white grey panel shows both
    /// ends; the stripes panel shows red and green.
    func testImageGridPixelsFollowTheColourScale() throws {
        let n = 16
        let halves = (0..<(n * n)).map { Float($0 % n < n / 2 ? 0 : 1) }
        var stripes = ImageGrid.Panel(halves, size: n, title: "stripes", range: (0, 1))
        stripes.redGreen = (halves, halves.map { 1 - $0 })
        let grid = ImageGrid(
            rows: [[ImageGrid.Panel(halves, size: n, title: "grey", range: (0, 1), unit: "a.u."), stripes], [nil]])
        try grid.writePNG(to: dir + "/grid.png")
        let image = try RGBImage.readPNG(dir + "/grid.png")
        XCTAssertEqual([image.width, image.height], [2 * grid.cellWidth, 2 * grid.cellHeight])
        var colours = Set<String>()
        for y in 0..<image.height {
            for x in 0..<image.width {
                let (r, g, b) = image[x, y]
                if r < 10 && g < 10 && b < 10 { colours.insert("black") }
                if r > 245 && g < 10 && b < 10 { colours.insert("red") }
                if g > 245 && r < 10 && b < 10 { colours.insert("green") }
            }
        }
        XCTAssertEqual(colours, ["black", "red", "green"])
    }

    func testMissingGnuplotSaysHowToInstallIt() throws {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        setenv("PATH", "/nonexistent", 1)
        defer { setenv("PATH", path, 1) }
        var chart = Chart(xLabel: "x", yLabel: "y")
        chart.series = [Chart.Series(label: "a", x: [1, 2], y: [1, 2])]
        XCTAssertThrowsError(try chart.write(to: dir + "/none")) { error in
            XCTAssertTrue("\(error)".contains("apt-get install gnuplot-nox"), "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [], "nothing half-written")
    }
}
