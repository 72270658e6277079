import Foundation
import SPIOTestSupport
import XCTest
@testable import SPIOConfig
@testable import SPIOExperiments
@testable import SPIOImageIO
@testable import SPIONetworks
import SPIOPhysics
@testable import SPIOTensor

/// Seeded, generated bad inputs of every kind the tool reads: study files, NPY, NIfTI, PNG and
/// safetensors. Each case must end in an error that names its file, or in a valid result; a crash
/// or a trap stops the test process, and a case past its time limit fails. Every input file is
/// checked unchanged afterwards. `SPIO_FUZZ_CASES` raises the count (`make fuzz`).
final class FuzzTests: ScratchDirectoryTestCase {
    var cases: Int { Int(ProcessInfo.processInfo.environment["SPIO_FUZZ_CASES"] ?? "") ?? 150 }

    /// Values that broke earlier versions, or that a careless decoder takes for a default.
    static let hostileScalars = [
        ".nan", ".inf", "-.inf", "1e308", "1e-320", "-1", "0", "9223372036854775807", "-9223372036854775808",
        "''", "~", "[]", "{}", "x", "\"..\"", "../../x", "1.5", "[1, .nan]", "*undefined", "&a [*a]",
        "\"\\xff\"", "0x7fffffff", "1e400", "-0", "true"
    ]

    /// Sizes near and past the limits: a study's data, a test set, an image.
    static let sizes = [
        "data: {samples: 9999999}", "data: {samples: 10000000}", "data: {samples: 10000001}",
        "data: {samples: 1000000, shardSamples: 2}", "simulation: {imageSize: 1024}",
        "evaluation: {sets: [{name: big, samples: 1000000}]}", "data: {samples: 2}",
        "training: {validationFraction: 0.99}"
    ]

    /// A study file with one mutation: a value replaced, a line duplicated, a line dropped, the
    /// text cut short, a byte flipped, a bomb (deep nesting, aliases of lists or of mappings)
    /// appended, or a size near or past a limit.
    func mutate(_ text: String, _ rng: inout SeededGenerator) -> String {
        var lines = text.components(separatedBy: "\n")
        let i = rng.int(in: 0...(lines.count - 1))
        switch rng.int(in: 0...8) {
        case 7:
            // Aliases of mappings: 10^depth values from a few hundred bytes (issue 36: a hang).
            var bomb = "report:\n  a0: &a0 {x: 1, y: 2}\n"
            for d in 1...rng.int(in: 5...9) {
                bomb += "  a\(d): &a\(d) {" + (0..<10).map { "k\($0): *a\(d - 1)" }.joined(separator: ", ") + "}\n"
            }
            lines.append(bomb)
        case 8:
            // In place of the block with the same top-level key (a second key would be refused as
            // a duplicate before any size is looked at).
            let size = Self.sizes[rng.int(in: 0...(Self.sizes.count - 1))]
            let key = String(size.prefix { $0 != ":" }) + ":"
            if let at = lines.firstIndex(where: { $0.hasPrefix(key) }) {
                var end = at + 1
                while end < lines.count, lines[end].hasPrefix(" ") { end += 1 }
                lines.replaceSubrange(at..<end, with: [size])
            } else {
                lines.append(size)
            }
        case 0, 1:
            // Replace one value after a colon (inside flow mappings too).
            let line = lines[i]
            let colons = line.indices.filter { line[$0] == ":" }
            guard let c = colons.randomElement(using: &rng) else { return text }
            let after = line[line.index(after: c)...]
            let end = after.firstIndex(where: { $0 == "," || $0 == "}" }) ?? after.endIndex
            lines[i] =
                String(line[...c]) + " " + Self.hostileScalars[rng.int(in: 0...(Self.hostileScalars.count - 1))]
                + String(line[end...])
        case 2: lines.insert(lines[i], at: i)
        case 3: lines.remove(at: i)
        case 4:
            var bytes = Array(text.utf8)
            if !bytes.isEmpty { bytes[rng.int(in: 0...(bytes.count - 1))] ^= UInt8(1 << rng.int(in: 0...7)) }
            return String(decoding: bytes, as: UTF8.self)
        case 5: return String(text.prefix(rng.int(in: 0...text.count)))
        default:
            let depth = rng.int(in: 50...5000)
            lines.append(
                "report: {x: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}")
        }
        return lines.joined(separator: "\n")
    }

