import Foundation
import SPIONetworks
import SPIOTraining

/// One model to train: what a `TrainingBackend` gets from the runner.
public struct TrainingJob {
    /// The run's name, for progress lines.
    public var name: String
    public var model: ModelConfig
    public var training: TrainingConfig
    /// The dataset folder (`images.npy`, `concentration.npy`) to train on; the last
    /// `training.validationFraction` of it validates.
    public var dataset: String
    /// The run's folder: `checkpoints/epoch-NNNN/` while training (a backend resumes from the
    /// newest one it finds), `model.safetensors` at the end.
    public var directory: String
}

/// What a finished training left: the final model file and its parameter count.
public struct TrainingResult {
    public var modelPath: String
    public var parameters: Int
}

/// The runner's side of a training: where lines, progress and finished epochs go, and when to stop.
public struct TrainingCallbacks {
    public var log: (String) -> Void
    /// A progress line and the fraction done.
    public var progress: (String, Double) -> Void
    /// Polled between batches; true stops the training with `TrainingError.interrupted`.
    public var shouldStop: () -> Bool
    /// Called with the whole history after each epoch's checkpoint (and once after a resume).
    public var epochFinished: ([EpochRecord]) throws -> Void
}

/// The seam between the runner, which records, and the code that trains (docs/architecture.md).
/// The runner hands a backend one `TrainingJob` at a time and stores what it reports; a backend
/// must write resumable checkpoints under `job.directory/checkpoints/` and the final model as
/// `model.safetensors` in the engine's format, so evaluations, `spio predict` and audits work
/// on it unchanged.
public protocol TrainingBackend {
    /// Recorded with every run it trains (`training.backend`).
    var name: String { get }
    func train(_ job: TrainingJob, _ callbacks: TrainingCallbacks) throws -> TrainingResult
}

/// This project's CPU engine (SPIONetworks, SPIOTraining's `Trainer`).
public struct EngineBackend: TrainingBackend {
    public let name = "swift"
    public init() {}

    public func train(_ job: TrainingJob, _ callbacks: TrainingCallbacks) throws -> TrainingResult {
        let checkpoints = URL(fileURLWithPath: job.directory).appendingPathComponent("checkpoints")
        let (all, dropped) = try TrainingSet(directory: job.dataset).droppingEmptyTargets()
        if dropped > 0 {
            callbacks.log("left out \(dropped) of \(all.count + dropped) training images with no SPIO in view")
        }
        let (train, val) = Trainer.split(all, validationFraction: job.training.validationFraction)
        let trainer = Trainer(model: job.model, training: job.training, data: train, validation: val,
                              checkpointDirectory: checkpoints)
        trainer.shouldStop = callbacks.shouldStop
        trainer.progress = { p in
            callbacks.progress(String(format: "%@  epoch %d/%d  batch %d/%d  loss %.4f  %.1f samples/s", job.name,
                                      p.epoch, p.epochs, p.batch, p.batches, p.loss, p.samplesPerSecond),
                               (Double(p.epoch - 1) + Double(p.batch) / Double(p.batches)) / Double(p.epochs))
        }
        trainer.epochFinished = callbacks.epochFinished
        try trainer.run()
        try FileManager.default.createDirectory(atPath: job.directory, withIntermediateDirectories: true)
        let model = (job.directory as NSString).appendingPathComponent("model.safetensors")
        try Checkpoint.save(trainer.model, config: job.model.json, to: URL(fileURLWithPath: model),
                            extraMetadata: ["training": job.training.json])
        return TrainingResult(modelPath: model, parameters: trainer.model.parameterCount)
    }
}
