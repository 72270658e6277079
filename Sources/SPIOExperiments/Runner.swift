import SPIOCoding
import Foundation
import SPIOKernels
import SPIOConfig
import SPIODigest
import SPIOImageIO
import SPIOPlots
import SPIONetworks
import SPIOPhysics
import SPIOTensor
import SPIOTraining

/// Executes study runs with caching by content hash: a simulated dataset, a trained model and an
/// evaluation each become a run in the store, and a finished run with the same effective
/// configuration is reused (unless `force`). An interrupted or killed training resumes from its
/// last epoch checkpoint; a failure records its error text.
///
/// Workspace layout: `runs.sqlite`, `datasets/<hash>/`, `models/<hash>/`, `evaluations/<hash>/`.
package final class Runner {
    package let store: RunStore
    package let workspace: String
    package var force = false
    /// Lines for the user (standard error in the CLI).
    package var log: (String) -> Void = { _ in }
    /// Training progress: text and fraction done.
    package var progress: (String, Double) -> Void = { _, _ in }
    /// Finished runs whose files this runner has checked against their SHA-256.
    private var verified = Set<Int64>()
    /// Trains the models (docs/architecture.md: the training seam); nil: the one each run's
    /// `training.backend` names.
    package var backend: TrainingBackend?
    /// Polled between training batches (Ctrl-C).
    package var shouldStop: () -> Bool = { false }
    /// Read once per runner (it asks git), recorded with every run.
    private lazy var environment = RunEnvironment.current(
        threads: Engine.threadCount, blas: Engine.blasDescription, kernel: KernelPolicy.state)

    /// Runs computed elsewhere (cluster tasks) that this runner records instead of computing;
    /// nil: it computes every run itself.
    package var results: RunResults?

    /// A runner on the workspace's own store, `<workspace>/runs.sqlite`, or on `store` (a cluster
    /// task's private store, whose paths are the workspace's).
    package init(workspace: String, store: RunStore? = nil) throws {
        self.workspace = workspace
        self.store = try store ?? RunStore(path: (workspace as NSString).appendingPathComponent("runs.sqlite"))
        StalePartialFiles.remove(in: (workspace as NSString).appendingPathComponent("datasets"))
    }

    /// What one planned run produced.
    package struct Outcome {
        package let planned: StudyPlan.PlannedRun
        package let dataset: RunStore.Run, training: RunStore.Run
        package let evaluations: [RunStore.Run]
    }

    /// Every planned run of `plan`, through `executor` (this process by default).
    package func run(_ plan: StudyPlan, executor: StudyExecutor = LocalExecutor()) throws -> [Outcome] {
        var outcomes: [Outcome] = []
        try executor.execute(plan, runner: self) { outcomes.append($1) }
        return outcomes
    }

    /// Records the study (description, report block) before its runs.
    package func begin(_ plan: StudyPlan) throws {
        try store.saveStudy(
            name: plan.study, description: plan.description, file: plan.file, reportJSON: canonicalJSON(plan.report))
    }

    /// Runs (or reuses) one planned run's dataset, training and evaluations, and records them as
    /// the study's: a run reused from another study belongs to both.
    package func run(_ planned: StudyPlan.PlannedRun, study: String, description: String = "") throws -> Outcome {
        let c = planned.config
        let data = try dataset(
            c.trainingSimulation, count: c.data.samples, shards: c.data.shardCount, study: study,
            name: planned.name + " data")
        try store.addToStudy(study, run: data.id!, name: planned.name + " data", grid: planned.gridValues)
        let training = try train(planned, study: study, description: description, dataset: data)
        try store.addToStudy(study, run: training.id!, name: planned.name, grid: planned.gridValues)
        let evaluations = try c.evaluation.sets.map { set in
            let e = try evaluate(set, study: study, name: planned.name, training: training, model: c.model)
            try store.addToStudy(study, run: e.id!, name: "\(planned.name) \(set.name)", grid: planned.gridValues)
            return e
        }
        return Outcome(planned: planned, dataset: data, training: training, evaluations: evaluations)
    }

    /// One dataset, training or evaluation of a planned run, named by its kind and configuration
    /// hash: the unit that `cached` claims, and that a cluster task computes.
    package struct WorkUnit: Hashable, Sendable, Codable {
        package var kind: RunKind
        package var hash: String
        /// Which test set of the planned run it belongs to (its dataset or evaluation); nil for the
        /// training dataset and the training.
        package var set: Int?
    }

    /// The units of a planned run in the order `run(_:study:)` claims them: the training dataset,
    /// the training, then each test set's dataset (simulated sets) and evaluation.
    package static func units(of planned: StudyPlan.PlannedRun) throws -> [WorkUnit] {
        let c = planned.config
        let data = SimulatedDataset.contentHash(config: c.trainingSimulation, count: c.data.samples)
        let training = trainingKeys(c, dataset: data).hash
        var out = [WorkUnit(kind: .dataset, hash: data), WorkUnit(kind: .train, hash: training)]
        for (i, set) in c.evaluation.sets.enumerated() {
            if set.files.isEmpty {
                out.append(
                    WorkUnit(
                        kind: .dataset, hash: SimulatedDataset.contentHash(config: set.simulation, count: set.samples),
                        set: i))
            }
            out.append(WorkUnit(kind: .evaluate, hash: try evaluationKey(set, training: training).hash, set: i))
        }
        return out
    }

    /// Computes one unit of a planned run and nothing else (a cluster task): the units it needs
    /// are recorded from `results`.
    package func compute(_ unit: WorkUnit, of planned: StudyPlan.PlannedRun, study: String, description: String) throws
    {
        let c = planned.config
        if unit.kind == .dataset, let i = unit.set {
            let set = c.evaluation.sets[i]
            _ = try dataset(set.simulation, count: set.samples, study: study, name: "\(planned.name) \(set.name) data")
            return
        }
        let data = try dataset(
            c.trainingSimulation, count: c.data.samples, shards: c.data.shardCount, study: study,
            name: planned.name + " data")
        guard unit.kind != .dataset else { return }
        let training = try train(planned, study: study, description: description, dataset: data)
        guard unit.kind == .evaluate, let i = unit.set else { return }
        _ = try evaluate(c.evaluation.sets[i], study: study, name: planned.name, training: training, model: c.model)
    }

    private func directory(_ kind: String, _ hash: String) -> String {
        (workspace as NSString).appendingPathComponent("\(kind)/\(hash.prefix(16))")
    }

    /// Finds a reusable finished run, or starts (or takes over) one; `body` does the work.
    private func cached(
        kind: RunKind, hash: String, study: String, name: String, configJSON: String, directory: String,
        parent: Int64?, _ body: (RunStore.Run) throws -> Void
    ) throws -> RunStore.Run {
        var run: RunStore.Run
        var waiting: Int64?
        claiming: while true {
            switch try store.claim(
                study: study, name: name, kind: kind, hash: hash, configJSON: configJSON, directory: directory,
                parentID: parent, force: force)
            {
            case let .finished(done):
                // A reused result is only as good as its files: they must be the ones recorded. A
                // dataset shared by every grid point is hashed once per runner, not once per use.
                if !verified.contains(done.id!) {
                    let problems = try store.verifyArtifacts(done.id!)
                    guard problems.isEmpty else { throw RunnerError.changedArtifacts(done.id!, problems) }
                    verified.insert(done.id!)
                }
                log("reusing \(kind) run \(done.id!) (\(name)): finished \(done.finishedAt ?? "")")
                return done
            case let .busy(other):
                // Another process computes this very configuration: wait for its result.
                if waiting != other.id {
                    log(
                        "waiting for \(kind) run \(other.id!) (\(name)), computed by process \(other.pid ?? 0) on "
                            + "\(other.host)"
                    )
                }
                waiting = other.id
                if shouldStop() { throw TrainingError.interrupted(epoch: 0, step: 0, lastGoodCheckpoint: nil) }
                usleep(500_000)
            case let .resumed(r, was):
                run = r
                log(
                    was == .finished
                        ? "recomputing \(kind) run \(run.id!) (\(name)): its folder \(run.directory) is gone"
                        : "resuming \(kind) run \(run.id!) (\(name)), left \(was)")
                break claiming
            case let .started(r):
                run = r
                log("\(kind) run \(run.id!) (\(name))")
                break claiming
            }
        }
        if let results, !results.computes(kind, hash) {
            return try record(run, kind: kind, hash: hash, name: name, from: results)
        }
        try store.recordEnvironment(run.id!, environment)
        do {
            try body(run)
        } catch {
            // The cause goes to the user even when it cannot be recorded (a full disk fails the
            // store's write too); the run then stays `running` under a dead process, which the
            // next `spio run` resumes like an interrupted one.
            var interrupted = false
            if case TrainingError.interrupted = error { interrupted = true }
            if error is StopRequested { interrupted = true }
            try? store.fail(run.id!, error: WorkspaceFault.describe(error), interrupted: interrupted)
            throw error
        }
        try store.finish(run.id!)
        return try store.run(run.id!)!
    }

    /// Records a claimed run from the runs computed elsewhere, or fails it with why it is missing.
    private func record(
        _ run: RunStore.Run, kind: RunKind, hash: String, name: String, from results: RunResults
    ) throws -> RunStore.Run {
        do {
            guard let (source, found) = try results.finished(kind: kind, hash: hash) else {
                throw results.missing(kind, hash, name)
            }
            let problems = try source.verifyArtifacts(found.id!)
            guard problems.isEmpty else { throw RunnerError.changedArtifacts(found.id!, problems) }
            try store.record(run.id!, from: source, run: found.id!)
            log("recorded \(kind) run \(run.id!) (\(name)), computed by \(results.origin) on \(found.host)")
            return try store.run(run.id!)!
        } catch {
            try? store.fail(run.id!, error: WorkspaceFault.describe(error))
            throw error
        }
    }

    // MARK: datasets

    /// What a dataset run stores as its configuration (its key is the dataset's content hash).
    struct DatasetKey: Encodable {
        var count: Int
        var simulation: SimulationConfig
    }

    func dataset(
        _ sim: SimulationConfig, count: Int, shards: Int = 1, study: String, name: String
    ) throws -> RunStore.Run {
        let hash = SimulatedDataset.contentHash(config: sim, count: count)
        let dir = directory("datasets", hash)
        let json = canonicalJSON(DatasetKey(count: count, simulation: sim))
        return try cached(
            kind: .dataset, hash: hash, study: study, name: name, configJSON: json, directory: dir, parent: nil
        ) { run in
            let start = Date()
            var params = flatten(sim, prefix: "simulation").merging(["data.samples": String(count)]) { a, _ in a }
            let files: [String]
            var timed = true
            if shards > 1 {
                // Shard by shard into the dataset's own folder: a stopped run keeps its finished
                // shards and the next one simulates only the rest (whose rate is not the set's).
                let made = try DatasetShards.write(
                    config: sim, count: count, shards: shards, indices: Array(0..<shards), to: dir,
                    shouldStop: shouldStop, progress: { self.progress($0, $1) })
                params["data.shards"] = String(shards)
                timed = made == shards
                files = [DatasetShards.folderName(DatasetShards.shard(0, of: shards, count: count)) + "/manifest.json"]
            } else {
                let data = try SimulatedDataset.generate(config: sim, count: count, shouldStop: shouldStop) { done in
                    self.progress("simulating \(done)/\(count)", Double(done) / Double(count))
                }
                // Written under a temporary name and renamed: a crash never leaves a half dataset.
                let partial = StalePartialFiles.name(for: dir)
                try? FileManager.default.removeItem(atPath: partial)
                try data.write(to: partial, previews: 2)
                try? FileManager.default.removeItem(atPath: dir)
                try FileManager.default.createDirectory(
                    atPath: (dir as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try FileManager.default.moveItem(atPath: partial, toPath: dir)
                files = ["images.npy", "concentration.npy", "manifest.json"]
            }
            try store.setParams(run.id!, params)
            if timed {
                try store.log(run.id!, [(.samplesPerSecond, 0, Double(count) / Date().timeIntervalSince(start))])
            }
            for file in files {
                try store.addArtifact(run.id!, name: file, path: (dir as NSString).appendingPathComponent(file))
            }
        }
    }

    // MARK: training

    /// The stored configuration of a training run is the whole effective `RunConfig` (so `spio
    /// audit` can re-run it); its hash covers what determines the weights: the dataset, the model
    /// and the training blocks.
    func train(
        _ planned: StudyPlan.PlannedRun, study: String, description: String, dataset: RunStore.Run
    ) throws -> RunStore.Run {
        let c = planned.config
        let (hash, lineage) = Self.trainingKeys(c, dataset: dataset.configHash)
        let dir = directory("models", hash)
        return try cached(
            kind: .train, hash: hash, study: study, name: planned.name, configJSON: c.canonicalJSON, directory: dir,
            parent: dataset.id
        ) { run in
            var params = flatten(c.model, prefix: "model").merging(flatten(c.training, prefix: "training")) { a, _ in a
            }
            for (k, v) in planned.gridValues { params["grid." + k] = v }
            params["study.description"] = description
            params["training.lineage"] = lineage
            let backend = self.backend ?? c.training.makeBackend(for: c.model, threads: Engine.threadCount)
            params["training.backend"] = backend.name
            try store.setParams(run.id!, params)
            let id = run.id!
            // The first call (after a resume, or epoch 1) logs every finished epoch, rewriting what a
            // crash may have left half-logged; later calls only the epoch just finished.
            var logged = 0
            let callbacks = TrainingCallbacks(log: log, progress: progress, shouldStop: shouldStop) { history in
                try self.logEpochs(id, history[(logged == 0 ? 0 : history.count - 1)...])
                logged = history.count
            }
            let result = try backend.train(
                TrainingJob(
                    name: planned.name, model: c.model, training: c.training, dataset: dataset.directory,
                    directory: dir,
                    continueFrom: try shorterRun(
                        lineage: lineage, epochs: c.training.epochs,
                        excluding: id)), callbacks)
            if !result.details.isEmpty { try store.setParams(id, params.merging(result.details) { _, b in b }) }
            try store.addArtifact(id, name: "model.safetensors", path: result.modelPath)
            try store.log(id, [(.parameters, 0, Double(result.parameters))])
        }
    }

    /// A training's configuration hash and lineage.
    package static func trainingKeys(_ c: RunConfig, dataset: String) -> (hash: String, lineage: String) {
        // Weights trained on other kernels than the portable ones differ in their last bits, so they
        // are another run; portable runs keep the hash they always had.
        let kernel = KernelPolicy.state
        let kernelKey = kernel.isPortable ? "" : ",\"kernel\":\"\(kernel.core)\""
        let hash = SHA256.hex(
            "{\"dataset\":\"\(dataset)\",\"model\":\(c.model.json),\"training\":\(c.training.json)\(kernelKey)}")
        // Runs that differ only in their epoch count share a lineage: a longer run starts from a
        // shorter one's last checkpoint instead of from scratch.
        var anyEpochs = c.training
        anyEpochs.epochs = 0
        let lineage = SHA256.hex(
            "{\"dataset\":\"\(dataset)\",\"model\":\(c.model.json),\"training\":\(anyEpochs.json)\(kernelKey)}")
        return (hash, lineage)
    }

    /// The newest checkpoint of the training run of the same lineage with the most epochs
    /// checkpointed, at most `epochs`.
    func shorterRun(lineage: String, epochs: Int, excluding id: Int64) throws -> EpochCheckpoint? {
        var best: EpochCheckpoint?
        for r in try store.runs(kind: .train, param: "training.lineage", equals: lineage) where r.id != id {
            guard var latest = Trainer.latestCheckpoint(in: Trainer.checkpointDirectory(ofRun: r.directory)),
                latest.epoch <= epochs, latest.epoch > (best?.epoch ?? 0)
            else { continue }
            latest.owner = "train run \(r.id!)"
            best = latest
        }
        return best
    }

    /// Writes (or rewrites) the metrics of finished epochs: idempotent, so a resumed run rewrites
    /// rather than duplicates, and a crash between checkpoint and log loses nothing.
    func logEpochs(_ id: Int64, _ history: ArraySlice<EpochRecord>) throws {
        var values: [(key: MetricKey, step: Int, value: Double)] = []
        for r in history {
            let first = r.step - r.batchLosses.count
            for (i, l) in r.batchLosses.enumerated() { values.append((.trainLoss, first + i + 1, l)) }
            values += [(.epochTrainLoss, r.epoch, r.trainLoss), (.epochSeconds, r.epoch, r.seconds)]
            if r.validationNMAE.isFinite {
                values += [
                    (.validationNMAE, r.epoch, r.validationNMAE), (.validationNMAESD, r.epoch, r.validationNMAESD)
                ]
            }
        }
        try store.log(id, values)
    }

    // MARK: evaluation

    func evaluate(
        _ set: TestSetConfig, study: String, name: String, training: RunStore.Run, model: ModelConfig
    ) throws -> RunStore.Run {
        var data: RunStore.Run?
        if set.files.isEmpty {
            data = try dataset(set.simulation, count: set.samples, study: study, name: "\(name) \(set.name) data")
        }
        let (hash, json) = try Self.evaluationKey(set, training: training.configHash)
        let dir = directory("evaluations", hash)
        return try cached(
            kind: .evaluate, hash: hash, study: study, name: "\(name) \(set.name)", configJSON: json, directory: dir,
            parent: training.id
        ) { run in
            let id = run.id!
            var params = ["set": set.name, "samples": String(set.samples), "seed": String(set.seed)]
                .merging(flatten(set.simulation, prefix: "simulation")) { a, _ in a }
            for (k, v) in set.labels { params["label." + k] = v }
            if !set.files.isEmpty { params["files"] = set.files.joined(separator: "\n") }
            try store.setParams(id, params)
            let predictor = try Predictor(
                checkpoint: (training.directory as NSString).appendingPathComponent("model.safetensors"))
            let test = try predictor.evaluate(
                data.map { .dataset(directory: $0.directory) } ?? .files(set.files), shouldStop: shouldStop)
            var values: [(key: MetricKey, step: Int, value: Double)] = []
            if test.truth != nil {
                let nmae = test.nmae()
                for (i, v) in nmae.enumerated() { if let v { values.append((.nmae, i, v)) } }
                let (mean, sd) = Evaluation.meanAndSD(nmae.compactMap { $0 })
                values += [
                    (MetricKey.nmae.mean, 0, mean), (MetricKey.nmae.sd, 0, sd),
                    (.images, 0, Double(nmae.compactMap { $0 }.count))
                ]
                // The metrics a reviewer of susceptibility maps expects beside NMAE, per image.
                var perKey: [MetricKey: [Double]] = [:]
                for s in 0..<test.count {
                    if let c = test.spioMeans(s) {
                        values += [(.spioTruth, s, c.truth), (.spioEstimate, s, c.estimate)]
                    }
                    guard let m = test.imageMetrics(s) else { continue }
                    for (k, v) in [
                        (MetricKey.rmse, m.rmse), (.hfen, m.hfen), (.ssim, m.ssim), (.ironError, m.ironErrorFraction)
                    ] {
                        guard let v, v.isFinite else { continue }
                        values.append((k, s, v)); perKey[k, default: []].append(v)
                    }
                }
                for (k, v) in perKey.sorted(by: { $0.key < $1.key }) {
                    let (m, d) = Evaluation.meanAndSD(v)
                    values += [(k.mean, 0, m), (k.sd, 0, d)]
                }
            } else {
                values.append((.images, 0, Double(test.count)))
            }
            if set.phantomRegion || set.truthUgPerMM3 != nil {
                let scene = set.simulation.scene
                let n = test.imageSize, pixelMM = set.simulation.fovMM / Double(n)
                // Image row = z, column = x (forward-model.md), centred on the field of view.
                let (row, col) = (
                    Double(n) / 2 - 0.5 + scene.bottleCentreMM[2] / pixelMM,
                    Double(n) / 2 - 0.5 + scene.bottleCentreMM[0] / pixelMM
                )
                let radius = scene.bottleRadiusMM / 2 / pixelMM
                for s in 0..<test.count {
                    let est = test.regionMean(s, centreRow: row, centreColumn: col, radiusPixels: radius)!
                    guard
                        let truth = set.truthUgPerMM3
                            ?? test.regionMean(
                                s, ofTruth: true, centreRow: row, centreColumn: col, radiusPixels: radius)
                    else { continue }
                    values += [(.phantomEstimate, s, est), (.phantomTruth, s, truth)]
                }
            }
            try store.log(id, values)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            func save(_ name: String, _ t: Tensor) throws {
                let path = (dir as NSString).appendingPathComponent(name)
                try NPYArray(shape: t.shape, values: t.array).write(to: path)
                try store.addArtifact(id, name: name, path: path)
            }
            try save("predictions.npy", test.maps)
            // The first image's input channel 0, truth (simulated sets) and prediction, for strips.
            let n = test.imageSize
            let first = [test.input(0), test.truth(0), test.map(0)].compactMap { $0 }
            try save("example.npy", Tensor(shape: [first.count, n, n], values: first.flatMap { $0 }))
            let png = (dir as NSString).appendingPathComponent("examples.png")
            try ExamplePanels.grid(test, count: min(4, test.count)).writePNG(to: png)
            try store.addArtifact(id, name: "examples.png", path: png)
            // (`StudyPlan` refuses interpretability for the classical baseline, which has no network.)
            if let interp = set.interpretability, let net = predictor.model {
                for (file, maps) in try InterpretabilityMaps.compute(interp, model: net, result: test) {
                    try save(file, maps)
                }
            }
            log("\(name) \(set.name): \(try EvaluationSummary(store: store, id: id).text)")
        }
    }
}

extension Runner {
    /// An evaluation's configuration hash and stored JSON.
    package static func evaluationKey(_ set: TestSetConfig, training: String) throws -> (hash: String, json: String) {
        // A file set hashes the files' contents, so a changed scan is measured again.
        let source =
            set.files.isEmpty
            ? SimulatedDataset.contentHash(config: set.simulation, count: set.samples)
            : try set.files.map { f -> String in
                guard let bytes = FileManager.default.contents(atPath: f) else {
                    throw FileError(f, "no such file or folder")
                }
                return SHA256.hex(bytes)
            }.joined(separator: ",")
        // "metrics": 2 since evaluations measure RMSE, HFEN, SSIM and the total-iron error too; 3 since
        // they store each image's mean true and estimated concentration over its SPIO (linearity).
        let json =
            "{\"training\":\"\(training)\",\"set\":\(canonicalJSON(set)),\"dataset\":\"\(source)\",\"metrics\":3}"
        return (SHA256.hex(json), json)
    }
}

/// Why the runner refused to go on.
package enum RunnerError: Error, CustomStringConvertible {
    /// A finished run's files differ from what the store recorded.
    case changedArtifacts(Int64, [String])
    package var description: String {
        switch self {
        case let .changedArtifacts(id, problems):
            return "run \(id)'s files are not the ones it recorded, so it cannot be reused:\n  "
                + problems.joined(separator: "\n  ")
                + "\nrestore them, or run again with --force to recompute (spio verify lists every such file of a "
                + "workspace)"
        }
    }
}
