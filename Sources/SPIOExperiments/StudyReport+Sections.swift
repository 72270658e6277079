import Foundation
import SPIOImageIO
import SPIOPlots
import SPIOTraining

/// The report's sweep tables and plots, the phantom table, and the image strips.
extension StudyReport {
    // MARK: sweeps

    func sweepSections(_ rows: [Row], _ config: ReportConfig, _ out: inout ReportFiles) throws -> String {
        let all = rows.flatMap { r in r.evaluations.map { (r, $0) } }
        var names: [String] = []
        for (_, e) in all where !e.set.sweep.isEmpty && e.estimate == nil && !names.contains(e.set.sweep) {
            names.append(e.set.sweep)
        }
        var md = ""
        for name in names {
            let members = all.filter { $0.1.set.sweep == name && $0.1.estimate == nil }
            let keys = Array(Set(members.flatMap { $0.1.set.labels.keys })).sorted()
            let paper = members.contains { config.paper[$0.1.set.name] != nil }
            var csv = [["run", "name", "set"] + keys + ["nmae_mean", "nmae_sd", "images"] + (paper ? ["paper"] : [])]
            var mdRows: [[String]] = []
            for (r, e) in members {
                let labels = keys.map { e.set.labels[$0] ?? "" }
                let p = paper ? [config.paper[e.set.name] ?? ""] : []
                csv.append(
                    [String(r.training.id!), r.name, e.set.name] + labels + [
                        Self.number(e.nmaeMean), Self.number(e.nmaeSD), String(e.images)
                    ] + p)
                mdRows.append(
                    (rows.count > 1 ? [r.label] : []) + labels + [
                        "\(Self.fixed(e.nmaeMean)) +- \(Self.fixed(e.nmaeSD))", String(e.images)
                    ] + p)
            }
            md +=
                "## Sweep `\(name)`\n\n"
                + Self.markdownTable(
                    (rows.count > 1 ? ["run"] : []) + keys + ["NMAE", "images"] + (paper ? ["paper"] : []), mdRows)
            let file = "sweep-\(Self.slug(name)).csv"
            try out.csv(file, csv)
            md += "\nData: [\(file)](\(file)).\n\n"
            md += try linearitySection(name, members: members, rows: rows, out: &out)
            // Each plot once, under the first of its sweeps.
            for plot in config.plots
            where plot.metric == "nmae"
                && names.first(where: { plot.sweeps.isEmpty || plot.sweeps.contains($0) }) == name
            {
                md += try render(plot, rows: rows, out: &out)
            }
            for r in rows {
                let sets = members.filter { $0.0.training.id == r.training.id }.map(\.1)
                if let image = try strip(sets) {
                    let file = "examples-\(Self.slug(name))-run\(r.training.id!).png"
                    try out.png(file, image)
                    md +=
                        "**\(r.label), sweep \(name)**: the first image of "
                        + (sets.count > Self.stripColumns
                            ? "\(Self.stripColumns) of the \(sets.count) sets" : "each set")
                    md += " (input, truth, prediction)\n\n![\(name)](\(file))\n\n"
                }
            }
        }
        return md
    }

