import Foundation
import XCTest
@testable import SPIONetworks
@testable import SPIOPhysics
@testable import SPIOTensor
@testable import SPIOTraining

/// Training `tiny` DeepSPIO on simulated View Line images: learning, exact resume, NaN handling,
/// thread-count determinism.
final class TrainerTests: XCTestCase {
    /// 32 x 32 brain slices with the paper's random shapes; cached per process.
    nonisolated(unsafe) static var cache: [Int: TrainingSet] = [:]
    static func simulated(_ count: Int) throws -> TrainingSet {
        if let s = cache[count] { return s }
        var config = SimulationConfig()
        config.imageSize = 32
        let d = try SimulatedDataset.generate(config: config, count: count)
        let set = TrainingSet(
            images: Tensor(shape: [count, 2, 32, 32], values: d.images),
            concentration: Tensor(shape: [count, 32, 32], values: d.concentration))
        cache[count] = set
        return set
    }

    private func temporaryDirectory() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("spio-trainer-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url
    }

    private func tinyTraining(epochs: Int, learningRate: Double = 3e-3, batchSize: Int = 16) -> TrainingConfig {
        var t = TrainingConfig()
        (t.epochs, t.learningRate, t.batchSize, t.seed) = (epochs, learningRate, batchSize, 7)
        return t
    }

    func testTinyDeepSPIOLearnsSimulatedImages() throws {
        let (train, val) = try Trainer.split(try Self.simulated(320), validationFraction: 0.1)
        let trainer = Trainer(
            model: .preset("tiny")!, training: tinyTraining(epochs: 12), data: train, validation: val,
            checkpointDirectory: nil)
        let before = Evaluation.meanAndSD(
            Evaluation.nmae(
                prediction: try Evaluation.predict(trainer.model, inputs: val!.inputs),
                truth: val!.concentration
            ).compactMap { $0 }
        ).mean
        let history = try trainer.run()
        let after = history.last!.validationNMAE
        print(
            "tiny DeepSPIO, \(train.count) training images: validation NMAE \(before) before training, per epoch",
            history.map { String(format: "%.3f", $0.validationNMAE) }.joined(separator: " "))
        // Measured: 7.13 -> 1.02. The paper's images are hard for tiny in a test-sized run: it ends
        // near the zero predictor (NMAE 1), far below the untrained network.
        XCTAssertLessThan(after, 0.3 * before, "validation NMAE \(before) -> \(after)")
        XCTAssertLessThan(history.last!.trainLoss, 0.7 * history.first!.batchLosses.first!)
    }

    /// A target the network can certainly learn: C = 4 x (channel 0 where it exceeds 0.3), on
    /// random Gaussian blobs. Checks the whole pipeline (loss in wavelet space, inverse transform,
    /// NMAE in image space) reaches an NMAE far below the zero predictor's 1.
    func testLearnsALearnableTargetFarBelowTheZeroPredictor() throws {
        let (n, size) = (256 + 32, 32)
        var rng = SeededGenerator(seed: 11)
        let x = Tensor(shape: [n, 2, size, size]), c = Tensor(shape: [n, size, size])
        for s in 0..<n {
            for ch in 0..<2 {
                for _ in 0..<rng.int(in: 1...3) {
                    let (cy, cx, r) = (rng.uniform(4, 28), rng.uniform(4, 28), rng.uniform(2, 5))
                    for i in 0..<size {
                        for j in 0..<size {
                            let d2 = (Double(i) - cy) * (Double(i) - cy) + (Double(j) - cx) * (Double(j) - cx)
                            x.data[((s * 2 + ch) * size + i) * size + j] += Float(exp(-d2 / (2 * r * r)))
                        }
                    }
                }
            }
            for p in 0..<(size * size) {
                let v = x.data[s * 2 * size * size + p]; c.data[s * size * size + p] = v > 0.3 ? 4 * v : 0
            }
        }
        let (train, val) = try Trainer.split(
            TrainingSet(scaledInputs: x, concentration: c), validationFraction: 32.0 / Double(n))
        // DeepSPIO tiny squeezes 32 x 32 through a 2 x 2 bottleneck; the U-Net style skips carry the
        // positions, so this variant learns in seconds while still predicting wavelet bands.
        var model = ModelConfig.preset("tiny")!
        model.skips = true
        let trainer = Trainer(
            model: model, training: tinyTraining(epochs: 20), data: train, validation: val, checkpointDirectory: nil)
        let history = try trainer.run()
        print(
            "learnable target: validation NMAE per epoch",
            history.map { String(format: "%.3f", $0.validationNMAE) }.joined(separator: " "))
        XCTAssertLessThan(history.last!.validationNMAE, 0.6, "measured 0.44 after 20 epochs")
    }

