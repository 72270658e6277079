import Foundation
import GRDB
import SPIOProcess
import SPIOTestSupport
import XCTest

@testable import SPIOExperiments

/// `spio run --executor slurm` against a real Slurm: the one-node cluster of
/// `scripts/slurm-local.sh`, which `.ci/run` starts. Without a controller the tests skip, except in
/// CI, where that is a failure.
final class SlurmExecutorTests: ScratchDirectoryTestCase {
    override func setUpWithError() throws {
        let up =
            (try? Subprocess.run("sinfo", ["-h", "-o", "%t"]))
            .map { r in r.status == 0 && ["idle", "mix", "alloc"].contains { r.output.contains($0) } } ?? false
        if !up {
            let why = "no Slurm controller with an idle node (start one with scripts/slurm-local.sh start)"
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail(why) }
            throw XCTSkip(why)
        }
    }

    /// Two grid points sharing their datasets: 6 units in 3 stages, 2 cells.
    func gridStudy() throws -> String {
        let path = "\(dir)/slurmgrid.yaml"
        try """
        study: slurmgrid
        description: Two tiny models on the same data, through Slurm.
        simulation: {imageSize: 32, seed: 3}
        data: {samples: 24}
        model: {preset: tiny}
        training: {epochs: 2, batchSize: 8, learningRate: 0.003, seed: 1}
        evaluation: {sets: [{name: test, samples: 6, seed: 91}]}
        grid: {model.architecture: [deepspio, unet]}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func spio(_ args: [String]) throws -> (status: Int32, text: String) {
        var env = ProcessInfo.processInfo.environment
        env["SPIO_KERNEL"] = nil
        return try RunnerTests.output(args, environment: env, in: dir)
    }

    /// Everything of a store that does not depend on when or where it was computed: runs (ids,
    /// kinds, hashes, parents, names), parameters, metrics other than times, artifacts and studies.
    func contents(_ workspace: String) throws -> [String] {
        let store = try RunStore(path: workspace + "/runs.sqlite", access: .readOnly)
        return try store.db.read { db in
            try [
                "SELECT id, study, name, kind, config_hash, config_json, status, directory, parent_id FROM runs ORDER BY id",
                "SELECT * FROM params ORDER BY run_id, key",
                "SELECT * FROM metrics WHERE key NOT IN ('epoch.seconds', 'samples_per_second') ORDER BY run_id, key, step",
                "SELECT * FROM artifacts ORDER BY run_id, name",
                "SELECT study, run_id, name, grid_json FROM study_runs ORDER BY study, run_id"
            ].flatMap { sql in try Row.fetchAll(db, sql: sql).map { "\($0)" } }
        }
    }

    func files(_ folder: String) throws -> [String: Data] {
        var out: [String: Data] = [:]
        for name in try FileManager.default.subpathsOfDirectory(atPath: folder) {
            var isFolder: ObjCBool = false
            let path = folder + "/" + name
            if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), !isFolder.boolValue {
                out[name] = FileManager.default.contents(atPath: path)
            }
        }
        return out
    }

    func testSlurmRunRecordsTheSameStoreAndReportAsALocalRun() throws {
        let study = try gridStudy()
        let local = try spio(["run", study, "--workspace", "local", "--report", "report-local"])
        XCTAssertEqual(local.status, 0, local.text)
        // One task per array: each stage of two tasks is split into two arrays. One thread per task
        // where the local run used two: the numbers must not change.
        let slurm = try spio([
            "run", study, "--workspace", "slurm", "--report", "report-slurm", "--executor", "slurm",
            "--max-array-size", "1", "--max-running", "2", "--cpus-per-task", "1", "--partition", "local", "--time",
            "10", "--memory", "2G"
        ])
        XCTAssertEqual(slurm.status, 0, slurm.text)
        for stage in ["dataset", "train", "evaluate"] {
            for part in ["0-0 of 2", "1-1 of 2"] {
                XCTAssertTrue(
                    slurm.text.contains("\(stage) tasks \(part)"), "no '\(stage) tasks \(part)' in:\n\(slurm.text)")
            }
        }
        XCTAssertEqual(slurm.text.components(separatedBy: "computed by slurm task").count - 1, 6, slurm.text)
        let store = try RunStore(path: "\(dir)/slurm/runs.sqlite", access: .readOnly)
        for run in try store.runs(kind: .train) { XCTAssertEqual(try store.environment(run.id!)?.threads, 1) }

        let localStore = try contents("\(dir)/local"), slurmStore = try contents("\(dir)/slurm")
        XCTAssertGreaterThan(localStore.count, 100)
        XCTAssertEqual(localStore, slurmStore)
        let localReport = try files("\(dir)/report-local"), slurmReport = try files("\(dir)/report-slurm")
        XCTAssertTrue(localReport.keys.contains("report.md"))
        XCTAssertEqual(localReport.keys.sorted(), slurmReport.keys.sorted())
        for (name, data) in localReport { XCTAssertEqual(data, slurmReport[name], "\(name) differs") }
        // Every result was recorded: nothing is left for a later run to collect.
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(dir)/slurm/cluster"))

        // A second run finds everything in the store and submits nothing.
        let again = try spio(["run", study, "--workspace", "slurm", "--report", "none", "--executor", "slurm"])
        XCTAssertEqual(again.status, 0, again.text)
        XCTAssertFalse(again.text.contains("submitted"), again.text)
        XCTAssertEqual(try contents("\(dir)/slurm"), slurmStore)
    }

    func testAKilledTaskCostsOnlyItsCell() throws {
        let study = try gridStudy()
        // The tasks' program kills the second training (the unet cell) the first time it starts.
        let wrapper = "\(dir)/task-wrapper.sh"
        try """
        #!/bin/sh
        case "$*" in
          *"--stage train --index 1"*)
            if [ ! -e '\(dir)/killed-once' ]; then
              touch '\(dir)/killed-once'; echo "test: killing this task"; kill -KILL $$
            fi ;;
        esac
        exec '\(RunnerTests.spio.path)' "$@"

        """.write(toFile: wrapper, atomically: true, encoding: .utf8)
        chmod(wrapper, 0o755)
        let first = try spio([
            "run", study, "--workspace", "ws", "--report", "none", "--executor", "slurm", "--task-program", wrapper
        ])
        XCTAssertNotEqual(first.status, 0, first.text)
        XCTAssertTrue(first.text.contains("1 of 2 planned runs did not finish on Slurm"), first.text)
        XCTAssertTrue(first.text.contains("test: killing this task"), "the task's log is shown:\n\(first.text)")
        let store = try RunStore(path: "\(dir)/ws/runs.sqlite", access: .readOnly)
        let trains = try store.runs(kind: .train)
        XCTAssertEqual(trains.map(\.status), [.finished, .failed])
        XCTAssertEqual(try store.runs(kind: .evaluate).map(\.status), [.finished])

        // Only the killed cell is submitted again: its training and its evaluation, no dataset.
        let second = try spio([
            "run", study, "--workspace", "ws", "--report", "report-ws", "--executor", "slurm", "--task-program", wrapper
        ])
        XCTAssertEqual(second.status, 0, second.text)
        XCTAssertTrue(second.text.contains("train tasks 0-0 of 1"), second.text)
        XCTAssertTrue(second.text.contains("evaluate tasks 0-0 of 1"), second.text)
        XCTAssertFalse(second.text.contains("dataset tasks"), second.text)
        XCTAssertEqual(second.text.components(separatedBy: "computed by slurm task").count - 1, 2, second.text)
        XCTAssertEqual(try store.runs(kind: .train).map(\.status), [.finished, .finished])
        // The failed run was recomputed under its own id: the report equals a clean local run's.
        let local = try spio(["run", study, "--workspace", "local", "--report", "report-local"])
        XCTAssertEqual(local.status, 0, local.text)
        XCTAssertEqual(try files("\(dir)/report-ws"), try files("\(dir)/report-local"))
    }
}
