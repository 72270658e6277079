import SPIOCoding
import Foundation
import SPIOConfig
import SPIONetworks
import SPIOPhysics
import SPIOTraining

/// One test set of the `evaluation` block: simulated from the run's `simulation` block with
/// `simulation` overrides on top (another anatomy, noise level, scene), or read from files (real
/// scans). `evaluation.sweeps` in a study expands into sets like these.
package struct TestSetConfig: Codable, Equatable, Sendable {
    package var name = "test"
    package var samples = 200
    /// Seed of the set's simulation: its sample i is the generator stream (seed, i), as training
    /// sample i is (simulation.seed, i). Unwritten, it is 1001 + the set's place in the list; the
    /// points of a sweep that writes one seed draw seed + k (k = 0, 1, ... in expansion order)
    /// unless the sweep is `paired`. It is also the set's `simulation.seed`, which a set never
    /// inherits from the training data; `StudyPlan` refuses sets that would share streams.
    package var seed: UInt64 = 1001
    /// A sweep whose points all draw the same streams (one seed for every point): a paired design,
    /// e.g. the same noise draws at every concentration. Said explicitly, never a default.
    package var paired = false
    /// Whether the file wrote `seed` (`EvaluationConfig` gives unwritten ones by place).
    var seedWritten = false
    /// The effective simulation of this set: the run's simulation with this set's overrides merged
    /// in (filled in by `StudyPlan`; in a file, write only the keys that differ). For file sets
    /// it gives the pixel size (fovMM / imageSize) and the bottle's place (scene.bottleCentreMM,
    /// scene.bottleRadiusMM) for the phantom estimate.
    package var simulation = SimulationConfig()
    /// For bottle phantoms: also report the mean prediction in the disk of half the bottle radius.
    package var phantomRegion = false
    /// Real scans instead of simulated images: NPY (2 x H x W or N x 2 x H x W), NIfTI (nz = 2) or
    /// PNG (red, green = the two channels), H = W = the model's input size. Paths relative to the
    /// working directory.
    package var files: [String] = []
    /// The known concentration of the scanned bottle (file sets; the phantom table's "true").
    package var truthUgPerMM3: Double?
    /// Free labels shown in the report's tables and used as plot axes (sweeps set them).
    package var labels: [String: String] = [:]
    /// The sweep this set was expanded from, if any.
    package var sweep = ""
    package var interpretability: InterpretabilityConfig?
    /// The set is the training data's own first `samples` images (the training simulation, seed and
    /// noise), said explicitly: the training-set NMAE to set beside held-out ones, never a test
    /// figure. Nil unless written, so the keys of every other set stay what they were.
    package var trainingImages: Bool?
    /// Whether this set is training images (`trainingImages: true`).
    package var isTrainingImages: Bool { trainingImages == true }

    package init() { simulation.seed = seed }
    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, samples, seed, paired, simulation, phantomRegion, files, truthUgPerMM3, labels, sweep
        case interpretability, trainingImages
    }
    package init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&name, .name); try c.update(&samples, .samples); try c.update(&seed, .seed)
        seedWritten = c.contains(.seed); try c.update(&paired, .paired)
        try c.update(&simulation, .simulation); try c.update(&phantomRegion, .phantomRegion)
        try c.update(&files, .files); truthUgPerMM3 = try c.decodeIfPresent(Double.self, forKey: .truthUgPerMM3)
        try c.update(&labels, .labels); try c.update(&sweep, .sweep)
        interpretability = try c.decodeIfPresent(InterpretabilityConfig.self, forKey: .interpretability)
        if try c.decodeIfPresent(Bool.self, forKey: .trainingImages) == true { trainingImages = true }
        // (A written seed is refused by `StudyPlan`: a stored set writes every key, its seed too.)
        if isTrainingImages && (!files.isEmpty || !sweep.isEmpty) {
            throw DecodingError.dataCorruptedError(
                forKey: .trainingImages, in: c,
                debugDescription: "a trainingImages set is simulated training images; it takes no files or sweep")
        }
        guard samples > 0 && samples <= 1_000_000 else {
            throw DecodingError.dataCorruptedError(
                forKey: .samples, in: c, debugDescription: "must be 1 to 1000000, got \(samples)")
        }
        if paired && sweep.isEmpty {
            throw DecodingError.dataCorruptedError(
                forKey: .paired, in: c,
                debugDescription: "paired is a sweep's: its points draw the same streams; a single set has no points")
        }
        if truthUgPerMM3 != nil && files.isEmpty {
            throw DecodingError.dataCorruptedError(
                forKey: .truthUgPerMM3, in: c,
                debugDescription: "only file sets take truthUgPerMM3; simulated sets know their truth")
        }
    }

    /// A file name for this set's figures: letters, digits, '-', '.' and '_' only.
    package var slug: String { StudyReport.slug(name) }
}

