import Foundation
import SPIOImageIO
import SPIOPhysics
import SPIOTestSupport
import XCTest
@testable import SPIOConfig
@testable import SPIOExperiments

/// Study files: malformed inputs with their exact messages, presets, grids, overrides, hashes.
final class StudyPlanTests: ScratchDirectoryTestCase {
    override func setUp() {
        super.setUp()
        try! FileManager.default.createDirectory(atPath: dir + "/configs", withIntermediateDirectories: true)
    }

    @discardableResult
    func write(_ name: String, _ text: String) -> String {
        let path = (dir as NSString).appendingPathComponent(name)
        try! text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The message of the error planning `text` raises, with the temporary folder removed.
    func message(_ text: String, overrides: [String] = []) -> String {
        let path = write("study.yaml", text)
        do {
            _ = try StudyPlan(path: path, overrides: overrides)
            return "no error"
        } catch {
            return "\(error)".replacingOccurrences(of: dir + "/", with: "")
        }
    }

    static let tiny = """
        simulation: {imageSize: 32}
        model: {preset: tiny}
        """

    func testMalformedStudiesGivePreciseMessages() {
        let cases: [(String, [String], String)] = [
            (
                "study: a\ntrainig: {epochs: 2}\n", [],
                "study.yaml:2:1: trainig: unknown key 'trainig'; expected one of: data, description, evaluation, "
                    + "grid, kernel, model, presets, report, simulation, slurm, study, training, variants"
            ),
            (
                Self.tiny + "\nslurm: {queue: short}\n", [],
                "study.yaml:3:9: slurm.queue: unknown key 'queue'; expected one of: partition, time, memory, "
                    + "cpusPerTask, maxArraySize, maxRunning, sbatch, program"
            ),
            (
                Self.tiny + "\nslurm: {maxRunning: 0}\n", [],
                "study.yaml:3:21: slurm.maxRunning: must be 1 or more, got 0"
            ),
            (Self.tiny + "\nslurm: {sbatch: --qos=x}\n", [], "study.yaml:3:17: slurm.sbatch: expected a list"),
            (
                Self.tiny + "\ntraining: {epochs: many}\n", [],
                "study.yaml:3:20: training.epochs: expected an integer, got 'many'"
            ),
            (
                "model: {preset: tiny, heads: image}\nsimulation: {imageSize: 32}\n", [],
                "study.yaml:1:23: model.heads: unknown key 'heads'"
            ),
            (
                "model: {preset: tiny, head: decoder}\nsimulation: {imageSize: 32}\n", [],
                "study.yaml:1:29: model.head: 'decoder' is not one of: wavelet, shared, image"
            ),
            (
                Self.tiny + "\ngrid: [1, 2]\n", [],
                "study.yaml:3:7: grid: expected a mapping from key paths to lists of values"
            ),
            (
                Self.tiny + "\ngrid: {training.epochs: 3}\n", [],
                "study.yaml:3:25: grid.training.epochs: expected a non-empty list of values"
            ),
            (
                Self.tiny + "\ngrid: {optimizer.lr: [1]}\n", [],
                "study.yaml:3:8: grid.optimizer.lr: grid keys start with one of data, evaluation, model, simulation, "
                    + "training"
            ),
            (
                Self.tiny + "\ngrid: {training.epochs: [2, lots]}\n", [],
                "study.yaml:3:29: training.epochs: expected an integer"
            ),
            ("presets: [configs/nope.yaml]\n", [], "configs/nope.yaml: cannot read the file"),
            (Self.tiny + "\nmodel: {head: [}\n", [], "study.yaml:3:16: not valid YAML"),
            (Self.tiny, ["training.epochs"], "--set: training.epochs: expected key.path=value, e.g. training.epochs=5"),
            (
                Self.tiny, ["optimizer.lr=1"],
                "--set: optimizer.lr: keys start with one of data, evaluation, model, simulation, training"
            ),
            (Self.tiny, ["training.epochs=ten"], "--set: training.epochs: expected an integer"),
            (
                "model: {preset: small}\nsimulation: {imageSize: 32}\n", [],
                "study.yaml: model.inputSize: the model takes 64 x 64 images but simulation.imageSize is 32"
            ),
            (
                Self.tiny + "\nevaluation: {sets: [{name: a, sample: 3}]}\n", [],
                "study.yaml:3:31: evaluation.sets[0].sample: unknown key 'sample'; expected one of: name, samples"
            ),
            (
                Self.tiny + "\ntraining: {batchSize: 1}\n", [],
                "study.yaml:3:11: training: batchSize must be 2 to 4096 (BatchNorm needs batch statistics), got 1"
            ),
            (
                Self.tiny + "\nevaluation: {sweeps: [{name: s, samples: 2}]}\n", [],
                "study.yaml:3:23: evaluation.sweeps.0.over: expected a mapping from key paths inside the test set"
            ),
            (
                Self.tiny + "\nevaluation: {sweeps: [{name: s, over: {simulation.noise.snrDB: 5}}]}\n", [],
                "study.yaml:3:64: evaluation.sweeps.0.over.simulation.noise.snrDB: expected a non-empty list of values"
            ),
            (
                Self.tiny + "\nevaluation: {sweeps: [{over: {simulation.noise.snrDB: [5]}}]}\n", [],
                "study.yaml:3:23: evaluation.sweeps.0: expected a mapping with a name"
            ),
            (
                Self.tiny + "\nvariants: [{model.head: image}]\n", [],
                "study.yaml:3:12: variants.0: expected a mapping with a name"
            ),
            (
                Self.tiny + "\nvariants: [{name: a, optimizer.lr: 1}]\n", [],
                "study.yaml:3:22: variants.0.optimizer.lr: variant keys start with one of data, evaluation, model, "
                    + "simulation, training"
            ),
            (
                Self.tiny + "\nvariants: [{name: a}, {name: a}]\n", [],
                "study.yaml:3:30: variants.1.name: variant 'a' is listed twice"
            ),
            (
                Self.tiny + "\nreport: {paper: {a: b}, plot: []}\n", [],
                "study.yaml:3:25: report.plot: unknown key 'plot'"
            ),
            (
                Self.tiny + "\nreport: {plots: [{file: a.png}]}\n", [],
                "study.yaml:3:18: report.plots[0].x: a plot needs x"
            ),
            (
                Self.tiny + "\nevaluation: {sets: [{name: a, truthUgPerMM3: 3}]}\n", [],
                "study.yaml:3:46: evaluation.sets[0].truthUgPerMM3: only file sets take truthUgPerMM3"
            ),
            // Names that would put the report outside reports/ or over the working directory.
            ("study: \"..\"\n" + Self.tiny, [], "study.yaml:1:8: study: study name '..' may use only letters"),
            ("study: ../../x\n" + Self.tiny, [], "study.yaml:1:8: study: study name '../../x' may use only letters"),
            ("study: a/b\n" + Self.tiny, [], "study.yaml:1:8: study: study name 'a/b' may use only letters"),
            // Numbers are finite, wherever they are written.
            (
                Self.tiny + "\ntraining: {learningRate: .inf}\n", [],
                "study.yaml:3:26: training.learningRate: expected a finite number, got '.inf'"
            ),
            (
                Self.tiny + "\ntraining: {learningRate: 1e400}\n", [],
                "study.yaml:3:26: training.learningRate: expected a finite number, got '1e400'"
            ),
            (
                "model: {preset: tiny}\nsimulation: {imageSize: 32, noise: {snrDB: .nan}}\n", [],
                "study.yaml:2:44: simulation.noise.snrDB: expected a finite number, got '.nan' (write inf for no noise)"
            ),
            (
                "model: {preset: tiny}\nsimulation: {imageSize: 32, noise: {snrDB: -.inf}}\n", [],
                "study.yaml:2:44: simulation.noise.snrDB: expected a finite number"
            ),
            (
                Self.tiny, ["training.learningRate=.nan"],
                "--set: training.learningRate: expected a finite number, got '.nan'"
            ),
            (Self.tiny + "\nkernel: fastest\n", [], "study.yaml:3:9: kernel: unknown kernel mode 'fastest'"),
            // Values that silently meant a default, or were accepted twice.
            (Self.tiny + "\ndata: {samples: ''}\n", [], "study.yaml:3:17: data.samples: has no value"),
            (Self.tiny + "\ntraining:\n  epochs:\n", [], "study.yaml:4:10: training.epochs: has no value"),
            (
                Self.tiny + "\ntraining: {epochs: 2, epochs: 3}\n", [],
                "study.yaml:3:23: training.epochs: 'epochs' appears twice"
            ),
            // Ranges with upper bounds.
            (
                Self.tiny + "\ndata: {samples: 9223372036854775807}\n", [],
                "study.yaml:3:17: data.samples: must be 4 to 10000000"
            ),
            (
                Self.tiny + "\ntraining: {epochs: 9223372036854775807}\n", [],
                "study.yaml:3:11: training: epochs must be 1 to 100000"
            ),
            (
                "model: {preset: tiny}\nsimulation: {imageSize: 32, fovMM: 1e308}\n", [],
                "study.yaml:2:13: simulation: invalid simulation setting: fovMM must be 1 to 1000 mm"
            ),
            (
                "model: {preset: tiny}\nsimulation: {imageSize: 32, field: {b0Tesla: -1}}\n", [],
                "study.yaml:2:13: simulation: invalid simulation setting: field.b0Tesla must be 0.1 to 20 T"
            ),
            (
                "model: {preset: tiny}\nsimulation: {imageSize: 32, sequence: {lineCount: 9223372036854775807}}\n", [],
                "study.yaml:2:13: simulation: invalid simulation setting: sequence.lineCount"
            ),
            // Grids are counted before they are expanded.
            (
                Self.tiny + "\ngrid: {"
                    + (1...9).map { "training.k\($0): [0,1,2,3,4,5,6,7,8,9]" }.joined(separator: ", ") + "}\n", [],
                "study.yaml:3:7: grid: expands to more than 1000 runs"
            ),
            // A quoted '~' is still no name (the decoder reads it as null): refused, not the file's name.
            ("study: '~'\n" + Self.tiny, [], "study.yaml:1:8: study: '~' is not a study name"),
            // Test-set mistakes are found before training.
            (
                Self.tiny + "\nevaluation: {sets: [{name: scans, files: [no-such-scan.npy]}]}\n", [],
                "study.yaml:3:42: evaluation.sets: test set 'scans': no file 'no-such-scan.npy' (file paths are relative to the "
                    + "working directory)"
            ),
            (
                Self.tiny + "\nevaluation: {sets: [{name: t, samples: 4, interpretability: {images: 9}}]}\n", [],
                "study.yaml:3:61: evaluation.sets: test set 't': interpretability.images is 9 but the set has 4 images"
            ),
            (
                Self.tiny + "\nevaluation: {sets: [{name: t, interpretability: {band: 99}}]}\n", [],
                "study.yaml:3:49: evaluation.sets: test set 't': interpretability.band is 99; this model has 4 output "
                    + "channel(s)"
            ),
            (
                Self.tiny + "\nevaluation: {sets: [{name: t, interpretability: {gradCAM: [bottleneck.99]}}]}\n", [],
                "study.yaml:3:49: evaluation.sets: test set 't': 'bottleneck.99' is not a layer of this model"
            )
        ]
        for (text, overrides, expected) in cases {
            let got = message(text, overrides: overrides)
            XCTAssertTrue(got.hasPrefix(expected), "for\n\(text)\nexpected: \(expected)\n     got: \(got)\n")
        }
    }

    /// YAML that would hang or overflow the stack is refused before it is decoded: deep nesting,
    /// aliases that expand to billions of values, huge files, invalid UTF-8.
    /// A `file` anatomy with a fallback runs the file where it exists and the fallback where it
    /// does not; the plan hashes what will run, and the report notes say which.
    func testAnatomyFileFallsBackWhereTheFileIsMissing() throws {
        let volume = write("volume.npy", "")
        try NPYArray(shape: [4, 8, 8], values: (0..<256).map { Float($0) }).write(to: volume)
        func study(_ path: String) -> String {
            write(
                "study.yaml",
                """
                model: {preset: tiny}
                simulation:
                  imageSize: 32
                  anatomy: {kind: file, path: \(path), slab: [0.0, 0.5], fallback: procedural-brain}
                evaluation:
                  sets:
                    - {name: held-out, samples: 4, simulation: {anatomy: {slab: [0.5, 1.0]}}}
                    - {name: procedural, samples: 4, simulation: {anatomy: {kind: procedural-brain}}}
                """)
        }
        let present = try StudyPlan(path: study(volume)).runs[0].config
        XCTAssertEqual(present.simulation.anatomy.kind, "file")
        XCTAssertEqual(present.evaluation.sets[0].simulation.anatomy.kind, "file")
        XCTAssertEqual(present.evaluation.sets[1].simulation.anatomy.kind, "procedural-brain")
        let notes = try StudyPlan(path: study(volume)).report.notes
        XCTAssertTrue(notes.contains("slices of the real volume `\(volume)` (slab [0.0, 0.5)"), notes)
        XCTAssertTrue(notes.contains("test set 'held-out': slices of the real volume"), notes)

        let missing = dir + "/absent.nii.gz"
        let plan = try StudyPlan(path: study(missing))
        let fallen = plan.runs[0].config
        XCTAssertEqual(fallen.simulation.anatomy, AnatomyConfig(kind: "procedural-brain"))
        XCTAssertEqual(fallen.evaluation.sets[0].simulation.anatomy.kind, "procedural-brain")
        XCTAssertTrue(plan.report.notes.contains("**procedural-brain**, the fallback: `\(missing)` is not"))
        // The fallen-back training set is the plain procedural brain's: the same hash, reused.
        var plain = fallen.simulation
        plain.anatomy = AnatomyConfig()
        XCTAssertEqual(
            SimulatedDataset.contentHash(config: fallen.simulation, count: 8),
            SimulatedDataset.contentHash(config: plain, count: 8))
        XCTAssertTrue(
            message(
                "model: {preset: tiny}\nsimulation: {imageSize: 32, anatomy: {kind: file, path: x.npy, fallback: file}}"
            )
            .contains("fallback names the kind to use instead of a missing file"))
    }

    func testHostileYAMLIsBounded() throws {
        let deep = "a: " + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "\n"
        XCTAssertTrue(message(deep).hasPrefix("study.yaml:1:1: nests deeper than 64 levels"), message(deep))
        let indented =
            (0..<200).map { String(repeating: " ", count: 2 * $0) + "k\($0):" }.joined(separator: "\n") + " 1\n"
        XCTAssertTrue(message(indented).contains("nests deeper than 64 levels"), message(indented))
        var laughs = "description: x\nreport:\n  a0: &a0 {x: 1, y: 2}\n"
        for i in 1...9 {
            laughs += "  a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        let start = Date()
        XCTAssertTrue(
            message(laughs).contains("more than 100000 values once its aliases are expanded"), message(laughs))
        XCTAssertLessThan(Date().timeIntervalSince(start), 10, "refused without expanding")
        // The same bomb built from mappings (issue 36: 150 s and 2.3 GB before this check).
        var mappingLaughs = "description: x\nreport:\n  a0: &a0 {x: 1, y: 2}\n"
        for i in 1...9 {
            mappingLaughs +=
                "  a\(i): &a\(i) {" + (0..<10).map { "k\($0): *a\(i - 1)" }.joined(separator: ", ") + "}\n"
        }
        let mappingStart = Date()
        XCTAssertTrue(
            message(mappingLaughs).contains("more than 100000 values once its aliases are expanded"),
            message(mappingLaughs))
        XCTAssertLessThan(Date().timeIntervalSince(mappingStart), 10, "refused without expanding")
        let big = "description: '" + String(repeating: "x", count: 2 << 20) + "'\n"
        XCTAssertTrue(message(big).contains("configuration files are at most 1048576"), message(big))
        let path = (dir as NSString).appendingPathComponent("latin1.yaml")
        try Data([0x73, 0x74, 0x75, 0x64, 0x79, 0x3A, 0x20, 0xE9, 0x0A]).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try StudyPlan(path: path)) {
            XCTAssertTrue("\($0)".contains("is not valid UTF-8"), "\($0)")
        }
        // The paper's own studies still load (apostrophes in prose, folded descriptions, nested blocks).
        let experiments = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "../../experiments"
        ).standardized
        let cwd = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath(experiments.deletingLastPathComponent().path)
        defer { FileManager.default.changeCurrentDirectoryPath(cwd) }
        for f in try FileManager.default.contentsOfDirectory(atPath: experiments.path) where f.hasSuffix(".yaml") {
            XCTAssertNoThrow(try StudyPlan(path: "experiments/" + f), f)
        }
    }

