import Foundation
import SPIOCoding
import SPIODigest
import SPIOImageIO
import SPIOTraining

/// A trained model shipped with the repository: `models/<name>/model.safetensors`, its facts in
/// `model.json` and its model card in `README.md`, written from the run store by `spio models
/// release` (never by hand), so that `spio predict --model <name>` works on a fresh clone with no
/// study run first, and the weights are checked against their published SHA-256 before use.
package struct ReleasedModel: Codable, Equatable {
    /// What one evaluation of the model measured, with the 95 % bootstrap interval of the mean NMAE.
    package struct Evaluation: Codable, Equatable {
        package var study: String, set: String, seed: UInt64, images: Int
        package var nmaeMean: Double, nmaeSD: Double, nmaeLow: Double, nmaeHigh: Double
        package var ironErrorMean: Double?, hfenMean: Double?
    }

    package var name: String
    package var sha256: String
    package var bytes: Int
    /// The store's training run and the study that made it.
    package var study: String, run: Int64, runName: String
    package var architecture: String, parameters: Int, inputSize: Int, fovMM: Double
    package var trainingImages: Int, validationImages: Int, epochs: Int, steps: Int, batchSize: Int
    package var learningRate: Double, mseWarmupSteps: Int, trainingSeed: UInt64, simulationSeed: UInt64
    package var anatomy: String, scene: String, concentrationRangeUgPerMM3: [Double], snrRangeDB: [Double]?
    package var validationNMAE: Double?
    package var evaluations: [Evaluation]
    /// The code that trained it (the store's environment), and the kernels.
    package var commit: String, kernels: String

    /// The folder released models live in: `SPIO_MODELS`, else `models/` of the working directory.
    package static var folder: String { ProcessInfo.processInfo.environment["SPIO_MODELS"] ?? "models" }

    /// Every released model of `folder`, by name.
    package static func all(in folder: String = folder) throws -> [ReleasedModel] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return try names.sorted().compactMap { name in
            let json = (folder as NSString).appendingPathComponent("\(name)/model.json")
            guard let data = FileManager.default.contents(atPath: json) else { return nil }
            do { return try JSONDecoder().decode(ReleasedModel.self, from: data) } catch {
                throw FileError(json, "is not a released model's description: \(error)")
            }
        }
    }

    /// The checkpoint `model` names: a file path as it is, or the name of a released model (its
    /// weights checked against the published SHA-256 first).
    package static func checkpoint(_ model: String, in folder: String = folder) throws -> String {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: model, isDirectory: &isFolder), !isFolder.boolValue { return model }
        let released = try all(in: folder)
        guard let m = released.first(where: { $0.name == model }) else {
            let names = released.map(\.name).joined(separator: ", ")
            throw FileError(
                model,
                "is neither a checkpoint file nor a released model"
                    + (names.isEmpty ? " (no models in \(folder)/)" : "; released: \(names) (spio models)"))
        }
        let path = (folder as NSString).appendingPathComponent("\(m.name)/model.safetensors")
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw FileError(path, "is missing: the released model \(m.name) lists it")
        }
        let digest = SHA256.hex([UInt8](bytes))
        guard digest == m.sha256 else {
            throw FileError(
                path, "has SHA-256 \(digest.prefix(16))..., not the published \(m.sha256.prefix(16))...; it was changed"
            )
        }
        return path
    }

    /// One line for `spio models`.
    package var line: String {
        let e =
            evaluations.first.map {
                String(
                    format: "; %@ NMAE %.3f [%.3f, %.3f] on %d held-out images", $0.set, $0.nmaeMean, $0.nmaeLow,
                    $0.nmaeHigh, $0.images)
            } ?? ""
        return "\(name): \(architecture), \(parameters) parameters, \(inputSize) x \(inputSize) over \(fovMM) mm\(e)"
    }

    /// The model card (README.md of its folder).
    package var card: String {
        func f(_ x: Double, _ digits: Int = 3) -> String { String(format: "%.\(digits)f", x) }
        var md = "# Released model `\(name)`\n\n"
        md +=
            "Written by `spio models release` from the run store of the study that trained it; every number below "
            + "was computed by that run. Use it with `spio predict --model \(name) IMAGES --out DIR`.\n\n"
        md += "| | |\n|---|---|\n"
        md += "| network | \(architecture), \(parameters) parameters, input 2 x \(inputSize) x \(inputSize) |\n"
        md +=
            "| pixels | \(f(fovMM / Double(inputSize), 3)) mm (\(inputSize) over a \(f(fovMM, 0)) mm field of view) |\n"
        md += "| weights | `model.safetensors`, \(bytes) bytes, SHA-256 `\(sha256)` |\n"
        md +=
            "| trained by | study `\(study)`, run \(runName) (store run \(run)), commit \(commit), \(kernels) kernels |\n"
        md +=
            "| training data | \(trainingImages) simulated View Line images (\(validationImages) more held out for "
            + "validation) of \(anatomy) slices with \(scene) SPIO at \(f(concentrationRangeUgPerMM3[0], 2))-"
            + "\(f(concentrationRangeUgPerMM3[1], 1)) ug/mm^3, "
            + (snrRangeDB.map { "noise at \(f($0[0], 0))-\(f($0[1], 0)) dB" } ?? "no noise")
            + ", simulation seed \(simulationSeed) |\n"
        let loss =
            mseWarmupSteps > 0
            ? "the first \(mseWarmupSteps) steps on the mean squared error of the targets and the rest on the paper's "
                + "normalised-L1 wavelet loss" : "the paper's normalised-L1 wavelet loss throughout"
        md +=
            "| recipe | \(epochs) epochs (\(steps) Adam steps), batch \(batchSize), lr \(learningRate), \(loss), "
            + "training seed \(trainingSeed) |\n"
        if let validationNMAE { md += "| validation NMAE | \(f(validationNMAE)) (last epoch) |\n" }
        md += "\n## Test metrics (held-out images)\n\n"
        md +=
            "NMAE = ||C^ - C||_1 / ||C||_1 per image; mean, standard deviation over the images and the 95 % "
            + "percentile-bootstrap interval of the mean (10,000 resamples). Each set was simulated from its own "
            + "seed, never the training data's. Total iron = the relative error of the summed concentration.\n\n"
        md += "| study | set (seed) | images | NMAE mean +- sd | 95 % interval | total iron | HFEN |\n"
        md += "|---|---|---|---|---|---|---|\n"
        // Sweeps of a few images per point (phantoms, noise levels) belong to their reports.
        let shown = evaluations.filter { $0.images >= 100 && !$0.set.contains("[") }
        for e in shown {
            md +=
                "| \(e.study) | \(e.set) (\(e.seed)) | \(e.images) | \(f(e.nmaeMean)) +- \(f(e.nmaeSD)) | "
                + "[\(f(e.nmaeLow)), \(f(e.nmaeHigh))] | "
                + (e.ironErrorMean.map { String(format: "%+.1f %%", 100 * $0) } ?? "-") + " | "
                + (e.hfenMean.map { f($0) } ?? "-") + " |\n"
        }
        let rest = evaluations.count - shown.count
        if rest > 0 {
            let studies = Set(evaluations.filter { !shown.contains($0) }.map(\.study)).sorted()
            md +=
                "\nAnd \(rest) more set\(rest == 1 ? "" : "s") (sweep points, or fewer than 100 images: phantoms, noise "
                + "levels) of \(studies.joined(separator: ", ")): see reports/<study>/ and model.json.\n"
        }
        md += "\n## Reproduce\n\n"
        md +=
            "`spio run experiments/\(study).yaml` trains these weights again bit for bit on the portable kernels "
            + "(compare the SHA-256 above with `spio show` of the training run's `model.safetensors`); "
            + "`spio audit ID` re-trains a stored run and compares every metric bitwise.\n\n"
        md += "## Not validated for\n\n"
        md +=
            "Real scans: the model has seen only simulated View Line images (docs/simulation.md), of one sequence, "
            + "one field strength and one field of view. Images at another pixel size, sequence or B0, other SPIO "
            + "shapes or concentrations outside the training range, and any clinical use are untested. At this "
            + "scale its maps are blurred and the total iron is underestimated (see the table and "
            + "reports/README.md).\n"
        return md
    }

    /// Releases finished training run `id` of `store` as `folder/<name>/`; returns the release.
    @discardableResult
    package static func release(
        store: RunStore, trainingRun id: Int64, name: String, to folder: String = folder
    ) throws -> ReleasedModel {
        let (model, weights) = try describe(store: store, trainingRun: id, name: name)
        try model.write(weights: weights, to: folder)
        return model
    }

    /// Writes `models/<name>/`: the weights copied, `model.json` and `README.md`. Refuses a name
    /// already released (a release is never silently replaced).
    func write(weights: String, to folder: String) throws {
        let dir = (folder as NSString).appendingPathComponent(name)
        guard !FileManager.default.fileExists(atPath: dir) else {
            throw FileError(dir, "already holds a released model; release under another name, or remove it first")
        }
        guard StudyPlan.unsafeStudyName(name) == nil else {
            throw FileError(
                name, "a model name uses letters, digits, '.', '_' and '-', starting with a letter or digit")
        }
        try PartialPath.write(dir) { partial in
            try FileManager.default.createDirectory(atPath: partial, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: weights, toPath: (partial as NSString).appendingPathComponent("model.safetensors"))
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(self).write(
                to: URL(fileURLWithPath: (partial as NSString).appendingPathComponent("model.json")))
            try card.write(
                toFile: (partial as NSString).appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        }
    }
}