    /// An uninterrupted run and a run stopped in the middle of epoch 2 then resumed by a new
    /// trainer end with bitwise equal weights, buffers and histories.
    func testResumeAfterInterruptionIsExact() throws {
        let (train, val) = try Trainer.split(try Self.simulated(80), validationFraction: 0.2)
        let config = tinyTraining(epochs: 3)
        let whole = Trainer(
            model: .preset("tiny")!, training: config, data: train, validation: val,
            checkpointDirectory: temporaryDirectory())
        try whole.run()

        let dir = temporaryDirectory()
        let first = Trainer(
            model: .preset("tiny")!, training: config, data: train, validation: val, checkpointDirectory: dir)
        var batches = 0
        first.shouldStop = {
            batches += 1; return batches > 6
        }  // 4 batches per epoch: stops inside epoch 2
        XCTAssertThrowsError(try first.run()) { error in
            XCTAssertTrue("\(error)".contains("interrupted at epoch 2"), "\(error)")
            XCTAssertTrue("\(error)".contains("epoch-0001"), "\(error)")
        }
        let second = Trainer(
            model: .preset("tiny")!, training: config, data: train, validation: val, checkpointDirectory: dir)
        try second.run()
        XCTAssertEqual(second.history.map(\.batchLosses), whole.history.map(\.batchLosses))
        XCTAssertEqual(second.history.map(\.validationNMAE), whole.history.map(\.validationNMAE))
        for ((name, a), (_, b)) in zip(
            Checkpoint.stateDict(whole.model).sorted { $0.key < $1.key },
            Checkpoint.stateDict(second.model).sorted { $0.key < $1.key })
        {
            XCTAssertEqual(a.bytes, b.bytes, "\(name) differs after resume")
        }
        XCTAssertEqual(second.optimizer.step, whole.optimizer.step)
        // More epochs continue the finished run and match a longer uninterrupted one.
        var longer = config; longer.epochs = 4
        let continued = Trainer(
            model: .preset("tiny")!, training: longer, data: train, validation: val, checkpointDirectory: dir)
        try continued.run()
        let straight = Trainer(
            model: .preset("tiny")!, training: longer, data: train, validation: val, checkpointDirectory: nil)
        try straight.run()
        XCTAssertEqual(continued.history.map(\.batchLosses), straight.history.map(\.batchLosses))
        XCTAssertEqual(continued.model.parameters.map(\.value.array), straight.model.parameters.map(\.value.array))
        // A different configuration refuses the directory.
        var other = config; other.learningRate = 1e-2
        XCTAssertThrowsError(
            try Trainer(
                model: .preset("tiny")!, training: other, data: train, validation: val, checkpointDirectory: dir
            ).run()
        ) {
            XCTAssertTrue("\($0)".contains("another configuration"), "\($0)")
        }
    }

