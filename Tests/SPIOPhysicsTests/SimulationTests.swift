import SPIOConfig
import XCTest
import SPIODigest
import SPIOCoding
import Foundation
@testable import SPIOPhysics
import SPIOImageIO
import SPIOTensor

final class SimulationTests: XCTestCase {
    private func tinyConfig(_ anatomy: String = "procedural-brain") -> SimulationConfig {
        var c = SimulationConfig()
        c.imageSize = 32; c.anatomy = AnatomyConfig(kind: anatomy); c.noise = NoiseConfig(snrDB: 11)
        return c
    }

    /// `snrRangeDB` draws each sample's SNR: a range of one value gives that SNR's noise level, a
    /// range far above it almost none; the same index gives the same image; malformed ranges and a
    /// range beside a finite snrDB are errors.
    func testNoiseWithAnSNRRangePerSample() throws {
        var clean = tinyConfig("uniform")
        clean.noise = NoiseConfig()
        let reference = try ViewLineSimulator(config: clean).sample(0).image
        func residual(_ noise: NoiseConfig) throws -> (Double, [Float]) {
            var c = clean
            c.noise = noise
            let image = try ViewLineSimulator(config: c).sample(0).image
            let rms =
                (zip(image, reference).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }
                / Double(image.count)).squareRoot()
            return (rms, image)
        }
        var at11 = NoiseConfig(), range11 = NoiseConfig(), range40 = NoiseConfig()
        at11.snrDB = 11
        range11.snrRangeDB = [11, 11]
        range40.snrRangeDB = [40, 40]
        let (fixed, _) = try residual(at11), (drawn, image) = try residual(range11), (quiet, _) = try residual(range40)
        XCTAssertEqual(drawn, fixed, accuracy: 0.2 * fixed, "the same SNR, other noise draws")
        XCTAssertLessThan(quiet, 0.1 * fixed)
        XCTAssertEqual(try residual(range11).1, image)
        let json = canonicalJSON(range11)
        XCTAssertTrue(json.contains("snrRangeDB"), json)
        XCTAssertFalse(canonicalJSON(at11).contains("snrRangeDB"))
        XCTAssertEqual(try JSONDecoder().decode(NoiseConfig.self, from: Data(json.utf8)), range11)
        for bad in [#"{"snrRangeDB": [20, 5]}"#, #"{"snrRangeDB": [5]}"#, #"{"snrDB": 11, "snrRangeDB": [5, 20]}"#] {
            XCTAssertThrowsError(try JSONDecoder().decode(NoiseConfig.self, from: Data(bad.utf8)), bad)
        }
    }

    /// The samples of generator version 3, pinned bit for bit: dataset caches are keyed by the
    /// configuration and the generator version, not by the arrays, so a change that alters any bit
    /// of a sample needs a new generator version (and a re-run of the studies), and a change meant
    /// to keep them (a faster field solver, a faster voxeliser) must pass this. Brain slices at
    /// 128 x 128 with random metaballs and tori at 11 dB on the 128^3 field grid, and a sphere in
    /// an agar phantom, each digest over images, concentration and field.
    func testGeneratorVersion3SamplesArePinned() throws {
        func digest(_ c: SimulationConfig, _ count: Int) throws -> String {
            let d = try SimulatedDataset.generate(config: c, count: count, keepField: true)
            return SHA256.hex(floats: [d.images, d.concentration, d.fieldHz ?? []])
        }
        XCTAssertEqual(KeyVersion.generator, "view-line-simulator 3")
        let brain = """
            simulation:
              imageSize: 128
              seed: 1
              anatomy: {kind: procedural-brain}
              scene: {kind: random, shapeCount: [1, 5], concentrationRangeUgPerMM3: [0.22, 17.5]}
              sequence: {lineCount: 25, stripeWidthMM: 1, rfBandwidthHz: 2000, readoutBandwidthHz: 50000}
              field: {b0Tesla: 7, saturationMagnetisationAm2PerKg: 100, paddingFactor: 2, maxMatrix: 128}
              noise: {snrDB: 11}
            """
        let spheres = """
            simulation:
              imageSize: 64
              scene:
                kind: objects
                objects:
                  - {shape: sphere, centerMM: [-6, 0, 2], radiusMM: 3, concentrationUgPerMM3: 10}
                  - {shape: sphere, centerMM: [9, 0, -4], radiusMM: 4, deltaChiPPM: 9.4}
            """
        func config(_ yaml: String) throws -> SimulationConfig {
            try ConfigFile.decode(SimulationConfig.self, yaml: yaml, file: "pinned.yaml", key: "simulation")
        }
        XCTAssertEqual(try digest(config(brain), 6), "babdbfe315170bb9fa9f8c6cc05bad415133ebe3edadd0972c392e33be68f110")
        XCTAssertEqual(
            try digest(config(spheres), 2), "7766a98d1ac93e7bcfd2f8a49c72cdf70ea47683340c01a7a20fb8c8d3b6453f")
    }

    func testSameSeedSameArraysOnOneAndTwoThreads() throws {
        let config = tinyConfig()
        Engine.setThreadCount(1)
        let a = try SimulatedDataset.generate(config: config, count: 6, keepField: true)
        Engine.setThreadCount(2)
        let b = try SimulatedDataset.generate(config: config, count: 6, keepField: true)
        XCTAssertEqual(a.images, b.images); XCTAssertEqual(a.concentration, b.concentration);
        XCTAssertEqual(a.fieldHz, b.fieldHz)
        // Sample i does not depend on how many samples are made.
        let c = try SimulatedDataset.generate(config: config, count: 3)
        XCTAssertEqual(Array(a.images[0..<(3 * 2 * 32 * 32)]), c.images)
        // Different samples and different seeds differ.
        XCTAssertNotEqual(Array(a.images[0..<2048]), Array(a.images[2048..<4096]))
        var other = config; other.seed = 2
        XCTAssertNotEqual(try SimulatedDataset.generate(config: other, count: 1).images, Array(a.images[0..<2048]))
    }

    func testRandomScenesFollowThePaper() {
        let scene = SceneConfig()
        for i in 0..<200 {
            var rng = SeededGenerator(seed: 9, stream: UInt64(i))
            let objects = scene.objects(fovMM: 50, rng: &rng)
            XCTAssertTrue((1...5).contains(objects.count))
            let c = objects[0].concentrationUgPerMM3
            XCTAssertTrue((0.22...17.5).contains(c))
            for o in objects {
                XCTAssertEqual(o.concentrationUgPerMM3, c, "one concentration per sample")
                switch o.shape {
                case let .torus(centre, big, small):
                    XCTAssertTrue((5...10).contains(big) && (2...4).contains(small));
                    XCTAssertLessThanOrEqual(abs(centre.y), 3)
                case let .metaball(centres, l):
                    XCTAssertTrue((0.01...0.05).contains(l)); XCTAssertTrue((1...4).contains(centres.count))
                    for p in centres {
                        for q in centres { XCTAssertLessThanOrEqual(((p - q) * (p - q)).sum().squareRoot(), 8) }
                    }
                default: XCTFail("unexpected shape \(o.shape)")
                }
            }
        }
    }

    func testNoiseHasTheRequestedSigma() {
        var rng = SeededGenerator(seed: 3)
        let clean = (0..<20000).map { $0 % 2 == 0 ? Float(2) : 0 }
        XCTAssertEqual(NoiseModel.signalLevel(clean), 2)
        var noisy = clean
        NoiseModel.apply(to: &noisy, sigma: 0.2, rng: &rng)
        var sq = 0.0
        for i in stride(from: 0, to: clean.count, by: 2) { sq += pow(Double(noisy[i] - clean[i]), 2) }
        let rms = (sq / Double(clean.count / 2)).squareRoot()
        XCTAssertEqual(rms, 0.2, accuracy: 0.01)  // magnitude of (2 + n) + i n: ~sigma for large signal
    }

    /// A scanner's noise does not depend on the iron in the slice: at one nominal SNR, the same
    /// anatomy gets the same sigma at every concentration, S / 10^(snrDB/20) with S the SPIO-free
    /// stripes' signal; the old reference (the distorted image's own bright pixels) did not.
    func testNoiseSigmaIsTheSameAtEveryConcentration() throws {
        var config = tinyConfig("uniform")
        config.imageSize = 64
        config.noise.snrDB = 11
        config.scene = SceneConfig(kind: "objects")
        var sigmas: [Double] = [], ownReference: [Double] = []
        for c in [2.0, 20.0, 60.0] {
            var o = ObjectConfig(); o.radiusMM = 3; o.concentrationUgPerMM3 = c
            config.scene.objects = [o]
            let simulator = try ViewLineSimulator(config: config)
            var clean = config; clean.noise.snrDB = .infinity
            let sample = try ViewLineSimulator(config: clean).sample(0)
            sigmas.append(simulator.noiseSigma(protonDensity: sample.protonDensity))
            ownReference.append(NoiseModel.signalLevel(sample.image) / pow(10, 11.0 / 20))
        }
        var none = config; none.scene = SceneConfig(kind: "none")
        var noneClean = none; noneClean.noise.snrDB = .infinity
        let reference = NoiseModel.signalLevel(try ViewLineSimulator(config: noneClean).sample(0).image)
        let flat = try ViewLineSimulator(config: none)
        XCTAssertEqual(sigmas[0], sigmas[1]); XCTAssertEqual(sigmas[1], sigmas[2])
        XCTAssertEqual(sigmas[0], reference / pow(10, 11.0 / 20), accuracy: 1e-12 * reference)
        XCTAssertEqual(flat.noiseSigma(protonDensity: try flat.sample(0).protonDensity), sigmas[0], accuracy: 1e-12)
        let spread = (ownReference.max()! - ownReference.min()!) / ownReference.min()!
        print(
            "sigma at 11 dB: \(sigmas[0]) at every concentration; the image's own reference would give \(ownReference)")
        XCTAssertGreaterThan(spread, 0.01, "the pile-ups change the distorted image's own bright-pixel level")
    }

    /// Noise-free datasets keep the hash they had before the noise reference changed; noisy ones
    /// get a new one, so a workspace never reuses a dataset simulated with the old reference.
    func testOnlyNoisyDatasetsChangedTheirHash() {
        func before(_ c: SimulationConfig) -> String {
            SHA256.hex("\(KeyVersion.generator)\n\(canonicalJSON(c))\ncount=5")
        }
        var clean = tinyConfig(); clean.noise.snrDB = .infinity
        XCTAssertEqual(SimulatedDataset.contentHash(config: clean, count: 5), before(clean))
        let noisy = tinyConfig()
        XCTAssertNotEqual(SimulatedDataset.contentHash(config: noisy, count: 5), before(noisy))
    }

    /// The information control's input: both channels are the sample's true field in kHz (the
    /// same scene as the View Line sample), and a configuration that does not ask for it keeps its
    /// canonical JSON, and so its hash, whether `input: viewLine` is written or not.
    func testFieldInputIsTheTrueFieldInKHz() throws {
        let config = tinyConfig()
        var field = config
        field.input = .field
        let images = try SimulatedDataset.generate(config: config, count: 2, keepField: true)
        let fields = try SimulatedDataset.generate(config: field, count: 2)
        let plane = config.imageSize * config.imageSize
        XCTAssertEqual(fields.concentration, images.concentration)
        for s in 0..<2 {
            let kHz = images.fieldHz![(s * plane)..<((s + 1) * plane)].map { $0 / 1000 }
            XCTAssertEqual(Array(fields.images[(2 * s * plane)..<((2 * s + 1) * plane)]), kHz)
            XCTAssertEqual(Array(fields.images[((2 * s + 1) * plane)..<((2 * s + 2) * plane)]), kHz)
        }
        XCTAssertGreaterThan(fields.images.map { abs($0) }.max()!, 0.01, "a field of at least 10 Hz somewhere")
        XCTAssertFalse(canonicalJSON(config).contains("input"))
        XCTAssertTrue(canonicalJSON(field).contains("\"input\":\"field\""))
        let written = try JSONDecoder().decode(
            SimulationConfig.self,
            from: Data(
                canonicalJSON(config).replacingOccurrences(
                    of: "{\"anatomy\"", with: "{\"input\":\"viewLine\",\"anatomy\""
                ).utf8))
        XCTAssertEqual(canonicalJSON(written), canonicalJSON(config))
        XCTAssertNotEqual(
            SimulatedDataset.contentHash(config: field, count: 2),
            SimulatedDataset.contentHash(config: config, count: 2))
    }

    func testVoidsAndBendingNearTheParticles() throws {
        var config = tinyConfig("uniform")
        config.imageSize = 64; config.noise = NoiseConfig()
        config.scene = SceneConfig(kind: "objects")
        var o = ObjectConfig(); o.radiusMM = 3; o.concentrationUgPerMM3 = 5
        config.scene.objects = [o]
        let s = try ViewLineSimulator(config: config).sample(0)
        var none = config; none.scene = SceneConfig(kind: "none")
        let flat = try ViewLineSimulator(config: none).sample(0)
        var relaxOnly = config; relaxOnly.field.enabled = false
        let void = try ViewLineSimulator(config: relaxOnly).sample(0)
        // Without the field the sphere is a pure signal void (r2 relaxation); with it, the stripes
        // bend and pile up (signal displaced by up to ~18 mm lands even inside the sphere).
        let n = 64, centre = 32
        XCTAssertGreaterThan(s.concentration[centre * n + centre], 4.9)
        XCTAssertGreaterThan(flat.image[centre * n + centre] + flat.image[n * n + centre * n + centre], 0.5)
        XCTAssertLessThan(void.image[centre * n + centre] + void.image[n * n + centre * n + centre], 1e-6)
        var moved = 0
        for i in 0..<(2 * n * n) where abs(s.image[i] - flat.image[i]) > 0.05 { moved += 1 }
        XCTAssertGreaterThan(moved, 200, "pixels changed by the field")
        XCTAssertEqual(s.image[2 * n + 2], flat.image[2 * n + 2], accuracy: 0.01, "far corner barely moves")
    }

    /// An air sphere in the plane is a signal void (no protons) with its own field; an SPIO
    /// sphere of the same size is not emptied of protons (it voids by relaxation instead).
    func testAirIsASignalVoid() throws {
        var config = tinyConfig("uniform")
        config.imageSize = 64; config.noise = NoiseConfig()
        config.scene = SceneConfig(kind: "objects")
        var air = ObjectConfig(); air.radiusMM = 5; air.centerMM = [8, 0, 0]; air.deltaChiPPM = 9.4
        config.scene.objects = [air]
        let s = try ViewLineSimulator(config: config).sample(0)
        let n = 64, pixelMM = 50.0 / 64
        let (row, col) = (32, Int((25 + 8) / pixelMM))
        XCTAssertEqual(s.protonDensity[row * n + col], 0, "inside the sphere")
        XCTAssertEqual(s.protonDensity[row * n + 8], 1, accuracy: 1e-6, "far from it")
        let edge = (0..<n).map { s.protonDensity[row * n + $0] }.filter { $0 > 0 && $0 < 1 }
        XCTAssertFalse(edge.isEmpty, "partial volume at the edge")
        XCTAssertTrue(s.concentration.allSatisfy { $0 == 0 }, "air is no SPIO")
        XCTAssertGreaterThan(s.fieldHz.map(abs).max()!, 100, "air still bends the field (9.4 ppm at 7 T)")
        var spio = config
        spio.scene.objects[0].deltaChiPPM = 0; spio.scene.objects[0].concentrationUgPerMM3 = 5
        XCTAssertEqual(try ViewLineSimulator(config: spio).sample(0).protonDensity[row * n + col], 1, accuracy: 1e-6)
    }

    func testFileAnatomyReadsAnNPYStack() throws {
        let path = NSTemporaryDirectory() + "spio-stack-\(getpid()).npy"
        let stack = (0..<(3 * 16 * 16)).map { Float($0 % 16) }
        try NPYArray(shape: [3, 16, 16], values: stack).write(to: path)
        var config = tinyConfig("file")
        config.anatomy.path = path; config.anatomy.sliceFraction = 1
        let s = try ViewLineSimulator(config: config).sample(0)
        XCTAssertEqual(s.protonDensity.count, 32 * 32)
        XCTAssertEqual(s.protonDensity.max()!, 1, accuracy: 1e-6)
        XCTAssertLessThan(s.protonDensity[0], s.protonDensity[31])  // x ramp survives the resampling
        config.anatomy.path = path + ".missing"
        XCTAssertThrowsError(try ViewLineSimulator(config: config)) { XCTAssertTrue("\($0)".contains(".missing")) }
    }

    /// A dataset drawn from a volume is keyed by the volume's contents: a copy elsewhere keys the
    /// same, an edited volume (same path) another, and a folder of volumes keys by every file in it.
    func testAVolumeAnatomyIsKeyedByItsContents() throws {
        let folder = NSTemporaryDirectory() + "spio-digest-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder + "/a", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder + "/b", withIntermediateDirectories: true)
        let values = (0..<(3 * 8 * 8)).map { Float($0 % 5) }
        try NPYArray(shape: [3, 8, 8], values: values).write(to: folder + "/a/v.npy")
        try NPYArray(shape: [3, 8, 8], values: values).write(to: folder + "/b/v.npy")
        func key(_ path: String) -> String {
            var c = tinyConfig("file")
            c.anatomy.path = path
            return SimulatedDataset.contentHash(config: c, count: 4)
        }
        let original = key(folder + "/a/v.npy")
        XCTAssertEqual(key(folder + "/b/v.npy"), original, "the same volume at another path")
        XCTAssertEqual(key(folder + "/a"), key(folder + "/b"), "folders holding the same volumes")
        var edited = values
        edited[7] += 1
        try NPYArray(shape: [3, 8, 8], values: edited).write(to: folder + "/a/v.npy")
        XCTAssertNotEqual(key(folder + "/a/v.npy"), original, "an edited volume is a new dataset")
        XCTAssertNotEqual(key(folder + "/a"), key(folder + "/b"))
        XCTAssertNotEqual(key(folder + "/missing.npy"), original)
    }

    /// Training and test sets drawn from slabs of a real volume share no slice; without a slab the
    /// central fraction is used as before, and the configuration's JSON (its hash) is unchanged.
    func testSlabsOfAVolumeShareNoSlice() throws {
        let stack = NSTemporaryDirectory() + "spio-slab-\(getpid()).npy"
        defer { try? FileManager.default.removeItem(atPath: stack) }
        try NPYArray(shape: [10, 8, 8], values: (0..<640).map { Float($0 % 7) }).write(to: stack)
        let train = try FileAnatomy(path: stack, slab: [0.3, 0.6]),
            test = try FileAnatomy(path: stack, slab: [0.65, 0.8])
        XCTAssertEqual(train.sliceRange(nz: 10), 3..<6)
        XCTAssertEqual(test.sliceRange(nz: 10), 6..<8)
        XCTAssertEqual(try FileAnatomy(path: stack).sliceRange(nz: 10), 2..<7)
        XCTAssertEqual(try FileAnatomy(path: stack, slab: [0, 0.01]).sliceRange(nz: 10), 0..<1, "at least one slice")
        let yaml = "anatomy: {kind: file, path: \(stack), slab: [0.6, 0.3]}"
        XCTAssertThrowsError(try ConfigFile.decode(SimulationConfig.self, yaml: yaml, file: "s.yaml")) {
            XCTAssertTrue("\($0)".contains("expected [from, to] with 0 <= from < to <= 1"), "\($0)")
        }
        XCTAssertFalse(canonicalJSON(SimulationConfig()).contains("slab"))
    }

    func testWriteProducesArraysManifestAndPreviews() throws {
        let dir = NSTemporaryDirectory() + "spio-sim-\(getpid())"
        let data = try SimulatedDataset.generate(config: tinyConfig(), count: 3, keepField: true)
        try data.write(to: dir, previews: 2)
        XCTAssertEqual(try NPYArray.read(dir + "/images.npy").shape, [3, 2, 32, 32])
        XCTAssertEqual(try NPYArray.read(dir + "/concentration.npy").shape, [3, 32, 32])
        XCTAssertEqual(try NPYArray.read(dir + "/field.npy").values, data.fieldHz)
        let manifest = try JSONDecoder().decode(
            DatasetManifest.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/manifest.json")))
        XCTAssertEqual(manifest.count, 3); XCTAssertEqual(manifest.config, tinyConfig())
        XCTAssertEqual(manifest.contentHash, SimulatedDataset.contentHash(config: tinyConfig(), count: 3))
        XCTAssertEqual(manifest.previews, ["preview-000.png", "preview-001.png"])
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/preview-001.png"))
    }

    func testContentHashIgnoresKeyOrderButNotValues() throws {
        let a = try ConfigFile.decode(SimulationConfig.self, yaml: "imageSize: 32\nfovMM: 40\n", file: "a.yaml")
        let b = try ConfigFile.decode(SimulationConfig.self, yaml: "fovMM: 40\nimageSize: 32\n", file: "b.yaml")
        XCTAssertEqual(
            SimulatedDataset.contentHash(config: a, count: 5), SimulatedDataset.contentHash(config: b, count: 5))
        XCTAssertNotEqual(
            SimulatedDataset.contentHash(config: a, count: 5), SimulatedDataset.contentHash(config: a, count: 6))
    }
}

