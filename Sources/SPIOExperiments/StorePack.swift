import Foundation
import SPIOImageIO
import SPIOTraining

/// A workspace's results as they travel with the repository (`reports/store/`): the store itself
/// (runs, params, metrics, artifact digests) as `runs.sqlite.gz`, and for the studies named, the
/// weights and newest checkpoint of each lineage's longest training run, under the workspace
/// paths they came from (`models/<key>/...`). Unpacked into an empty workspace on another machine,
/// every finished run is reused as recorded (`Runner.recordedOutcome`) and a longer run of a packed
/// lineage continues from its checkpoint, bitwise as on the machine that packed it (portable
/// kernels). Datasets, predictions and other models are not packed: datasets are recomputed from
/// their keys when a computation needs them.
package enum StorePack {
    package static let storeFile = "runs.sqlite.gz"

    /// Packs the store at `workspace` into `folder` (replacing what a previous pack wrote there)
    /// with the lineage tips of `studies`; returns the files written, relative to `folder`.
    package static func pack(workspace: String, to folder: String, checkpointsOf studies: [String]) throws -> [String] {
        let store = try RunStore(path: (workspace as NSString).appendingPathComponent("runs.sqlite"))
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let snapshot = PartialPath.of((folder as NSString).appendingPathComponent("runs.sqlite"))
        defer { try? FileManager.default.removeItem(atPath: snapshot) }
        try store.writeSnapshot(to: snapshot)
        try FileBytes.gzip(snapshot, to: (folder as NSString).appendingPathComponent(storeFile))
        var written = [storeFile]
        let models = (folder as NSString).appendingPathComponent("models")
        try PartialPath.write(models) { partial in
            try FileManager.default.createDirectory(atPath: partial, withIntermediateDirectories: true)
            for run in try tips(store, studies) {
                let name = (run.directory as NSString).lastPathComponent
                let target = (partial as NSString).appendingPathComponent(name)
                guard let latest = Trainer.latestCheckpoint(in: Trainer.checkpointDirectory(ofRun: run.directory))
                else { continue }
                let checkpoints = (target as NSString).appendingPathComponent("checkpoints")
                try FileManager.default.createDirectory(atPath: checkpoints, withIntermediateDirectories: true)
                try FileManager.default.copyItem(
                    at: latest.folder,
                    to: URL(fileURLWithPath: checkpoints).appendingPathComponent(latest.folder.lastPathComponent))
                written.append("models/\(name)/checkpoints/\(latest.folder.lastPathComponent)")
                for a in try store.artifacts(run.id!) where run.status == .finished {
                    try FileManager.default.copyItem(
                        atPath: a.path, toPath: (target as NSString).appendingPathComponent(a.name))
                    written.append("models/\(name)/\(a.name)")
                }
            }
        }
        return written
    }

    /// Each lineage's training run with the most epochs checkpointed, among the lineages of the
    /// studies' training runs: a longer run still going (or stopped) counts too, so a computation
    /// stopped at the end of one machine's time continues on the next.
    static func tips(_ store: RunStore, _ studies: [String]) throws -> [RunStore.Run] {
        var lineages: [String] = []
        for study in studies {
            let runs = try store.studyRuns(study).map(\.run).filter { $0.kind == .train }
            guard !runs.isEmpty else { throw RunStoreError.missing("study '\(study)' (no training runs)") }
            for run in runs {
                if let lineage = try store.params(run.id!)[ParamKey.trainingLineage], !lineages.contains(lineage) {
                    lineages.append(lineage)
                }
            }
        }
        var tips: [RunStore.Run] = []
        for lineage in lineages {
            var best: (run: RunStore.Run, epoch: Int)?
            for run in try store.runs(kind: .train, param: ParamKey.trainingLineage, equals: lineage) {
                guard let latest = Trainer.latestCheckpoint(in: Trainer.checkpointDirectory(ofRun: run.directory))
                else { continue }
                if latest.epoch > best?.epoch ?? -1 { best = (run, latest.epoch) }
            }
            if let best { tips.append(best.run) }
        }
        return tips.sorted { $0.id! < $1.id! }
    }

    /// Unpacks `folder` into `workspace`, which must hold no store yet; returns what it wrote.
    package static func unpack(_ folder: String, into workspace: String) throws -> [String] {
        let fm = FileManager.default
        let target = (workspace as NSString).appendingPathComponent("runs.sqlite")
        guard !fm.fileExists(atPath: target) else {
            throw FileError(target, "already holds a store; unpack into an empty workspace")
        }
        let packed = (folder as NSString).appendingPathComponent(storeFile)
        try fm.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        try PartialPath.write(target) { try Data(FileBytes.read(packed)).write(to: URL(fileURLWithPath: $0)) }
        var written = ["runs.sqlite"]
        let models = (folder as NSString).appendingPathComponent("models")
        for name in ((try? fm.contentsOfDirectory(atPath: models)) ?? []).sorted() {
            let destination = ((workspace as NSString).appendingPathComponent("models") as NSString)
                .appendingPathComponent(name)
            guard !fm.fileExists(atPath: destination) else { continue }
            try PartialPath.write(destination) {
                try fm.copyItem(atPath: (models as NSString).appendingPathComponent(name), toPath: $0)
            }
            written.append("models/\(name)")
        }
        // Opening it applies any newer schema migrations and checks that it is a store.
        _ = try RunStore(path: target)
        return written
    }
}