    /// A NaN in the data at epoch 2 stops the run with a message; epoch 1's checkpoint survives.
    func testNaNStopsTheRunAndKeepsTheLastGoodCheckpoint() throws {
        let (train, val) = try Trainer.split(try Self.simulated(80), validationFraction: 0.2)
        let dir = temporaryDirectory()
        let trainer = Trainer(
            model: .preset("tiny")!, training: tinyTraining(epochs: 3), data: train, validation: val,
            checkpointDirectory: dir)
        trainer.batchHook = { epoch, batch, inputs in if epoch == 2 && batch == 1 { inputs.data[5] = .nan } }
        XCTAssertThrowsError(try trainer.run()) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("epoch 2, step 6: the loss is not finite"), text)
            XCTAssertTrue(text.contains("epoch-0001"), text)
        }
        XCTAssertEqual(Trainer.latestCheckpoint(in: dir)?.folder.lastPathComponent, "epoch-0001")
        XCTAssertEqual(Trainer.latestCheckpoint(in: dir)?.epoch, 1)
        let restored = EncoderDecoderNet(.preset("tiny")!, seed: 99)
        try Checkpoint.load(
            restored, from: Trainer.latestCheckpoint(in: dir)!.folder.appendingPathComponent("model.safetensors"))
        XCTAssertTrue(restored.parameters.allSatisfy { $0.value.array.allSatisfy(\.isFinite) })
    }

    /// One epoch on 1 and on 2 threads: bitwise equal weights.
    func testTrainingIsIdenticalOnOneAndTwoThreads() throws {
        let (train, _) = try Trainer.split(try Self.simulated(80), validationFraction: 0)
        func weights(threads: Int) throws -> [[Float]] {
            let saved = Engine.threadCount
            Engine.setThreadCount(threads)
            defer { Engine.setThreadCount(saved) }
            let t = Trainer(
                model: .preset("tiny")!, training: tinyTraining(epochs: 1), data: train, validation: nil,
                checkpointDirectory: nil)
            try t.run()
            return t.model.parameters.map(\.value.array)
        }
        XCTAssertTrue(try weights(threads: 1) == weights(threads: 2))
    }
}

/// The recipe knobs of the convergence study: an MSE warm-up and a learning-rate warm-up, both off
/// by default and then invisible in the configuration's JSON (old hashes stay).
final class TrainingRecipeTests: XCTestCase {
    func testDefaultsKeepTheCanonicalJSON() throws {
        let json = TrainingConfig().json
        XCTAssertFalse(json.contains("Warmup") || json.contains("warmup"), json)
        var c = TrainingConfig()
        c.mseWarmupSteps = 600; c.warmupSteps = 100
        XCTAssertTrue(c.json.contains("\"mseWarmupSteps\":600") && c.json.contains("\"warmupSteps\":100"), c.json)
        let back = try JSONDecoder().decode(TrainingConfig.self, from: Data(c.json.utf8))
        XCTAssertEqual(back, c)
        for key in ["lossEpsilon", "bandWeights", "imageTermWeight"] { XCTAssertFalse(json.contains(key), json) }
        XCTAssertFalse(ModelConfig.preset("tiny")!.json.contains("outputScale"))
        XCTAssertFalse(ModelConfig.preset("tiny")!.json.contains("inputScaling"))
        var unscaled = ModelConfig.preset("tiny")!
        unscaled.inputScaling = .none
        XCTAssertTrue(unscaled.json.contains("\"inputScaling\":\"none\""), unscaled.json)
        XCTAssertEqual(try JSONDecoder().decode(ModelConfig.self, from: Data(unscaled.json.utf8)), unscaled)
        // What the network sees: scaled images by default, the values themselves with `none`.
        let images = Tensor(shape: [1, 2, 2, 2], values: [0, 2, 4, 8, 1, 3, 5, 7])
        let set = TrainingSet(images: images, concentration: Tensor(shape: [1, 2, 2]), scaling: .none)
        XCTAssertEqual(set.inputs.array, images.array)
        XCTAssertEqual(TrainingSet(images: images, concentration: Tensor(shape: [1, 2, 2])).inputs.array.max(), 1)
        (c.lossEpsilon, c.bandWeights, c.imageTermWeight) = (10, [2, 1, 1, 1], 0.5)
        XCTAssertEqual(try JSONDecoder().decode(TrainingConfig.self, from: Data(c.json.utf8)), c)
    }