/// Attention and saliency maps of a test set's first images (paper section 5.2).
package struct InterpretabilityConfig: Codable, Equatable, Sendable {
    /// How many images of the set (the first ones).
    package var images = 1
    /// Layers for Grad-CAM (dotted names from `spio model summary`, e.g. bottleneck.3).
    package var gradCAM: [String] = []
    /// The output channel Grad-CAM and saliency differentiate (a wavelet band for DeepSPIO: 0 = LL).
    package var band = 0
    /// Guided-backpropagation saliency with respect to the input.
    package var saliency = true
    /// A layer whose feature maps (activations) are drawn for the first image.
    package var features: String?
    package var featureCount = 8

    package init() {}
    enum CodingKeys: String, CodingKey, CaseIterable { case images, gradCAM, band, saliency, features, featureCount }
    package init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&images, .images); try c.update(&gradCAM, .gradCAM); try c.update(&band, .band)
        try c.update(&saliency, .saliency); features = try c.decodeIfPresent(String.self, forKey: .features)
        try c.update(&featureCount, .featureCount)
        guard images > 0, featureCount > 0, band >= 0 else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "images and featureCount must be positive, band not negative"))
        }
    }
}

/// The `evaluation` block: test sets measured after training.
package struct EvaluationConfig: Codable, Equatable, Sendable {
    package var sets: [TestSetConfig] = [TestSetConfig()]
    package init() {}
    enum CodingKeys: String, CodingKey, CaseIterable { case sets }
    package init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&sets, .sets)
        let names = sets.map(\.name)
        guard Set(names).count == names.count else {
            throw DecodingError.dataCorruptedError(
                forKey: .sets, in: c, debugDescription: "test set names must be unique, got \(names)")
        }
        Self.resolveSeeds(&sets)
    }

    /// Gives every set its seed (`TestSetConfig.seed`) and makes it the set's simulation seed.
    static func resolveSeeds(_ sets: inout [TestSetConfig]) {
        var sweeps: [String: [Int]] = [:]
        for (i, s) in sets.enumerated() where !s.sweep.isEmpty { sweeps[s.sweep, default: []].append(i) }
        var seeds = sets.indices.map { sets[$0].seedWritten ? sets[$0].seed : 1001 + UInt64($0) }
        for points in sweeps.values {
            // A sweep over `seed` itself keeps each point's seed as written.
            let written = Set(points.map { sets[$0].seedWritten ? sets[$0].seed : nil })
            guard written.count == 1 else { continue }
            let base = seeds[points[0]]
            for (k, i) in points.enumerated() { seeds[i] = sets[i].paired ? base : base &+ UInt64(k) }
        }
        for i in sets.indices { sets[i].seed = seeds[i]; sets[i].simulation.seed = seeds[i] }
    }
}