    /// What evaluation and training would fail on is refused by planning: file sets that are not
    /// images of the model's size, and too few images left to train on.
    func testFileSetsAndTheTrainingSplitAreCheckedBeforeTraining() throws {
        try FileManager.default.createDirectory(atPath: dir + "/scans", withIntermediateDirectories: true)
        try NPYArray(shape: [2, 16, 16], values: [Float](repeating: 0, count: 512)).write(to: dir + "/small.npy")
        try NPYArray(shape: [2, 32, 32], values: [Float](repeating: .nan, count: 2048)).write(to: dir + "/nan.npy")
        try NPYArray(shape: [2, 32, 32], values: [Float](repeating: 0, count: 2048)).write(to: dir + "/ok.npy")
        write("notes.yaml", "a: 1\n")
        func files(_ f: String) -> String {
            message(Self.tiny + "\nevaluation: {sets: [{name: scans, files: ['\(dir)/\(f)']}]}\n")
                .replacingOccurrences(of: dir + "/", with: "")
        }
        XCTAssertEqual(
            files("scans"),
            "study.yaml:3:42: evaluation.sets: test set 'scans': scans: is a folder; a file set lists image files "
                + "(.npy, .nii, .nii.gz or .png)")
        XCTAssertEqual(
            files("notes.yaml"),
            "study.yaml:3:42: evaluation.sets: test set 'scans': notes.yaml: unsupported input; expected .npy, .nii, "
                + ".nii.gz or .png")
        XCTAssertEqual(
            files("small.npy"),
            "study.yaml:3:42: evaluation.sets: test set 'scans': small.npy: has shape 2 x 16 x 16 per image; the "
                + "model expects 2 x 32 x 32")
        XCTAssertTrue(files("nan.npy").contains("nan.npy: holds a non-finite value"), files("nan.npy"))
        XCTAssertEqual(files("ok.npy"), "no error")
        XCTAssertEqual(
            message(Self.tiny + "\ndata: {samples: 10}\ntraining: {validationFraction: 0.85}\n"),
            "study.yaml:4:32: training.validationFraction: 10 images with 9 held out for validation leave fewer "
                + "than 2 to train on; lower it or raise data.samples")
        XCTAssertEqual(message(Self.tiny + "\ndata: {samples: 10}\ntraining: {validationFraction: 0.75}\n"), "no error")
    }

