import Foundation
import SPIOImageIO
import SPIOPhysics
import SPIOPlots

extension StudyReport {
    // MARK: scaling with optimizer steps

    /// The error against optimizer steps per series (the runs that differ only in
    /// `training.epochs`): a table per checkpoint, the law `NMAE = a + b S^-c` fitted per series and
    /// held-out set with an image bootstrap, the steps (and hours on the machine that trained) each
    /// target would take, and a log-log plot beside the blurred-truth calibration.
    func scalingSection(_ rows: [Row], _ config: ReportConfig, _ out: inout ReportFiles) throws -> String {
        guard let scaling = config.scaling else { return "" }
        let epochsKey = "training.epochs"
        var series: [(label: String, rows: [Row])] = []
        for r in rows {
            let values = r.grid.filter { $0.0 != epochsKey }.map { "\($0.0.split(separator: ".").last!)=\($0.1)" }
            let label = values.isEmpty ? study : values.joined(separator: " ")
            if let i = series.firstIndex(where: { $0.label == label }) {
                series[i].rows.append(r)
            } else {
                series.append((label, [r]))
            }
        }
        struct Point {
            var row: Row
            var steps: Double
            var seconds: Double
        }
        func points(_ rows: [Row]) throws -> [Point] {
            try rows.map { r in
                let id = r.training.id!
                let steps = Double(try store.metrics(id, key: .trainLoss).last?.step ?? 0)
                let seconds = try store.metrics(id, key: .epochSeconds).reduce(0) { $0 + $1.value }
                return Point(row: r, steps: steps, seconds: seconds)
            }.filter { $0.steps > 0 }.sorted { $0.steps < $1.steps }
        }
        let sets = rows.flatMap(\.evaluations).filter { $0.set.sweep.isEmpty && $0.estimate == nil }.map(\.set)
        var setNames: [String] = []
        for s in sets where !setNames.contains(s.name) { setNames.append(s.name) }
        let trainingSets = Set(sets.filter(\.isTrainingImages).map(\.name))
        let heldOut = setNames.filter { !trainingSets.contains($0) }
        func perImage(_ r: Row, _ set: String, _ key: MetricKey = .nmae) throws -> [Int: Double] {
            guard let e = r.evaluations.first(where: { $0.set.name == set }) else { return [:] }
            return Dictionary(
                try store.metrics(e.run.id!, key: key).map { ($0.step, $0.value) }, uniquingKeysWith: { a, _ in a })
        }
        func mean(_ values: [Int: Double]) -> Double {
            values.isEmpty ? .nan : values.values.reduce(0, +) / Double(values.count)
        }

        var md = "## Scaling with optimizer steps\n\n"
        md +=
            "Each series is one recipe trained for more and more Adam steps (a longer cell continues from the "
            + "shorter one's last checkpoint). NMAE is the mean over the set's images with its 95 % bootstrap "
            + "interval; sets marked *(training images)* are images the model trained on, beside the held-out "
            + "ones. Iron error is the total estimated iron over the true one, minus 1 (mean over images).\n\n"
        var table: [[String]] = [],
            csv: [[String]] = [
                ["series", "epochs", "steps", "hours", "validation_nmae"]
                    + setNames.flatMap { ["\($0)_nmae", "\($0)_low", "\($0)_high", "\($0)_iron_error", "\($0)_hfen"] }
            ]
        var all: [(label: String, points: [Point])] = []
        for s in series {
            let p = try points(s.rows)
            all.append((s.label, p))
            for q in p {
                var cells = [
                    s.label, String(q.row.epochs), String(Int(q.steps)), String(format: "%.2f", q.seconds / 3600),
                    Self.fixed(q.row.validationNMAE)
                ]
                var line = [
                    s.label, String(q.row.epochs), String(Int(q.steps)), Self.number(q.seconds / 3600),
                    Self.number(q.row.validationNMAE)
                ]
                for set in setNames {
                    let values = try perImage(q.row, set)
                    let i = DifferenceInterval.ofMean(values.keys.sorted().map { values[$0]! })
                    let iron = mean(try perImage(q.row, set, .ironError)), hfen = mean(try perImage(q.row, set, .hfen))
                    cells.append(i.map { String(format: "%.3f [%.3f, %.3f]", $0.difference, $0.low, $0.high) } ?? "")
                    cells.append(iron.isFinite ? String(format: "%+.0f %%", 100 * iron) : "")
                    line += [
                        Self.number(i?.difference ?? .nan), Self.number(i?.low ?? .nan), Self.number(i?.high ?? .nan),
                        Self.number(iron), Self.number(hfen)
                    ]
                }
                table.append(cells)
                csv.append(line)
            }
        }
        md += Self.markdownTable(
            ["series", "epochs", "Adam steps", "hours", "validation NMAE"]
                + setNames.flatMap { set in
                    let title = trainingSets.contains(set) ? "\(set) (training images)" : set
                    return ["\(title) NMAE [95 % CI]", "\(title) iron error"]
                }, table)
        try out.csv("scaling.csv", csv)
        md += "\nData: [scaling.csv](scaling.csv).\n\n"

        // The fits, per series and held-out set.
        let targets = scaling.targets
        var fits: [[String]] = [],
            fitCSV: [[String]] = [
                [
                    "series", "set", "images", "floor", "floor_low", "floor_high", "exponent", "exponent_low",
                    "exponent_high"
                ]
                    + targets.flatMap { t in ["steps_to_\(t)", "low", "high", "hours_to_\(t)"] }
            ]
        func steps(_ v: Double) -> String {
            v.isFinite ? (v < 1e7 ? String(format: "%.0f", v) : String(format: "%.1e", v)) : "never"
        }
        func hours(_ v: Double) -> String {
            v.isFinite ? (v < 1e5 ? String(format: "%.1f", v) : String(format: "%.1e", v)) : "never"
        }
        for set in heldOut {
            let calibration = try blurredTruthCalibration(set: set, rows: rows, sigmas: scaling.blurSigmaPixels)
            var chart = Chart(
                title: "Test NMAE against Adam steps: \(set)", xLabel: "Adam steps", yLabel: "NMAE (mean over images)")
            chart.logX = true
            chart.logY = true
            chart.legend = "outside right"
            chart.width = 860
            var curves: [(String, ScalingCurve)] = []
            for (label, p) in all where p.count >= 3 {
                let maps = try p.map { try perImage($0.row, set) }
                let width = (maps.compactMap { $0.keys.max() }.max() ?? -1) + 1
                let byImage = maps.map { m in (0..<width).map { m[$0] } }
                let lastSteps = p.last!.steps
                let grid = (0...40).map { p[0].steps / 2 * pow(lastSteps * 64 / p[0].steps, Double($0) / 40) }
                guard
                    let curve = ScalingCurve(
                        steps: p.map(\.steps), perImage: byImage, targets: targets, curveSteps: grid)
                else { continue }
                curves.append((label, curve))
                // Hours per step on the machine that trained this series (its longest cell's epochs).
                let secondsPerStep = p.last!.seconds / p.last!.steps
                fits.append(
                    [
                        label, set, String(curve.images),
                        String(
                            format: "%.3f [%.3f, %.3f]", curve.fit.floor, curve.floorInterval.low,
                            curve.floorInterval.high),
                        String(
                            format: "%.2f [%.2f, %.2f]", curve.fit.exponent, curve.exponentInterval.low,
                            curve.exponentInterval.high)
                    ]
                        + curve.toReach.flatMap { t in
                            [
                                "\(steps(t.steps)) [\(steps(t.low)), \(steps(t.high))]",
                                hours(t.steps * secondsPerStep / 3600)
                            ]
                        })
                fitCSV.append(
                    [label, set, String(curve.images)]
                        + [
                            curve.fit.floor, curve.floorInterval.low, curve.floorInterval.high, curve.fit.exponent,
                            curve.exponentInterval.low, curve.exponentInterval.high
                        ].map { Self.number($0) }
                        + curve.toReach.flatMap { t in
                            [t.steps, t.low, t.high, t.steps * secondsPerStep / 3600].map { Self.number($0) }
                        })
                // One colour per series: its means, its fit with the band, its training images.
                let colour = curves.count - 1
                var fitted = Chart.Series(label: "\(label): fit", x: grid, y: curve.curve)
                fitted.band = (curve.curveLow, curve.curveHigh)
                fitted.colour = colour
                var means = Chart.Series(label: label, x: curve.steps, y: curve.means, style: .points)
                means.colour = colour
                chart.series += [means, fitted]
                if let training = trainingSets.first {
                    let values = try p.map { mean(try perImage($0.row, training)) }
                    if values.allSatisfy(\.isFinite) {
                        var seen = Chart.Series(
                            label: "\(label): training images", x: p.map(\.steps), y: values, style: .points)
                        seen.colour = colour
                        chart.series.append(seen)
                    }
                }
            }
            guard !curves.isEmpty else { continue }
            for (sigma, nmae) in calibration {
                chart.lines.append(
                    Chart.Line(
                        label: String(format: "truth blurred, sigma %g px: %.2f", sigma, nmae), slope: 0,
                        intercept: nmae,
                        dashed: true))
            }
            for t in targets {
                chart.lines.append(Chart.Line(label: String(format: "target %.2f", t), slope: 0, intercept: t))
            }
            try out.chart("scaling-\(Self.slug(set))", chart)
            md += "### `\(set)`\n\n![NMAE against steps](scaling-\(Self.slug(set)).png)\n\n"
            if !calibration.isEmpty {
                md +=
                    "Calibration: the true maps of this set blurred by a Gaussian score "
                    + calibration.map { String(format: "%.3f at sigma %g px", $0.nmae, $0.sigma) }
                    .joined(separator: ", ")
                    + " (\(Self.pixelText(set: set, rows: rows))).\n\n"
            }
        }
        if !fits.isEmpty {
            md +=
                "### The fitted law\n\nNMAE = a + b S^-c per series and held-out set (least squares, a and b "
                + "non-negative), with percentile intervals from 1,000 bootstrap resamples of the test images (the "
                + "same images at every checkpoint, so a resample is one draw of images for the whole curve). The "
                + "intervals say how sure this test set makes the fit for these trained weights; another training "
                + "seed moves a curve too and is not in them. Steps to a target are where the fitted curve crosses "
                + "it (*never*: the fitted floor a lies above it); hours are those steps at the rate the series "
                + "trained at (its epochs' summed wall time), an extrapolation beyond the measured steps.\n\n"
                + Self.markdownTable(
                    ["series", "set", "images", "floor a [95 % CI]", "exponent c [95 % CI]"]
                        + targets.flatMap { ["steps to \(Self.fixed($0)) [95 % CI]", "hours"] }, fits)
            try out.csv("scaling-fit.csv", fitCSV)
            md += "\nData: [scaling-fit.csv](scaling-fit.csv).\n\n"
        }
        return md
    }

    /// The NMAE of the set's true maps blurred by a Gaussian of each sigma (pixels), from the set's
    /// dataset; empty where that dataset is not at hand (a store without its workspace).
    func blurredTruthCalibration(set: String, rows: [Row], sigmas: [Double]) throws -> [(sigma: Double, nmae: Double)] {
        guard let e = rows.lazy.flatMap(\.evaluations).first(where: { $0.set.name == set }),
            let data = try dataset(of: e)
        else { return [] }
        let path = (data.directory as NSString).appendingPathComponent("concentration.npy")
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let truth = try NPYArray.read(path)
        return sigmas.map { ($0, BlurredTruth.nmae(truth, sigmaPixels: $0)) }
    }

    static func pixelText(set: String, rows: [Row]) -> String {
        guard let e = rows.lazy.flatMap(\.evaluations).first(where: { $0.set.name == set }) else { return "" }
        let mm = e.set.simulation.fovMM / Double(e.set.simulation.imageSize)
        return String(format: "1 px = %.2f mm", mm)
    }
}
