import SPIOImageIO
import SPIOCoding
import Foundation
import SPIONetworks
import SPIOTensor

/// One finished epoch.
package struct EpochRecord: Codable, Equatable, Sendable {
    package var epoch: Int
    /// Adam steps taken so far (all epochs).
    package var step: Int
    /// Mean training loss over the epoch's batches (data term + L2 term).
    package var trainLoss: Double
    /// Validation NMAE in image space, mean and standard deviation over images (NaN without a validation set).
    package var validationNMAE: Double
    package var validationNMAESD: Double
    package var seconds: Double
    /// Loss of every batch, in order (the loss-vs-step curves).
    package var batchLosses: [Double]
    /// Each band's term of the paper's loss (LL, LH, HL, HH; one for an image head), mean over the
    /// epoch's batches that used it (none during an MSE warm-up: nil). Absent from older checkpoints.
    package var bandLosses: [Double]? = nil
}

/// Why training stopped early.
package enum TrainingError: Error, CustomStringConvertible {
    case nonFinite(epoch: Int, step: Int, what: String, lastGoodCheckpoint: String?)
    case interrupted(epoch: Int, step: Int, lastGoodCheckpoint: String?)
    case checkpointMismatch(directory: String, reason: String)
    case tooFewImages(images: Int, validation: Int)

    package var description: String {
        func keep(_ p: String?) -> String {
            p.map { "; the last good checkpoint is \($0)" } ?? "; no checkpoint was written yet"
        }
        switch self {
        case let .nonFinite(e, s, what, last):
            return
                "training stopped at epoch \(e), step \(s): \(what) is not finite (NaN or Inf)\(keep(last)). Lower "
                + "the learning rate or check the data."
        case let .interrupted(e, s, last):
            return "training interrupted at epoch \(e), step \(s)\(keep(last)); run again to resume"
        case let .checkpointMismatch(d, reason): return "\(d): \(reason)"
        case let .tooFewImages(n, held):
            return "\(n) training images with \(held) held out for validation leave fewer than 2 to train on; lower "
                + "training.validationFraction or simulate more images"
        }
    }
}

/// What the trainer reports while it runs.
package struct TrainingProgress: Sendable {
    package var epoch: Int, epochs: Int, batch: Int, batches: Int, step: Int
    package var loss: Double
    package var samplesPerSecond: Double
}