    /// Sizes a study accepts but the machine cannot hold are refused when planning, with the bytes
    /// and the way out (issue 36: 10^7 samples aborted on an 82 GB allocation, leaving a run
    /// `running`; a test set of 10^6 images at 1024 x 1024 aborted after training).
    func testSizesTheMachineCannotHoldAreRefusedBeforeAnyWork() {
        // Sizes past any machine's memory (125.8 TB), so the refusal does not depend on the host.
        let big = "simulation: {imageSize: 1024}\nmodel: {preset: tiny, inputSize: 1024}\n"
        let huge = message(big + "data: {samples: 10000000}\n")
        XCTAssertTrue(
            huge.hasPrefix(
                "study.yaml:3:17: data.samples: simulating 10000000 images of 1024 x 1024 holds 125.8 TB in memory")
                && huge.hasSuffix("set data.shardSamples to simulate in shards that fit, or lower it"), huge)
        let sharded = message(big + "data: {samples: 10000000, shardSamples: 100}\n")
        XCTAssertTrue(sharded.contains("training on 10000000 images of 1024 x 1024 holds 251.7 TB"), sharded)
        XCTAssertTrue(
            message(big, overrides: ["data.samples=10000000"]).hasPrefix("--set: data.samples: simulating"))
        let test = message(big + "data: {samples: 100}\nevaluation: {sets: [{name: big, samples: 1000000}]}\n")
        XCTAssertTrue(
            test.hasPrefix(
                "study.yaml:4:42: evaluation.sets: test set 'big': evaluating 1000000 images of 1024 x 1024 holds "
                    + "25.2 TB"),
            test)
    }

