import SPIOTraining

/// What one evaluation run measured, read back from the store: the NMAE mean and standard
/// deviation over its images, and for phantom and real-scan sets the bottle estimate.
package struct EvaluationSummary {
    package var nmaeMean = Double.nan, nmaeSD = Double.nan
    package var images = 0
    /// The bottle estimate: mean and standard deviation over the set's images.
    package var estimate: (mean: Double, sd: Double)?
    /// The true bottle concentration (mean over the set's images).
    package var truth: Double?
    /// The metrics beside NMAE (`ImageMetrics`), mean and sd over the images, by store key
    /// (`rmse`, `hfen`, `ssim`, `iron_error`); empty for evaluations made before they existed.
    package var quality: [MetricKey: (mean: Double, sd: Double)] = [:]
    /// Per image with SPIO: the mean true and estimated concentration over it (ug/mm^3); empty for
    /// evaluations made before they were stored.
    package var spioMeans: [(truth: Double, estimate: Double)] = []

    package init(store: RunStore, id: Int64) throws {
        let metrics = try store.metrics(id)
        func values(_ key: MetricKey) -> [Double] { metrics.filter { $0.key == key }.map(\.value) }
        nmaeMean = values(MetricKey.nmae.mean).first ?? .nan
        nmaeSD = values(MetricKey.nmae.sd).first ?? .nan
        images = values(.images).first.map { Int($0) } ?? 0
        let estimates = values(.phantomEstimate), truths = values(.phantomTruth)
        if !estimates.isEmpty { estimate = Evaluation.meanAndSD(estimates) }
        if !truths.isEmpty { truth = truths.reduce(0, +) / Double(truths.count) }
        let truthByImage = Dictionary(
            metrics.filter { $0.key == .spioTruth }.map { ($0.step, $0.value) }, uniquingKeysWith: { a, _ in a })
        spioMeans = metrics.filter { $0.key == .spioEstimate }.sorted { $0.step < $1.step }
            .compactMap { m in truthByImage[m.step].map { ($0, m.value) } }
        for k in MetricKey.quality {
            if let m = values(k.mean).first, let s = values(k.sd).first { quality[k] = (m, s) }
        }
    }

    /// One line for the terminal, e.g. "NMAE 0.6528 +- 0.2266 over 200 images".
    package var text: String {
        var parts: [String] = []
        if nmaeMean.isFinite {
            parts.append(String(format: "NMAE %.4f +- %.4f over %d images", nmaeMean, nmaeSD, images))
        }
        if let estimate {
            parts.append(String(format: "bottle estimate %.3f +- %.3f ug/mm^3", estimate.mean, estimate.sd))
        }
        return parts.isEmpty ? "\(images) images predicted" : parts.joined(separator: "; ")
    }
}
