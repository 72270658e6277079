import Foundation
import GRDB
import SPIOTestSupport
import XCTest
@testable import SPIOExperiments

final class RunStoreTests: ScratchDirectoryTestCase {
    /// Opening a fresh store from many threads at once: the advisory lock is held until the
    /// migrations have run, so none of them applies a migration twice ("duplicate column").
    func testManyOpenersOfAFreshStoreAtOnce() throws {
        for round in 0..<5 {
            let path = dir + "/fresh-\(round)/runs.sqlite"
            let errors = NSLock()
            var failures: [String] = []
            DispatchQueue.concurrentPerform(iterations: 8) { _ in
                do { _ = try RunStore(path: path) } catch {
                    errors.lock(); failures.append("\(error)"); errors.unlock()
                }
            }
            XCTAssertEqual(failures, [], "round \(round)")
        }
    }

    func testRoundTrips() throws {
        let store = try RunStore(path: dir + "/runs.sqlite")
        let run = try store.start(
            study: "s", name: "n", kind: .train, hash: "abc", configJSON: "{}", directory: dir, parentID: nil)
        try store.setParams(run.id!, ["model.head": "image", "training.epochs": "3"])
        try store.log(run.id!, [(MetricKey.trainLoss, 1, 0.5), (.trainLoss, 2, 0.25), (.nmae, 0, 0.125)])
        try store.log(run.id!, [(MetricKey.trainLoss, 2, 0.2)])  // a resumed run rewrites, never duplicates
        try "hello".write(toFile: dir + "/a.txt", atomically: true, encoding: .utf8)
        try store.addArtifact(run.id!, name: "a.txt", path: dir + "/a.txt")
        let environment = RunEnvironment(
            gitCommit: "c0ffee", gitDirty: true, host: "h", os: "linux", swiftVersion: "6.3", blas: "OpenBLAS",
            threads: 2, cpu: "EPYC", kernelMode: "portable (Haswell)", blasCore: "Haswell")
        try store.recordEnvironment(run.id!, environment)
        try store.finish(run.id!)
        let back = try store.run(run.id!)!
        XCTAssertEqual(back.status, .finished)
        XCTAssertNotNil(back.seconds)
        XCTAssertEqual(try store.params(run.id!), ["model.head": "image", "training.epochs": "3"])
        XCTAssertEqual(try store.metrics(run.id!, key: .trainLoss).map(\.value), [0.5, 0.2])
        let art = try store.artifacts(run.id!)[0]
        XCTAssertEqual(art.sha256, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
        XCTAssertEqual(art.bytes, 5)
        XCTAssertEqual(try store.environment(run.id!), environment, "read back as the record it was written from")
        XCTAssertNil(try store.environment(run.id! + 1), "a run that recorded no environment")
        XCTAssertEqual(try store.finished(kind: .train, hash: "abc")?.id, run.id)
        XCTAssertNil(try store.finished(kind: .train, hash: "abd"))
    }

    /// v5 turns the paths earlier versions stored as given (relative to where spio ran, or
    /// absolute) into paths relative to the workspace.
    func testV5MakesPathsWorkspaceRelative() throws {
        let store = try RunStore(path: dir + "/runs.sqlite")
        let run = try store.start(
            study: "s", name: "n", kind: .train, hash: "h", configJSON: "{}",
            directory: dir + "/models/0123456789abcdef",
            parentID: nil)
        XCTAssertEqual(run.directory, dir + "/models/0123456789abcdef")
        let raw = try DatabaseQueue(path: dir + "/runs.sqlite")
        try raw.write { db in
            try db.execute(sql: "UPDATE runs SET directory = 'spio-runs/models/0123456789abcdef'")
            try db.execute(
                sql:
                    "INSERT INTO artifacts (run_id, name, path, sha256, bytes) VALUES (?, 'm', "
                    + "'/old/place/ws/models/0123456789abcdef/model.safetensors', 'x', 1)",
                arguments: [run.id!])
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v5'")
        }
        try raw.close()
        let reopened = try RunStore(path: dir + "/runs.sqlite")
        XCTAssertEqual(try reopened.run(run.id!)?.directory, dir + "/models/0123456789abcdef")
        XCTAssertEqual(try reopened.artifacts(run.id!).first?.path, dir + "/models/0123456789abcdef/model.safetensors")
    }

    /// A store written by a newer version is refused with a message, not misread.
    /// Another application's SQLite file, or a file that is not SQLite, named runs.sqlite is
    /// refused byte for byte untouched (opening it for writing would switch it to WAL and add
    /// tables); an unknown status written by hand is named, not dumped as a GRDB row.
    func testForeignFilesAreRefusedUntouched() throws {
        let foreign = dir + "/foreign/runs.sqlite"
        try FileManager.default.createDirectory(atPath: dir + "/foreign", withIntermediateDirectories: true)
        try DatabaseQueue(path: foreign).write {
            try $0.execute(sql: "CREATE TABLE notes(a); INSERT INTO notes VALUES (1)")
        }
        let before = try Data(contentsOf: URL(fileURLWithPath: foreign))
        for access in [RunStore.Access.readWrite, .readOnly] {
            XCTAssertThrowsError(try RunStore(path: foreign, access: access)) {
                XCTAssertEqual(
                    "\($0)",
                    "\(foreign): not a DeepSPIO-Lab run store (an SQLite database with the tables notes); it was left "
                        + "untouched: move it, or give another --workspace")
            }
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: foreign)), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/foreign"), ["runs.sqlite"])
        try "notes\n".write(toFile: foreign, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RunStore(path: foreign)) { XCTAssertTrue("\($0)".contains("(not an SQLite file)")) }

        let store = try RunStore(path: dir + "/runs.sqlite")
        let run = try store.start(
            study: "s", name: "n", kind: .train, hash: "h", configJSON: "{}", directory: dir, parentID: nil)
        try DatabaseQueue(path: dir + "/runs.sqlite").write {
            try $0.execute(sql: "UPDATE runs SET status = 'weird' WHERE id = ?", arguments: [run.id!])
        }
        XCTAssertThrowsError(try store.runs()) {
            XCTAssertEqual(
                WorkspaceFault.describe($0),
                "the run store (runs.sqlite): could not decode RunStatus from database value \"weird\" in column "
                    + "status; this version cannot read that row: the store was edited by hand, is damaged or was "
                    + "written by another version")
        }
    }