    /// For a sweep over concentration: the fit of estimated against true mean concentration over
    /// each image's SPIO, per run and per value of the sweep's other labels (e.g. the SNR). A
    /// quantification method should give slope 1 and R^2 near 1.
    private func linearitySection(
        _ name: String, members: [(Row, Evaluated)], rows: [Row], out: inout ReportFiles
    ) throws -> String {
        let keys = Set(members.flatMap { $0.1.set.labels.keys })
        guard let x = keys.sorted().first(where: { $0.lowercased().contains("concentration") }) else { return "" }
        let others = keys.subtracting([x]).sorted()
        var groups: [(run: Row, labels: [String], points: [(truth: Double, estimate: Double)])] = []
        for (r, e) in members where !e.spioMeans.isEmpty {
            let labels = others.map { e.set.labels[$0] ?? "" }
            if let i = groups.firstIndex(where: { $0.run.training.id == r.training.id && $0.labels == labels }) {
                groups[i].points += e.spioMeans
            } else {
                groups.append((r, labels, e.spioMeans))
            }
        }
        guard !groups.isEmpty else { return "" }
        var csv = [["run", "name"] + others + ["slope", "abs_1_minus_slope", "intercept_ug_per_mm3", "r2", "images"]]
        var mdRows: [[String]] = []
        for g in groups {
            let fit = LinearFit(g.points.map(\.truth), g.points.map(\.estimate))
            csv.append(
                [String(g.run.training.id!), g.run.name] + g.labels + [
                    Self.number(fit.slope), Self.number(abs(1 - fit.slope)), Self.number(fit.intercept),
                    Self.number(fit.r2), String(g.points.count)
                ])
            mdRows.append(
                (rows.count > 1 ? [g.run.label] : []) + g.labels + [
                    Self.fixed(fit.slope), Self.fixed(abs(1 - fit.slope)), Self.fixed(fit.intercept),
                    Self.fixed(fit.r2),
                    String(g.points.count)
                ])
        }
        let file = "linearity-\(Self.slug(name)).csv"
        try out.csv(file, csv)
        var chart = Chart(xLabel: "true mean concentration over the SPIO (µg/mm^3)", yLabel: "estimated (µg/mm^3)")
        chart.legend = "top left"
        for g in groups {
            let fit = LinearFit(g.points.map(\.truth), g.points.map(\.estimate))
            let label =
                ((rows.count > 1 ? [g.run.label] : []) + zip(others, g.labels).map { "\($0)=\($1)" })
                .joined(separator: " ")
            chart.series.append(
                Chart.Series(
                    label: (label.isEmpty ? "" : label + ": ")
                        + String(format: "slope %.2f, R² %.2f", fit.slope, fit.r2),
                    x: g.points.map(\.truth), y: g.points.map(\.estimate), style: .points))
        }
        chart.lines.append(Chart.Line(label: "estimated = true", slope: 1, dashed: true))
        let plotBase = "linearity-\(Self.slug(name))"
        try out.chart(plotBase, chart)
        return "### Linearity over `\(x)`\n\nEach image's mean estimated concentration over its SPIO (the pixels where "
            + "the truth is above zero) against the mean true one there, fitted as estimated = intercept + slope x true "
            + "over every image of the sweep (ug/mm^3).\n\n"
            + Self.markdownTable(
                (rows.count > 1 ? ["run"] : []) + others + [
                    "slope", "|1 - slope|", "intercept (ug/mm^3)", "R^2", "images"
                ],
                mdRows)
            + "\n![linearity \(name)](\(plotBase).png) ([SVG](\(plotBase).svg))\n\nData: [\(file)](\(file)).\n\n"
    }

    /// One configured plot: y = NMAE (mean +- sd) or the bottle estimate against the label `x`.
    private func render(_ plot: SweepPlotConfig, rows: [Row], out: inout ReportFiles) throws -> String {
        let estimate = plot.metric == "estimate"
        var p = Chart(
            title: plot.title.isEmpty ? nil : plot.title, xLabel: plot.xLabel ?? plot.x,
            yLabel: estimate ? "estimated concentration (µg/mm^3)" : "NMAE (mean ± sd over images)")
        p.logY = plot.logY
        var skipped = Set<String>()
        var identity: [Double] = []
        for r in rows {
            let sets = r.evaluations.filter { e in
                (estimate ? e.estimate != nil : e.estimate == nil && !e.set.sweep.isEmpty)
                    && (plot.sweeps.isEmpty || plot.sweeps.contains(e.set.sweep))
            }
            var groups: [String: [Evaluated]] = [:], order: [String] = []
            for e in sets {
                var parts: [String] = []
                if rows.count > 1 { parts.append(r.label) }
                if Set(sets.map(\.set.sweep)).count > 1 { parts.append(e.set.sweep) }
                if let s = plot.series { parts.append("\(s)=\(e.set.labels[s] ?? "?")") }
                let key = parts.joined(separator: " ")
                if groups[key] == nil { order.append(key) }
                groups[key, default: []].append(e)
            }
            for key in order {
                var points: [(x: Double, y: Double, e: Double)] = []
                for e in groups[key]! {
                    // A bottle estimate without the label (a real scan) is placed at its true concentration.
                    guard let x = e.set.labels[plot.x].flatMap(Double.init) ?? (estimate ? e.truth : nil), x.isFinite
                    else {
                        skipped.insert(e.set.labels[plot.x] ?? "?"); continue
                    }
                    let y = estimate ? e.estimate!.mean : e.nmaeMean, err = estimate ? e.estimate!.sd : e.nmaeSD
                    points.append((x, y, err))
                    if estimate { identity.append(e.truth ?? x) }
                }
                points.sort { $0.x < $1.x }
                p.series.append(
                    Chart.Series(
                        label: key.isEmpty ? (estimate ? "estimate" : "NMAE") : key, x: points.map(\.x),
                        y: points.map(\.y), spread: points.map(\.e), style: .errorLines))
            }
        }
        if estimate, !identity.isEmpty { p.lines.append(Chart.Line(label: "estimate = true", slope: 1, dashed: true)) }
        // Values over decades (SNR in linear units, learning rates) on a log axis.
        let xs = p.series.flatMap(\.x).filter { $0.isFinite }
        if plot.logX || (xs.min().map { $0 > 0 } ?? false && xs.max()! > 100 * xs.min()!) { p.logX = true }
        let base = (plot.file as NSString).deletingPathExtension
        try out.chart(base, p)
        var md = "![\(plot.title.isEmpty ? study : plot.title)](\(base).png) ([SVG](\(base).svg))\n\n"
        if !skipped.isEmpty {
            md +=
                "(Sets with \(plot.x) = \(skipped.sorted().joined(separator: ", ")) are in the table but not on this "
                + "plot.)\n\n"
        }
        return md
    }