    /// The noise-free SNR stays writable as inf, and a study may name its kernels.
    func testInfiniteSNRAndKernelKeyAreAccepted() throws {
        let path = write(
            "ok.yaml",
            "study: ok-1.b_c\nkernel: native\nmodel: {preset: tiny}\nsimulation: {imageSize: 32, noise: {snrDB: inf}}\n"
        )
        let plan = try StudyPlan(path: path)
        XCTAssertEqual(plan.study, "ok-1.b_c")
        XCTAssertEqual(plan.kernel, .native)
        XCTAssertEqual(plan.slurm, SlurmOptions())
        let slurm = try StudyPlan(
            path: write(
                "slurm.yaml",
                Self.tiny
                    + "\nslurm: {partition: short, time: '1:00:00', memory: 4G, cpusPerTask: 4, sbatch: [--qos=a]}\n"
            )
        ).slurm
        XCTAssertEqual([slurm.partition, slurm.time, slurm.memory], ["short", "1:00:00", "4G"])
        XCTAssertEqual(slurm.cpusPerTask, 4)
        var cli = SlurmOptions()
        (cli.partition, cli.sbatch) = ("long", ["--account=b"])
        let merged = slurm.overridden(by: cli)
        XCTAssertEqual([merged.partition, merged.time], ["long", "1:00:00"])
        XCTAssertEqual(merged.sbatch, ["--qos=a", "--account=b"])
        XCTAssertEqual(plan.runs[0].config.simulation.noise.snrDB, .infinity)
    }

