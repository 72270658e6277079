import Foundation
import SPIOCoding
import SPIOImageIO
import SPIOPhysics
import SPIOTensor
import SPIOTestSupport
import XCTest
@testable import SPIOExperiments

/// Test sets are held out: simulated from their own seed, never the training data's, and no two
/// sets of a run draw the same streams unless a sweep says `paired`.
final class HeldOutTests: ScratchDirectoryTestCase {
    /// The objects (the concentration map's whole content) of samples 0..<count of a simulation, as
    /// exact text: two samples with different objects have different concentration maps and images.
    static func sceneKeys(_ sim: SimulationConfig, count: Int) -> [String] {
        (0..<count).map { i in
            var rng = SeededGenerator(seed: sim.seed, stream: UInt64(i))
            return String(describing: sim.scene.objects(fovMM: sim.fovMM, rng: &rng))
        }
    }

    /// Every committed study: each simulated test set's samples share no concentration map (and so no
    /// image) with its run's training data, and no set draws the training data's generator streams.
    func testCommittedStudiesTestSetsShareNoSampleWithTheirTrainingData() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let cwd = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath(root.path)
        defer { FileManager.default.changeCurrentDirectoryPath(cwd) }
        var training: [String: Set<String>] = [:]
        var checkedSets = 0, checkedSamples = 0
        let studies = try FileManager.default.contentsOfDirectory(atPath: "experiments").filter {
            $0.hasSuffix(".yaml")
        }
        XCTAssertGreaterThanOrEqual(studies.count, 10)
        for file in studies.sorted() {
            let plan = try StudyPlan(path: "experiments/" + file)
            for run in plan.runs {
                let c = run.config
                // A paper-scale training set (4 million images) is checked on its first 20,000 samples.
                let trainCount = min(c.data.samples, 20_000)
                let key = "\(canonicalJSON(c.simulation)) \(trainCount)"
                if training[key] == nil { training[key] = Set(Self.sceneKeys(c.simulation, count: trainCount)) }
                let trainScenes = training[key]!
                for set in c.evaluation.sets where set.files.isEmpty {
                    if set.isTrainingImages {
                        // Said explicitly: these are training images, and reports call them so.
                        let scenes = Self.sceneKeys(set.simulation, count: set.samples)
                        XCTAssertTrue(scenes.allSatisfy(trainScenes.contains), "\(file) \(set.name)")
                        continue
                    }
                    XCTAssertEqual(set.simulation.seed, set.seed, "\(file) \(set.name)")
                    XCTAssertNotEqual(set.seed, c.simulation.seed, "\(file) \(set.name) draws the training seed")
                    let scenes = Self.sceneKeys(set.simulation, count: set.samples)
                    let shared = scenes.indices.filter { trainScenes.contains(scenes[$0]) }
                    XCTAssertEqual(shared, [], "\(file) \(run.name) \(set.name): samples equal to training samples")
                    checkedSets += 1; checkedSamples += scenes.count
                }
            }
        }
        XCTAssertGreaterThan(checkedSets, 100)
        XCTAssertGreaterThan(checkedSamples, 5_000)
    }

    /// The check above is not vacuous: a test set on the training seed (the old behaviour, where a
    /// set inherited `simulation.seed`) is the training data again, sample for sample, pixel for pixel.
    func testATestSetOnTheTrainingSeedWouldBeTrainingData() throws {
        var sim = SimulationConfig()
        sim.imageSize = 32
        sim.seed = 1
        let train = try SimulatedDataset.generate(config: sim, count: 4)
        var set = sim
        set.seed = 1001
        let test = try SimulatedDataset.generate(config: set, count: 4)
        let trainScenes = Set(Self.sceneKeys(sim, count: 4))
        XCTAssertTrue(Self.sceneKeys(set, count: 4).allSatisfy { !trainScenes.contains($0) })
        // Pixels follow the scenes: same seed, same arrays; another seed, none in common.
        let again = try SimulatedDataset.generate(config: sim, count: 4)
        XCTAssertEqual(again.images, train.images)
        XCTAssertEqual(again.concentration, train.concentration)
        let n = 32 * 32
        for i in 0..<4 {
            for j in 0..<4 {
                XCTAssertNotEqual(
                    Array(test.concentration[(i * n)..<((i + 1) * n)]),
                    Array(train.concentration[(j * n)..<((j + 1) * n)]))
            }
        }
    }

    /// A `trainingImages: true` set is the training data's first images pixel for pixel, its noise
    /// from `data.snrRangeDB` included; it takes no seed, simulation overrides or more images than
    /// are trained on.
    func testATrainingImagesSetIsTheTrainingDataItself() throws {
        let study = """
            simulation: {imageSize: 32, seed: 5}
            model: {preset: tiny}
            data: {samples: 20, snrRangeDB: [5, 40]}
            evaluation:
              sets:
                - {name: test, samples: 3}
                - {name: training, samples: 3, trainingImages: true}
            """
        let c = try plan(study).runs[0].config
        let set = c.evaluation.sets[1]
        XCTAssertEqual(set.seed, 5)
        XCTAssertEqual(set.simulation, c.trainingSimulation)
        XCTAssertNil(c.evaluation.sets[0].trainingImages, "unwritten, so other sets' keys stay as they were")
        let train = try SimulatedDataset.generate(config: c.trainingSimulation, count: 20)
        let again = try SimulatedDataset.generate(config: set.simulation, count: 3)
        XCTAssertEqual(again.images, Array(train.images[0..<again.images.count]))
        XCTAssertEqual(again.concentration, Array(train.concentration[0..<again.concentration.count]))
        XCTAssertEqual(
            message(study.replacingOccurrences(of: "samples: 3, trainingImages", with: "samples: 19, trainingImages")),
            "study.yaml:7:33: evaluation.sets: test set 'training' is training images, but only the first 18 of the "
                + "20 training images are trained on (the rest validate); lower samples")
        XCTAssertEqual(
            message(study.replacingOccurrences(of: "trainingImages: true}", with: "trainingImages: true, seed: 5}")),
            "study.yaml:7:64: evaluation.sets: test set 'training' is training images: it draws the training data's seed"
        )
        XCTAssertEqual(
            message(
                study.replacingOccurrences(
                    of: "trainingImages: true}", with: "trainingImages: true, simulation: {noise: {snrDB: 5}}}")),
            "study.yaml:7:70: evaluation.sets: test set 'training' is training images: it takes the training data's "
                + "simulation as it is")
    }

    func plan(_ yaml: String, overrides: [String] = []) throws -> StudyPlan {
        let path = (dir as NSString).appendingPathComponent("study.yaml")
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try StudyPlan(path: path, overrides: overrides)
    }

    func message(_ yaml: String, overrides: [String] = []) -> String {
        do {
            _ = try plan(yaml, overrides: overrides)
            return "no error"
        } catch { return "\(error)".replacingOccurrences(of: dir + "/", with: "") }
    }

    /// Seeds: unwritten ones by place (1001, 1002, ...), sweep points seed + k unless paired, and
    /// every set's simulation seed is its own, whatever the study's `simulation.seed`.
    func testSeedsAreTheSetsOwnAndDistinctByDefault() throws {
        let p = try plan(
            """
            simulation: {imageSize: 32, seed: 5}
            model: {preset: tiny}
            evaluation:
              sets:
                - {name: a, samples: 2}
                - {name: b, samples: 2}
                - {name: c, samples: 2, seed: 77}
              sweeps:
                - {name: s, samples: 2, seed: 500, over: {simulation.noise.snrDB: [5, 10, 15]}}
                - {name: p, samples: 2, seed: 900, paired: true, over: {simulation.noise.snrDB: [5, 10]}}
                - {name: q, samples: 2, over: {seed: [40, 41]}}
            """)
        let sets = p.runs[0].config.evaluation.sets
        XCTAssertEqual(
            sets.map(\.name),
            [
                "a", "b", "c", "s[snrDB=5]", "s[snrDB=10]", "s[snrDB=15]", "p[snrDB=5]", "p[snrDB=10]", "q[seed=40]",
                "q[seed=41]"
            ])
        XCTAssertEqual(sets.map(\.seed), [1001, 1002, 77, 500, 501, 502, 900, 900, 40, 41])
        XCTAssertEqual(sets.map(\.simulation.seed), sets.map(\.seed))
        XCTAssertEqual(p.runs[0].config.simulation.seed, 5)
    }

    /// The guard: `spio validate` and `spio run` plan the study, and planning refuses sets that would
    /// redraw the training data or another set, at the line that wrote the seed.
    func testStudiesThatWouldShareStreamsAreRefused() {
        let head = """
            simulation: {imageSize: 32, seed: 7}
            model: {preset: tiny}
            evaluation:
              sets:

            """
        XCTAssertEqual(
            message(head + "    - {name: brain, samples: 10, seed: 7}"),
            "study.yaml:5:40: evaluation.sets: test set 'brain' draws seed 7, the training data's simulation.seed: "
                + "its images would be training images 0-9 again; give it another seed")
        // Only the set's own `seed` sets its streams; simulation.seed inside a set is refused, not ignored.
        XCTAssertEqual(
            message(head + "    - {name: brain, samples: 10, simulation: {seed: 9}}"),
            "study.yaml:5:53: evaluation.sets.0.simulation.seed: a test set's seed is its own `seed:` key, next to "
                + "`samples:` (the training data's simulation.seed is never a test set's)")
        XCTAssertTrue(
            message(head + "    - {name: a}\n    - {name: b, seed: 1001}").hasPrefix(
                "study.yaml:6:23: evaluation.sets: test sets 'a' and 'b' both draw seed 1001, so they share their "
                    + "scenes"))
        // A --set cannot bypass it: the override is planned like the file.
        XCTAssertTrue(
            message(head + "    - {name: a}", overrides: ["simulation.seed=1001"]).contains(
                "test set 'a' draws seed 1001, the training data's simulation.seed"))
        XCTAssertTrue(
            message(
                """
                simulation: {imageSize: 32}
                model: {preset: tiny}
                evaluation:
                  sweeps:
                    - {name: s, samples: 2, seed: 50, over: {simulation.noise.snrDB: [5, 10]}}
                    - {name: t, samples: 2, seed: 50, paired: true, over: {simulation.noise.snrDB: [5, 10]}}
                """
            ).contains("test sets 's[snrDB=5]' and 't[snrDB=5]' both draw seed 50"))
        XCTAssertTrue(
            message(head + "    - {name: a, paired: true}").contains("paired is a sweep's"))
        // File sets draw nothing, so their seed is free.
        try! NPYArray(shape: [2, 32, 32], values: [Float](repeating: 0, count: 2 * 32 * 32)).write(
            to: dir + "/scan.npy")
        XCTAssertEqual(
            message(
                """
                simulation: {imageSize: 32, seed: 7}
                model: {preset: tiny}
                evaluation:
                  sets:
                    - {name: scan, seed: 7, files: ['\(dir)/scan.npy']}
                """), "no error")
    }
}