    func testGeneratedStudyFilesNeverCrashHangOrWriteOutside() throws {
        let quickstart = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../experiments/quickstart.yaml")
        let base = try String(contentsOf: quickstart.standardized, encoding: .utf8)
        var rng = SeededGenerator(seed: 20261129)
        var refused = 0, accepted = 0
        for n in 0..<cases {
            var text = base
            for _ in 0..<rng.int(in: 1...3) { text = mutate(text, &rng) }
            let path = dir + "/case-\(n).yaml"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let start = Date()
            do {
                let plan = try StudyPlan(path: path)
                accepted += 1
                XCTAssertNil(StudyPlan.unsafeStudyName(plan.study), "case \(n): accepted unsafe name \(plan.study)")
                XCTAssertLessThanOrEqual(plan.runs.count, StudyPlan.maximumRuns)
                for r in plan.runs {
                    let c = r.config
                    XCTAssertTrue(
                        c.training.learningRate.isFinite && c.simulation.fovMM.isFinite
                            && !c.simulation.noise.snrDB.isNaN,
                        "case \(n): accepted a non-finite number:\n\(text)")
                    XCTAssertNil(c.training.problem, "case \(n)")
                    XCTAssertNoThrow(try c.simulation.validate(), "case \(n)")
                    XCTAssertFalse(c.canonicalJSON.isEmpty)
                    XCTAssertNil(
                        DatasetFootprint.problem(
                            imageSize: c.simulation.imageSize, count: c.data.samples, copies: 2, doing: "training on"),
                        "case \(n): accepted a training set this machine cannot hold")
                }
            } catch {
                refused += 1
                XCTAssertTrue(
                    "\(error)".contains(path) || "\(error)".hasPrefix("--set"),
                    "case \(n): the error does not name the file: \(error)")
            }
            XCTAssertLessThan(Date().timeIntervalSince(start), 5, "case \(n) took too long:\n\(text.prefix(500))")
        }
        print("fuzzed \(cases) study files: \(refused) refused with a message, \(accepted) accepted and valid")
        XCTAssertGreaterThan(refused, 0)
    }

    /// A valid file of each format, then mutations of its header and body.
    func testGeneratedImageAndCheckpointFilesNeverCrash() throws {
        var rng = SeededGenerator(seed: 7)
        let npy = NPYArray.encode(
            shape: [2, 16, 16], values: [Float](repeating: 1, count: 512).withUnsafeBufferPointer { $0 })
        var png = RGBImage(width: 16, height: 16)
        for i in png.pixels.indices { png.pixels[i] = UInt8(i % 251) }
        try png.writePNG(to: dir + "/valid.png")
        let pngBytes = try Array(Data(contentsOf: URL(fileURLWithPath: dir + "/valid.png")))
        let net = EncoderDecoderNet(.preset("tiny")!, seed: 1)
        try Checkpoint.save(net, config: net.config.json, to: URL(fileURLWithPath: dir + "/valid.safetensors"))
        let ckpt = try Array(Data(contentsOf: URL(fileURLWithPath: dir + "/valid.safetensors")))
        let nifti = Self.nifti(nx: 16, ny: 16, nz: 2)

        func mutated(_ bytes: [UInt8], headerEnd: Int) -> [UInt8] {
            var b = bytes
            switch rng.int(in: 0...4) {
            case 0: b = Array(b.prefix(rng.int(in: 0...b.count)))
            case 1:
                for _ in 0..<rng.int(in: 1...8) {
                    b[rng.int(in: 0...(min(headerEnd, b.count) - 1))] = UInt8(rng.int(in: 0...255))
                }
            case 2:  // a digit run in the header made huge
                let text = String(decoding: b.prefix(headerEnd), as: UTF8.self)
                if let r = text.range(of: "[0-9]+", options: .regularExpression) {
                    let big = ["99999999999", "9223372036854775807", "4294967295", "100000000000000000000"][
                        rng.int(in: 0...3)]
                    b = Array((text.replacingCharacters(in: r, with: big)).utf8) + b.dropFirst(headerEnd)
                }
            case 3:
                for _ in 0..<rng.int(in: 1...4) {
                    let k = rng.int(in: 0...(b.count - 4));
                    b.replaceSubrange(k..<(k + 4), with: [0xFF, 0xFF, 0x7F, 0x7F])
                }
            default: b += [UInt8](repeating: 0, count: rng.int(in: 1...64))
            }
            return b
        }
        var outcomes = [String: Int]()
        for n in 0..<cases {
            for (kind, bytes, headerEnd) in [
                ("npy", npy, 128), ("nii", nifti, 352), ("png", pngBytes, 64), ("safetensors", ckpt, 2048)
            ] {
                let path = dir + "/case-\(n).\(kind)"
                let input = mutated(bytes, headerEnd: headerEnd)
                try Data(input).write(to: URL(fileURLWithPath: path))
                do {
                    switch kind {
                    case "npy": let a = try NPYArray.read(path); XCTAssertEqual(a.shape.reduce(1, *), a.values.count)
                    case "nii": let v = try NIfTIVolume.read(path); XCTAssertEqual(v.nx * v.ny * v.nz, v.values.count)
                    case "png":
                        let i = try RGBImage.readPNG(path); XCTAssertEqual(i.pixels.count, 3 * i.width * i.height)
                    default:
                        try Checkpoint.load(
                            EncoderDecoderNet(.preset("tiny")!, seed: 1), from: URL(fileURLWithPath: path))
                    }
                    outcomes[kind + " read", default: 0] += 1
                } catch {
                    outcomes[kind + " refused", default: 0] += 1
                    XCTAssertTrue(
                        "\(error)".contains(path), "\(kind) case \(n): the error does not name the file: \(error)")
                }
                XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: path))), input, "the input is unchanged")
            }
        }
        print(
            "fuzzed inputs:",
            outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
    }

    /// A minimal single-file NIfTI-1 volume of float32 zeros.
    static func nifti(nx: Int, ny: Int, nz: Int) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 352)
        func put<T>(_ v: T, _ at: Int) { withUnsafeBytes(of: v) { for (i, b) in $0.enumerated() { h[at + i] = b } } }
        put(Int32(348), 0)
        put(Int16(3), 40); put(Int16(nx), 42); put(Int16(ny), 44); put(Int16(nz), 46)
        put(Int16(16), 70); put(Int16(32), 72)
        put(Float(1), 80); put(Float(1), 84); put(Float(1), 88)
        put(Float(352), 108)
        for (i, b) in "n+1\0".utf8.enumerated() { h[344 + i] = b }
        return h + [UInt8](repeating: 0, count: nx * ny * nz * 4)
    }
}

