import Foundation
import SPIONetworks

/// The seam between the runner, which records, and the code that trains (docs/architecture.md).
/// The runner hands a backend one `TrainingJob` at a time and stores what it reports; a backend
/// must write resumable checkpoints under `job.directory/checkpoints/` and the final model as
/// `model.safetensors` in the engine's format, so evaluations, `spio predict` and audits work
/// on it unchanged.
package protocol TrainingBackend {
    /// Recorded with every run it trains (`training.backend`).
    var name: String { get }
    func train(_ job: TrainingJob, _ callbacks: TrainingCallbacks) throws -> TrainingResult
}

/// This project's CPU engine (SPIONetworks, SPIOTraining's `Trainer`).
package struct EngineBackend: TrainingBackend {
    package let name = "swift"
    package init() {}

    package func train(_ job: TrainingJob, _ callbacks: TrainingCallbacks) throws -> TrainingResult {
        let checkpoints = Trainer.checkpointDirectory(ofRun: job.directory)
        if let start = job.continueFrom, Trainer.latestCheckpoint(in: checkpoints) == nil {
            try Trainer.seed(checkpoints, from: start)
            callbacks.log(
                "continuing from \(start.owner.isEmpty ? start.folder.deletingLastPathComponent().path : start.owner) "
                    + "at \(start.folder.lastPathComponent)"
            )
        }
        // The normalised loss divides by the target's norm: an image without SPIO would weigh 1/eps.
        func load(_ folder: String, _ what: String) throws -> TrainingSet {
            let (set, dropped) = try TrainingSet(directory: folder, scaling: job.model.inputScaling)
                .droppingEmptyTargets()
            if dropped > 0 {
                callbacks.log("left out \(dropped) of \(set.count + dropped) \(what) images with no SPIO in view")
            }
            return set
        }
        let all = try load(job.dataset, "training")
        let (train, val): (TrainingSet, TrainingSet?) =
            try job.validation.map { (all, try load($0, "validation")) }
            ?? (try Trainer.split(all, validationFraction: job.training.validationFraction))
        let trainer = Trainer(
            model: job.model, training: job.training, data: train, validation: val,
            checkpointDirectory: checkpoints)
        trainer.shouldStop = callbacks.shouldStop
        trainer.progress = { p in
            callbacks.progress(
                String(
                    format: "%@  epoch %d/%d  batch %d/%d  loss %.4f  %.1f samples/s", job.name,
                    p.epoch, p.epochs, p.batch, p.batches, p.loss, p.samplesPerSecond),
                (Double(p.epoch - 1) + Double(p.batch) / Double(p.batches)) / Double(p.epochs))
        }
        trainer.epochFinished = callbacks.epochFinished
        let history = try trainer.run()
        try FileManager.default.createDirectory(atPath: job.directory, withIntermediateDirectories: true)
        let model = (job.directory as NSString).appendingPathComponent("model.safetensors")
        try Checkpoint.save(
            trainer.model, config: job.model.json, to: URL(fileURLWithPath: model),
            extraMetadata: ["training": job.training.json])
        return TrainingResult(modelPath: model, parameters: trainer.model.parameterCount, history: history)
    }
}