    // MARK: phantom table

    func phantomSection(_ rows: [Row], _ config: ReportConfig, _ out: inout ReportFiles) throws -> String {
        let all = rows.flatMap { r in r.evaluations.filter { $0.estimate != nil }.map { (r, $0) } }
            .sorted { a, b in
                (a.1.truth ?? 0, b.1.set.labels["batch"] ?? "") > (b.1.truth ?? 0, a.1.set.labels["batch"] ?? "")
            }
        guard !all.isEmpty else { return "" }
        let paper = all.contains { config.paper[$0.1.set.name] != nil }
        var md =
            "## Phantom table\n\nEstimated = the mean of the predicted map in the disk of half the bottle's radius at "
            + "the bottle's centre, "
        md += "averaged over the set's images (+- their standard deviation); true = the set's bottle concentration.\n\n"
        var csv = [
            [
                "run", "name", "set", "batch", "true_ug_per_mm3", "estimated_ug_per_mm3", "estimated_sd", "images",
                "error", "percent_error"
            ] + (paper ? ["paper"] : [])
        ]
        var mdRows: [[String]] = []
        for (r, e) in all {
            let truth = e.truth ?? .nan, est = e.estimate!
            let error = abs(est.mean - truth), percent = 100 * error / truth
            let batch = e.set.labels["batch"] ?? ""
            let p = paper ? [config.paper[e.set.name] ?? ""] : []
            csv.append(
                [
                    String(r.training.id!), r.name, e.set.name, batch, Self.number(truth), Self.number(est.mean),
                    Self.number(est.sd),
                    String(e.images), Self.number(error), Self.number(percent)
                ] + p)
            mdRows.append(
                (rows.count > 1 ? [r.label] : []) + [
                    batch, String(format: "%.2f", truth),
                    String(format: "%.2f", est.mean) + (e.images > 1 ? String(format: " +- %.2f", est.sd) : ""),
                    String(format: "%.2f", error), String(format: "%.2f%%", percent)
                ] + p)
        }
        md += Self.markdownTable(
            (rows.count > 1 ? ["run"] : []) + ["Batch", "True (ug/mm^3)", "Estimated", "Error", "% Error"]
                + (paper ? ["paper: Estimated, % Error"] : []), mdRows)
        try out.csv("phantom-table.csv", csv)
        md += "\nData: [phantom-table.csv](phantom-table.csv).\n\n"
        for plot in config.plots where plot.metric == "estimate" { md += try render(plot, rows: rows, out: &out) }
        for r in rows {
            if let image = try strip(all.filter { $0.0.training.id == r.training.id }.map(\.1)) {
                let file = "examples-phantoms-run\(r.training.id!).png"
                try out.png(file, image)
                md += "**\(r.label), phantoms** (input, truth, prediction; as in the table)\n\n![phantoms](\(file))\n\n"
            }
        }
        return md
    }

    // MARK: interpretability