/// Seeded faults in a finished workspace: files flipped, cut short or deleted, a damaged or empty
/// store, a store from a newer version, stale partial files, a lock that is a folder, a run left
/// `running` by a dead process, a folder that is a file. `spio runs`, `spio verify` and `spio run`
/// must each end with a clear message or a correct result: never a signal, a hang, or a raw
/// SQLite or Foundation text; after a successful run every hash has one finished run and the
/// workspace verifies.
final class WorkspaceFuzzTests: ScratchDirectoryTestCase {
    enum Fault: CaseIterable {
        case flipByte, truncateFile, deleteFile, deleteRunFolder, garbleStore, emptyStore, notAStore, newerSchema
        case staleParts, lockIsAFolder, deadRunningRun, datasetsIsAFile, storeIsAFolder
    }

    /// Every fault once in `make test`; `make fuzz` (SPIO_FUZZ_CASES=3000) draws 60.
    var cases: Int {
        max(Fault.allCases.count, (Int(ProcessInfo.processInfo.environment["SPIO_FUZZ_CASES"] ?? "") ?? 0) / 50)
    }

    /// Output folders holding user files under the names spio writes (and, sometimes, a manifest
    /// of another owner): every writing command either writes or refuses, and a user file no
    /// manifest lists is never replaced, altered or removed.
    func testGeneratedOutputFoldersNeverLoseAUsersFile() throws {
        let study = try tinyStudy("outfuzz", seed: 3, testSamples: 4, testSeed: 5)
        let ws = dir + "/ws"
        XCTAssertEqual(try Self.spio(["run", study, "--workspace", ws, "--report", "none"]).status, 0)
        let store = try RunStore(path: ws + "/runs.sqlite", access: .readOnly)
        let train = try XCTUnwrap(store.runs(kind: .train).first)
        let model = try XCTUnwrap(store.artifacts(train.id!).first { $0.name == "model.safetensors" }).path
        try NPYArray(shape: [2, 32, 32], values: [Float](repeating: 0.5, count: 2048)).write(to: dir + "/scan.npy")
        let names = [
            "report.md", "runs.csv", "loss.png", "loss.svg", "validation.png", "metrics.csv", "scan.npy", "scan.png",
            "bars.svg", "bars.png", "images.npy", "concentration.npy", "manifest.json", "preview-000.png", "notes.txt"
        ]
        let manifests = [
            (".report-files", "# owner: study other\nreport.md\n"), (".predict-files", "scan.npy\n"),
            (".compare-plots", "# owner: someone\nbars.png\n")
        ]
        let commands: [(String) -> [String]] = [
            { ["report", "outfuzz", "--workspace", ws, "--out", $0] },
            { ["run", study, "--workspace", ws, "--report", $0] },
            { ["predict", "--model", model, self.dir + "/scan.npy", "--out", $0] },
            { ["compare", String(train.id!), String(train.id!), "--workspace", ws, "--plot", $0 + "/bars"] },
            { ["simulate", study, "--count", "2", "--out", $0] }
        ]
        var rng = SeededGenerator(seed: 20261207)
        var outcomes = [String: Int]()
        for n in 0..<max(cases, 20) {
            let out = dir + "/out-\(n)"
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            var user: [String: Data] = [:]
            for name in names where rng.int(in: 0...2) == 0 {
                user[name] = Data("user file \(n) \(name)".utf8)
                try user[name]!.write(to: URL(fileURLWithPath: out + "/" + name))
            }
            var listed = Set<String>()
            if rng.int(in: 0...3) == 0 {
                let (file, text) = manifests[rng.int(in: 0...(manifests.count - 1))]
                try text.write(toFile: out + "/" + file, atomically: true, encoding: .utf8)
                listed = Set(text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("#") })
            }
            let c = rng.int(in: 0...(commands.count - 1))
            let args = commands[c](out)
            let r = try Self.spio(args)
            let label = "case \(n) spio \(args[0]) (exit \(r.status))"
            XCTAssertFalse(r.signalled || r.timedOut, "\(label): \(r.text)")
            if r.status != 0 { XCTAssertTrue(r.text.contains("Error:"), "\(label) without a message: \(r.text)") }
            for (name, data) in user where !listed.contains(name) {
                XCTAssertEqual(
                    FileManager.default.contents(atPath: out + "/" + name), data, "\(label) replaced the user's \(name)"
                )
            }
            outcomes["\(args[0]) \(r.status == 0 ? "wrote" : "refused")", default: 0] += 1
        }
        print(
            "output folders:",
            outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        XCTAssertGreaterThan(outcomes.filter { $0.key.hasSuffix("refused") }.count, 0)
        XCTAssertGreaterThan(outcomes.filter { $0.key.hasSuffix("wrote") }.count, 0)
    }

