import Foundation
import SPIOCoding
import SPIODigest
import SPIOImageIO
import SPIOKernels
import SPIONetworks
import SPIOPhysics
import SPIOTraining

/// Every key the run store finds a finished run by, in one place: `spio validate` prints them,
/// `spio runs` shows them, and the runner claims and reuses runs by them. Each key is the SHA-256
/// of a `Codable` value's canonical JSON (sorted keys), and that JSON is what the run stores as
/// its configuration, except for datasets, whose key is `SimulatedDataset.contentHash` (the
/// generator version, the simulation and the count; `DatasetShards` and the dataset's manifest
/// carry it too). The versions inside the keys are `KeyVersion`'s.
package enum RunIdentity {
    /// What a dataset run stores as its configuration.
    package struct Dataset: Codable, Equatable {
        package var count: Int
        package var simulation: SimulationConfig
    }

    /// What determines a training's weights: its dataset, model and training blocks, and the
    /// kernels when they are not the portable ones (other kernels change the last bits).
    package struct Training: Codable, Equatable {
        package var dataset: String
        package var kernel: String?
        package var model: ModelConfig
        package var training: TrainingConfig
    }

    /// What determines an evaluation's numbers: the trained model, the set, the images it sees (the
    /// dataset's key, or the files' digests) and what evaluations measure.
    package struct Evaluation: Codable, Equatable {
        package var dataset: String
        package var metrics: Int
        package var set: TestSetConfig
        package var training: String
    }

    /// The key and stored configuration of a simulated dataset of `count` samples.
    package static func dataset(_ simulation: SimulationConfig, count: Int) -> (hash: String, json: String) {
        (
            SimulatedDataset.contentHash(config: simulation, count: count),
            canonicalJSON(Dataset(count: count, simulation: simulation))
        )
    }

    /// A training's key and its lineage: runs that differ only in their epoch count share a
    /// lineage, so a longer run starts from a shorter one's last checkpoint instead of from scratch
    /// (`TrainingConfig.anyLength`).
    package static func training(_ c: RunConfig, dataset: String) -> (hash: String, lineage: String) {
        let kernel = KernelPolicy.state
        var key = Training(
            dataset: dataset, kernel: kernel.isPortable ? nil : kernel.core, model: c.model, training: c.training)
        let hash = SHA256.hex(canonicalJSON(key))
        key.training = c.training.anyLength
        return (hash, SHA256.hex(canonicalJSON(key)))
    }

    /// An evaluation's key and stored configuration. A file set enters by its files' contents, so a
    /// changed scan is measured again.
    package static func evaluation(_ set: TestSetConfig, training: String) throws -> (hash: String, json: String) {
        let source =
            set.files.isEmpty
            ? SimulatedDataset.contentHash(config: set.simulation, count: set.samples)
            : try set.files.map { f -> String in
                guard let bytes = FileManager.default.contents(atPath: f) else {
                    throw FileError(f, "no such file or folder")
                }
                return SHA256.hex(bytes)
            }.joined(separator: ",")
        let json = canonicalJSON(Evaluation(dataset: source, metrics: KeyVersion.metrics, set: set, training: training))
        return (SHA256.hex(json), json)
    }

    /// The scenes an evaluation saw, whatever the input kind: two evaluations of the same scenes,
    /// one from the View Line images and one from the true field, are paired image by image.
    /// `dataset` is the evaluation key's, `set` its set where it decodes (an older store's may not).
    package static func scenes(dataset: String, set: TestSetConfig?) -> String {
        guard let set, set.files.isEmpty, set.simulation.input != nil else { return dataset }
        var simulation = set.simulation
        simulation.input = nil
        return SimulatedDataset.contentHash(config: simulation, count: set.samples)
    }
}
