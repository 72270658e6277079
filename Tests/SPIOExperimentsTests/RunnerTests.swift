import Foundation
import GRDB
import SPIOTestSupport
import XCTest
@testable import SPIOExperiments
@testable import SPIOImageIO

/// The runner end to end through the `spio` executable: caching, SIGKILL and resume, two
/// processes on one store, reports, audits.
final class RunnerTests: ScratchDirectoryTestCase {

    /// A study small enough for the debug build: tiny DeepSPIO, 48 images of 32 x 32, 4 epochs.
    func study(_ name: String, epochs: Int = 4, seed: Int = 1) -> String {
        let path = "\(dir)/\(name).yaml"
        try! """
        study: \(name)
        description: A tiny test study.
        simulation: {imageSize: 32, seed: \(seed)}
        data: {samples: 48}
        model: {preset: tiny}
        training: {epochs: \(epochs), batchSize: 8, learningRate: 0.003}
        evaluation: {sets: [{name: test, samples: 8, seed: \(1000 + seed)}]}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The `spio` executable `swift build --build-tests` put beside the test bundle.
    static var spio: URL {
        let bundle = Bundle(for: RunnerTests.self).bundleURL
        let candidates = [
            bundle.appendingPathComponent("spio"), bundle.deletingLastPathComponent().appendingPathComponent("spio"),
            bundle.appendingPathComponent("debug/spio")
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
    }

    /// Runs `spio` to its end and returns its exit status and its output (standard output and
    /// error together), optionally with another environment or working directory.
    static func output(
        _ args: [String], environment: [String: String]? = nil, in cwd: String? = nil
    ) throws -> (status: Int32, text: String) {
        let p = Process()
        p.executableURL = spio
        p.arguments = args
        if let environment { p.environment = environment }
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        try p.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    @discardableResult
    func spio(_ args: [String], wait: Bool = true) throws -> Process {
        let p = Process()
        p.executableURL = Self.spio
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        if wait {
            p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "spio \(args.joined(separator: " ")) failed")
        }
        return p
    }

    func trainMetrics(_ workspace: String) throws -> [RunStore.Metric] {
        let store = try RunStore(path: workspace + "/runs.sqlite")
        let t = try store.runs(kind: .train).last { $0.status == .finished }!
        return try store.metrics(t.id!).filter { !$0.key.isTiming }.map {
            var m = $0; m.runID = 0; return m
        }
    }

    /// Killed with SIGKILL after its first epoch, the run resumes on the next `spio run` and ends
    /// with exactly the metrics of an uninterrupted run; the second `spio run` of a finished study
    /// reuses everything.
    func testSIGKILLThenResumeMatchesUninterrupted() throws {
        let file = study("killme")
        try spio(["run", file, "--workspace", dir + "/whole", "--report", "none"])

        let ws = dir + "/killed"
        let p = try spio(["run", file, "--workspace", ws, "--report", "none"], wait: false)
        var killed = false
        for _ in 0..<600 {
            usleep(50_000)
            if let store = try? RunStore(path: ws + "/runs.sqlite"), let t = try? store.runs(kind: .train).first,
                let m = try? store.metrics(t.id!, key: .validationNMAE), !m.isEmpty
            {
                kill(p.processIdentifier, SIGKILL); killed = true; break
            }
            if !p.isRunning { break }
        }
        p.waitUntilExit()
        XCTAssertTrue(killed, "the run finished before it could be killed")
        let store = try RunStore(path: ws + "/runs.sqlite")
        XCTAssertEqual(try store.runs(kind: .train).first?.status, .running, "SIGKILL leaves the run marked running")
        XCTAssertLessThan(try store.metrics(try store.runs(kind: .train).first!.id!, key: .validationNMAE).count, 4)

        try spio(["run", file, "--workspace", ws, "--report", "none"])
        let trains = try store.runs(kind: .train)
        XCTAssertEqual(trains.count, 1, "the killed run was resumed, not restarted")
        XCTAssertEqual(trains[0].status, .finished)
        XCTAssertEqual(try trainMetrics(ws), try trainMetrics(dir + "/whole"))

        // Everything is reused now: no new runs.
        let before = try store.runs().count
        try spio(["run", file, "--workspace", ws, "--report", "none"])
        XCTAssertEqual(try store.runs().count, before)
    }

    /// Ctrl-C during a simulation stops it between samples (not at its end): the dataset run is
    /// marked interrupted with what stopped, so the next `spio run` resumes it like a killed one.
    func testCtrlCStopsASimulationBetweenSamples() throws {
        let file = study("interrupted", epochs: 1)
        try String(contentsOfFile: file, encoding: .utf8).replacingOccurrences(
            of: "data: {samples: 48}", with: "data: {samples: 20000}"
        ).write(toFile: file, atomically: true, encoding: .utf8)
        let ws = dir + "/ws"
        let p = try spio(["run", file, "--workspace", ws, "--report", "none"], wait: false)
        var sent = false
        for _ in 0..<600 {
            usleep(50_000)
            if let store = try? RunStore(path: ws + "/runs.sqlite", access: .readOnly),
                (try? store.runs(kind: .dataset).first?.status) == .running
            {
                kill(p.processIdentifier, SIGINT); sent = true; break
            }
            if !p.isRunning { break }
        }
        p.waitUntilExit()
        XCTAssertTrue(sent, "the simulation finished before it could be interrupted")
        XCTAssertEqual(p.terminationStatus, 130)
        let store = try RunStore(path: ws + "/runs.sqlite")
        let dataset = try XCTUnwrap(store.runs(kind: .dataset).first)
        XCTAssertEqual(dataset.status, .interrupted)
        XCTAssertTrue(dataset.error?.hasPrefix("simulation after ") == true, dataset.error ?? "")
        XCTAssertFalse(dataset.error?.contains("after 20000 of 20000") == true, "stopped before its end")
        XCTAssertEqual(try store.runs(kind: .train).count, 0, "nothing after the stopped simulation ran")
    }

    /// Two `spio run` processes on one store at once: both finish, nothing is lost.
    func testTwoProcessesShareAStore() throws {
        let ws = dir + "/shared"
        let a = try spio(["run", study("first", epochs: 2), "--workspace", ws, "--report", "none"], wait: false)
        let b = try spio(
            ["run", study("second", epochs: 2, seed: 2), "--workspace", ws, "--report", "none"], wait: false)
        a.waitUntilExit(); b.waitUntilExit()
        XCTAssertEqual(a.terminationStatus, 0); XCTAssertEqual(b.terminationStatus, 0)
        let store = try RunStore(path: ws + "/runs.sqlite")
        for s in ["first", "second"] {
            let runs = try store.runs(study: s)
            XCTAssertEqual(runs.map(\.kind.rawValue).sorted(), ["dataset", "dataset", "evaluate", "train"], s)
            XCTAssertTrue(runs.allSatisfy { $0.status == .finished }, s)
            let t = runs.first { $0.kind == .train }!
            XCTAssertEqual(try store.metrics(t.id!, key: .validationNMAE).count, 2)
            XCTAssertEqual(
                try store.metrics(t.id!, key: .trainLoss).count, 2 * 6, "2 epochs of 6 batches (43 images, batch 8)")
        }
    }

    /// Three processes running the same study on one workspace at once: each configuration hash is
    /// computed once (the others wait and reuse it), all three succeed, and a stale `.partial-<pid>`
    /// dataset folder left by a killed process is removed.
    func testConcurrentRunsOfOneStudyComputeEachHashOnce() throws {
        let ws = dir + "/same"
        try FileManager.default.createDirectory(
            atPath: ws + "/datasets/0123456789abcdef.partial-999999999", withIntermediateDirectories: true)
        let file = study("same", epochs: 2)
        let ps = try (0..<3).map { _ in try spio(["run", file, "--workspace", ws, "--report", "none"], wait: false) }
        for p in ps { p.waitUntilExit(); XCTAssertEqual(p.terminationStatus, 0) }
        let store = try RunStore(path: ws + "/runs.sqlite")
        let runs = try store.runs()
        XCTAssertEqual(runs.count, 4, "one run per hash: \(runs.map { "\($0.kind) \($0.status)" })")
        XCTAssertEqual(Dictionary(grouping: runs, by: \.configHash).values.map(\.count).max(), 1)
        XCTAssertTrue(runs.allSatisfy { $0.status == .finished })
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: ws + "/datasets").filter {
            $0.contains(".partial-")
        }
        XCTAssertEqual(leftovers, [])
    }

    /// A workspace named relative to one directory is reused from another, and after it is moved:
    /// paths are stored relative to the workspace.
    func testAMovedWorkspaceIsReused() throws {
        let file = study("moved", epochs: 1)
        try FileManager.default.createDirectory(atPath: dir + "/a", withIntermediateDirectories: true)
        func run(_ args: [String], in cwd: String) throws {
            let r = try Self.output(args, in: cwd)
            XCTAssertEqual(r.status, 0, "spio \(args.joined(separator: " ")) in \(cwd): \(r.text)")
        }
        try run(["run", file, "--workspace", "ws", "--report", "none"], in: dir + "/a")
        try FileManager.default.moveItem(atPath: dir + "/a/ws", toPath: dir + "/moved-ws")
        try run(["run", file, "--workspace", dir + "/moved-ws", "--report", "none"], in: "/")
        try run(["verify", "--workspace", "moved-ws"], in: dir)
        let store = try RunStore(path: dir + "/moved-ws/runs.sqlite")
        XCTAssertEqual(try store.runs().count, 4, "nothing recomputed")
        XCTAssertTrue(try store.runs().allSatisfy { $0.directory.hasPrefix(dir + "/moved-ws/") })
    }

    func testAWorkspaceThatIsAFileIsAClearError() throws {
        try "x".write(toFile: dir + "/file", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Runner(workspace: dir + "/file")) {
            XCTAssertTrue("\($0)".contains("the workspace is a file, not a folder"), "\($0)")
        }
    }

    /// A flipped byte in a finished run's file is found by `spio verify`, refused for reuse by
    /// `spio run` (which names the file) and fails the audit.
    func testChangedArtifactsAreFoundAndNeverReused() throws {
        let file = study("tampered", epochs: 1)
        let ws = dir + "/ws"
        try spio(["run", file, "--workspace", ws, "--report", "none"])
        try spio(["verify", "--workspace", ws])
        let store = try RunStore(path: ws + "/runs.sqlite")
        let training = try store.runs(kind: .train).first!
        let model = try store.artifacts(training.id!).first { $0.name == "model.safetensors" }!.path
        var bytes = try Data(contentsOf: URL(fileURLWithPath: model))
        bytes[bytes.count - 3] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: model))

        func output(_ args: [String]) throws -> (Int32, String) { try Self.output(args) }
        var (status, text) = try output(["verify", "--workspace", ws])
        XCTAssertEqual(status, 1, text)
        XCTAssertTrue(text.contains("model.safetensors") && text.contains("the file changed"), text)
        (status, text) = try output(["run", file, "--workspace", ws, "--report", "none"])
        XCTAssertNotEqual(status, 0, text)
        XCTAssertTrue(text.contains("cannot be reused") && text.contains("model.safetensors"), text)
        (status, text) = try output(["audit", String(training.id!), "--workspace", ws])
        XCTAssertEqual(status, 1, text)
        XCTAssertTrue(text.contains("changed file:") && text.contains("audit FAILED"), text)
    }

    /// The report is rendered from the store alone, and an audit reproduces every metric bitwise.
    func testReportAndAudit() throws {
        let file = study("reported", epochs: 2)
        let ws = dir + "/ws"
        try spio(["run", file, "--workspace", ws, "--report", dir + "/report"])
        for f in ["report.md", "runs.csv", "loss.png", "validation.png"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/report/" + f), f)
        }
        let csv = try String(contentsOfFile: dir + "/report/runs.csv", encoding: .utf8)
        XCTAssertTrue(
            csv.hasPrefix("run,name,parameters,epochs,validation_nmae,test_nmae_mean,test_nmae_sd,test_images\r\n"), csv
        )
        XCTAssertEqual(csv.components(separatedBy: "\r\n").count, 3, "header, one run, final CRLF")
        XCTAssertGreaterThan(try RGBImage.readPNG(dir + "/report/loss.png").width, 100)
        let md = try String(contentsOfFile: dir + "/report/report.md", encoding: .utf8)
        XCTAssertTrue(md.contains("A tiny test study.") && md.contains("![training loss](loss.png)"), md)
        XCTAssertTrue(
            md.contains("## Beside NMAE") && md.contains("| RMSE (ug/mm^3) | HFEN | total iron error (%) |"), md)
        XCTAssertTrue(md.contains("| run | model | set | low third | middle third | high third |"), md)
        // The thirds hold every image with SPIO once, and the middle third's NMAE is those images'.
        let thirds = try String(contentsOfFile: dir + "/report/tertiles.csv", encoding: .utf8)
            .components(separatedBy: "\r\n").dropFirst().filter { !$0.isEmpty }.map { $0.components(separatedBy: ",") }
        XCTAssertEqual(thirds.count, 3)
        let reportStore = try RunStore(path: ws + "/runs.sqlite")
        // Every stored configuration is JSON.
        for run in try reportStore.runs() {
            XCTAssertNoThrow(
                try JSONSerialization.jsonObject(with: Data(run.configJSON.utf8)), "\(run.kind) \(run.configJSON)")
        }
        // The paper's loss by band: the four terms of each epoch sum to its loss (less the tiny L2 term).
        XCTAssertTrue(md.contains("**The paper's loss by band**") && md.contains("| LL | LH | HL | HH | sum |"), md)
        let trained = try XCTUnwrap(try reportStore.runs(kind: .train).first)
        for epoch in 1...2 {
            let terms = try ["ll", "lh", "hl", "hh"].map {
                try XCTUnwrap(try reportStore.metrics(trained.id!, key: .bandLoss($0)).first { $0.step == epoch }).value
            }
            let loss = try XCTUnwrap(
                try reportStore.metrics(trained.id!, key: .epochTrainLoss).first { $0.step == epoch })
            XCTAssertEqual(terms.reduce(0, +), loss.value, accuracy: 1e-3 * loss.value, "epoch \(epoch): \(terms)")
        }
        // Dataset previews are opt-in (`data.previews`), so simulating needs no gnuplot.
        for data in try reportStore.runs(kind: .dataset) {
            XCTAssertFalse(
                try FileManager.default.contentsOfDirectory(atPath: data.directory).contains {
                    $0.hasPrefix("preview-")
                })
        }
        let evaluation = try XCTUnwrap(try reportStore.runs(kind: .evaluate).first)
        let truth = try reportStore.metrics(evaluation.id!, key: .spioTruth)
        let nmae = try reportStore.metrics(evaluation.id!, key: .nmae)
        XCTAssertEqual(thirds.map { Int($0[6])! }.reduce(0, +), nmae.count)
        let (low, high) = (Double(thirds[1][4])!, Double(thirds[1][5])!)
        let middle = truth.filter { $0.value > low && $0.value <= high }.map(\.step)
        let values = nmae.filter { middle.contains($0.step) }.map(\.value)
        XCTAssertEqual(thirds[1][7], StudyReport.number(values.reduce(0, +) / Double(values.count)))
        let metrics = try String(contentsOfFile: dir + "/report/metrics.csv", encoding: .utf8)
        XCTAssertTrue(
            metrics.hasPrefix(
                "run,name,set,rmse_mean,rmse_sd,hfen_mean,hfen_sd,iron_error_mean,iron_error_sd\r\n"),
            metrics)
        // `spio validate` prints the keys the store uses: each finds its run in `spio runs`.
        let (_, validated) = try Self.output(["validate", file])
        let keys = try XCTUnwrap(validated.components(separatedBy: "keys: ").last)
            .split(whereSeparator: { " ,\n".contains($0) }).filter { $0.count == 12 }
        XCTAssertEqual(keys.count, 3, validated)
        let (_, runs) = try Self.output(["runs", "--workspace", ws])
        for key in keys { XCTAssertTrue(runs.contains(String(key)), "\(key) not in\n\(runs)") }
        // Re-render from the database alone into another folder: same table.
        try spio(["report", "reported", "--workspace", ws, "--out", dir + "/again"])
        XCTAssertEqual(try String(contentsOfFile: dir + "/again/runs.csv", encoding: .utf8), csv)
        // A file an earlier rendering wrote and this one does not (a run no longer in the study) is
        // removed; a file the report never wrote stays.
        let manifest = dir + "/again/.report-files"
        let listed = try String(contentsOfFile: manifest, encoding: .utf8)
        XCTAssertTrue(listed.hasPrefix("# owner: study reported\nreport.md\n") && listed.contains("runs.csv\n"), listed)
        try (listed + "examples-run999-test.png\n").write(toFile: manifest, atomically: true, encoding: .utf8)
        for name in ["examples-run999-test.png", "notes.txt"] {
            FileManager.default.createFile(atPath: dir + "/again/" + name, contents: Data("x".utf8))
        }
        try spio(["report", "reported", "--workspace", ws, "--out", dir + "/again"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/again/examples-run999-test.png"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/again/notes.txt"))
        XCTAssertEqual(try String(contentsOfFile: manifest, encoding: .utf8), listed)

        let store = try RunStore(path: ws + "/runs.sqlite")
        let train = try store.runs(kind: .train)[0]
        let audit = try Audit(store: store, runID: train.id!, scratch: dir + "/audit")
        XCTAssertTrue(
            audit.passed,
            audit.lines.filter { !$0.equal }.map { "\($0.run) \($0.key) \($0.maxDifference)" }.joined(separator: "; "))
        XCTAssertTrue(audit.lines.contains { $0.key == "train.loss" && $0.values == 12 })
        XCTAssertTrue(audit.lines.contains { $0.key == "nmae.mean" })
        // An empty workspace name is refused; a damaged stored configuration is named, not Foundation's text.
        var environment = ProcessInfo.processInfo.environment
        environment["SPIO_WORKSPACE"] = ""
        let empty = try Self.output(["runs"], environment: environment)
        XCTAssertTrue(empty.text.contains("SPIO_WORKSPACE is set but empty"), empty.text)
        XCTAssertTrue(try Self.output(["runs", "--workspace", ""]).text.contains("--workspace is empty"))
        try FileManager.default.copyItem(atPath: ws + "/runs.sqlite", toPath: dir + "/damaged.sqlite")
        try DatabaseQueue(path: dir + "/damaged.sqlite").write {
            try $0.execute(sql: "UPDATE runs SET config_json = '{not json' WHERE id = ?", arguments: [train.id!])
        }
        let damaged = try RunStore(path: dir + "/damaged.sqlite", workspace: ws)
        XCTAssertThrowsError(try Audit(store: damaged, runID: train.id!, scratch: dir + "/audit2")) {
            XCTAssertTrue(
                "\($0)".hasPrefix(
                    "run \(train.id!): its stored configuration (runs.config_json) is not a run configuration"),
                "\($0)")
        }

        // Outputs never replace a file spio did not write there (nothing is written at all).
        let fm = FileManager.default
        func userFile(_ path: String) throws {
            try fm.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try "the user's".write(toFile: path, atomically: true, encoding: .utf8)
        }
        func refused(_ args: [String], _ text: String, keeps path: String) throws {
            let (status, out) = try Self.output(args)
            XCTAssertNotEqual(status, 0, args.joined(separator: " "))
            XCTAssertTrue(out.contains(text), out)
            XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "the user's", path)
        }
        try userFile(dir + "/mine/report.md")
        try refused(
            ["report", "reported", "--workspace", ws, "--out", dir + "/mine"],
            "already holds report.md, which spio did not write here", keeps: dir + "/mine/report.md")
        XCTAssertEqual(try fm.contentsOfDirectory(atPath: dir + "/mine"), ["report.md"], "no partial left behind")
        try spio(["run", study("other", epochs: 1), "--workspace", ws, "--report", "none"])
        try userFile(dir + "/again/notes2.txt")
        let (status, out) = try Self.output(["report", "other", "--workspace", ws, "--out", dir + "/again"])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(out.contains("holds the files of study reported"), out)
        XCTAssertTrue(fm.fileExists(atPath: dir + "/again/runs.csv"), "study reported's files untouched")
        // spio predict into a folder holding the user's scan.png (as beside a scan.nii).
        let model = try XCTUnwrap(store.artifacts(train.id!).first { $0.name == "model.safetensors" }).path
        try NPYArray(shape: [2, 32, 32], values: [Float](repeating: 0.5, count: 2048)).write(
            to: dir + "/scans/scan.npy")
        try userFile(dir + "/maps/scan.png")
        try refused(
            ["predict", "--model", model, dir + "/scans/scan.npy", "--out", dir + "/maps"],
            "already holds scan.png, which spio did not write here", keeps: dir + "/maps/scan.png")
        try fm.removeItem(atPath: dir + "/maps/scan.png")
        try spio(["predict", "--model", model, dir + "/scans/scan.npy", "--out", dir + "/maps"])
        try spio(["predict", "--model", model, dir + "/scans/scan.npy", "--out", dir + "/maps"])
        // spio compare --plot and spio simulate --out.
        try userFile(dir + "/plots/bars.png")
        try refused(
            ["compare", String(train.id!), String(train.id!), "--workspace", ws, "--plot", dir + "/plots/bars"],
            "already holds bars.png", keeps: dir + "/plots/bars.png")
        // A released model: listed by name, used by name, its weights checked against their SHA-256.
        var released = ProcessInfo.processInfo.environment
        released["SPIO_MODELS"] = dir + "/models"
        let release = try Self.output(
            ["models", "release", String(train.id!), "--name", "tiny-test", "--workspace", ws], environment: released)
        XCTAssertEqual(release.status, 0, release.text)
        let card = try String(contentsOfFile: dir + "/models/tiny-test/README.md", encoding: .utf8)
        XCTAssertTrue(
            card.contains("And 1 more set (sweep points, or fewer than 100 images") && card.contains("throughout"), card
        )
        XCTAssertTrue(card.contains("## Not validated for"), card)
        let models = try Self.output(["models"], environment: released)
        XCTAssertTrue(models.text.hasPrefix("tiny-test: deepspio, "), models.text)
        let byName = try Self.output(
            ["predict", "--model", "tiny-test", dir + "/scans/scan.npy", "--out", dir + "/by-name"],
            environment: released)
        XCTAssertEqual(byName.status, 0, byName.text)
        let again = try Self.output(
            ["models", "release", String(train.id!), "--name", "tiny-test", "--workspace", ws], environment: released)
        XCTAssertTrue(again.text.contains("already holds a released model"), again.text)
        let weights = FileHandle(forWritingAtPath: dir + "/models/tiny-test/model.safetensors")!
        weights.seekToEndOfFile(); weights.write(Data([0])); try weights.close()
        let tampered = try Self.output(
            ["predict", "--model", "tiny-test", dir + "/scans/scan.npy", "--out", dir + "/by-name"],
            environment: released)
        XCTAssertTrue(tampered.text.contains("not the published"), tampered.text)
        // An output folder that is a file is named as such, not as a bare "File exists".
        let notAFolder = try Self.output(["report", "reported", "--workspace", ws, "--out", dir + "/scans/scan.npy"])
        XCTAssertTrue(notAFolder.text.contains("scan.npy: is a file, where a folder is needed"), notAFolder.text)
        // Counts whose size overflows, or that the disk cannot take, are refused before any work.
        for (count, text) in [
            ("9223372036854775807", "is more bytes than a 64-bit size can count"),
            ("1000000000000", "the file system has")
        ] {
            let r = try Self.output(["simulate", file, "--count", count, "--out", dir + "/never"])
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.text.contains(text), r.text)
            XCTAssertFalse(fm.fileExists(atPath: dir + "/never"))
        }
        try userFile(dir + "/data/images.npy")
        try refused(
            ["simulate", file, "--count", "2", "--out", dir + "/data"], "is not a dataset folder spio simulate wrote",
            keeps: dir + "/data/images.npy")
    }

    /// A study without validation images (validationFraction 0) runs and reports: no validation
    /// chart, a sentence instead, and the epochs counted from the training losses.
    func testAStudyWithoutValidationImagesRunsAndReports() throws {
        let file = study("novalidation", epochs: 1)
        try String(contentsOfFile: file, encoding: .utf8).replacingOccurrences(
            of: "learningRate: 0.003}", with: "learningRate: 0.003, validationFraction: 0}"
        ).write(toFile: file, atomically: true, encoding: .utf8)
        let (status, text) = try Self.output(["run", file, "--workspace", dir + "/ws", "--report", dir + "/report"])
        XCTAssertEqual(status, 0, text)
        let md = try String(contentsOfFile: dir + "/report/report.md", encoding: .utf8)
        XCTAssertTrue(md.contains("No validation NMAE: the runs held out no validation images"), md)
        XCTAssertTrue(md.contains("| 1 |  |"), "1 epoch, no validation NMAE:\n\(md)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/report/validation.png"))
    }

    /// Raising `training.epochs` makes a new run that starts from the shorter run's last
    /// checkpoint (which stays as it was) and ends equal to a straight run of that length.
    func testMoreEpochsContinueAShorterRun() throws {
        let runner = try Runner(workspace: dir + "/ws")
        var lines: [String] = []
        runner.log = { lines.append($0) }
        let short = try runner.run(StudyPlan(path: study("grow", epochs: 2)))[0].training
        let shortModel = try Data(contentsOf: URL(fileURLWithPath: short.directory + "/model.safetensors"))
        let long = try runner.run(StudyPlan(path: study("grow", epochs: 3)))[0].training
        XCTAssertNotEqual(long.id, short.id)
        XCTAssertTrue(lines.contains("continuing from train run \(short.id!) at epoch-0002"), "\(lines)")
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: short.directory + "/model.safetensors")), shortModel,
            "the shorter run is untouched")
        let straight = try Runner(workspace: dir + "/ws2").run(StudyPlan(path: study("grow", epochs: 3)))[0].training
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: long.directory + "/model.safetensors")),
            try Data(contentsOf: URL(fileURLWithPath: straight.directory + "/model.safetensors")))
        XCTAssertEqual(
            try runner.store.metrics(long.id!, key: .trainLoss).count, 18, "all three epochs' losses (6 batches each)")
    }

    /// A packed store carries a study to another workspace: there every finished run is reused as
    /// recorded (no dataset or model recomputed, though their folders are not there), and a longer
    /// run of a packed lineage continues from the packed checkpoint, ending where it would have on
    /// the machine that packed it.
    func testAPackedStoreIsReusedAndContinuedElsewhere() throws {
        let here = try Runner(workspace: dir + "/here")
        _ = try here.run(StudyPlan(path: study("carry", epochs: 2)))
        let longHere = try here.run(StudyPlan(path: study("carry", epochs: 3)))[0].training
        // Without checkpoints: the results travel, the files stay behind.
        _ = try StorePack.pack(workspace: dir + "/here", to: dir + "/bare", checkpointsOf: [])
        _ = try StorePack.unpack(dir + "/bare", into: dir + "/there")
        let there = try Runner(workspace: dir + "/there")
        var lines: [String] = []
        there.log = { lines.append($0) }
        let before = try there.store.runs().count
        let reused = try there.run(StudyPlan(path: study("carry", epochs: 2)))[0]
        XCTAssertEqual(try there.store.runs().count, before, "nothing recomputed: \(lines)")
        XCTAssertEqual(reused.evaluations.count, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/there/datasets"), "no dataset simulated")
        // With the 2-epoch lineage tip packed, a 4-epoch run continues from epoch 3 in a fresh workspace.
        _ = try StorePack.pack(workspace: dir + "/here", to: dir + "/packed", checkpointsOf: ["carry"])
        XCTAssertTrue(
            FileManager.default.fileExists(
                atPath:
                    "\(dir)/packed/models/\((longHere.directory as NSString).lastPathComponent)/checkpoints/epoch-0003")
        )
        _ = try StorePack.unpack(dir + "/packed", into: dir + "/next")
        let next = try Runner(workspace: dir + "/next")
        lines = []
        next.log = { lines.append($0) }
        let longer = try next.run(StudyPlan(path: study("carry", epochs: 4)))[0].training
        XCTAssertTrue(lines.contains("continuing from train run \(longHere.id!) at epoch-0003"), "\(lines)")
        let straight = try here.run(StudyPlan(path: study("carry", epochs: 4)))[0].training
        XCTAssertEqual(
            try Data(contentsOf: URL(fileURLWithPath: longer.directory + "/model.safetensors")),
            try Data(contentsOf: URL(fileURLWithPath: straight.directory + "/model.safetensors")))
        XCTAssertThrowsError(try StorePack.unpack(dir + "/packed", into: dir + "/next")) {
            XCTAssertTrue("\($0)".contains("already holds a store"), "\($0)")
        }
    }

    /// A run that fails is stored as failed with its error text, and the error reaches the caller.
    func testFailureRecordsItsError() throws {
        let path = dir + "/broken.yaml"
        try
            ("study: broken\nsimulation: {imageSize: 32, anatomy: {kind: file, path: /nonexistent/scan.nii}}\ndata: "
            + "{samples: 8}\nmodel: {preset: tiny}\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let runner = try Runner(workspace: dir + "/ws")
        XCTAssertThrowsError(try runner.run(StudyPlan(path: path))) {
            XCTAssertTrue("\($0)".contains("/nonexistent/scan.nii"), "\($0)")
        }
        let runs = try runner.store.runs(study: "broken")
        XCTAssertEqual(runs.map(\.status), [.failed])
        XCTAssertEqual(runs[0].error, "/nonexistent/scan.nii: no such file or folder")
    }
}
