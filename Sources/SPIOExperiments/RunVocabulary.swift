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

/// A name the store keys rows by (a metric's or a param's): its text is the stored key, and it
/// prints as that text.
package protocol StoredName: RawRepresentable, Hashable, Sendable, CustomStringConvertible where RawValue == String {}

extension StoredName {
    package var description: String { rawValue }
}

/// The name of a stored metric (`metrics.key`). Every metric the runner writes and the reports
/// and audits read is one of these constants, so renaming a metric is a compile error, not an
/// empty report column.
package struct MetricKey: StoredName, Comparable, Codable, DatabaseValueConvertible {
    package let rawValue: String
    package init(rawValue: String) { self.rawValue = rawValue }
    package static func < (a: MetricKey, b: MetricKey) -> Bool { a.rawValue < b.rawValue }

    // Training runs (step: Adam step or epoch).
    package static let trainLoss = MetricKey(rawValue: "train.loss")
    package static let epochTrainLoss = MetricKey(rawValue: "epoch.train_loss")
    package static let epochSeconds = MetricKey(rawValue: "epoch.seconds")
    package static let validationNMAE = MetricKey(rawValue: "validation.nmae")
    package static let validationNMAESD = MetricKey(rawValue: "validation.nmae_sd")
    package static let parameters = MetricKey(rawValue: "parameters")
    /// Each band's term of the paper's loss, mean over an epoch's batches (`epoch.band_loss.ll`, ...).
    package static func bandLoss(_ band: String) -> MetricKey { MetricKey(rawValue: "epoch.band_loss." + band) }
    /// The bands' names in the model's output order: the four db4 bands, or the image of an image head.
    package static func bandNames(count: Int) -> [String] { count == 4 ? ["ll", "lh", "hl", "hh"] : ["image"] }
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

/// The name of a stored param (`params.key`) that code writes or reads by name. The rest of a
/// run's params are its configuration flattened under the block's name (`model.head`,
/// `training.learningRate`, `simulation.noise.snrDB`), written in one place each by the runner.
package struct ParamKey: StoredName {
    package let rawValue: String
    package init(rawValue: String) { self.rawValue = rawValue }

    // Dataset runs.
    package static let dataSamples = ParamKey(rawValue: "data.samples")
    /// How many shard folders a sharded set was simulated into.
    package static let dataShards = ParamKey(rawValue: "data.shards")
    // Training runs.
    package static let studyDescription = ParamKey(rawValue: "study.description")
    /// `RunIdentity.training`'s lineage: a longer run continues from the shorter runs sharing it.
    package static let trainingLineage = ParamKey(rawValue: "training.lineage")
    /// The backend's name (`swift`, `torch`, `dipole-inversion`).
    package static let trainingBackend = ParamKey(rawValue: "training.backend")
    /// A grid value of the run's study (`grid.model.head`).
    package static func grid(_ key: String) -> ParamKey { ParamKey(rawValue: "grid." + key) }
    // Evaluation runs.
    package static let set = ParamKey(rawValue: "set")
    package static let samples = ParamKey(rawValue: "samples")
    package static let seed = ParamKey(rawValue: "seed")
    /// A file set's paths, one per line.
    package static let files = ParamKey(rawValue: "files")
    /// A set's free label (`label.snrDB`), as sweeps write them.
    package static func label(_ key: String) -> ParamKey { ParamKey(rawValue: "label." + key) }
}

extension Dictionary where Key == String, Value == String {
    /// A stored param by its vocabulary name.
    package subscript(key: ParamKey) -> String? {
        get { self[key.rawValue] }
        set { self[key.rawValue] = newValue }
    }
}