    /// `data.snrRangeDB` gives the training set, and only it, noise at a range of SNRs: the test
    /// sets keep the study's noise; a malformed range names its key.
    func testTrainingNoiseRangeAppliesToTheTrainingSetOnly() throws {
        let plan = try StudyPlan(
            path: write(
                "noisy.yaml",
                "study: noisy\nmodel: {preset: tiny}\nsimulation: {imageSize: 32}\ndata: {samples: 40, snrRangeDB: [5, 40]}\n"
                    + "evaluation: {sets: [{name: clean, samples: 4, seed: 9}, {name: at11, samples: 4, seed: 10, "
                    + "simulation: {noise: {snrDB: 11}}}]}\n"))
        let c = plan.runs[0].config
        XCTAssertEqual(c.trainingSimulation.noise.snrRangeDB, [5, 40])
        XCTAssertEqual(c.trainingSimulation.noise.snrDB, .infinity)
        XCTAssertNil(c.simulation.noise.snrRangeDB)
        XCTAssertEqual(c.evaluation.sets.map { $0.simulation.noise.snrRangeDB }, [nil, nil])
        XCTAssertEqual(c.evaluation.sets[1].simulation.noise.snrDB, 11)
        XCTAssertNotEqual(
            SimulatedDataset.contentHash(config: c.trainingSimulation, count: 40),
            SimulatedDataset.contentHash(config: c.simulation, count: 40))
        let bad = message("study: bad\n" + Self.tiny + "\ndata: {snrRangeDB: [40, 5]}\n")
        XCTAssertTrue(bad.contains("snrRangeDB") && bad.contains("lowest first"), bad)
    }

