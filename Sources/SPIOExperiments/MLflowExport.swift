import Foundation
import SPIODigest

/// A study's runs written as an MLflow file store (`mlruns/`): one experiment named after the
/// study, one MLflow run per run of the study (datasets, trainings, evaluations) with its
/// parameters, every metric at every step, tags (kind, status, configuration hash, git commit,
/// kernel mode, backend; evaluations and trainings point at their parent run) and its recorded
/// files as artifacts, linked from the workspace rather than copied. MLflow's client and UI read it
/// (`mlflow ui --backend-store-uri ROOT`, docs/mlflow.md). Exporting again rewrites the same
/// MLflow runs: their ids derive from the store's run ids and configuration hashes.
package struct MLflowExport {
    package let store: RunStore
    package let study: String
    package init(store: RunStore, study: String) { self.store = store; self.study = study }

    /// Writes the experiment under `root` and returns its MLflow experiment id and run count.
    package func write(to root: String) throws -> (experimentID: String, runs: Int) {
        let used = try store.studyRuns(study)
        guard !used.isEmpty else { throw ReportError.noRuns(study) }
        let fm = FileManager.default
        let rootURL = URL(fileURLWithPath: root).standardizedFileURL
        try fm.createDirectory(at: rootURL, withIntermediateDirectories: true)
        try writeDefaultExperiment(rootURL)
        let experimentID = try experimentID(in: rootURL)
        let experiment = rootURL.appendingPathComponent(experimentID)
        try fm.createDirectory(at: experiment, withIntermediateDirectories: true)
        let created = Self.milliseconds(used.map(\.run.createdAt).min() ?? RunStore.now())
        try Self.yaml([
            ("artifact_location", Self.quoted(experiment.absoluteString)),
            ("creation_time", String(created)), ("experiment_id", Self.quoted(experimentID)),
            ("last_update_time", String(Self.milliseconds(RunStore.now()))), ("lifecycle_stage", "active"),
            ("name", Self.quoted(study))
        ]).write(to: experiment.appendingPathComponent("meta.yaml"), atomically: true, encoding: .utf8)

        let ids = Dictionary(used.map { ($0.run.id!, mlflowID($0.run)) }, uniquingKeysWith: { a, _ in a })
        for u in used {
            let r = u.run, id = ids[r.id!]!
            let dir = experiment.appendingPathComponent(id)
            try? fm.removeItem(at: dir)
            // MLflow reads a run only where it finds these folders.
            for sub in ["params", "metrics", "tags", "artifacts"] {
                try fm.createDirectory(at: dir.appendingPathComponent(sub), withIntermediateDirectories: true)
            }
            let start = Self.milliseconds(r.startedAt ?? r.createdAt)
            let end = r.finishedAt.map(Self.milliseconds)
            // The run's recorded files, linked (not copied) from the workspace.
            let artifacts = dir.appendingPathComponent("artifacts")
            for a in try store.artifacts(r.id!) {
                try fm.createSymbolicLink(
                    at: artifacts.appendingPathComponent(a.name),
                    withDestinationURL: URL(fileURLWithPath: a.path).standardizedFileURL)
            }
            try Self.yaml([
                ("artifact_uri", Self.quoted(artifacts.absoluteString)), ("end_time", end.map(String.init) ?? "null"),
                ("entry_point_name", "''"), ("experiment_id", Self.quoted(experimentID)),
                ("lifecycle_stage", "active"), ("run_id", id), ("run_name", Self.quoted(u.name)), ("run_uuid", id),
                ("source_name", "''"), ("source_type", "4"), ("source_version", "''"),
                ("start_time", String(start)), ("status", String(Self.status(r.status))), ("tags", "[]"),
                ("user_id", Self.quoted(r.host))
            ]).write(to: dir.appendingPathComponent("meta.yaml"), atomically: true, encoding: .utf8)
            let params = try store.params(r.id!)
            for (key, value) in params {
                try Self.put(value, dir.appendingPathComponent("params"), key)
            }
            var lines: [String: String] = [:]
            for m in try store.metrics(r.id!) where m.value.isFinite {
                lines[m.key.rawValue, default: ""] += "\(end ?? start) \(m.value) \(m.step)\n"
            }
            for (key, text) in lines { try Self.put(text, dir.appendingPathComponent("metrics"), key) }
            let environment = try store.environment(r.id!)
            var tags: [String: String] = [
                "mlflow.runName": u.name, "spio.kind": r.kind.rawValue, "spio.status": r.status.rawValue,
                "spio.run_id": String(r.id!), "spio.config_hash": r.configHash, "spio.study": study
            ]
            if let parent = r.parentID, let p = ids[parent] { tags["mlflow.parentRunId"] = p }
            if let commit = environment?.gitCommit, !commit.isEmpty { tags["mlflow.source.git.commit"] = commit }
            for (key, value) in [
                ("kernel_mode", environment?.kernelMode), ("blas_core", environment?.blasCore),
                ("host", environment?.host), ("cpu", environment?.cpu)
            ] {
                if let v = value, !v.isEmpty { tags["spio.\(key)"] = v }
            }
            if let backend = params[ParamKey.trainingBackend] { tags["spio.backend"] = backend }
            if let error = r.error { tags["spio.error"] = error }
            for (key, value) in tags { try Self.put(value, dir.appendingPathComponent("tags"), key) }
        }
        return (experimentID, used.count)
    }

    /// The experiment of this study under `root` if one exists, else the next free numeric id.
    private func experimentID(in root: URL) throws -> String {
        var highest = 0
        for name in (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? [] {
            guard let n = Int(name) else { continue }
            highest = max(highest, n)
            let meta = root.appendingPathComponent(name).appendingPathComponent("meta.yaml")
            if let text = try? String(contentsOf: meta, encoding: .utf8),
                text.components(separatedBy: "\n").contains("name: \(Self.quoted(study))")
            {
                return name
            }
        }
        return String(highest + 1)
    }

    /// MLflow's file store expects its default experiment `0`.
    private func writeDefaultExperiment(_ root: URL) throws {
        let zero = root.appendingPathComponent("0")
        guard !FileManager.default.fileExists(atPath: zero.appendingPathComponent("meta.yaml").path) else { return }
        try FileManager.default.createDirectory(at: zero, withIntermediateDirectories: true)
        let now = String(Self.milliseconds(RunStore.now()))
        try Self.yaml([
            ("artifact_location", Self.quoted(zero.absoluteString)), ("creation_time", now),
            ("experiment_id", "'0'"), ("last_update_time", now), ("lifecycle_stage", "active"), ("name", "Default")
        ]).write(to: zero.appendingPathComponent("meta.yaml"), atomically: true, encoding: .utf8)
    }

    /// A 32-digit hexadecimal id (MLflow's form) from the store's run id and configuration hash.
    private func mlflowID(_ r: RunStore.Run) -> String {
        String(SHA256.hex("\(study)\n\(r.id!)\n\(r.configHash)").prefix(32))
    }

    /// MLflow's run status codes: RUNNING 1, FINISHED 3, FAILED 4, KILLED 5.
    static func status(_ s: RunStatus) -> Int {
        switch s {
        case .running: return 1
        case .finished: return 3
        case .failed: return 4
        case .interrupted: return 5
        }
    }

    /// A key's file: MLflow keys may contain `/`, which name subfolders.
    private static func put(_ text: String, _ folder: URL, _ key: String) throws {
        let file = folder.appendingPathComponent(key)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: file, atomically: true, encoding: .utf8)
    }

    static func milliseconds(_ iso: String) -> Int64 {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let date = f.date(from: iso) ?? ISO8601DateFormatter().date(from: iso) ?? Date(timeIntervalSince1970: 0)
        return Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    /// A YAML single-quoted scalar.
    static func quoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "''") + "'" }

    static func yaml(_ pairs: [(String, String)]) -> String { pairs.map { "\($0.0): \($0.1)\n" }.joined() }
}