/// The `data` block: how many training images to simulate (the last `validationFraction` of
/// them are the validation set).
package struct DataConfig: Codable, Equatable, Sendable {
    package var samples = 2000
    /// Simulate and store the set as shards of at most this many samples (`DatasetShards`): a
    /// paper-scale set never has to fit in memory, and a stopped simulation keeps its finished
    /// shards. The samples are the same either way, so it is not part of the dataset's hash.
    package var shardSamples: Int?
    /// The training set's noise: each sample's SNR drawn uniformly from [lowest, highest] dB, in
    /// place of `simulation.noise` (which the test sets keep), so a model can train with noise at
    /// the levels the studies test it with. nil: the training set has `simulation.noise`.
    package var snrRangeDB: [Double]?
    /// PNG previews of the first images written into each dataset folder the run simulates
    /// (`preview-NNN.png`, drawn by gnuplot). Off unless asked for, so simulating needs no gnuplot
    /// (a compute node without it); `spio simulate --previews` draws them for a folder of its own.
    package var previews: Int?
    package init() {}
    enum CodingKeys: String, CodingKey, CaseIterable { case samples, shardSamples, snrRangeDB, previews }
    package init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&samples, .samples)
        guard samples >= 4 && samples <= 10_000_000 else {
            throw DecodingError.dataCorruptedError(
                forKey: .samples, in: c, debugDescription: "must be 4 to 10000000, got \(samples)")
        }
        shardSamples = try c.decodeIfPresent(Int.self, forKey: .shardSamples)
        if let s = shardSamples, s < 2 {
            throw DecodingError.dataCorruptedError(
                forKey: .shardSamples, in: c, debugDescription: "must be 2 or more, got \(s)")
        }
        if let r = try c.decodeIfPresent([Double].self, forKey: .snrRangeDB) {
            if let problem = NoiseConfig.rangeProblem(r) {
                throw DecodingError.dataCorruptedError(forKey: .snrRangeDB, in: c, debugDescription: problem)
            }
            snrRangeDB = r
        }
        previews = try c.decodeIfPresent(Int.self, forKey: .previews)
        if let p = previews, p < 0 || p > 16 {
            throw DecodingError.dataCorruptedError(
                forKey: .previews, in: c, debugDescription: "must be 0 to 16, got \(p)")
        }
    }

    /// How many shards the training set is written as (1: one folder, no shards).
    package var shardCount: Int { shardSamples.map { max(1, (samples + $0 - 1) / $0) } ?? 1 }
}

/// Everything that determines one run: the effective configuration after presets, grid values
/// and overrides. Its canonical JSON is what the run store hashes.
package struct RunConfig: Codable, Equatable, Sendable {
    package var simulation = SimulationConfig()
    package var data = DataConfig()
    package var model = ModelConfig()
    package var training = TrainingConfig()
    package var evaluation = EvaluationConfig()

    package init() {}
    package static let blocks: Set<String> = ["simulation", "data", "model", "training", "evaluation"]
    enum CodingKeys: String, CodingKey, CaseIterable { case simulation, data, model, training, evaluation }
    package init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&simulation, .simulation); try c.update(&data, .data); try c.update(&model, .model)
        try c.update(&training, .training); try c.update(&evaluation, .evaluation)
        for i in evaluation.sets.indices where evaluation.sets[i].isTrainingImages {
            evaluation.sets[i].seed = simulation.seed
            evaluation.sets[i].simulation = trainingSimulation
        }
    }

    /// The training set's simulation: `simulation`, with `data.snrRangeDB` as its noise when set.
    package var trainingSimulation: SimulationConfig {
        guard let range = data.snrRangeDB else { return simulation }
        var s = simulation
        s.noise = NoiseConfig()
        s.noise.snrRangeDB = range
        return s
    }

    /// Canonical JSON: sorted keys, every field written (defaults included), so equal
    /// configurations hash equally whatever the key order or spelling of the files.
    package var canonicalJSON: String { SPIOCoding.canonicalJSON(self) }
}

extension RunConfig {
    /// Replaces each `file` anatomy whose path is missing by its fallback (the training set's and
    /// every test set's) and says, per distinct file, which anatomy the runs use: a line for the
    /// report.
    mutating func resolveAnatomyFiles() -> [String] {
        var notes: [String] = []
        func resolve(_ sim: inout SimulationConfig, _ what: String) {
            let a = sim.anatomy
            guard a.kind == "file", let path = a.path else { return }
            let slices =
                a.slab.map { "slab [\($0[0]), \($0[1])) of the third axis" } ?? "the central \(a.sliceFraction)"
            if a.resolved.kind != "file" {
                notes.append(
                    "Anatomy of \(what): **\(a.resolved.kind)**, the fallback: `\(path)` is not on the machine that "
                        + "planned these runs.")
                sim.anatomy = a.resolved
            } else {
                notes.append("Anatomy of \(what): slices of the real volume `\(path)` (\(slices)).")
            }
        }
        resolve(&simulation, "the training images")
        for i in evaluation.sets.indices where evaluation.sets[i].files.isEmpty {
            resolve(&evaluation.sets[i].simulation, "test set '\(evaluation.sets[i].name)'")
        }
        return notes
    }
}