    /// An error inside a preset names the preset file and its line.
    func testErrorsInPresetsNameThePreset() {
        write("configs/bad.yaml", "model:\n  preset: tiny\n  baseFilters: four\n")
        XCTAssertTrue(
            message("presets: [configs/bad.yaml]\n").hasPrefix(
                "configs/bad.yaml:3:16: model.baseFilters: expected an integer"),
            message("presets: [configs/bad.yaml]\n"))
        XCTAssertTrue(
            message("description: x\npresets: [configs/base-missing.yaml, configs/bad.yaml]\n")
                .contains("(preset named at study.yaml:2:"), message("description: x\npresets: [configs/bad.yaml]\n"))
        XCTAssertTrue(
            message("description: x\npresets:\n  - configs/bad.yaml\n").hasSuffix(
                "(preset named at study.yaml:3:5, presets[0])"),
            message("description: x\npresets:\n  - configs/bad.yaml\n"))
    }

    func testPresetsGridAndOverrides() throws {
        write("configs/base.yaml", Self.tiny + "\ntraining: {epochs: 7, learningRate: 0.002}\ndata: {samples: 64}\n")
        let path = write(
            "study.yaml",
            """
            study: demo
            presets: [configs/base.yaml]
            training: {epochs: 3}
            grid:
              training.learningRate: [0.001, 0.01]
              model.head: [wavelet, image]
            """)
        let plan = try StudyPlan(path: path, overrides: ["data.samples=40"])
        XCTAssertEqual(plan.runs.count, 4)
        XCTAssertEqual(
            plan.runs.map(\.name),
            [
                "demo[model.head=wavelet,training.learningRate=0.001]",
                "demo[model.head=wavelet,training.learningRate=0.01]",
                "demo[model.head=image,training.learningRate=0.001]",
                "demo[model.head=image,training.learningRate=0.01]"
            ])
        let c = plan.runs[2].config
        XCTAssertEqual(c.training.epochs, 3, "the study overrides its preset")
        XCTAssertEqual(c.training.learningRate, 0.001, "the grid overrides both")
        XCTAssertEqual(c.model.head, .image)
        XCTAssertEqual(c.model.inputSize, 32, "the preset's model.preset still applies")
        XCTAssertEqual(c.data.samples, 40, "--set overrides everything")
        XCTAssertEqual(Set(try plan.runs.map(Self.trainingKey)).count, 4)
        // --set beats a grid value too.
        let forced = try StudyPlan(path: path, overrides: ["training.learningRate=0.5"])
        XCTAssertTrue(forced.runs.allSatisfy { $0.config.training.learningRate == 0.5 })
        // Test sets inherit the run's simulation and override it.
        let e = write(
            "eval.yaml",
            "model: {preset: tiny}\nsimulation: {imageSize: 32, fovMM: 40}\nevaluation: {sets: [{name: noisy, "
                + "samples: 5, simulation: {noise: {snrDB: 5}}}]}\n"
        )
        let s = try StudyPlan(path: e).runs[0].config.evaluation.sets[0]
        XCTAssertEqual(s.simulation.fovMM, 40)
        XCTAssertEqual(s.simulation.noise.snrDB, 5)
    }

