import GRDB

/// What a run of the store computed. Stored as its raw text in `runs.kind`.
package enum RunKind: String, Codable, CaseIterable, Sendable, DatabaseValueConvertible {
    /// A simulated dataset (training or test images).
    case dataset
    /// A trained model.
    case train
    /// A trained model measured on one test set.
    case evaluate
}

/// Where a run stands. Stored as its raw text in `runs.status`.
package enum RunStatus: String, Codable, CaseIterable, Sendable, DatabaseValueConvertible {
    case running, finished, failed, interrupted
}

/// The name of a stored metric (`metrics.key`). Every metric the runner writes and the reports
/// and audits read is one of these constants, so renaming a metric is a compile error, not an
/// empty report column.
package struct MetricKey: RawRepresentable, Hashable, Comparable, Sendable, Codable, CustomStringConvertible,
    DatabaseValueConvertible
{
    package let rawValue: String
    package init(rawValue: String) { self.rawValue = rawValue }
    package var description: String { rawValue }
    package static func < (a: MetricKey, b: MetricKey) -> Bool { a.rawValue < b.rawValue }

    // Training runs (step: Adam step or epoch).
    package static let trainLoss = MetricKey(rawValue: "train.loss")
    package static let epochTrainLoss = MetricKey(rawValue: "epoch.train_loss")
    package static let epochSeconds = MetricKey(rawValue: "epoch.seconds")
    package static let validationNMAE = MetricKey(rawValue: "validation.nmae")
    package static let validationNMAESD = MetricKey(rawValue: "validation.nmae_sd")
    package static let parameters = MetricKey(rawValue: "parameters")
    // Evaluation runs (step: image index, or 0 for summaries).
    package static let nmae = MetricKey(rawValue: "nmae")
    package static let images = MetricKey(rawValue: "images")
    package static let rmse = MetricKey(rawValue: "rmse")
    package static let hfen = MetricKey(rawValue: "hfen")
    package static let ssim = MetricKey(rawValue: "ssim")
    package static let ironError = MetricKey(rawValue: "iron_error")
    /// Per image: the mean true and estimated concentration over the SPIO (truth > 0), ug/mm^3.
    package static let spioTruth = MetricKey(rawValue: "spio.true_mean")
    package static let spioEstimate = MetricKey(rawValue: "spio.estimated_mean")
    package static let phantomEstimate = MetricKey(rawValue: "phantom.estimate")
    package static let phantomTruth = MetricKey(rawValue: "phantom.truth")
    // Dataset runs.
    package static let samplesPerSecond = MetricKey(rawValue: "samples_per_second")

    /// The mean over a set's images of a per-image metric (`nmae.mean`).
    package var mean: MetricKey { MetricKey(rawValue: rawValue + ".mean") }
    /// Their sample standard deviation (`nmae.sd`).
    package var sd: MetricKey { MetricKey(rawValue: rawValue + ".sd") }

    /// The per-image metrics beside NMAE, in report order.
    package static let quality: [MetricKey] = [.rmse, .hfen, .ssim, .ironError]

    /// Whether the metric measures time, not results (audits skip it).
    package var isTiming: Bool { rawValue.hasSuffix("seconds") || rawValue.hasSuffix("per_second") }
}
