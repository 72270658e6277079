import Foundation
import XCTest
@testable import SPIONetworks
@testable import SPIOTensor

final class CheckpointTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("spio-ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A tiny DeepSPIO after two Adam steps, so BatchNorm statistics and moments are non-trivial.
    private func trainedTiny(seed: UInt64) -> (EncoderDecoderNet, Adam) {
        let net = EncoderDecoderNet(.preset("tiny")!, seed: seed)
        let adam = Adam(parameters: net.parameters, learningRate: 1e-3)
        let x = randomTensor([4, 2, 32, 32], seed: 50), t = randomTensor([4, 4, 16, 16], seed: 51)
        let mse = MeanSquaredError()
        for _ in 0..<2 { net.zeroGrad(); _ = net.backward(mse(net(x), t).gradient); adam.update() }
        return (net, adam)
    }

    func testRoundTripReproducesForwardBitwise() throws {
        let (net, adam) = trainedTiny(seed: 1)
        let url = dir.appendingPathComponent("model.safetensors")
        try Checkpoint.save(net, config: net.config.json, optimizer: adam, to: url)
        let other = EncoderDecoderNet(.preset("tiny")!, seed: 2)
        let otherAdam = Adam(parameters: other.parameters, learningRate: 1e-3)
        let meta = try Checkpoint.load(other, from: url, optimizer: otherAdam)
        XCTAssertEqual(meta["config"], net.config.json)
        XCTAssertEqual(otherAdam.step, 2)
        let x = randomTensor([3, 2, 32, 32], seed: 52)
        net.setTraining(false); other.setTraining(false)
        XCTAssertEqual(net(x).array, other(x).array)
        for (a, b) in zip(adam.secondMoments, otherAdam.secondMoments) { XCTAssertEqual(a.array, b.array) }
    }

    func testShapeMismatchIsReportedByName() throws {
        let url = dir.appendingPathComponent("tiny.safetensors")
        let (net, _) = trainedTiny(seed: 1)
        try Checkpoint.save(net, config: net.config.json, to: url)
        var cfg = ModelConfig.preset("tiny")!
        cfg.baseFilters = 8
        let wider = EncoderDecoderNet(cfg, seed: 0)
        let before = wider.parameters[0].value.array
        XCTAssertThrowsError(try Checkpoint.load(wider, from: url)) { error in
            let text = "\(error)"
            XCTAssertTrue(
                text.contains("encoder.0.0.weight has shape [4, 2, 3, 3], the model expects [8, 2, 3, 3]"), text)
        }
        XCTAssertEqual(wider.parameters[0].value.array, before, "a failed load must change nothing")
    }

    func testTruncatedFileAndBadHeaderAreClearErrors() throws {
        let url = dir.appendingPathComponent("model.safetensors")
        let (net, _) = trainedTiny(seed: 1)
        try Checkpoint.save(net, config: net.config.json, to: url)
        let data = try Data(contentsOf: url)
        let cut = dir.appendingPathComponent("cut.safetensors")
        try data.prefix(data.count - 100).write(to: cut)
        XCTAssertThrowsError(try Checkpoint.load(net, from: cut)) {
            XCTAssertTrue("\($0)".contains("truncated"), "\($0)")
        }
        let bad = dir.appendingPathComponent("bad.safetensors")
        try Data("this is not a checkpoint at all".utf8).write(to: bad)
        XCTAssertThrowsError(try Checkpoint.load(net, from: bad)) {
            XCTAssertTrue("\($0)".contains("bad.safetensors"), "\($0)")
        }
        let tiny = dir.appendingPathComponent("tiny.safetensors")
        try Data([1, 2]).write(to: tiny)
        XCTAssertThrowsError(try Checkpoint.load(net, from: tiny)) {
            XCTAssertTrue("\($0)".contains("fewer than the 8-byte"), "\($0)")
        }
        XCTAssertThrowsError(try Checkpoint.load(net, from: dir.appendingPathComponent("missing.safetensors"))) {
            XCTAssertTrue("\($0)".contains("missing.safetensors"), "\($0)")
        }
    }

    func testResumeFromCheckpointContinuesExactly() throws {
        let x = randomTensor([4, 2, 32, 32], seed: 60), t = randomTensor([4, 4, 16, 16], seed: 61)
        let mse = MeanSquaredError()
        func step(_ net: EncoderDecoderNet, _ adam: Adam) {
            net.zeroGrad(); _ = net.backward(mse(net(x), t).gradient); adam.update()
        }
        let (a, adamA) = trainedTiny(seed: 3)
        let url = dir.appendingPathComponent("resume.safetensors")
        try Checkpoint.save(a, config: a.config.json, optimizer: adamA, to: url)
        step(a, adamA); step(a, adamA)
        let b = EncoderDecoderNet(.preset("tiny")!, seed: 9)
        let adamB = Adam(parameters: b.parameters, learningRate: 1e-3)
        try Checkpoint.load(b, from: url, optimizer: adamB)
        step(b, adamB); step(b, adamB)
        XCTAssertEqual(a.parameters.map(\.value.array), b.parameters.map(\.value.array))
    }

    /// Python's reference reader opens our file (runs where `safetensors` is installed, as in CI).
    func testPythonSafetensorsReadsCheckpoint() throws {
        let url = dir.appendingPathComponent("py.safetensors")
        let (net, _) = trainedTiny(seed: 1)
        try Checkpoint.save(net, config: net.config.json, to: url)
        let script = """
            import json, sys
            from safetensors.numpy import load_file
            from safetensors import safe_open
            t = load_file(sys.argv[1])
            with safe_open(sys.argv[1], framework="numpy") as f: meta = f.metadata()
            w = t["encoder.0.0.weight"]
            print(len(t), w.dtype, list(w.shape), repr(float(w[0, 0, 0, 0])), json.loads(meta["config"])["baseFilters"],
                  int(t["encoder.0.1.num_batches_tracked"]))
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, url.path]
        let out = Pipe(); p.standardOutput = out; p.standardError = Pipe()
        try p.run(); p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw XCTSkip("python3 with the safetensors package is not available") }
        let text = String(data: out.fileHandleForReading.readDataToEndOfFile(), encoding: .utf8)!
        let fields = text.split(separator: " ").map(String.init)
        let expectedCount =
            net.namedParameters().count + net.namedBuffers().count
            + net.namedBuffers().filter { $0.0.hasSuffix("running_mean") }.count
        XCTAssertEqual(fields[0], String(expectedCount))
        XCTAssertEqual(fields[1], "float32")
        XCTAssertEqual(fields[2] + fields[3] + fields[4] + fields[5], "[4,2,3,3]")
        XCTAssertEqual(Float(fields[6]), net.parameters[0].value[0])
        XCTAssertEqual(fields[7], "4")
        XCTAssertEqual(fields[8].trimmingCharacters(in: .whitespacesAndNewlines), "2")
    }
}
