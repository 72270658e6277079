import Foundation
import SPIOProcess
import SPIOCoding
import SPIOKernels

/// One Slurm array task: computes one unit (a dataset, a training or an evaluation) of a submitted
/// study, and hands the result back as a store file of its own (docs/cluster.md).
///
/// A task never writes the workspace's `runs.sqlite`: SQLite's locking is unreliable on network
/// file systems, and a WAL store needs shared memory on one machine. It writes a private store on
/// the node's local disk, starting from the runs it needs (the submission's snapshot of the
/// workspace's store, and the results of earlier stages), and copies it, finished, into
/// `cluster/results/<kind>-<hash>.sqlite` under a temporary name that is renamed. The files it
/// computes (datasets, checkpoints, predictions) go to the shared workspace as in a local run.
package enum SlurmTask {
    /// What the coordinator writes once per submission (`tasks.json`) and every task reads.
    package struct Spec: Codable, Sendable {
        /// A unit and the planned run (index into the study's plan) it belongs to.
        package struct Item: Codable, Sendable {
            package var run: Int
            package var unit: Runner.WorkUnit
        }
        package var study: String
        /// The study file (absolute) and the `--set` overrides, planned again by each task.
        package var file: String
        package var overrides: [String]
        /// The coordinator's working directory, where relative paths in the study resolve.
        package var directory: String
        package var workspace: String
        /// The snapshot of the workspace's store at submission.
        package var base: String
        /// Where finished tasks put their result stores.
        package var results: String
        package var threads: Int
        package var kernel: KernelMode
        /// The units of each stage, keyed by kind (`dataset`, `train`, `evaluate`).
        package var stages: [String: [Item]]

        package static func load(_ path: String) throws -> Spec {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw SlurmError.unreadable(path, "no such file")
            }
            do { return try JSONDecoder().decode(Spec.self, from: data) } catch {
                throw SlurmError.unreadable(path, "\(error)")
            }
        }
    }

    /// The result file of a unit in `folder`.
    package static func resultPath(_ unit: Runner.WorkUnit, in folder: String) -> String {
        (folder as NSString).appendingPathComponent("\(unit.kind.rawValue)-\(unit.hash).sqlite")
    }

    /// Computes item `index` of `stage` and writes its result store; `log` gets the runner's lines.
    package static func run(_ spec: Spec, stage: RunKind, index: Int, log: @escaping (String) -> Void) throws {
        guard let items = spec.stages[stage.rawValue], items.indices.contains(index) else {
            throw SlurmError.noSuchTask(stage.rawValue, index, spec.stages[stage.rawValue]?.count ?? 0)
        }
        let item = items[index]
        guard FileManager.default.changeCurrentDirectoryPath(spec.directory) else {
            throw SlurmError.unreadable(spec.directory, "cannot enter the study's working directory")
        }
        let plan = try StudyPlan(path: spec.file, overrides: spec.overrides)
        // The node's own disk: SQLite is reliable there, and the result is copied out whole.
        let scratchRoot = ProcessInfo.processInfo.environment["TMPDIR"] ?? NSTemporaryDirectory()
        let scratch = (scratchRoot as NSString).appendingPathComponent("spio-task-\(getpid())-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let store = try RunStore(
            path: (scratch as NSString).appendingPathComponent("runs.sqlite"), workspace: spec.workspace)
        let runner = try Runner(workspace: spec.workspace, store: store)
        runner.log = log
        let units = plan.runs.indices.contains(item.run) ? try Runner.units(of: plan.runs[item.run]) : []
        guard units.contains(item.unit) else { throw SlurmError.studyChanged(spec.file, KernelPolicy.state.core) }
        // The units it needs: earlier stages' results of this submission first, then what the
        // workspace's store held at submission.
        let earlier = try units.map { SlurmTask.resultPath($0, in: spec.results) }.filter {
            $0 != resultPath(item.unit, in: spec.results) && FileManager.default.fileExists(atPath: $0)
        }.map { try RunStore(path: $0, access: .snapshot, workspace: spec.workspace) }
        let base = try RunStore(path: spec.base, access: .snapshot, workspace: spec.workspace)
        runner.results = RunResults(origin: "slurm task", stores: earlier + [base], computed: item.unit) {
            kind, _, name in
            SlurmError.dependencyMissing(kind.rawValue, name)
        }
        let planned = plan.runs[item.run]
        log("\(stage.rawValue) task \(index): \(planned.name), \(item.unit.kind.rawValue) \(item.unit.hash.prefix(12))")
        try runner.compute(item.unit, of: planned, study: plan.study, description: plan.description)
        try store.writeSnapshot(to: resultPath(item.unit, in: spec.results))
    }
}
