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
        // Temporary files and folders of dead processes, at every depth (shards, checkpoints).
        for folder in ["datasets", "models", "evaluations"] {
            PartialPath.removeStale(under: (workspace as NSString).appendingPathComponent(folder))
        }
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
        if !force, let recorded = try recordedOutcome(planned, study: study) { return recorded }
        let c = planned.config
        let data = try dataset(
            c.trainingSimulation, count: c.data.samples, shards: c.data.shardCount, previews: c.data.previews ?? 0,
            study: study, name: planned.name + " data")
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

    /// A planned run whose training and every evaluation are finished in the store while the
    /// training's folder is not here (a store carried to another machine, `spio store unpack`, or
    /// a workspace whose models were removed): its results are reused as recorded and nothing is
    /// recomputed for them. The weights, and the dataset they were trained on, are needed only to
    /// compute an evaluation the store lacks, or a longer run of the lineage (which then finds the
    /// checkpoints it continues from, or trains from the start).
    func recordedOutcome(_ planned: StudyPlan.PlannedRun, study: String) throws -> Outcome? {
        let c = planned.config
        let dataKey = RunIdentity.dataset(c.trainingSimulation, count: c.data.samples).hash
        guard let data = try store.recorded(kind: .dataset, hash: dataKey),
            let training = try store.recorded(kind: .train, hash: RunIdentity.training(c, dataset: dataKey).hash),
            !FileManager.default.fileExists(atPath: training.directory)
        else { return nil }
        var evaluations: [RunStore.Run] = []
        for set in c.evaluation.sets {
            let key = try RunIdentity.evaluation(set, training: training.configHash).hash
            guard let e = try store.recorded(kind: .evaluate, hash: key) else { return nil }
            evaluations.append(e)
        }
        log(
            "reusing the recorded train run \(training.id!) (\(planned.name)) and its evaluations: its folder is not here"
        )
        try store.addToStudy(study, run: data.id!, name: planned.name + " data", grid: planned.gridValues)
        try store.addToStudy(study, run: training.id!, name: planned.name, grid: planned.gridValues)
        for (set, e) in zip(c.evaluation.sets, evaluations) {
            try store.addToStudy(study, run: e.id!, name: "\(planned.name) \(set.name)", grid: planned.gridValues)
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
        let data = RunIdentity.dataset(c.trainingSimulation, count: c.data.samples).hash
        let training = RunIdentity.training(c, dataset: data).hash
        var out = [WorkUnit(kind: .dataset, hash: data), WorkUnit(kind: .train, hash: training)]
        for (i, set) in c.evaluation.sets.enumerated() {
            if set.files.isEmpty {
                out.append(
                    WorkUnit(
                        kind: .dataset, hash: RunIdentity.dataset(set.simulation, count: set.samples).hash,
                        set: i))
            }
            out.append(
                WorkUnit(kind: .evaluate, hash: try RunIdentity.evaluation(set, training: training).hash, set: i))
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
            c.trainingSimulation, count: c.data.samples, shards: c.data.shardCount, previews: c.data.previews ?? 0,
            study: study, name: planned.name + " data")
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

    /// A dataset run (simulated, or reused by its key). `previews`: PNGs of the first images in
    /// its folder (`data.previews`; none for test sets).
    func dataset(
        _ sim: SimulationConfig, count: Int, shards: Int = 1, previews: Int = 0, study: String, name: String
    ) throws -> RunStore.Run {
        let (hash, json) = RunIdentity.dataset(sim, count: count)
        let dir = directory("datasets", hash)
        return try cached(
            kind: .dataset, hash: hash, study: study, name: name, configJSON: json, directory: dir, parent: nil
        ) { run in
            let start = Date()
            var params = flatten(sim, prefix: "simulation").merging([ParamKey.dataSamples.rawValue: String(count)]) {
                a, _ in a
            }
            let files: [String]
            var timed = true
            if shards > 1 {
                // Shard by shard into the dataset's own folder: a stopped run keeps its finished
                // shards and the next one simulates only the rest (whose rate is not the set's).
                let made = try DatasetShards.write(
                    config: sim, count: count, shards: shards, indices: Array(0..<shards), to: dir,
                    previews: previews, shouldStop: shouldStop, progress: { self.progress($0, $1) })
                params[ParamKey.dataShards] = String(shards)
                timed = made == shards
                // Every shard's manifest (its content hash, place and count): the set is reused only
                // while every shard is the one simulated.
                files = (0..<shards).map {
                    DatasetShards.folderName(DatasetShards.shard($0, of: shards, count: count)) + "/manifest.json"
                }
            } else {
                let data = try SimulatedDataset.generate(config: sim, count: count, shouldStop: shouldStop) { done in
                    self.progress("simulating \(done)/\(count)", Double(done) / Double(count))
                }
                // Written under a temporary name and renamed: a crash never leaves a half dataset.
                try PartialPath.write(dir) { try data.write(to: $0, previews: previews) }
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
        let (hash, lineage) = RunIdentity.training(c, dataset: dataset.configHash)
        let dir = directory("models", hash)
        return try cached(
            kind: .train, hash: hash, study: study, name: planned.name, configJSON: c.canonicalJSON, directory: dir,
            parent: dataset.id
        ) { run in
            var params = flatten(c.model, prefix: "model").merging(flatten(c.training, prefix: "training")) { a, _ in a
            }
            for (k, v) in planned.gridValues { params[ParamKey.grid(k)] = v }
            params[ParamKey.studyDescription] = description
            params[ParamKey.trainingLineage] = lineage
            let backend = self.backend ?? c.training.makeBackend(for: c.model, threads: Engine.threadCount)
            params[ParamKey.trainingBackend] = backend.name
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

    /// The newest checkpoint of the training run of the same lineage with the most epochs
    /// checkpointed, at most `epochs`.
    func shorterRun(lineage: String, epochs: Int, excluding id: Int64) throws -> EpochCheckpoint? {
        var best: EpochCheckpoint?
        for r in try store.runs(kind: .train, param: ParamKey.trainingLineage, equals: lineage) where r.id != id {
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
            if let bands = r.bandLosses {
                for (name, v) in zip(MetricKey.bandNames(count: bands.count), bands) {
                    values.append((.bandLoss(name), r.epoch, v))
                }
            }
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
        let (hash, json) = try RunIdentity.evaluation(set, training: training.configHash)
        let dir = directory("evaluations", hash)
        return try cached(
            kind: .evaluate, hash: hash, study: study, name: "\(name) \(set.name)", configJSON: json, directory: dir,
            parent: training.id
        ) { run in
            let id = run.id!
            var params = [
                ParamKey.set.rawValue: set.name, ParamKey.samples.rawValue: String(set.samples),
                ParamKey.seed.rawValue: String(set.seed)
            ]
            .merging(flatten(set.simulation, prefix: "simulation")) { a, _ in a }
            for (k, v) in set.labels { params[ParamKey.label(k)] = v }
            if !set.files.isEmpty { params[ParamKey.files] = set.files.joined(separator: "\n") }
            try store.setParams(id, params)
            let predictor = try Predictor(
                checkpoint: (training.directory as NSString).appendingPathComponent("model.safetensors"))
            let test = try predictor.evaluate(
                data.map { .dataset(directory: $0.directory) } ?? .files(set.files), shouldStop: shouldStop)
            let record = try EvaluationRecord.write(
                test, set: set, model: predictor.model, store: store, id: id, directory: dir)
            log("\(name) \(set.name): \(record.text)")
        }
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
