import Foundation
import SPIONetworks

/// One model to train: what a `TrainingBackend` gets from the runner.
package struct TrainingJob {
    /// The run's name, for progress lines.
    package var name: String
    package var model: ModelConfig
    package var training: TrainingConfig
    /// The dataset folder (`images.npy`, `concentration.npy`) to train on; without `validation`,
    /// its last `training.validationFraction` validates.
    package var dataset: String
    /// Another dataset folder to validate on, or nil.
    package var validation: String?
    /// A shorter run of the same lineage to continue from when this run has no checkpoint yet.
    package var continueFrom: EpochCheckpoint?
    /// The run's folder: `checkpoints/epoch-NNNN/` while training (a backend resumes from the
    /// newest one it finds), `model.safetensors` at the end.
    package var directory: String

    package init(
        name: String, model: ModelConfig, training: TrainingConfig, dataset: String, validation: String? = nil,
        directory: String, continueFrom: EpochCheckpoint? = nil
    ) {
        self.name = name; self.model = model; self.training = training
        self.dataset = dataset; self.validation = validation; self.directory = directory;
        self.continueFrom = continueFrom
    }
}

/// What a finished training left: the final model file, its parameter count and every epoch.
package struct TrainingResult {
    package var modelPath: String
    package var parameters: Int
    package var history: [EpochRecord]
    /// What else the run should record (the torch backend: device and library versions).
    package var details: [String: String] = [:]
}

/// The runner's side of a training: where lines, progress and finished epochs go, and when to stop.
package struct TrainingCallbacks {
    package var log: (String) -> Void
    /// A progress line and the fraction done.
    package var progress: (String, Double) -> Void
    /// Polled between batches; true stops the training with `TrainingError.interrupted`.
    package var shouldStop: () -> Bool
    /// Called with the whole history after each epoch's checkpoint (and once after a resume).
    package var epochFinished: ([EpochRecord]) throws -> Void

    package init(
        log: @escaping (String) -> Void, progress: @escaping (String, Double) -> Void,
        shouldStop: @escaping () -> Bool = { false }, epochFinished: @escaping ([EpochRecord]) throws -> Void = { _ in }
    ) {
        self.log = log; self.progress = progress; self.shouldStop = shouldStop; self.epochFinished = epochFinished
    }
}
