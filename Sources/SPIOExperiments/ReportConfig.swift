import SPIOCoding
import SPIOConfig

/// A study's `report` block: what its report shows beyond the default tables and plots. Stored
/// with the study in the run store, so `spio report` needs nothing but the store.
package struct ReportConfig: Codable, Equatable, Sendable {
    /// The paper's figure for a test set (by set name) or a run (by variant name), shown in a
    /// "paper" column beside ours.
    package var paper: [String: String] = [:]
    /// Line plots of sweep results.
    package var plots: [SweepPlotConfig] = []
    /// A training "converged" when its last validation NMAE is below this (the all-zero
    /// prediction scores 1.0).
    package var convergedBelow = 0.9
    /// Markdown shown under the study's description (setup choices, the paper's figures).
    package var notes = ""
    /// Show each cell's training wall time in the convergence table. Off by default: times differ
    /// from run to run, and a report with them is not the same byte for byte when re-run.
    package var wallTime = false
    /// The scaling section: error against optimizer steps per series, fitted, with targets.
    package var scaling: ScalingReportConfig?

    package init() {}
    enum CodingKeys: String, CodingKey, CaseIterable { case paper, plots, convergedBelow, notes, wallTime, scaling }
    package init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&paper, .paper); try c.update(&plots, .plots)
        try c.update(&convergedBelow, .convergedBelow); try c.update(&notes, .notes)
        try c.update(&wallTime, .wallTime)
        scaling = try c.decodeIfPresent(ScalingReportConfig.self, forKey: .scaling)
    }
}

/// `report.scaling`: a study whose grid runs `training.epochs` gets a section of NMAE against Adam
/// steps per series (the runs equal but for their epochs), the law NMAE = a + b S^-c fitted to each
/// with a bootstrap band, and the steps each target would take.
package struct ScalingReportConfig: Codable, Equatable, Sendable {
    /// NMAE levels whose steps (and hours) the fits are asked for.
    package var targets = [0.30, 0.17]
    /// Gaussian sigmas (pixels) of the blurred-truth calibration drawn beside the curves.
    package var blurSigmaPixels = [2.0, 3.0, 8.0]

    package init() {}
    enum CodingKeys: String, CodingKey, CaseIterable { case targets, blurSigmaPixels }
    package init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&targets, .targets); try c.update(&blurSigmaPixels, .blurSigmaPixels)
        guard targets.allSatisfy({ $0 > 0 }), blurSigmaPixels.allSatisfy({ $0 >= 0 && $0 <= 64 }) else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "targets must be positive and blurSigmaPixels 0 to 64 pixels"))
        }
    }
}

/// One plot of sweep results: NMAE (or the phantom estimate) against the label `x`, one line per
/// value of the label `series` (and per sweep when several are listed).
package struct SweepPlotConfig: Codable, Equatable, Sendable {
    /// The sweeps whose test sets are plotted (all when empty).
    package var sweeps: [String] = []
    package var x = ""
    package var series: String?
    /// `nmae` (mean +- sd over the set's images) or `estimate` (phantom estimate against truth).
    package var metric = "nmae"
    package var file = "sweep.png"
    package var title = ""
    package var xLabel: String?
    package var logY = false
    /// A log x axis; also chosen by itself where the x values span more than a factor of 100.
    package var logX = false

    package init() {}
    enum CodingKeys: String, CodingKey, CaseIterable {
        case sweeps, x, series, metric, file, title, xLabel, logY, logX
    }
    package init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&sweeps, .sweeps); try c.update(&x, .x);
        series = try c.decodeIfPresent(String.self, forKey: .series)
        try c.update(&metric, .metric, among: ["nmae", "estimate"]); try c.update(&file, .file);
        try c.update(&title, .title)
        xLabel = try c.decodeIfPresent(String.self, forKey: .xLabel); try c.update(&logY, .logY)
        try c.update(&logX, .logX)
        guard !x.isEmpty else {
            throw DecodingError.dataCorruptedError(
                forKey: .x, in: c, debugDescription: "a plot needs x, the label on the horizontal axis")
        }
        guard file.hasSuffix(".png"), !file.contains("/") else {
            throw DecodingError.dataCorruptedError(
                forKey: .file, in: c, debugDescription: "expected a file name ending in .png, got '\(file)'")
        }
    }
}