    /// The loss variants are checked with the model they train: bad values and band options on a
    /// model that predicts the image are errors, in words.
    func testLossVariantProblems() {
        var c = TrainingConfig()
        c.bandWeights = [1, 1, 1]
        XCTAssertEqual(c.problem?.hasPrefix("bandWeights must be 4 weights"), true)
        c.bandWeights = [0, 0, 0, 0]
        XCTAssertNotNil(c.problem)
        c.bandWeights = nil
        c.lossEpsilon = 0
        XCTAssertEqual(c.problem?.hasPrefix("lossEpsilon must lie in"), true)
        c.lossEpsilon = 1e-6
        c.imageTermWeight = 0.5
        XCTAssertNil(c.problem)
        XCTAssertNil(c.lossProblem(for: .preset("tiny")!))
        var unet = ModelConfig.preset("tiny")!
        unet.architecture = .unet
        XCTAssertEqual(c.lossProblem(for: unet)?.contains("predicts the image (unet"), true)
    }

    func testLearningRateWarmup() {
        var c = TrainingConfig()
        c.learningRate = 1e-3; c.warmupSteps = 4
        XCTAssertEqual((0..<6).map { c.learningRate(atStep: $0) }, [0.25e-3, 0.5e-3, 0.75e-3, 1e-3, 1e-3, 1e-3])
        c.warmupSteps = 0
        XCTAssertEqual(c.learningRate(atStep: 0), 1e-3)
        // The ramp again after a 3-step MSE warm-up, over 2 steps; written only when set.
        c.mseWarmupSteps = 3; c.switchWarmupSteps = 2
        XCTAssertEqual((0..<7).map { c.learningRate(atStep: $0) }, [1e-3, 1e-3, 1e-3, 0.5e-3, 1e-3, 1e-3, 1e-3])
        XCTAssertTrue(c.json.contains("\"switchWarmupSteps\":2"), c.json)
        XCTAssertFalse(TrainingConfig().json.contains("switchWarmupSteps"))
        c.mseWarmupSteps = 0
        XCTAssertNotNil(c.problem)
    }

    /// During the warm-up the first batch's loss is the mean squared error of the untrained
    /// network's wavelet bands; without it, the paper's normalised L1 of the same prediction.
    func testMSEWarmupReplacesTheLossForItsSteps() throws {
        let data = try TrainerTests.simulated(40)
        var c = TrainingConfig()
        (c.epochs, c.batchSize, c.seed, c.validationFraction) = (1, 8, 3, 0)
        func firstLoss(warmup: Int) throws -> Double {
            c.mseWarmupSteps = warmup
            let t = Trainer(model: .preset("tiny")!, training: c, data: data, validation: nil, checkpointDirectory: nil)
            return try t.run()[0].batchLosses[0]
        }
        // The same first batch through the same initial network, measured directly.
        let reference = Trainer(
            model: .preset("tiny")!, training: c, data: data, validation: nil, checkpointDirectory: nil)
        let idx = reference.batches(epoch: 1)[0]
        let x = Tensor(shape: [idx.count, 2, 32, 32]), bands = Tensor(shape: [0])
        let c0 = Tensor(shape: [idx.count, 1, 32, 32])
        for (k, i) in idx.enumerated() {
            (x.data + k * 2048).update(from: data.inputs.data + i * 2048, count: 2048)
            (c0.data + k * 1024).update(from: data.concentration.data + i * 1024, count: 1024)
        }
        DB4Wavelet.forward(c0, into: bands)
        let prediction = reference.model(x).copy()
        let penalty = NormalisedL1Loss.weightPenalty(reference.optimizer.parameters, lambda: c.l2)
        let mse = MeanSquaredError()(prediction, bands).loss, l1 = NormalisedL1Loss()(prediction, bands).loss
        XCTAssertNotEqual(mse, l1)
        XCTAssertEqual(
            try firstLoss(warmup: 5), mse + penalty, accuracy: 1e-6 * mse,
            "warm-up: MSE (the penalty is taken after the step)")
        XCTAssertEqual(try firstLoss(warmup: 0), l1 + penalty, accuracy: 1e-6 * l1, "no warm-up: the paper's loss")
    }
}
