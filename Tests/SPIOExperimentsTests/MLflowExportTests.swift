import Foundation
import SPIOTestSupport
import XCTest

@testable import SPIOExperiments

/// `spio export mlflow` read back by MLflow's own client (the `mlflow` package from PyPI; .ci/run
/// installs mlflow-skinny): every run, parameter and metric step of the store, and the links.
final class MLflowExportTests: ScratchDirectoryTestCase {
    func testMLflowReadsEveryRunParameterAndMetricOfTheStore() throws {
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = ["python3", "-c", "import mlflow"]
        check.standardError = FileHandle.nullDevice
        try check.run(); check.waitUntilExit()
        if check.terminationStatus != 0 {
            // CI installs it; elsewhere say so instead of passing silently.
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("mlflow is not installed in CI") }
            throw XCTSkip("the mlflow Python package is not installed (pip install mlflow-skinny)")
        }
        let study = try tinyStudy("export", seed: 2, testSamples: 3, testSeed: 4)
        let ws = dir + "/ws"
        let run = try WorkspaceFuzzTests.spio(["run", study, "--workspace", ws, "--report", "none"])
        XCTAssertEqual(run.status, 0, run.text)
        let export = try WorkspaceFuzzTests.spio([
            "export", "mlflow", "export", "--workspace", ws, "--out", dir + "/mlruns"
        ])
        XCTAssertEqual(export.status, 0, export.text)

        let script = """
            import json, sys
            from mlflow.tracking import MlflowClient
            c = MlflowClient(tracking_uri="file://" + sys.argv[1])
            e = c.get_experiment_by_name("export")
            out = []
            for r in c.search_runs([e.experiment_id], max_results=1000):
                metrics = {k: [[m.step, repr(m.value)] for m in sorted(c.get_metric_history(r.info.run_id, k), key=lambda m: m.step)]
                           for k in r.data.metrics}
                out.append({"id": r.data.tags["spio.run_id"], "name": r.info.run_name, "status": r.info.status,
                            "params": r.data.params, "metrics": metrics, "kind": r.data.tags["spio.kind"],
                            "parent": r.data.tags.get("mlflow.parentRunId", ""), "mlflow_id": r.info.run_id,
                            "artifacts": sorted(a.path for a in c.list_artifacts(r.info.run_id))})
            print(json.dumps(out))
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, dir + "/mlruns"]
        var environment = ProcessInfo.processInfo.environment
        environment["MLFLOW_ALLOW_FILE_STORE"] = "true"
        p.environment = environment
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let runs = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])

        let store = try RunStore(path: ws + "/runs.sqlite", access: .readOnly)
        let used = try store.studyRuns("export")
        XCTAssertEqual(runs.count, used.count)
        let byID = Dictionary(uniqueKeysWithValues: runs.map { ($0["id"] as! String, $0) })
        for u in used {
            let r = try XCTUnwrap(byID[String(u.run.id!)], "run \(u.run.id!) missing")
            XCTAssertEqual(r["name"] as? String, u.name)
            XCTAssertEqual(r["status"] as? String, "FINISHED")
            XCTAssertEqual(r["params"] as? [String: String], try store.params(u.run.id!))
            // Values travel as Python's repr (exact); Foundation's JSON parser may round doubles.
            let metrics = (r["metrics"] as! [String: [[Any]]]).mapValues { list in
                list.map { [Double($0[0] as! Int), Double($0[1] as! String)!] }
            }
            let stored = Dictionary(grouping: try store.metrics(u.run.id!), by: \.key.rawValue)
            XCTAssertEqual(Set(metrics.keys), Set(stored.keys))
            for (key, values) in stored {
                XCTAssertEqual(
                    metrics[key]!.map { [$0[0], $0[1]] },
                    values.sorted { $0.step < $1.step }.map { [Double($0.step), $0.value] }, "\(u.name) \(key)")
            }
            XCTAssertEqual(r["artifacts"] as? [String], try store.artifacts(u.run.id!).map(\.name).sorted())
        }
        // The evaluation's parent is the training's MLflow run.
        let training = runs.first { $0["kind"] as? String == "train" }!
        let evaluation = runs.first { $0["kind"] as? String == "evaluate" }!
        XCTAssertEqual(evaluation["parent"] as? String, training["mlflow_id"] as? String)
    }
}