/// Trains a model with the paper's loss and Adam (networks.md): each epoch visits every training
/// image once in an order drawn from the stream (seed, epoch), batches of `batchSize`, then
/// measures the validation NMAE and writes a checkpoint. A run pointed at a checkpoint directory
/// that already holds epochs of the same configuration resumes after the last complete one and
/// ends with the same weights, bit for bit, as a run that was never interrupted.
package final class Trainer {
    package let model: EncoderDecoderNet
    package let optimizer: Adam
    package let config: TrainingConfig
    package let training: TrainingSet
    package let validation: TrainingSet?
    /// Where epochs are checkpointed (`epoch-NNNN/`); nil keeps everything in memory.
    package let checkpointDirectory: URL?
    package private(set) var history: [EpochRecord] = []
    /// Called after every batch.
    package var progress: ((TrainingProgress) -> Void)?
    /// Polled between batches; returning true stops with `TrainingError.interrupted`.
    package var shouldStop: () -> Bool = { false }
    /// Called with the history after each epoch's checkpoint is written (and once after a resume).
    package var epochFinished: (([EpochRecord]) throws -> Void)?
    /// Sees (epoch, batch, inputs) before each step; tests use it to inject faults.
    package var batchHook: ((Int, Int, Tensor) -> Void)?

    private let loss: BandAndImageLoss
    private let warmupLoss = MeanSquaredError()
    private let targets: Tensor
    private let batchInputs = Tensor(shape: [0]), batchTargets = Tensor(shape: [0])
    private let identity: String

    package init(
        model modelConfig: ModelConfig, training config: TrainingConfig, data: TrainingSet,
        validation: TrainingSet?, checkpointDirectory: URL?
    ) {
        if let p = config.problem ?? config.lossProblem(for: modelConfig) {
            preconditionFailure("invalid training configuration: \(p)")
        }
        precondition(
            data.imageSize == modelConfig.inputSize && data.inputs.shape[1] == modelConfig.inputChannels,
            "the data (\(data.inputs.shape)) does not fit the model (input \(modelConfig.inputChannels) x "
                + "\(modelConfig.inputSize)^2)"
        )
        self.config = config
        self.training = data
        self.validation = validation
        self.checkpointDirectory = checkpointDirectory
        loss = BandAndImageLoss(
            epsilon: config.lossEpsilon, bandWeights: config.bandWeights, imageWeight: config.imageTermWeight)
        model = EncoderDecoderNet(modelConfig, seed: config.seed)
        optimizer = Adam(
            parameters: model.parameters, learningRate: Float(config.learningRate), beta1: Float(config.beta1),
            beta2: Float(config.beta2), l2: Float(config.l2))
        let t = Tensor(shape: [0])
        let c = data.concentration
        let images = Tensor(shape: [c.shape[0], 1, c.shape[1], c.shape[2]])
        images.data.update(from: c.data, count: c.count)
        if modelConfig.predictsWaveletBands { DB4Wavelet.forward(images, into: t) } else { t.assign(images) }
        targets = t
        identity =
            Self.identityPrefix(model: modelConfig, training: config)
            + " data \(data.count)x\(data.imageSize) validation \(validation?.count ?? 0)"
    }

    /// What a checkpoint folder's `state.json` must name for a run to resume from it, before the
    /// data counts (" data NxS validation M", which the torch backend appends itself): the model and
    /// `TrainingConfig.checkpointCompatible` (neither the epoch count nor the backend).
    package static func identityPrefix(model: ModelConfig, training: TrainingConfig) -> String {
        "model \(model.json) training \(training.checkpointCompatible.json)"
    }

    /// Training then validation split of one set: the last `fraction` (at least one image when
    /// the fraction is positive) is held out.
    package static func split(_ set: TrainingSet, validationFraction: Double) throws -> (TrainingSet, TrainingSet?) {
        let held = heldOut(count: set.count, validationFraction: validationFraction)
        guard set.count - held >= 2 else { throw TrainingError.tooFewImages(images: set.count, validation: held) }
        return (set.subset(0..<(set.count - held)), held > 0 ? set.subset((set.count - held)..<set.count) : nil)
    }

    /// How many of `count` images the validation set holds: the last `validationFraction`, at
    /// least one unless the fraction is 0.
    package static func heldOut(count: Int, validationFraction: Double) -> Int {
        validationFraction > 0 ? max(1, Int((Double(count) * validationFraction).rounded())) : 0
    }

    /// Batches of one epoch: the shuffled order cut into `batchSize` pieces; a last piece of one
    /// image joins the one before (BatchNorm needs two).
    func batches(epoch: Int) -> [[Int]] {
        var order = Array(0..<training.count)
        var rng = SeededGenerator(seed: config.seed, stream: UInt64(epoch))
        for i in stride(from: order.count - 1, to: 0, by: -1) { order.swapAt(i, rng.int(in: 0...i)) }
        var out = stride(from: 0, to: order.count, by: config.batchSize).map {
            Array(order[$0..<min(order.count, $0 + config.batchSize)])
        }
        if out.count > 1 && out.last!.count == 1 { out[out.count - 2] += out.removeLast() }
        return out
    }

    /// Trains until `config.epochs` epochs are complete, resuming from the checkpoint directory.
    @discardableResult
    package func run() throws -> [EpochRecord] {
        var lastGood = try resume()
        if !history.isEmpty { try epochFinished?(history) }
        while history.count < config.epochs {
            let epoch = history.count + 1
            let start = Date()
            let plan = batches(epoch: epoch)
            var losses: [Double] = []
            var bandSums: [Double] = [], bandBatches = 0
            var seen = 0
            for (b, idx) in plan.enumerated() {
                if shouldStop() {
                    throw TrainingError.interrupted(epoch: epoch, step: optimizer.step, lastGoodCheckpoint: lastGood)
                }
                gather(training.inputs, idx, into: batchInputs)
                gather(targets, idx, into: batchTargets)
                batchHook?(epoch, b, batchInputs)
                let inWarmup = optimizer.step < config.mseWarmupSteps
                optimizer.learningRate = Float(config.learningRate(atStep: optimizer.step))
                let value = optimizer.takeStep(
                    model, batchInputs, batchTargets,
                    loss: inWarmup ? warmupLoss.callAsFunction : loss.callAsFunction)
                guard value.isFinite else {
                    throw TrainingError.nonFinite(
                        epoch: epoch, step: optimizer.step + 1, what: "the loss", lastGoodCheckpoint: lastGood)
                }
                let total = value + NormalisedL1Loss.weightPenalty(optimizer.parameters, lambda: config.l2)
                guard total.isFinite else {
                    throw TrainingError.nonFinite(
                        epoch: epoch, step: optimizer.step, what: "a weight after the update",
                        lastGoodCheckpoint: lastGood)
                }
                losses.append(total)
                if !inWarmup {
                    let bands = loss.bands.lastBandLosses
                    if bandSums.isEmpty { bandSums = [Double](repeating: 0, count: bands.count) }
                    for (b, v) in bands.enumerated() { bandSums[b] += v }
                    bandBatches += 1
                }
                seen += idx.count
                progress?(
                    TrainingProgress(
                        epoch: epoch, epochs: config.epochs, batch: b + 1, batches: plan.count, step: optimizer.step,
                        loss: total, samplesPerSecond: Double(seen) / max(Date().timeIntervalSince(start), 1e-9)))
            }
            var (mean, sd) = (Double.nan, Double.nan)
            if let validation {
                let maps = try Evaluation.predict(model, inputs: validation.inputs, batchSize: config.batchSize)
                (mean, sd) = Evaluation.meanAndSD(
                    Evaluation.nmae(prediction: maps, truth: validation.concentration).compactMap { $0 })
                guard mean.isFinite || validation.concentration.array.allSatisfy({ $0 == 0 }) else {
                    throw TrainingError.nonFinite(
                        epoch: epoch, step: optimizer.step, what: "the validation NMAE", lastGoodCheckpoint: lastGood)
                }
            }
            history.append(
                EpochRecord(
                    epoch: epoch, step: optimizer.step, trainLoss: losses.reduce(0, +) / Double(losses.count),
                    validationNMAE: mean, validationNMAESD: sd, seconds: Date().timeIntervalSince(start),
                    batchLosses: losses,
                    bandLosses: bandBatches > 0 ? bandSums.map { $0 / Double(bandBatches) } : nil))
            lastGood = try saveCheckpoint() ?? lastGood
            try epochFinished?(history)
        }
        return history
    }

    // MARK: checkpoints

    /// What `state.json` in an epoch folder holds.
    struct State: Codable { var identity: String; var history: [EpochRecord] }

    /// A training run's checkpoint directory inside its run folder.
    package static func checkpointDirectory(ofRun directory: String) -> URL {
        URL(fileURLWithPath: directory).appendingPathComponent("checkpoints")
    }

    /// The newest complete epoch folder (`epoch-NNNN/` with its `state.json`) under `directory`.
    package static func latestCheckpoint(in directory: URL) -> EpochCheckpoint? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let complete = names.filter {
            $0.hasPrefix("epoch-") && !PartialPath.isPartial($0)
                && FileManager.default.fileExists(
                    atPath: directory.appendingPathComponent($0).appendingPathComponent("state.json").path)
        }
        guard let name = complete.sorted().last, let epoch = Int(name.dropFirst("epoch-".count)) else { return nil }
        return EpochCheckpoint(folder: directory.appendingPathComponent(name), epoch: epoch)
    }

    /// Continues a shorter run: copies its epoch folder into `directory`, which has none yet, so
    /// the next `run()` resumes from it (the epoch count is not part of a checkpoint's identity).
    /// The shorter run's own files stay as they were.
    package static func seed(_ directory: URL, from checkpoint: EpochCheckpoint) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            at: checkpoint.folder, to: directory.appendingPathComponent(checkpoint.folder.lastPathComponent))
    }

    /// Loads the newest complete epoch, if there is one, and returns its folder.
    private func resume() throws -> String? {
        guard let dir = checkpointDirectory, let latest = Self.latestCheckpoint(in: dir)?.folder else { return nil }
        let state = try decodeCanonicalJSON(
            State.self, from: Data(contentsOf: latest.appendingPathComponent("state.json")))
        guard state.identity == identity else {
            throw TrainingError.checkpointMismatch(
                directory: dir.path,
                reason:
                    "holds checkpoints of another configuration (\(state.identity)); expected \(identity). Use "
                    + "another directory or delete it."
            )
        }
        try Checkpoint.load(model, from: latest.appendingPathComponent("model.safetensors"), optimizer: optimizer)
        history = state.history
        return latest.path
    }

    /// Writes `epoch-NNNN/` through a temporary folder renamed into place (a crash leaves either
    /// the old set of epochs or the new one), then keeps only the two newest epochs.
    private func saveCheckpoint() throws -> String? {
        guard let dir = checkpointDirectory else { return nil }
        let fm = FileManager.default
        try fm.createDirectory(at: dir, withIntermediateDirectories: true)
        let name = String(format: "epoch-%04d", history.count)
        let final = dir.appendingPathComponent(name)
        try PartialPath.write(final.path) { path in
            let partial = URL(fileURLWithPath: path)
            try fm.createDirectory(at: partial, withIntermediateDirectories: true)
            try Checkpoint.save(
                model, config: model.config.json, optimizer: optimizer,
                to: partial.appendingPathComponent("model.safetensors"),
                extraMetadata: ["epoch": String(history.count), "training": config.json])
            // Without a validation set the epoch's validation NMAE is NaN (canonical JSON writes "nan").
            try Data(canonicalJSON(State(identity: identity, history: history)).utf8).write(
                to: partial.appendingPathComponent("state.json"))
        }
        let epochs = ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? []).filter {
            $0.hasPrefix("epoch-") && !PartialPath.isPartial($0)
        }.sorted()
        for old in epochs.dropLast(2) { try? fm.removeItem(at: dir.appendingPathComponent(old)) }
        return final.path
    }
}

/// A complete epoch of a checkpoint directory, as `Trainer` writes it.
package struct EpochCheckpoint: Sendable {
    /// The `epoch-NNNN/` folder: `model.safetensors` (weights and Adam state) and `state.json`.
    package let folder: URL
    package let epoch: Int
    /// Which run wrote it, for messages ("train run 3"); empty when unknown.
    package var owner = ""
}