    func interpretabilitySection(_ rows: [Row], _ out: inout ReportFiles) throws -> String {
        var md = ""
        for r in rows {
            var groups: [String: [Evaluated]] = [:], order: [String] = []
            for e in r.evaluations
            where try store.artifacts(e.run.id!).contains(where: { $0.name.hasPrefix("interp-") }) {
                let g = e.set.sweep.isEmpty ? e.set.name : e.set.sweep
                if groups[g] == nil { order.append(g) }
                groups[g, default: []].append(e)
            }
            for g in order {
                var columns: [[ImageGrid.Panel]] = []
                var features: [(String, [ImageGrid.Panel])] = []
                for e in groups[g]! {
                    let arts = try store.artifacts(e.run.id!)
                    func maps(_ name: String) throws -> NPYArray? {
                        guard let a = arts.first(where: { $0.name == name }) else { return nil }
                        return try NPYArray.read(a.path)
                    }
                    guard let input = try maps("interp-input.npy"), let prediction = try maps("interp-prediction.npy")
                    else { continue }
                    let (n, size) = (input.shape[0], input.shape[1])
                    let gradcams = try arts.filter { $0.name.hasPrefix("interp-gradcam-") }.map { a in
                        (String(a.name.dropFirst("interp-gradcam-".count).dropLast(4)), try NPYArray.read(a.path))
                    }
                    let saliency = try maps("interp-saliency.npy")
                    for i in 0..<n {
                        func plane(_ a: NPYArray) -> [Float] {
                            Array(a.values[(i * size * size)..<((i + 1) * size * size)])
                        }
                        var cells = [
                            ImageGrid.Panel(
                                plane(input), size: size, title: Self.title(e.set, fallback: "\(e.set.name) #\(i)"),
                                unit: "a.u."),
                            ExamplePanels.concentration(plane(prediction), size: size, title: "prediction")
                        ]
                        for (layer, a) in gradcams {
                            cells.append(
                                ImageGrid.Panel(
                                    plane(a), size: size, title: "Grad-CAM \(layer)", colourMap: .viridis, unit: "a.u.")
                            )
                        }
                        if let saliency {
                            cells.append(ImageGrid.Panel(plane(saliency), size: size, title: "saliency", unit: "a.u."))
                        }
                        columns.append(cells)
                    }
                    for a in arts where a.name.hasPrefix("interp-features-") && features.isEmpty {
                        let f = try NPYArray.read(a.path)
                        let (k, h, w) = (f.shape[0], f.shape[1], f.shape[2])
                        let cells = (0..<k).map { c in
                            ImageGrid.Panel(
                                Array(f.values[(c * h * w)..<((c + 1) * h * w)]), width: w, height: h,
                                title: "channel \(c)", colourMap: .viridis)
                        }
                        features.append((String(a.name.dropFirst("interp-features-".count).dropLast(4)), cells))
                    }
                }
                guard !columns.isEmpty else { continue }
                let file = "interpretability-\(Self.slug(g))-run\(r.training.id!).png"
                try out.png(file, ImageGrid(columns: columns))
                md +=
                    "## Interpretability: \(g)\n\n**\(r.label)**: per column one image (input channel 0), the "
                    + "prediction, Grad-CAM maps "
                md +=
                    "(ReLU of the gradient-weighted feature maps, resized to the image) and guided-backpropagation "
                    + "saliency (|d band / d input| summed over both channels).\n\n"
                md += "![interpretability \(g)](\(file))\n\n"
                for (layer, cells) in features {
                    let ffile = "features-\(Self.slug(g))-\(Self.slug(layer))-run\(r.training.id!).png"
                    let rowsOf8 = stride(from: 0, to: cells.count, by: 8).map {
                        Array(cells[$0..<min(cells.count, $0 + 8)]).map(Optional.some)
                    }
                    var grid = ImageGrid(rows: rowsOf8)
                    (grid.cellWidth, grid.cellHeight) = (200, 180)
                    try out.png(ffile, grid)
                    md += "Feature maps of `\(layer)` (first image of \(g)):\n\n![features \(layer)](\(ffile))\n\n"
                }
            }
        }
        return md
    }

    // MARK: image strips

    static let stripColumns = 16

    /// Columns of (input, truth, prediction) for the first image of each set (at most
    /// `stripColumns`, evenly spaced), from the sets' `interp-`/`predictions` artifacts.
    func strip(_ sets: [Evaluated]) throws -> ImageGrid? {
        let chosen =
            sets.count <= Self.stripColumns
            ? sets : (0..<Self.stripColumns).map { sets[$0 * (sets.count - 1) / (Self.stripColumns - 1)] }
        var columns: [[ImageGrid.Panel]] = []
        for e in chosen {
            guard let a = try store.artifacts(e.run.id!).first(where: { $0.name == "example.npy" }),
                FileManager.default.fileExists(atPath: a.path)
            else { continue }
            // example.npy: input, truth (simulated sets only), prediction.
            let ex = try NPYArray.read(a.path)
            let (k, size) = (ex.shape[0], ex.shape[1])
            func plane(_ i: Int) -> [Float] { Array(ex.values[(i * size * size)..<((i + 1) * size * size)]) }
            columns.append(
                ExamplePanels.cells(
                    input: plane(0), truth: k == 3 ? plane(1) : nil, prediction: plane(k - 1),
                    size: size, inputTitle: Self.title(e.set, fallback: e.set.name)))
        }
        return columns.isEmpty ? nil : ImageGrid(columns: columns)
    }