extension ReleasedModel {
    /// The release of finished training run `id` of `store`, with every finished evaluation made
    /// from it (in any study) as its test metrics, and the path of its weights.
    static func describe(
        store: RunStore, trainingRun id: Int64, name: String
    ) throws -> (model: ReleasedModel, weights: String) {
        guard let run = try store.run(id), run.kind == .train, run.status == .finished else {
            throw FileError(store.path, "run \(id) is not a finished training run")
        }
        let c = try decodeCanonicalJSON(RunConfig.self, from: run.configJSON)
        guard let weights = try store.artifacts(id).first(where: { $0.name == "model.safetensors" }) else {
            throw FileError(store.path, "run \(id) has no model.safetensors")
        }
        if let problem = try store.verifyArtifacts(id).first { throw FileError(weights.path, problem) }
        let environment = try store.environment(id)
        let held = Trainer.heldOut(count: c.data.samples, validationFraction: c.training.validationFraction)
        // The evaluations the studies use now (as their reports show them), not ones a study's
        // earlier declaration made; an evaluation several studies share is listed once.
        var evaluations: [Evaluation] = [], seen = Set<Int64>()
        for study in try store.studies(using: id) {
            let row = try StudyReport(store: store, study: study).rows().first { $0.training.id == id }
            for e in row?.evaluations ?? [] where seen.insert(e.run.id!).inserted {
                let nmae = try store.metrics(e.run.id!, key: .nmae).map(\.value)
                guard let interval = DifferenceInterval.ofMean(nmae) else { continue }
                let sd = try store.metrics(e.run.id!, key: MetricKey.nmae.sd).first?.value ?? .nan
                evaluations.append(
                    Evaluation(
                        study: study, set: e.set.name, seed: e.set.seed,
                        images: nmae.count, nmaeMean: interval.difference, nmaeSD: sd, nmaeLow: interval.low,
                        nmaeHigh: interval.high,
                        ironErrorMean: try store.metrics(e.run.id!, key: MetricKey.ironError.mean).first?.value,
                        hfenMean: try store.metrics(e.run.id!, key: MetricKey.hfen.mean).first?.value))
            }
        }
        let model = ReleasedModel(
            name: name, sha256: weights.sha256, bytes: weights.bytes, study: run.study, run: id, runName: run.name,
            architecture: c.model.architecture.rawValue,
            parameters: Int(try store.metrics(id, key: .parameters).first?.value ?? 0), inputSize: c.model.inputSize,
            fovMM: c.simulation.fovMM, trainingImages: c.data.samples - held, validationImages: held,
            epochs: c.training.epochs, steps: try store.metrics(id, key: .trainLoss).count,
            batchSize: c.training.batchSize, learningRate: c.training.learningRate,
            mseWarmupSteps: c.training.mseWarmupSteps, trainingSeed: c.training.seed,
            simulationSeed: c.simulation.seed, anatomy: c.simulation.anatomy.kind,
            scene: c.simulation.scene.kind == "random"
                ? c.simulation.scene.shapeKinds.joined(separator: " and ") : c.simulation.scene.kind,
            concentrationRangeUgPerMM3: c.simulation.scene.concentrationRangeUgPerMM3,
            snrRangeDB: c.data.snrRangeDB, validationNMAE: try store.metrics(id, key: .validationNMAE).last?.value,
            evaluations: evaluations.sorted { ($0.study, $0.set) < ($1.study, $1.set) },
            commit: String((environment?.gitCommit ?? "unknown").prefix(12))
                + (environment?.gitDirty == true ? " with uncommitted changes" : ""),
            kernels: environment?.kernelMode ?? "portable")
        return (model, weights.path)
    }
}
