import GRDB

/// What a run of the store computed. Stored as its raw text in `runs.kind`.
public enum RunKind: String, Codable, CaseIterable, Sendable, DatabaseValueConvertible {
    /// A simulated dataset (training or test images).
    case dataset
    /// A trained model.
    case train
    /// A trained model measured on one test set.
    case evaluate
}

/// Where a run stands. Stored as its raw text in `runs.status`.
public enum RunStatus: String, Codable, CaseIterable, Sendable, DatabaseValueConvertible {
    case running, finished, failed, interrupted
}

/// The name of a stored metric (`metrics.key`). Every metric the runner writes and the reports
/// and audits read is one of these constants, so renaming a metric is a compile error, not an
/// empty report column.
public struct MetricKey: RawRepresentable, Hashable, Comparable, Sendable, Codable, CustomStringConvertible,
                         DatabaseValueConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
    public static func < (a: MetricKey, b: MetricKey) -> Bool { a.rawValue < b.rawValue }

    // Training runs (step: Adam step or epoch).
    public static let trainLoss = MetricKey(rawValue: "train.loss")
    public static let epochTrainLoss = MetricKey(rawValue: "epoch.train_loss")
    public static let epochSeconds = MetricKey(rawValue: "epoch.seconds")
    public static let validationNMAE = MetricKey(rawValue: "validation.nmae")
    public static let validationNMAESD = MetricKey(rawValue: "validation.nmae_sd")
    public static let parameters = MetricKey(rawValue: "parameters")
    // Evaluation runs (step: image index, or 0 for summaries).
    public static let nmae = MetricKey(rawValue: "nmae")
    public static let images = MetricKey(rawValue: "images")
    public static let rmse = MetricKey(rawValue: "rmse")
    public static let hfen = MetricKey(rawValue: "hfen")
    public static let ssim = MetricKey(rawValue: "ssim")
    public static let ironError = MetricKey(rawValue: "iron_error")
    public static let phantomEstimate = MetricKey(rawValue: "phantom.estimate")
    public static let phantomTruth = MetricKey(rawValue: "phantom.truth")
    // Dataset runs.
    public static let samplesPerSecond = MetricKey(rawValue: "samples_per_second")

    /// The mean over a set's images of a per-image metric (`nmae.mean`).
    public var mean: MetricKey { MetricKey(rawValue: rawValue + ".mean") }
    /// Their sample standard deviation (`nmae.sd`).
    public var sd: MetricKey { MetricKey(rawValue: rawValue + ".sd") }

    /// The per-image metrics beside NMAE, in report order.
    public static let quality: [MetricKey] = [.rmse, .hfen, .ssim, .ironError]

    /// Whether the metric measures time, not results (audits skip it).
    public var isTiming: Bool { rawValue.hasSuffix("seconds") || rawValue.hasSuffix("per_second") }
}
