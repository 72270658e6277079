import Foundation
import SPIOTestSupport
import XCTest
@testable import SPIOExperiments

/// The kernel policy through the `spio` executable: it re-executes itself with the portable kernels
/// whatever OpenBLAS would pick, records mode and kernel with every run, keeps a user's own
/// OPENBLAS_CORETYPE (as another run), and an audit re-runs on the kernels the run was trained with.
final class KernelModeTests: ScratchDirectoryTestCase {

    /// Runs `spio` with OpenBLAS and spio kernel variables removed from the environment, then `extra` added.
    @discardableResult
    func spio(_ args: [String], extra: [String: String] = [:]) throws -> (status: Int32, output: String) {
        var env = ProcessInfo.processInfo.environment
        for k in ["OPENBLAS_CORETYPE", "SPIO_KERNEL", "SPIO_KERNEL_CORE"] { env[k] = nil }
        let r = try RunnerTests.output(args, environment: env.merging(extra) { _, b in b })
        return (r.status, r.text)
    }

    func testPortableByDefaultUserKernelRecordedAndAuditedOnItsOwnKernel() throws {
        let file = "\(dir)/k.yaml"
        try """
        study: k
        simulation: {imageSize: 32, seed: 3}
        data: {samples: 24}
        model: {preset: tiny}
        training: {epochs: 2, batchSize: 8, learningRate: 0.003}
        evaluation: {sets: [{name: test, samples: 4, seed: 77}]}
        """.write(toFile: file, atomically: true, encoding: .utf8)
        let ws = dir + "/ws"
        var r = try spio(["run", file, "--workspace", ws, "--report", "none"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("kernels: portable (Haswell)"), r.output)

        // A user's own kernel wins, is recorded, and is another run (no reuse of the portable weights).
        r = try spio(["run", file, "--workspace", ws, "--report", "none"], extra: ["OPENBLAS_CORETYPE": "Prescott"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("overridden by OPENBLAS_CORETYPE=Prescott"), r.output)

        let store = try RunStore(path: ws + "/runs.sqlite")
        let trainings = try store.runs(kind: .train).filter { $0.status == .finished }
        XCTAssertEqual(trainings.count, 2)
        let portable = try store.environment(trainings[0].id!), user = try store.environment(trainings[1].id!)
        XCTAssertEqual(portable?.blasCore, "Haswell")
        XCTAssertEqual(portable?.kernelMode, "portable (Haswell)")
        XCTAssertEqual(user?.blasCore, "Prescott")
        XCTAssertNotEqual(trainings[0].configHash, trainings[1].configHash)

        // The audit of the Prescott run, started without the variable, re-runs on Prescott: bitwise.
        r = try spio(["audit", String(trainings[1].id!), "--workspace", ws])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("audit passed"), r.output)
        XCTAssertFalse(r.output.contains("bitwise equality is not expected"), r.output)
        XCTAssertEqual(try SPIOExperiments.Audit.recordedKernel(store: store, runID: trainings[1].id!).core, "Prescott")

        // A run recorded on kernels this CPU cannot run: the audit says bitwise equality is not
        // expected and compares the headline metrics within the stated tolerance.
        try store.db.write {
            try $0.execute(
                sql: "UPDATE environments SET blas_core = 'Imaginary' WHERE run_id = ?", arguments: [trainings[0].id!])
        }
        r = try spio(["audit", String(trainings[0].id!), "--workspace", ws])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("bitwise equality is not expected"), r.output)
        XCTAssertTrue(r.output.contains("validation.nmae") && !r.output.contains("train.loss"), r.output)
        XCTAssertTrue(r.output.contains("audit passed"), r.output)
    }

    func testAStudysKernelKeyIsCheckedAndABadModeIsAClearError() throws {
        let file = "\(dir)/bad.yaml"
        try "study: bad\nkernel: fastest\nmodel: {preset: tiny}\n".write(
            toFile: file, atomically: true, encoding: .utf8)
        var r = try spio(["validate", file])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("unknown kernel mode 'fastest'"), r.output)
        XCTAssertTrue(r.output.contains("bad.yaml:2"), r.output)
        r = try spio(
            ["bench", "train", "--preset", "tiny", "--steps", "1", "--repeats", "1"], extra: ["SPIO_KERNEL": "fast"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.output.contains("SPIO_KERNEL=fast"), r.output)
    }

    func testCrossKernelAuditFallsBackToAStatedTolerance() {
        let (same, none) = Audit.tolerance(recordedCore: "Haswell", currentCore: "Haswell", requested: 0)
        XCTAssertEqual(same, 0); XCTAssertNil(none)
        let (other, note) = Audit.tolerance(recordedCore: "SkylakeX", currentCore: "Haswell", requested: 0)
        XCTAssertEqual(other, Audit.crossKernelTolerance)
        XCTAssertTrue(note?.contains("bitwise equality is not expected") ?? false)
        XCTAssertEqual(Audit.tolerance(recordedCore: "SkylakeX", currentCore: "Haswell", requested: 0.5).0, 0.5)
    }

    /// Stores written before v4 name the kernel only inside the `blas` text.
    func testRecordedKernelOfAnOlderStore() throws {
        let store = try RunStore(path: dir + "/runs.sqlite")
        let run = try store.start(
            study: "s", name: "n", kind: .train, hash: "h", configJSON: "{}", directory: dir, parentID: nil)
        try store.recordEnvironment(
            run.id!,
            RunEnvironment(
                gitCommit: nil, gitDirty: nil, host: "h", os: "l", swiftVersion: "6",
                blas: "OpenBLAS 0.3.21 DYNAMIC_ARCH (core Zen)", threads: 2, cpu: "EPYC"))
        let k = try Audit.recordedKernel(store: store, runID: run.id!)
        XCTAssertEqual(k.core, "Zen")
        XCTAssertEqual(k.mode, .native)
    }
}