/// Configuration errors name the file, the line and column, the key path and what was expected.
final class SimulationConfigTests: XCTestCase {
    private func error(_ yaml: String) -> String {
        do {
            _ = try ConfigFile.decode(SimulationConfig.self, yaml: yaml, file: "exp.yaml", key: "simulation");
            return "no error"
        } catch { return "\(error)" }
    }

    func testDefaultsAndOverrides() throws {
        let c = try ConfigFile.decode(
            SimulationConfig.self,
            yaml: "simulation:\n  imageSize: 128\n  noise: {snrDB: inf}\n  sequence: {lineCount: 21}\nmodel: {}\n",
            file: "x.yaml", key: "simulation")
        XCTAssertEqual(c.imageSize, 128); XCTAssertEqual(c.sequence.lineCount, 21)
        XCTAssertEqual(c.sequence.stripeWidthMM, 1); XCTAssertEqual(c.fovMM, 50);
        XCTAssertEqual(c.noise.snrDB, .infinity)
        XCTAssertEqual(
            try ConfigFile.decode(
                SimulationConfig.self, yaml: "simulation:\n  noise: {snrDB: 11}\n", file: "x", key: "simulation"
            ).noise.snrDB, 11)
    }

    func testMalformedConfigs() {
        XCTAssertEqual(
            error("simulation:\n  imageSize: 64\n  fovMMM: 50\n"),
            "exp.yaml:3:3: simulation.fovMMM: unknown key 'fovMMM'; expected one of: imageSize, fovMM, seed, anatomy, "
                + "scene, sequence, field, noise, input"
        )
        XCTAssertTrue(
            error("simulation:\n  imageSize: big\n").hasPrefix(
                "exp.yaml:2:14: simulation.imageSize: expected an integer"), error("simulation:\n  imageSize: big\n"))
        XCTAssertEqual(
            error("simulation:\n  anatomy: {kind: liver}\n"),
            "exp.yaml:2:19: simulation.anatomy.kind: 'liver' is not one of: procedural-brain, procedural-breast, "
                + "agar, uniform, file"
        )
        XCTAssertTrue(
            error("simulation:\n  scene:\n    objects:\n      - {shape: sphere, radiusMM: 2}\n      - {shape: cube}\n")
                .hasPrefix("exp.yaml:5:17: simulation.scene.objects[1].shape: 'cube' is not one of"))
        XCTAssertTrue(
            error("simulation:\n  scene: {concentrationRangeUgPerMM3: [1, 2, 3]}\n").contains(
                "expected a list of 2 numbers, got 3"))
        XCTAssertTrue(error("simulation:\n  noise: {snrDB: loud}\n").contains("expected a number of dB or inf"))
        XCTAssertTrue(error("simulation: [1, 2\n").hasPrefix("exp.yaml:"))
        XCTAssertTrue(error("simulation:\n  anatomy: {kind: file}\n").contains("needs a path"))
        XCTAssertEqual(error("model: {}\n"), "exp.yaml: no 'simulation' block")
    }

