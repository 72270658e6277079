import Foundation
import SPIOConfig

/// The `training` block of an experiment (networks.md, paper section 4.4). Unknown keys are errors.
public struct TrainingConfig: Codable, Equatable, Sendable {
    /// Passes over the training set.
    public var epochs = 10
    /// Mini-batch size (the paper's 32).
    public var batchSize = 32
    /// Adam's step size. The paper's 1e-5 is for 4 million images; our short CPU runs use more.
    public var learningRate = 1e-3
    public var beta1 = 0.9
    public var beta2 = 0.999
    /// lambda of the loss term lambda ||theta||^2 (the paper does not give it).
    public var l2 = 1e-6
    /// Seeds the initial weights and each epoch's shuffle (stream = epoch).
    public var seed: UInt64 = 1
    /// The last fraction of the dataset is held out for the per-epoch validation NMAE.
    public var validationFraction = 0.1

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable { case epochs, batchSize, learningRate, beta1, beta2, l2, seed, validationFraction }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&epochs, .epochs); try c.update(&batchSize, .batchSize)
        try c.update(&learningRate, .learningRate); try c.update(&beta1, .beta1); try c.update(&beta2, .beta2)
        try c.update(&l2, .l2); try c.update(&seed, .seed); try c.update(&validationFraction, .validationFraction)
        if let problem {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: problem))
        }
    }

    /// The first out-of-range value, in words, or nil.
    public var problem: String? {
        if epochs < 1 || epochs > 100_000 { return "epochs must be 1 to 100000, got \(epochs)" }
        if batchSize < 2 || batchSize > 4096 { return "batchSize must be 2 to 4096 (BatchNorm needs batch statistics), got \(batchSize)" }
        if !(learningRate > 0 && learningRate <= 10) { return "learningRate must lie in (0, 10], got \(learningRate)" }
        if !(0..<1).contains(beta1) || !(0..<1).contains(beta2) { return "beta1 and beta2 must lie in [0, 1)" }
        if !(l2 >= 0 && l2 <= 1) { return "l2 must lie in [0, 1], got \(l2)" }
        if !(validationFraction >= 0 && validationFraction < 1) { return "validationFraction must lie in [0, 1), got \(validationFraction)" }
        return nil
    }

    /// Canonical JSON (sorted keys).
    public var json: String { canonicalJSON(self) }
}