    /// Variants times grid points; sweeps expand into labelled test sets that inherit the run's
    /// simulation; the report block is read.
    func testVariantsSweepsAndReport() throws {
        let path = write(
            "study.yaml",
            Self.tiny + """

                study: v
                training: {epochs: 3}
                grid: {training.seed: [1, 2]}
                variants:
                  - {name: paper}
                  - {name: unet, model.architecture: unet, training.epochs: 5}
                evaluation:
                  sets: [{name: plain, samples: 4}]
                  sweeps:
                    - name: air
                      samples: 3
                      labels: {batch: "2"}
                      simulation: {scene: {kind: bottle}}
                      over:
                        simulation.scene.concentrationUgPerMM3: [0.22, 27.90]
                        simulation.noise.snrDB: [5, inf]
                report:
                  paper: {plain: "0.17"}
                  plots: [{x: concentrationUgPerMM3, series: snrDB, file: a.png}]
                """)
        let plan = try StudyPlan(path: path)
        XCTAssertEqual(
            plan.runs.map(\.name),
            [
                "v[variant=paper,training.seed=1]", "v[variant=paper,training.seed=2]",
                "v[variant=unet,training.seed=1]", "v[variant=unet,training.seed=2]"
            ])
        XCTAssertEqual(plan.runs[3].config.model.architecture, .unet)
        XCTAssertEqual(plan.runs[3].config.training.epochs, 5)
        XCTAssertEqual(plan.runs[0].config.training.epochs, 3)
        XCTAssertEqual(plan.runs[3].gridValues.map(\.0), ["variant", "training.seed"])
        let sets = plan.runs[0].config.evaluation.sets
        XCTAssertEqual(
            sets.map(\.name),
            [
                "plain", "air[concentrationUgPerMM3=0.22,snrDB=5]", "air[concentrationUgPerMM3=0.22,snrDB=inf]",
                "air[concentrationUgPerMM3=27.90,snrDB=5]", "air[concentrationUgPerMM3=27.90,snrDB=inf]"
            ])
        let s = sets[3]
        XCTAssertEqual(s.sweep, "air")
        XCTAssertEqual(s.labels, ["batch": "2", "concentrationUgPerMM3": "27.90", "snrDB": "5"])
        XCTAssertEqual(s.samples, 3)
        XCTAssertEqual(s.simulation.scene.kind, "bottle")
        XCTAssertEqual(s.simulation.scene.concentrationUgPerMM3, 27.9)
        XCTAssertEqual(s.simulation.noise.snrDB, 5)
        XCTAssertEqual(s.simulation.imageSize, 32, "inherited from the run's simulation")
        XCTAssertEqual(sets[4].simulation.noise.snrDB, .infinity)
        XCTAssertEqual(plan.report.paper, ["plain": "0.17"])
        XCTAssertEqual(plan.report.plots.map(\.series), ["snrDB"])
    }