    func testValidationRejectsOutOfRangeValues() throws {
        var c = SimulationConfig(); c.imageSize = 63
        XCTAssertThrowsError(try c.validate())
        c = SimulationConfig(); c.sequence.readoutPolarity = 2
        XCTAssertThrowsError(try c.validate()) { XCTAssertTrue("\($0)".contains("readoutPolarity")) }
        c = SimulationConfig(); c.scene.shapeCount = [3, 1]
        XCTAssertThrowsError(try c.validate())
    }
}

final class AnatomyTests: XCTestCase {
    func testSeparableNoiseGridEqualsPointEvaluation() {
        var rng = SeededGenerator(seed: 5)
        let noise = SmoothNoise(rng: &rng, count: 7, minimumWavelengthMM: 2, maximumWavelengthMM: 9)
        let n = 12, fov = 50.0, grid = noise.supersampledGrid(pixels: n, fovMM: fov)
        _ = renderSupersampled(pixels: n, fovMM: fov) { x, z, t in
            XCTAssertEqual(grid[t], noise(x, z), accuracy: 1e-9)
            return 0
        }
    }

    func testProceduralSlicesDifferPerSeedAndStayInRange() throws {
        for anatomy in [ProceduralBrain() as Anatomy, ProceduralBreast(), AgarPhantom()] {
            var a = SeededGenerator(seed: 1), b = SeededGenerator(seed: 2)
            let x = try anatomy.slice(pixels: 48, fovMM: 50, rng: &a),
                y = try anatomy.slice(pixels: 48, fovMM: 50, rng: &b)
            XCTAssertTrue(x.allSatisfy { $0 >= 0 && $0 <= 1 })
            XCTAssertGreaterThan(x.filter { $0 > 0.3 }.count, 48 * 48 / 3, "\(anatomy): mostly tissue")
            XCTAssertGreaterThan(x.filter { $0 == 0 }.count, 48, "\(anatomy): air around it")
            if !(anatomy is AgarPhantom) { XCTAssertNotEqual(x, y, "\(anatomy) changes with the seed") }
        }
    }

