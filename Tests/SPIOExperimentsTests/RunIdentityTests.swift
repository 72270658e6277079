import Foundation
import GRDB
import SPIOCoding
import SPIODigest
import SPIOPhysics
import SPIOTestSupport
import XCTest

@testable import SPIOExperiments

/// The store's keys: built from `Codable` values, equal to the keys finished runs were stored
/// under (or migrated to them), and what `spio validate` prints.
final class RunIdentityTests: ScratchDirectoryTestCase {
    /// A portable training keeps the key it had when keys were interpolated text, so no finished
    /// model is trained again; its lineage is the same key with any epoch count.
    func testTrainingKeysAreTheStoredOnes() {
        var c = RunConfig()
        c.training.epochs = 7
        let (hash, lineage) = RunIdentity.training(c, dataset: "d")
        XCTAssertEqual(
            hash, SHA256.hex("{\"dataset\":\"d\",\"model\":\(c.model.json),\"training\":\(c.training.json)}"))
        c.training.epochs = 0
        XCTAssertEqual(
            lineage, SHA256.hex("{\"dataset\":\"d\",\"model\":\(c.model.json),\"training\":\(c.training.json)}"))
        c.training.epochs = 30
        XCTAssertEqual(RunIdentity.training(c, dataset: "d").lineage, lineage)
        XCTAssertNotEqual(RunIdentity.training(c, dataset: "d").hash, hash)
    }

    /// v7: an evaluation stored under the interpolated key is re-keyed in place to the canonical
    /// one, which is what the runner computes for the same set, so it is found and reused.
    func testMigrationV7RekeysEvaluations() throws {
        var set = TestSetConfig()
        set.name = "held-out"
        set.simulation.noise.snrDB = .infinity  // non-finite numbers survive the rewrite
        let training = String(repeating: "ab", count: 32)
        let dataset = SimulatedDataset.contentHash(config: set.simulation, count: set.samples)
        let old =
            "{\"training\":\"\(training)\",\"set\":\(canonicalJSON(set)),\"dataset\":\"\(dataset)\",\"metrics\":3}"
        let path = dir + "/v6.sqlite"
        do {
            let db = try DatabaseQueue(path: path)
            try RunStore.migrator.migrate(db, upTo: "v6")
            try db.write { db in
                for (kind, json) in [("evaluate", old), ("train", #"{"a":1}"#)] {
                    try db.execute(
                        sql: """
                            INSERT INTO runs (study, name, kind, config_hash, config_json, status, host, created_at, \
                            directory) VALUES ('s', 'r', ?, ?, ?, 'finished', 'host', '2026-01-01T00:00:00Z', 'd')
                            """, arguments: [kind, SHA256.hex(json), json])
                }
            }
        }
        let store = try RunStore(path: path)
        let key = try RunIdentity.evaluation(set, training: training)
        XCTAssertNotEqual(key.hash, SHA256.hex(old))
        XCTAssertEqual(try store.run(1)!.configJSON, key.json)
        XCTAssertEqual(try store.run(1)!.configHash, key.hash)
        XCTAssertEqual(try store.run(2)!.configJSON, #"{"a":1}"#, "other runs are left as they are")
        let decoded = try decodeCanonicalJSON(RunIdentity.Evaluation.self, from: key.json)
        XCTAssertEqual(decoded.set.simulation.noise.snrDB, .infinity)
        XCTAssertEqual(decoded.dataset, dataset)
    }
}