    /// A panel title for a set's image: its labels (long key names abbreviated), or `fallback`.
    static func title(_ set: TestSetConfig, fallback: String) -> String {
        guard !set.labels.isEmpty else { return fallback }
        return set.labels.keys.sorted().map { "\($0)=\(set.labels[$0]!)" }.joined(separator: " ")
            .replacingOccurrences(of: "concentrationUgPerMM3", with: "C").replacingOccurrences(
                of: "deltaChiPPM", with: "Δχ"
            )
            .replacingOccurrences(of: "snrDB", with: "SNR")
    }

    static func slug(_ s: String) -> String {
        String(s.map { $0.isLetter || $0.isNumber || "-._".contains($0) ? $0 : "_" })
    }
}

extension StudyReport {
    // MARK: differences between cells

    /// Each cell (runs that differ only in their training seed) against the first on the first
    /// plain test set: the paired per-image difference of the cells' first runs (bootstrap) and,
    /// where both cells have two or more seeds, the difference over seeds (Welch). `differences.csv`.
    func differencesSection(_ cells: [[Row]], _ out: inout ReportFiles) throws -> String {
        guard cells.count >= 2,
            let set = cells[0].first?.evaluations.first(where: { $0.set.sweep.isEmpty && $0.set.files.isEmpty })?.set
                .name
        else { return "" }
        let comparison = try RunComparison(store: store)
        func evaluations(_ cell: [Row]) throws -> [RunComparison.Evaluation] {
            try cell.compactMap { r in try comparison.evaluations(of: r.training.id!).first { $0.set == set } }
        }
        let reference = try evaluations(cells[0])
        guard let first = reference.first else { return "" }
        func label(_ cell: [Row]) -> String { cell[0].label }
        func interval(_ i: DifferenceInterval?) -> String {
            guard let i else { return "" }
            return String(format: "%+.3f [%+.3f, %+.3f]", i.difference, i.low, i.high) + (i.excludesZero ? " *" : "")
        }
        var md: [[String]] = [],
            csv = [
                [
                    "cell", "runs", "nmae_mean", "paired", "paired_low", "paired_high", "seeds",
                    "seeds_low", "seeds_high"
                ]
            ]
        for (k, cell) in cells.enumerated() {
            let mine = try evaluations(cell)
            guard let head = mine.first else { continue }
            let nmae = try mine.compactMap { try store.metrics($0.id, key: MetricKey.nmae.mean).first?.value }
            let mean = nmae.isEmpty ? Double.nan : nmae.reduce(0, +) / Double(nmae.count)
            if k == 0 {
                md.append([label(cell), String(cell.count), Self.fixed(mean), "reference", "reference"])
                csv.append([label(cell), String(cell.count), Self.number(mean), "", "", "", "", "", ""])
                continue
            }
            let paired = try comparison.paired(first, head)?.first { $0.metric == .nmae }?.interval
            let seeds = try comparison.overSeeds(reference, mine).first { $0.metric == .nmae }?.interval
            md.append([
                label(cell), String(cell.count), Self.fixed(mean), interval(paired),
                seeds.map(interval) ?? (cell.count < 2 || cells[0].count < 2 ? "one seed" : "")
            ])
            csv.append(
                [label(cell), String(cell.count), Self.number(mean)]
                    + [paired, seeds].flatMap { i in
                        i.map { [Self.number($0.difference), Self.number($0.low), Self.number($0.high)] } ?? [
                            "", "", ""
                        ]
                    })
        }
        try out.csv("differences.csv", csv)
        return "## Differences between cells\n\n"
            + "Each cell against **\(label(cells[0]))** on test set `\(set)`: the mean NMAE difference (cell minus "
            + "reference; negative is lower error) with its 95 % interval. *Paired*: the cells' first runs on the "
            + "same images, the percentile bootstrap of the mean per-image difference (10,000 resamples); it speaks "
            + "of two trained models. *Over seeds*: the means of each cell's training seeds, Welch's t interval; it "
            + "speaks of two recipes. `*` marks an interval that excludes 0, a finding at the 5 % level.\n\n"
            + Self.markdownTable(["cell", "runs", "NMAE (mean of runs)", "paired difference", "over seeds"], md)
            + "\nData: [differences.csv](differences.csv).\n\n"
    }
}