    /// Key order, flow or block style, and preset-or-inline do not change the hash; any value does.
    func testHashIsStableAcrossKeyOrderAndSpelling() throws {
        let a = write(
            "a.yaml",
            "model: {preset: tiny, head: image}\nsimulation: {imageSize: 32, fovMM: 50}\ntraining: {epochs: 2, seed: "
                + "4}\n"
        )
        let b = write(
            "b.yaml",
            "training:\n  seed: 4\n  epochs: 2\nsimulation:\n  fovMM: 50.0\n  imageSize: 32\nmodel:\n  head: image\n  "
                + "preset: tiny\n"
        )
        write("configs/p.yaml", "simulation: {imageSize: 32}\nmodel: {preset: tiny}\n")
        let c = write("c.yaml", "presets: [configs/p.yaml]\nmodel: {head: image}\ntraining: {seed: 4, epochs: 2}\n")
        let hashes = try [a, b, c].map { try Self.trainingKey(StudyPlan(path: $0).runs[0]) }
        XCTAssertEqual(Set(hashes).count, 1, "\(hashes)")
        let d = write(
            "d.yaml",
            "model: {preset: tiny, head: image}\nsimulation: {imageSize: 32}\ntraining: {epochs: 2, seed: 5}\n")
        XCTAssertNotEqual(try Self.trainingKey(StudyPlan(path: d).runs[0]), hashes[0])
    }

    /// The hash the store keys a planned run's training on (what `spio validate` prints).
    static func trainingKey(_ r: StudyPlan.PlannedRun) throws -> String {
        try Runner.units(of: r).first { $0.kind == .train }!.hash
    }
}
