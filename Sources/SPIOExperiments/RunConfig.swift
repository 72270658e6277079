import Foundation
import SPIOConfig
import SPIONetworks
import SPIOPhysics
import SPIOTraining

/// One test set of the `evaluation` block: simulated from the run's `simulation` block with
/// `simulation` overrides on top (another anatomy, noise level, scene), or read from files.
public struct TestSetConfig: Codable, Equatable, Sendable {
    public var name = "test"
    public var samples = 200
    /// Seed of the test set's simulation (different from the training seed by default).
    public var seed: UInt64 = 1001
    /// The effective simulation of this set: the run's simulation with this set's overrides merged
    /// in (filled in by `StudyPlan`; in a file, write only the keys that differ).
    public var simulation = SimulationConfig()
    /// For bottle phantoms: also report the mean prediction in the disk of half the bottle radius.
    public var phantomRegion = false

    public init() {}
    enum CodingKeys: String, CodingKey, CaseIterable { case name, samples, seed, simulation, phantomRegion }
    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&name, .name); try c.update(&samples, .samples); try c.update(&seed, .seed)
        try c.update(&simulation, .simulation); try c.update(&phantomRegion, .phantomRegion)
        guard samples > 0 else { throw DecodingError.dataCorruptedError(forKey: .samples, in: c, debugDescription: "must be positive, got \(samples)") }
    }
}

/// The `evaluation` block: test sets measured after training.
public struct EvaluationConfig: Codable, Equatable, Sendable {
    public var sets: [TestSetConfig] = [TestSetConfig()]
    public init() {}
    enum CodingKeys: String, CodingKey, CaseIterable { case sets }
    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&sets, .sets)
        let names = sets.map(\.name)
        guard Set(names).count == names.count else {
            throw DecodingError.dataCorruptedError(forKey: .sets, in: c, debugDescription: "test set names must be unique, got \(names)")
        }
    }
}

/// The `data` block: how many training images to simulate (the last `validationFraction` of
/// them are the validation set).
public struct DataConfig: Codable, Equatable, Sendable {
    public var samples = 2000
    public init() {}
    enum CodingKeys: String, CodingKey, CaseIterable { case samples }
    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&samples, .samples)
        guard samples >= 4 else { throw DecodingError.dataCorruptedError(forKey: .samples, in: c, debugDescription: "must be at least 4, got \(samples)") }
    }
}

/// Everything that determines one run: the effective configuration after presets, grid values
/// and overrides. Its canonical JSON is what the run store hashes.
public struct RunConfig: Codable, Equatable, Sendable {
    public var simulation = SimulationConfig()
    public var data = DataConfig()
    public var model = ModelConfig()
    public var training = TrainingConfig()
    public var evaluation = EvaluationConfig()

    public init() {}
    public static let blocks: Set<String> = ["simulation", "data", "model", "training", "evaluation"]
    enum CodingKeys: String, CodingKey, CaseIterable { case simulation, data, model, training, evaluation }
    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&simulation, .simulation); try c.update(&data, .data); try c.update(&model, .model)
        try c.update(&training, .training); try c.update(&evaluation, .evaluation)
    }

    /// Canonical JSON: sorted keys, every field written (defaults included), so equal
    /// configurations hash equally whatever the key order or spelling of the files.
    public var canonicalJSON: String { SPIOConfig.canonicalJSON(self) }
}