    /// Dataset sizes: exact bytes, overflow as nil (not a trap), and the automatic shard count.
    func testDatasetFootprintCountsBytesAndShards() {
        XCTAssertEqual(DatasetFootprint.bytes(imageSize: 32, count: 10), 4 * 3 * 32 * 32 * 10)
        XCTAssertEqual(DatasetFootprint.bytes(imageSize: 32, count: 10, keepField: true), 4 * 4 * 32 * 32 * 10)
        XCTAssertNil(DatasetFootprint.bytes(imageSize: 64, count: Int.max))
        XCTAssertNil(DatasetFootprint.bytes(imageSize: 1024, count: 1 << 40))
        XCTAssertNil(DatasetFootprint.automaticShards(bytes: 100, count: 10, budget: 100), "fits: one folder")
        XCTAssertEqual(DatasetFootprint.automaticShards(bytes: 101, count: 10, budget: 100), 5, "quarters of 100")
        XCTAssertEqual(DatasetFootprint.automaticShards(bytes: 10_000, count: 7, budget: 100), 7, "one per sample")
        XCTAssertNil(DatasetFootprint.problem(imageSize: 32, count: 1000, copies: 2, doing: "training on"))
        XCTAssertEqual(
            DatasetFootprint.problem(imageSize: 64, count: Int.max, copies: 1, doing: "simulating"),
            "simulating \(Int.max) images of 64 x 64 would take more bytes than a 64-bit size can count")
        XCTAssertTrue(
            DatasetFootprint.problem(imageSize: 1024, count: 1_000_000, copies: 2, doing: "evaluating")!.hasPrefix(
                "evaluating 1000000 images of 1024 x 1024 holds 25.2 TB in memory; this machine has "))
    }
}
