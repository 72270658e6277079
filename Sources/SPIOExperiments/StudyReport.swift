import SPIOCoding
import Foundation
import SPIOImageIO
import SPIOPhysics
import SPIOPlots
import SPIOTraining

/// Renders a study's report from the run store and the runs' artifacts alone, into `report.md`,
/// CSV tables and PNG figures:
/// - the runs table (`runs.csv`): every training the study uses with its plain test sets' NMAE,
///   whether it converged, and the paper's figure where the study's `report.paper` gives one;
/// - `loss.png` (training loss against step), `validation.png` (validation NMAE per epoch);
/// - per plain test set: an NMAE histogram and example panels;
/// - per sweep: a table (`sweep-<name>.csv`), an example strip, and the plots `report.plots` asks for;
/// - the phantom table (`phantom-table.csv`) in the paper's Table 1 layout, for sets with a
///   bottle estimate;
/// - Grad-CAM, saliency and feature-map panels of sets with an `interpretability` block.
package struct StudyReport {
    package let store: RunStore
    package let study: String

    package init(store: RunStore, study: String) { self.store = store; self.study = study }

    /// One finished evaluation as the study uses it.
    @dynamicMemberLookup
    package struct Evaluated {
        package var run: RunStore.Run
        package var set: TestSetConfig
        package var summary: EvaluationRecord
        /// The key of the dataset it evaluated (simulated sets; nil for file sets and older stores).
        package var datasetKey: String?
        package subscript<T>(dynamicMember keyPath: KeyPath<EvaluationRecord, T>) -> T { summary[keyPath: keyPath] }
    }

    /// One finished training run with its evaluations.
    package struct Row {
        package var training: RunStore.Run
        package var name: String
        package var grid: [(String, String)]
        package var parameters: Int
        package var epochs: Int
        package var validationNMAE: Double
        package var evaluations: [Evaluated]
        /// Grid values, or the run's name without grid.
        package var label: String {
            grid.isEmpty ? name : grid.map { "\($0.0.split(separator: ".").last!)=\($0.1)" }.joined(separator: " ")
        }
    }

    package func rows() throws -> [Row] {
        // The runs of the study's last `spio run` (which records the study, then each run it makes
        // or reuses): runs of an earlier declaration, a renamed variant or a dropped cell, stay in
        // the store but are no longer the study's.
        let since = try store.study(study)?.updatedAt ?? ""
        let used = try store.studyRuns(study).filter { $0.run.status == .finished && $0.usedAt >= since }
        // What the study used last under each name: a forced re-run or a changed test set
        // supersedes the earlier run.
        func lastUsed(_ kind: RunKind, by key: (RunStore.StudyRun) -> String) -> [RunStore.StudyRun] {
            var last: [String: RunStore.StudyRun] = [:]
            for u in used where u.run.kind == kind && (last[key(u)].map { $0.usedAt <= u.usedAt } ?? true) {
                last[key(u)] = u
            }
            return last.values.sorted { $0.run.id! < $1.run.id! }
        }
        let evaluations = try lastUsed(.evaluate) { "\($0.run.parentID ?? 0) \($0.name)" }.map(evaluated)
        let latest = lastUsed(.train) { $0.name }
        return try latest.map { u in
            let t = u.run
            let val = try store.metrics(t.id!, key: .validationNMAE)
            return Row(
                training: t, name: u.name, grid: u.grid,
                parameters: Int(try store.metrics(t.id!, key: .parameters).first?.value ?? 0),
                // Counted from the epochs' losses too: a run without validation images has no NMAE.
                epochs: max(val.count, try store.metrics(t.id!, key: .epochTrainLoss).count),
                validationNMAE: val.last?.value ?? .nan,
                evaluations: evaluations.filter { $0.run.parentID == t.id })
        }
    }

    private struct EvaluationJSON: Decodable {
        var set: TestSetConfig
        var dataset: String?
    }

    /// The finished dataset run of a simulated set's images, by the key its evaluation stored; nil
    /// for file sets and where the store lacks it.
    func dataset(of e: Evaluated) throws -> RunStore.Run? {
        guard e.set.files.isEmpty, let key = e.datasetKey else { return nil }
        return try store.finished(kind: .dataset, hash: key)
    }

    private func evaluated(_ u: RunStore.StudyRun) throws -> Evaluated {
        let id = u.run.id!
        let key = try? decodeCanonicalJSON(EvaluationJSON.self, from: u.run.configJSON)
        var set = key?.set ?? TestSetConfig()
        if set.name == TestSetConfig().name, let name = try store.params(id)[ParamKey.set] { set.name = name }
        return Evaluated(
            run: u.run, set: set, summary: try EvaluationRecord(store: store, id: id), datasetKey: key?.dataset)
    }

    /// The study's `report` block as stored by its last `spio run` (defaults for older stores).
    func reportConfig() throws -> (description: String, config: ReportConfig) {
        guard let s = try store.study(study) else { return ("", ReportConfig()) }
        return (
            s.description,
            (try? decodeCanonicalJSON(ReportConfig.self, from: s.reportJSON)) ?? ReportConfig()
        )
    }

    /// Refuses a report folder that holds another study's report, or user files under the names
    /// every report writes; `write(to:)` checks every file again once it knows them all.
    package static func checkFolder(_ directory: String, study: String) throws {
        try OutputManifest(directory: directory, name: ReportFiles.manifestName, owner: "study \(study)")
            .checkWritable(["report.md", "runs.csv", "loss.png", "loss.svg", "validation.png", "validation.svg"])
    }

    /// Writes the report into `directory`; returns the files written.
    @discardableResult
    package func write(to directory: String) throws -> [String] {
        let rows = try rows()
        guard !rows.isEmpty else { throw ReportError.noRuns(study) }
        let (storedDescription, config) = try reportConfig()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        PartialPath.removeStale(under: directory, depth: 1)
        let manifest = OutputManifest(directory: directory, name: ReportFiles.manifestName, owner: "study \(study)")
        try manifest.checkWritable([])
        // Rendered into a staging folder first: which files a report has is known only at its end,
        // and none may replace a file of the user's or of another study's report.
        let staging = PartialPath.of((directory as NSString).appendingPathComponent(".rendering"))
        try? FileManager.default.removeItem(atPath: staging)
        try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: staging) }
        var out = ReportFiles(directory: staging)

        var md = "# Study `\(study)`\n\n"
        let description =
            storedDescription.isEmpty
            ? (try store.params(rows[0].training.id!)[ParamKey.studyDescription] ?? "") : storedDescription
        if !description.isEmpty { md += description.trimmingCharacters(in: .whitespacesAndNewlines) + "\n\n" }
        if !config.notes.isEmpty { md += config.notes.trimmingCharacters(in: .whitespacesAndNewlines) + "\n\n" }
        md +=
            "Rendered from the run store (`\((store.path as NSString).lastPathComponent)`) by `spio report \(study)`. "
        md +=
            "NMAE = ||C^ - C||_1 / ||C||_1 per image (C in ug/mm^3), mean +- sample standard deviation over the test "
            + "set's images. "
        md +=
            "Figures labelled *paper* are the paper's own, quoted for comparison; every other number was computed "
            + "here.\n\n"

        md += try runsSection(rows, config, &out)
        md += try qualitySection(rows, &out)
        md += try scalingSection(rows, config, &out)
        md += try sweepSections(rows, config, &out)
        md += try phantomSection(rows, config, &out)
        md += try interpretabilitySection(rows, &out)
        let cells = try seedGroups(rows)
        md += try differencesSection(cells, &out)
        md += try convergenceSection(cells, config, &out)
        md += try trainingSection(cells, &out)
        md +=
            "Data: " + out.files.filter { $0.hasSuffix(".csv") }.map { "[\($0)](\($0))" }.joined(separator: ", ")
            + ".\n"
        try md.write(toFile: out.path("report.md"), atomically: true, encoding: .utf8)
        let names = ["report.md"] + out.files
        try manifest.checkWritable(names)
        for name in names {
            try? FileManager.default.removeItem(atPath: manifest.path(name))
            try FileManager.default.moveItem(atPath: out.path(name), toPath: manifest.path(name))
        }
        try manifest.record(names, replacing: true)
        return names.map(manifest.path)
    }

    // MARK: metrics beside NMAE

    /// RMSE, HFEN and the total-iron error of each run's plain test sets (evaluations that measured
    /// them), as mean +- sd over the images; and NMAE by concentration tertile. SSIM is stored but
    /// not shown: over a slice that is mostly zero it rewards the all-zero map (0.71 on exp1's
    /// slices, above every trained model), so it does not rank these maps.
    private func qualitySection(_ rows: [Row], _ out: inout ReportFiles) throws -> String {
        let keys = MetricKey.quality.filter { $0 != .ssim }
        var csv = [["run", "name", "set"] + keys.flatMap { [$0.rawValue + "_mean", $0.rawValue + "_sd"] }]
        var mdRows: [[String]] = []
        for r in rows {
            for e in r.evaluations where Self.isPlain(e) && !e.quality.isEmpty {
                csv.append(
                    [String(r.training.id!), r.name, e.set.name]
                        + keys.flatMap { k in
                            e.quality[k].map { [Self.number($0.mean), Self.number($0.sd)] } ?? ["", ""]
                        })
                mdRows.append(
                    [String(r.training.id!), r.label, e.set.name]
                        + keys.map { k in
                            guard let q = e.quality[k] else { return "" }
                            return k == .ironError
                                ? String(format: "%+.1f +- %.1f", 100 * q.mean, 100 * q.sd)
                                : "\(Self.fixed(q.mean)) +- \(Self.fixed(q.sd))"
                        })
            }
        }
        guard !mdRows.isEmpty else { return "" }
        try out.csv("metrics.csv", csv)
        return
            "## Beside NMAE\n\nRMSE in ug/mm^3; HFEN = ||LoG(C^) - LoG(C)||_2 / ||LoG(C)||_2 with the QSM challenges' "
            + "15 x 15 Laplacian of Gaussian (sigma 1.5 pixels), 0 for a perfect map; total iron = the relative "
            + "error of sum(C) over the slice (proportional to its dipole moment), in per cent. Mean +- sd over the "
            + "set's images. SSIM is not shown: on slices that are mostly zero it scores the all-zero map 0.71, "
            + "above the trained models, so it does not rank these maps (the store keeps it, `ssim`).\n\n"
            + Self.markdownTable(["run", "model", "set", "RMSE (ug/mm^3)", "HFEN", "total iron error (%)"], mdRows)
            + "\n" + (try tertileTable(rows, &out))
    }

    /// Per run and plain simulated set: NMAE (mean +- sd) and the total-iron error over the images in each
    /// third of the set's images by their mean true concentration over their SPIO (the same
    /// boundaries for every run on the set); `tertiles.csv`.
    private func tertileTable(_ rows: [Row], _ out: inout ReportFiles) throws -> String {
        var md: [[String]] = [],
            csv = [
                [
                    "run", "name", "set", "tertile", "low_ug_per_mm3", "high_ug_per_mm3",
                    "images", "nmae_mean", "nmae_sd", "iron_error_mean"
                ]
            ]
        var bounds: [String: (Double, Double)] = [:]
        for r in rows {
            for e in r.evaluations where Self.isPlain(e) && e.set.files.isEmpty && !e.spioMeans.isEmpty {
                let id = e.run.id!
                func byImage(_ key: MetricKey) throws -> [Int: Double] {
                    Dictionary(try store.metrics(id, key: key).map { ($0.step, $0.value) }) { a, _ in a }
                }
                let truth = try byImage(.spioTruth), nmae = try byImage(.nmae), iron = try byImage(.ironError)
                if bounds[e.set.name] == nil {
                    let sorted = truth.values.sorted()
                    guard sorted.count >= 6 else { continue }
                    bounds[e.set.name] = (
                        DifferenceInterval.quantile(sorted, 1.0 / 3), DifferenceInterval.quantile(sorted, 2.0 / 3)
                    )
                }
                let (a, b) = bounds[e.set.name]!
                var cells = [String(r.training.id!), r.label, e.set.name]
                // Thirds: at most a, above a to b, above b.
                for (t, range) in [(0, -Double.infinity...a), (1, a...b), (2, b...Double.infinity)] {
                    let images = truth.filter { v in
                        t == 0 ? v.value <= a : (t == 1 ? v.value > a && v.value <= b : v.value > b)
                    }.map(\.key).filter { nmae[$0] != nil }.sorted()
                    let (m, sd) = Evaluation.meanAndSD(images.map { nmae[$0]! })
                    let ironMean = Evaluation.meanAndSD(images.compactMap { iron[$0] }).mean
                    cells.append(images.isEmpty ? "" : "\(Self.fixed(m)) +- \(Self.fixed(sd))")
                    csv.append(
                        [
                            String(r.training.id!), r.name, e.set.name, ["low", "middle", "high"][t],
                            Self.number(range.lowerBound), Self.number(range.upperBound), String(images.count),
                            Self.number(m), Self.number(sd), Self.number(ironMean)
                        ])
                }
                md.append(cells)
            }
        }
        guard !md.isEmpty else { return "" }
        try out.csv("tertiles.csv", csv)
        let ranges = bounds.sorted { $0.key < $1.key }.map {
            String(
                format: "`%@`: below %.2f, %.2f to %.2f, above %.2f ug/mm^3", $0.key, $0.value.0, $0.value.0,
                $0.value.1, $0.value.1)
        }.joined(separator: "; ")
        return "**NMAE by concentration tertile**: each set's images split in thirds by their mean true "
            + "concentration over their SPIO (\(ranges)); NMAE mean +- sd over the images of each third "
            + "([tertiles.csv](tertiles.csv), with the total-iron error).\n\n"
            + Self.markdownTable(["run", "model", "set", "low third", "middle third", "high third"], md) + "\n"
    }

    // MARK: runs table

    /// Sets measured with NMAE that belong to no sweep and have no bottle estimate.
    static func isPlain(_ e: Evaluated) -> Bool { e.set.sweep.isEmpty && e.estimate == nil }

    private func runsSection(_ rows: [Row], _ config: ReportConfig, _ out: inout ReportFiles) throws -> String {
        let sets = Array(Set(rows.flatMap { $0.evaluations.filter(Self.isPlain).map(\.set.name) })).sorted()
        let gridKeys = Array(Set(rows.flatMap { $0.grid.map(\.0) })).sorted { a, b in
            a == "variant" || (b != "variant" && a < b)
        }
        let showConverged = rows.count > 1
        let paperForRow = rows.contains { config.paper[$0.grid.first { $0.0 == "variant" }?.1 ?? $0.name] != nil }

        var header = ["run", "name"] + gridKeys + ["parameters", "epochs", "validation_nmae"]
        if showConverged { header.append("converged") }
        for s in sets {
            header += ["\(s)_nmae_mean", "\(s)_nmae_sd", "\(s)_images"] + (config.paper[s] != nil ? ["\(s)_paper"] : [])
        }
        if paperForRow { header.append("paper") }
        var csv = [header]
        var mdHeader = ["run"] + (gridKeys.isEmpty ? ["name"] : gridKeys) + ["parameters", "epochs", "validation NMAE"]
        if showConverged { mdHeader.append("converged (< \(Self.fixed(config.convergedBelow)))") }
        for s in sets { mdHeader += ["\(s) NMAE"] + (config.paper[s] != nil ? ["\(s), paper"] : []) }
        if paperForRow { mdHeader.append("paper") }
        var mdRows: [[String]] = []
        for r in rows {
            let converged = r.validationNMAE < config.convergedBelow ? "yes" : "no"
            let grid = gridKeys.map { k in r.grid.first { $0.0 == k }?.1 ?? "" }
            var line =
                [String(r.training.id!), r.name] + grid + [
                    String(r.parameters), String(r.epochs), Self.number(r.validationNMAE)
                ]
                + (showConverged ? [converged] : [])
            var cells =
                [String(r.training.id!)] + (gridKeys.isEmpty ? [r.name] : grid) + [
                    String(r.parameters), String(r.epochs), Self.fixed(r.validationNMAE)
                ]
                + (showConverged ? [converged] : [])
            for s in sets {
                let e = r.evaluations.first { $0.set.name == s && Self.isPlain($0) }
                line += e.map { [Self.number($0.nmaeMean), Self.number($0.nmaeSD), String($0.images)] } ?? ["", "", ""]
                cells.append(
                    e.map { "\(Self.fixed($0.nmaeMean)) +- \(Self.fixed($0.nmaeSD)) (n = \($0.images))" } ?? "")
                if let p = config.paper[s] { line.append(p); cells.append(p) }
            }
            if paperForRow {
                let p = config.paper[r.grid.first { $0.0 == "variant" }?.1 ?? r.name] ?? ""
                line.append(p); cells.append(p)
            }
            csv.append(line)
            mdRows.append(cells)
        }
        try out.csv("runs.csv", csv)
        var md = "## Runs\n\n" + Self.markdownTable(mdHeader, mdRows) + "\n"

        // Histograms and examples of the plain sets.
        for s in sets {
            let evaluations = rows.compactMap { r in
                r.evaluations.first { $0.set.name == s && Self.isPlain($0) }.map { (r, $0) }
            }
            if evaluations.contains(where: { $0.1.images >= 20 }) {
                let values = try evaluations.map { try store.metrics($0.1.run.id!, key: .nmae).map(\.value) }
                let bins = Self.bins(values.flatMap { $0 })
                var plot = Chart(xLabel: "NMAE per image", yLabel: "images")
                plot.yFromZero = true
                for ((r, _), v) in zip(evaluations, values) {
                    plot.series.append(
                        Chart.Series(label: r.label, x: bins.edges, y: Self.counts(v, bins), style: .histogram))
                }
                let base = "histogram-\(evaluations[0].1.set.slug)"
                try out.chart(base, plot)
                md += "![NMAE histogram, \(s)](\(base).png) ([SVG](\(base).svg))\n\n"
            }
            if evaluations.count > 1 {
                md += try comparison(s, evaluations.map { ($0.0.label, $0.1) }, &out)
            }
            for (r, e) in evaluations {
                let file = "examples-run\(r.training.id!)-\(e.set.slug).png"
                if let grid = try examples(e, count: 4) {
                    try out.png(file, grid)
                } else if let art = try store.artifacts(e.run.id!).first(where: { $0.name == "examples.png" }),
                    FileManager.default.fileExists(atPath: art.path)
                {
                    try out.copy(art.path, as: file)
                } else {
                    continue
                }
                md +=
                    "**\(r.label.replacingOccurrences(of: "[", with: " (").replacingOccurrences(of: "]", with: ")")), "
                    + "\(s)** (per row one test image: "
                    + (e.set.simulation.input == .field
                        ? "the true field map the network was given, in kHz" : "input channel 0, the even stripes")
                    + "; true and predicted concentration on one colour scale)\n\n![\(s)](\(file))\n\n"
            }
        }
        return md
    }

    /// About sqrt(n) equal bins (5 to 30) over the finite values' range: left edges and width.
    static func bins(_ values: [Double]) -> (edges: [Double], width: Double) {
        let v = values.filter(\.isFinite)
        guard let lo = v.min(), let hi = v.max() else { return ([], 1) }
        let count = max(5, min(30, Int(Double(v.count).squareRoot())))
        let width = hi > lo ? (hi - lo) / Double(count) : 1
        return ((0..<count).map { lo + Double($0) * width }, width)
    }

    /// How many of `values` fall in each bin (the last bin includes its upper edge).
    static func counts(_ values: [Double], _ bins: (edges: [Double], width: Double)) -> [Double] {
        var counts = [Double](repeating: 0, count: bins.edges.count)
        guard let lo = bins.edges.first else { return counts }
        for x in values where x.isFinite {
            counts[min(bins.edges.count - 1, max(0, Int((x - lo) / bins.width)))] += 1
        }
        return counts
    }

    /// Grouped bars of one test set's NMAE (mean +- sd over its images), one bar per run.
    private func comparison(_ set: String, _ runs: [(String, Evaluated)], _ out: inout ReportFiles) throws -> String {
        let chart = ComparisonPlot.chart(
            runs.map { ComparisonPlot.Entry(label: $0.0, evaluations: [(set, $0.1.summary)]) })
        let base = "comparison-\(runs[0].1.set.slug)"
        try out.bars(base, chart)
        return "![NMAE per run, \(set)](\(base).png) ([SVG](\(base).svg))\n\n"
    }

    /// The first `count` images of a simulated set (input channel 0, truth, prediction) from its
    /// dataset and the evaluation's `predictions.npy`; nil where those files are not at hand.
    func examples(_ e: Evaluated, count: Int) throws -> ImageGrid? {
        guard let predictions = try store.artifacts(e.run.id!).first(where: { $0.name == "predictions.npy" }),
            let data = try dataset(of: e),
            FileManager.default.fileExists(atPath: predictions.path)
        else { return nil }
        let dir = data.directory as NSString
        let images = try NPYArray.read(dir.appendingPathComponent("images.npy"))
        let truth = try NPYArray.read(dir.appendingPathComponent("concentration.npy"))
        let maps = try NPYArray.read(predictions.path)
        let n = maps.shape.last!, plane = n * n
        guard images.shape.count == 4, images.shape[2] == n, truth.values.count >= plane else { return nil }
        let shown = min(count, maps.shape[0], images.shape[0])
        var rows: [[ImageGrid.Panel?]] = []
        for s in 0..<shown {
            let input: [Float] = Array(images.values[(2 * s * plane)..<((2 * s + 1) * plane)])
            let truthMap: [Float] = Array(truth.values[(s * plane)..<((s + 1) * plane)])
            let prediction: [Float] = Array(maps.values[(s * plane)..<((s + 1) * plane)])
            rows.append(
                ExamplePanels.cells(
                    input: input, truth: truthMap, prediction: prediction, size: n,
                    inputTitle: e.set.simulation.input == .field ? "true field" : "input",
                    inputUnit: e.set.simulation.input == .field ? "kHz" : "a.u."))
        }
        return ImageGrid(rows: rows)
    }

    // MARK: training curves

    private func trainingSection(_ groups: [[Row]], _ out: inout ReportFiles) throws -> String {
        let rows = groups.flatMap { $0 }
        var loss = Chart(xLabel: "Adam step", yLabel: "the paper's loss (moving mean of 20 batches)")
        var warmup = Chart(xLabel: "Adam step", yLabel: "MSE of the targets (moving mean of 20 batches)")
        var val = Chart(xLabel: "epoch", yLabel: "validation NMAE")
        for g in groups {
            let label = g.count > 1 ? "\(g[0].label) (\(g.count) seeds)" : g[0].label
            // The MSE warm-up and the paper's loss are other quantities: each on its own panel, and
            // no moving mean across the switch.
            let switchStep =
                (try? decodeCanonicalJSON(RunConfig.self, from: g[0].training.configJSON))?.training
                .mseWarmupSteps ?? 0
            let raw = try g.map { r in try store.metrics(r.training.id!, key: .trainLoss).map(\.value) }
            let steps = raw.map(\.count).min() ?? 0
            for (chart, range) in [(0, 0..<min(switchStep, steps)), (1, min(switchStep, steps)..<steps)]
            where !range.isEmpty {
                let curves = raw.map { Chart.movingMean(Array($0[range]), window: 20) }
                let (mean, sd) = Self.meanAndSD(curves)
                let series = Chart.Series(
                    label: label, x: range.map { Double($0 + 1) }, y: mean, spread: g.count > 1 ? sd : nil)
                if chart == 0 { warmup.series.append(series) } else { loss.series.append(series) }
            }
            let epochs = try g.map { r in try store.metrics(r.training.id!, key: .validationNMAE).map(\.value) }
            let count = epochs.map(\.count).min() ?? 0
            let (v, vsd) = Self.meanAndSD(epochs.map { Array($0.prefix(count)) })
            val.series.append(
                Chart.Series(
                    label: label, x: (0..<count).map { Double($0 + 1) }, y: v, spread: g.count > 1 ? vsd : nil,
                    style: count <= 30 ? .errorLines : .lines))
        }
        loss.logY = true
        warmup.logY = true
        try out.chart("loss", loss)
        if !warmup.series.isEmpty { try out.chart("loss-warmup", warmup) }
        // A divergence spike (a loss switch, a too-large step) hides every other value on a linear
        // axis; values spanning more than a factor of 20 are drawn on a log axis.
        let values = val.series.flatMap(\.y).filter { $0.isFinite && $0 > 0 }
        if let lo = values.min(), let hi = values.max(), hi > 20 * lo { val.logY = true }
        val.series.removeAll { $0.x.isEmpty }
        if !val.series.isEmpty { try out.chart("validation", val) }
        let seeds = groups.contains { $0.count > 1 }
        var md = "## Training\n\n![training loss](loss.png) ([SVG](loss.svg))\n\n"
        if !warmup.series.isEmpty {
            md +=
                "The first Adam steps of the runs with an MSE warm-up (`training.mseWarmupSteps`) minimise the mean "
                + "squared error of the targets, another quantity than the paper's loss: they are drawn on their own "
                + "panel.\n\n![MSE warm-up](loss-warmup.png) ([SVG](loss-warmup.svg))\n\n"
        }
        if seeds {
            md +=
                "Runs that differ only in their training seed are drawn as one curve, the mean over the seeds, with a "
                + "band of +- one standard deviation over the seeds.\n\n"
        }
        let wavelet = rows.map {
            (try? decodeCanonicalJSON(RunConfig.self, from: $0.training.configJSON))?.model
                .predictsWaveletBands
        }
        if Set(wavelet.compactMap { $0 }).count > 1 {
            md +=
                "The loss of a model with an image head (the U-Net, `head: image`) is one normalised-L1 term, that of "
                + "a wavelet model the sum of "
            md +=
                "four (the all-zero prediction scores 1 and 4): compare the validation NMAE below, not the loss "
                + "levels.\n\n"
        }
        md += try bandLossTable(rows)
        md +=
            val.series.isEmpty
            ? "No validation NMAE: the runs held out no validation images (`training.validationFraction: 0`).\n\n"
            : "![validation NMAE](validation.png) ([SVG](validation.svg))\n\n"
        return md
    }

    /// The paper's loss term by term at each run's last epoch (mean over its batches), for runs that
    /// logged them: which band the loss is spent on. Wavelet models and image heads in tables of their own.
    private func bandLossTable(_ rows: [Row]) throws -> String {
        var md = ""
        for count in [4, 1] {
            let names = MetricKey.bandNames(count: count)
            var lines: [String] = []
            for r in rows {
                let last = try names.map { try store.metrics(r.training.id!, key: .bandLoss($0)).last }
                guard let epoch = last.first??.step, last.allSatisfy({ $0 != nil }) else { continue }
                let values = last.map { $0!.value } + (count > 1 ? [last.reduce(0) { $0 + $1!.value }] : [])
                lines.append(
                    "| \(r.training.id!) | \(r.label) | \(epoch) | "
                        + values.map { String(format: "%.3f", $0) }.joined(separator: " | ") + " |")
            }
            guard !lines.isEmpty else { continue }
            let columns = count > 1 ? "LL | LH | HL | HH | sum" : "image"
            md +=
                (count > 1
                    ? "**The paper's loss by band** at the last epoch, mean over its batches (each band's normalised "
                        + "L1; the all-zero map scores 1 in each, so a band near 1 is one the model does not predict):"
                    : "**The image heads' loss** at the last epoch, mean over its batches (the image's normalised L1; "
                        + "the all-zero map scores 1):")
                + "\n\n| run | model | epoch | \(columns) |\n|"
                + String(repeating: "---|", count: count > 1 ? 8 : 4) + "\n" + lines.joined(separator: "\n") + "\n\n"
        }
        return md
    }

    /// Per cell (runs that differ only in their training seed): when the validation NMAE first went
    /// below `convergedBelow` (epoch and Adam step, per seed), the last validation NMAE and the
    /// first plain test set's NMAE as mean +- sd over the seeds, and the training's wall time.
    private func convergenceSection(
        _ cells: [[Row]], _ config: ReportConfig, _ out: inout ReportFiles
    ) throws
        -> String
    {
        let rows = cells.flatMap { $0 }
        guard rows.count > 1 else { return "" }
        let threshold = config.convergedBelow
        let set = rows.flatMap { $0.evaluations.filter(Self.isPlain).map(\.set.name) }.first
        var csv = [
            [
                "cell", "runs", "seeds", "first_epoch_below", "first_step_below", "final_validation_nmae_mean",
                "final_validation_nmae_sd", "test_set", "test_nmae_mean", "test_nmae_sd"
            ] + (config.wallTime ? ["training_seconds_mean"] : [])
        ]
        var mdRows: [[String]] = []
        for g in cells {
            var epochs: [String] = [], steps: [String] = [], finals: [Double] = [], tests: [Double] = []
            var seconds: [Double] = []
            for r in g {
                let v = try store.metrics(r.training.id!, key: .validationNMAE)
                let stepsPerEpoch = v.isEmpty ? 0 : try store.metrics(r.training.id!, key: .trainLoss).count / v.count
                if let first = v.first(where: { $0.value < threshold }) {
                    epochs.append(String(first.step)); steps.append(String(first.step * stepsPerEpoch))
                } else {
                    epochs.append("never"); steps.append("never")
                }
                if let last = v.last?.value { finals.append(last) }
                if let e = r.evaluations.first(where: { $0.set.name == set && Self.isPlain($0) }) {
                    tests.append(e.nmaeMean)
                }
                // The epochs' own wall times: a run stopped and resumed later (another session) does
                // not count the time in between, which its start-to-finish time would.
                let epochSeconds = try store.metrics(r.training.id!, key: .epochSeconds)
                if !epochSeconds.isEmpty {
                    seconds.append(epochSeconds.reduce(0) { $0 + $1.value })
                } else if let t = r.training.seconds {
                    seconds.append(t)
                }
            }
            let (f, fsd) = Evaluation.meanAndSD(finals), (t, tsd) = Evaluation.meanAndSD(tests)
            let time = seconds.isEmpty ? Double.nan : seconds.reduce(0, +) / Double(seconds.count)
            let label = g.count > 1 ? "\(g[0].label) (\(g.count) seeds)" : g[0].label
            let runs = g.map { String($0.training.id!) }.joined(separator: " ")
            let seeds = g.map { r in
                (try? decodeCanonicalJSON(RunConfig.self, from: r.training.configJSON)).map {
                    String($0.training.seed)
                } ?? "?"
            }
            csv.append(
                [
                    label, runs, seeds.joined(separator: " "), epochs.joined(separator: " "),
                    steps.joined(separator: " "), Self.number(f), g.count > 1 ? Self.number(fsd) : "", set ?? "",
                    Self.number(t), g.count > 1 ? Self.number(tsd) : ""
                ] + (config.wallTime ? [Self.number(time)] : []))
            let spread = { (m: Double, sd: Double) in
                g.count > 1 ? "\(Self.fixed(m)) +- \(Self.fixed(sd))" : Self.fixed(m)
            }
            mdRows.append(
                [
                    label, runs,
                    zip(epochs, steps).map { $0 == "never" ? "never" : "\($0) (step \($1))" }
                        .joined(separator: ", "),
                    spread(f, fsd), tests.isEmpty ? "" : spread(t, tsd)
                ] + (config.wallTime ? [time.isFinite ? String(format: "%.0f", time) : ""] : []))
        }
        try out.csv("convergence.csv", csv)
        return "## Convergence\n\nPer cell (runs that differ only in their training seed are one cell): the epoch "
            + "(and Adam step) at which the validation NMAE first went below \(Self.fixed(threshold)), per seed; the "
            + "last validation NMAE and the test NMAE\(set.map { " on \($0)" } ?? "") as mean +- sd over the seeds "
            + "(of each seed's mean over the images)"
            + (config.wallTime
                ? "; the training's time, the sum of its epochs' wall times (with whatever else shared the machine), "
                    + "mean over the seeds" : "") + ".\n\n"
            + Self.markdownTable(
                [
                    "cell", "runs", "first below \(Self.fixed(threshold)): epoch (step)", "final validation NMAE",
                    "test NMAE"
                ] + (config.wallTime ? ["training time (s)"] : []), mdRows)
            + "\nData: [convergence.csv](convergence.csv).\n\n"
    }

    /// The rows in groups whose training configurations differ only in `training.seed`, in the
    /// rows' order.
    func seedGroups(_ rows: [Row]) throws -> [[Row]] {
        var keys: [String] = [], groups: [[Row]] = []
        for r in rows {
            var key = r.training.configJSON
            if var c = try? decodeCanonicalJSON(RunConfig.self, from: r.training.configJSON) {
                c.training.seed = 0
                // A run reused from another study carries that study's test sets, which do not
                // touch the training (they are not in its hash).
                c.evaluation = EvaluationConfig()
                key = c.canonicalJSON + (r.training.parentID.map { " \($0)" } ?? "")
            }
            if let i = keys.firstIndex(of: key) { groups[i].append(r) } else { keys.append(key); groups.append([r]) }
        }
        return groups
    }

    /// Per position, the mean and sample standard deviation over equally long curves.
    static func meanAndSD(_ curves: [[Double]]) -> (mean: [Double], sd: [Double]) {
        guard let n = curves.first?.count else { return ([], []) }
        let pairs = (0..<n).map { i in Evaluation.meanAndSD(curves.map { $0[i] }) }
        return (pairs.map(\.0), pairs.map(\.1))
    }

    // MARK: formatting

    /// A Markdown table: a header row, the separator, one row per entry.
    static func markdownTable(_ header: [String], _ rows: [[String]]) -> String {
        func row(_ cells: [String]) -> String { "| " + cells.joined(separator: " | ") + " |\n" }
        return row(header) + "|" + String(repeating: "---|", count: header.count) + "\n" + rows.map(row).joined()
    }

    static func fixed(_ v: Double) -> String { v.isFinite ? String(format: "%.3f", v) : "" }

    static func number(_ v: Double, digits: Int = 6) -> String { v.isFinite ? String(format: "%.\(digits)g", v) : "" }

    /// RFC 4180: CRLF line ends; fields with a comma, quote or line break are quoted, quotes doubled.
    package static func writeCSV(_ rows: [[String]], to path: String) throws {
        func field(_ s: String) -> String {
            s.contains { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }
                ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        let text = rows.map { $0.map(field).joined(separator: ",") }.joined(separator: "\r\n") + "\r\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

/// The files of one report folder, in the order written.
struct ReportFiles {
    let directory: String
    private(set) var files: [String] = []

    init(directory: String) { self.directory = directory }

    func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// The `OutputManifest` of a report folder: the study, and the files the last rendering wrote
    /// (files it no longer writes, such as a panel of a run gone from the study, are removed; files
    /// the report never wrote are never touched).
    static let manifestName = ".report-files"

    mutating func csv(_ name: String, _ rows: [[String]]) throws {
        try StudyReport.writeCSV(rows, to: path(name)); files.append(name)
    }

    /// `<base>.svg` and `<base>.png`.
    mutating func chart(_ base: String, _ chart: Chart) throws { files += try chart.write(to: path(base)) }

    mutating func bars(_ base: String, _ chart: BarChart) throws { files += try chart.write(to: path(base)) }

    mutating func png(_ name: String, _ grid: ImageGrid) throws {
        try grid.writePNG(to: path(name)); files.append(name)
    }

    mutating func copy(_ source: String, as name: String) throws {
        try? FileManager.default.removeItem(atPath: path(name))
        try FileManager.default.copyItem(atPath: source, toPath: path(name))
        files.append(name)
    }
}

package enum ReportError: Error, CustomStringConvertible {
    case noRuns(String)
    package var description: String {
        switch self {
        case let .noRuns(s): return "no finished training runs of study '\(s)' in the store; run `spio run` first"
        }
    }
}