    func testGeneratedWorkspaceFaultsEndInAMessageOrACorrectResult() throws {
        let study = try tinyStudy("wsfuzz", seed: 3, testSamples: 4, testSeed: 5)
        let base = dir + "/base"
        let first = try Self.spio(["run", study, "--workspace", base, "--report", "none"])
        XCTAssertEqual(first.status, 0, first.text)
        let files = try FileManager.default.subpathsOfDirectory(atPath: base).filter {
            $0.hasSuffix(".npy") || $0.hasSuffix(".safetensors")
        }.sorted()
        XCTAssertFalse(files.isEmpty)

        var rng = SeededGenerator(seed: 20261130)
        var outcomes = [String: Int]()
        for n in 0..<cases {
            let fault =
                n < Fault.allCases.count
                ? Fault.allCases[n] : Fault.allCases[rng.int(in: 0...(Fault.allCases.count - 1))]
            let ws = dir + "/case-\(n)"
            try FileManager.default.copyItem(atPath: base, toPath: ws)
            try apply(fault, to: ws, files: files, rng: &rng)
            for args in [["runs"], ["verify"], ["run", study, "--report", "none"], ["verify"]] {
                let r = try Self.spio(args + ["--workspace", ws])
                let label =
                    "case \(n) \(fault) spio \(args[0]) (exit \(r.status), \(r.signalled ? "signal" : "no signal"))"
                XCTAssertFalse(r.signalled || r.timedOut, "\(label): \(r.text)")
                for raw in ["Fatal error", "NSCocoaErrorDomain", "Error Domain=", "SQLite error"] {
                    XCTAssertFalse(r.text.contains(raw), "\(label) printed a raw text: \(r.text)")
                }
                if r.status != 0 {
                    XCTAssertTrue(
                        r.text.contains("Error:") || r.text.contains("changed or missing"),
                        "\(label) without a message: \(r.text)")
                }
                outcomes["\(fault) \(args[0]) \(r.status == 0 ? "ok" : "refused")", default: 0] += 1
                if args[0] == "run", r.status == 0 {
                    let store = try RunStore(path: ws + "/runs.sqlite", access: .readOnly)
                    let finished = try store.runs(status: .finished)
                    XCTAssertEqual(
                        Set(finished.map { "\($0.kind) \($0.configHash)" }).count, finished.count,
                        "\(label): one finished run per hash")
                    XCTAssertEqual(finished.count, 4, "\(label): dataset, training, test data, evaluation")
                }
            }
            try? FileManager.default.removeItem(atPath: ws)
        }
        print(
            "workspace faults:",
            outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
    }

    func apply(_ fault: Fault, to ws: String, files: [String], rng: inout SeededGenerator) throws {
        let file = ws + "/" + files[rng.int(in: 0...(files.count - 1))]
        let fm = FileManager.default
        switch fault {
        case .flipByte:
            var b = try Data(contentsOf: URL(fileURLWithPath: file))
            b[rng.int(in: 0...(b.count - 1))] ^= UInt8(1 << rng.int(in: 0...7))
            try b.write(to: URL(fileURLWithPath: file))
        case .truncateFile:
            let b = try Data(contentsOf: URL(fileURLWithPath: file))
            try b.prefix(rng.int(in: 0...(b.count - 1))).write(to: URL(fileURLWithPath: file))
        case .deleteFile: try fm.removeItem(atPath: file)
        case .deleteRunFolder:
            let folders = ["datasets", "models", "evaluations"]
            let parent = ws + "/" + folders[rng.int(in: 0...2)]
            let runs = try fm.contentsOfDirectory(atPath: parent).sorted()
            try fm.removeItem(atPath: parent + "/" + runs[rng.int(in: 0...(runs.count - 1))])
        case .garbleStore:
            var b = try Data(contentsOf: URL(fileURLWithPath: ws + "/runs.sqlite"))
            for _ in 0..<rng.int(in: 1...64) { b[rng.int(in: 0...(b.count - 1))] = UInt8(rng.int(in: 0...255)) }
            try b.write(to: URL(fileURLWithPath: ws + "/runs.sqlite"))
        case .emptyStore: try Data().write(to: URL(fileURLWithPath: ws + "/runs.sqlite"))
        case .notAStore:
            try Data((0..<4096).map { _ in UInt8(rng.int(in: 0...255)) }).write(
                to: URL(fileURLWithPath: ws + "/runs.sqlite"))
        case .newerSchema:
            let store = try RunStore(path: ws + "/runs.sqlite")
            try store.db.write { try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99')") }
        case .staleParts:
            let datasets = try fm.contentsOfDirectory(atPath: ws + "/datasets").sorted()
            try fm.createDirectory(
                atPath: ws + "/datasets/\(datasets[0]).partial-999999", withIntermediateDirectories: true)
            try Data([1, 2, 3]).write(
                to: URL(fileURLWithPath: ws + "/datasets/\(datasets[0]).partial-999999/images.npy"))
        case .lockIsAFolder:
            try fm.removeItem(atPath: ws + "/runs.sqlite.lock")
            try fm.createDirectory(atPath: ws + "/runs.sqlite.lock", withIntermediateDirectories: true)
        case .deadRunningRun:
            let store = try RunStore(path: ws + "/runs.sqlite")
            let id = rng.int(in: 1...4)
            try store.db.write {
                try $0.execute(sql: "UPDATE runs SET status = 'running', pid = 999999999 WHERE id = ?", arguments: [id])
            }
        case .datasetsIsAFile:
            try fm.removeItem(atPath: ws + "/datasets")
            try Data("x".utf8).write(to: URL(fileURLWithPath: ws + "/datasets"))
        case .storeIsAFolder:
            try fm.removeItem(atPath: ws + "/runs.sqlite")
            try fm.createDirectory(atPath: ws + "/runs.sqlite", withIntermediateDirectories: true)
        }
    }

    /// Runs the test build's `spio` with a time limit; a process past it is killed and reported.
    static func spio(
        _ args: [String], limitSeconds: Double = 120
    ) throws -> (status: Int32, text: String, signalled: Bool, timedOut: Bool) {
        let p = Process()
        p.executableURL = RunnerTests.spio
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        try p.run()
        let deadline = DispatchWorkItem { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + limitSeconds, execute: deadline)
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        deadline.cancel()
        let signalled = p.terminationReason == .uncaughtSignal
        return (
            p.terminationStatus, text, signalled && p.terminationStatus != SIGKILL,
            signalled && p.terminationStatus == SIGKILL
        )
    }
}