    func testNewerStoreIsRefused() throws {
        _ = try RunStore(path: dir + "/runs.sqlite")
        let raw = try DatabaseQueue(path: dir + "/runs.sqlite")
        try raw.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99')") }
        try raw.close()
        XCTAssertThrowsError(try RunStore(path: dir + "/runs.sqlite")) { error in
            XCTAssertTrue(
                "\(error)".contains("written by a newer DeepSPIO-Lab") && "\(error)".contains("v99"), "\(error)")
        }
    }

    /// A killed process's `running` run is resumable; a live one's is not.
    func testStaleRunningRunsAreResumable() throws {
        let store = try RunStore(path: dir + "/runs.sqlite")
        let mine = try store.start(
            study: "s", name: "n", kind: .train, hash: "h", configJSON: "{}", directory: dir, parentID: nil)
        XCTAssertNil(try store.resumable(kind: .train, hash: "h"), "this process is alive")
        try store.db.write {
            try $0.execute(sql: "UPDATE runs SET pid = 999999999 WHERE id = ?", arguments: [mine.id!])
        }
        XCTAssertEqual(try store.resumable(kind: .train, hash: "h")?.id, mine.id)
    }

    /// A store written by schema v1 (no durations, no parent links) is upgraded in place.
    /// v6: a dataset's stored configuration, the simulation's JSON followed by `,"count":N`, becomes
    /// JSON ({"count": N, "simulation": ...}); other runs' are left as they are.
    func testMigrationV6MakesDatasetConfigurationsJSON() throws {
        let path = dir + "/v5.sqlite"
        do {
            let old = try DatabaseQueue(path: path)
            try RunStore.migrator.migrate(old, upTo: "v5")
            try old.write { db in
                for (kind, json) in [("dataset", #"{"fovMM":50,"seed":1},"count":48"#), ("train", #"{"a":1}"#)] {
                    try db.execute(
                        sql: """
                            INSERT INTO runs (study, name, kind, config_hash, config_json, status, host, created_at, \
                            directory) VALUES ('s', 'r', ?, 'h', ?, 'finished', 'host', '2026-01-01T00:00:00Z', 'd')
                            """, arguments: [kind, json])
                }
            }
        }
        let store = try RunStore(path: path)
        XCTAssertEqual(try store.run(1)!.configJSON, #"{"count":48,"simulation":{"fovMM":50,"seed":1}}"#)
        XCTAssertEqual(try store.run(2)!.configJSON, #"{"a":1}"#)
    }

    func testMigrationFromV1() throws {
        let path = dir + "/old.sqlite"
        do {
            let old = try DatabaseQueue(path: path)
            try RunStore.migrator.migrate(old, upTo: "v1")
            try old.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO runs (study, name, kind, config_hash, config_json, status, host, created_at, \
                        started_at, finished_at, directory)
                        VALUES ('s', 'old run', 'train', 'h', '{}', 'finished', 'host', '2026-01-01T00:00:00Z', \
                        '2026-01-01T00:00:00Z', '2026-01-01T00:01:30Z', '/x')
                        """)
                try db.execute(sql: "INSERT INTO metrics (run_id, key, step, value) VALUES (1, 'loss', 1, 0.75)")
                try db.execute(
                    sql: """
                        INSERT INTO params (run_id, key, value) VALUES (1, 'grid.model.head', 'image'), (1, \
                        'grid.training.seed', '2'),
                          (1, 'study.description', 'An old study.')
                        """)
                XCTAssertFalse(try db.columns(in: "runs").map(\.name).contains("seconds"))
            }
        }
        let store = try RunStore(path: path)
        let run = try store.run(1)!
        XCTAssertEqual(run.name, "old run")
        XCTAssertEqual(run.seconds ?? 0, 90, accuracy: 1e-3, "v2 fills durations of finished runs")
        XCTAssertNil(run.parentID)
        XCTAssertEqual(try store.metrics(1).map(\.value), [0.75])
        try store.db.read { db in XCTAssertTrue(try db.indexes(on: "runs").map(\.name).contains("runs_by_hash")) }
        XCTAssertEqual(
            try store.db.read { try RunStore.migrator.appliedMigrations($0) },
            ["v1", "v2", "v3", "v4", "v5", "v6", "v7"])
        // v3: every old run belongs to its study, with its grid values; the study has its description.
        let used = try store.studyRuns("s")
        XCTAssertEqual(used.map(\.run.id), [1])
        XCTAssertEqual(used[0].name, "old run")
        XCTAssertEqual(used[0].grid.map { "\($0.0)=\($0.1)" }, ["model.head=image", "training.seed=2"])
        XCTAssertEqual(try store.study("s")?.description, "An old study.")
    }

    /// Both the sqlite3 shell and Python's sqlite3 read the tables as docs/run-store.md documents them.
    func testOtherClientsReadTheTables() throws {
        let store = try RunStore(path: dir + "/runs.sqlite")
        let run = try store.start(
            study: "s", name: "n", kind: .train, hash: "h", configJSON: "{}", directory: dir, parentID: nil)
        try store.log(run.id!, [(MetricKey.validationNMAE, 1, 0.875)])
        try store.finish(run.id!)
        func output(_ tool: String, _ args: [String]) throws -> String {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [tool] + args
            let pipe = Pipe()
            p.standardOutput = pipe
            try p.run(); p.waitUntilExit()
            return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(
                in: .whitespacesAndNewlines)
        }
        XCTAssertEqual(
            try output(
                "sqlite3",
                [
                    dir + "/runs.sqlite",
                    "SELECT r.kind, r.status, m.key, m.step, m.value FROM runs r JOIN metrics m ON m.run_id = r.id"
                ]), "train|finished|validation.nmae|1|0.875")
        let py =
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); print(c.execute(\"SELECT study, name, value FROM "
            + "runs JOIN metrics ON run_id = runs.id\").fetchall())"
        XCTAssertEqual(try output("python3", ["-c", py, dir + "/runs.sqlite"]), "[('s', 'n', 0.875)]")
    }
}
