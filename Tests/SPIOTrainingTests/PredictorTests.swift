import Foundation
import XCTest
@testable import SPIOImageIO
@testable import SPIONetworks
@testable import SPIOTensor
@testable import SPIOTraining

final class PredictorTests: XCTestCase {
    private func directory() -> String {
        let d = NSTemporaryDirectory() + "spio-predict-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: d) }
        return d
    }

    /// NPY and PNG inputs give the maps of scaling the images and running the model directly;
    /// outputs are written as NPY (readable back) and PNG; a wrong size names the file.
    func testPredictsFromNPYAndPNG() throws {
        let dir = directory()
        let net = EncoderDecoderNet(.preset("tiny")!, seed: 3)
        let ckpt = dir + "/model.safetensors"
        try Checkpoint.save(net, config: net.config.json, to: URL(fileURLWithPath: ckpt))
        let predictor = try Predictor(checkpoint: ckpt)

        // PNG: 8-bit channels, so build the image first and use its exact values.
        var rgb = RGBImage(width: 32, height: 32)
        var rng = SeededGenerator(seed: 4)
        for i in 0..<(32 * 32) {
            rgb.pixels[3 * i] = UInt8(rng.int(in: 0...255)); rgb.pixels[3 * i + 1] = UInt8(rng.int(in: 0...255))
        }
        try rgb.writePNG(to: dir + "/in.png")
        let images = Tensor(shape: [1, 2, 32, 32])
        for i in 0..<(32 * 32) {
            images.data[i] = Float(rgb.pixels[3 * i]) / 255; images.data[1024 + i] = Float(rgb.pixels[3 * i + 1]) / 255
        }
        try NPYArray(shape: [2, 32, 32], values: images.array).write(to: dir + "/in2.npy")

        let scaled = images.copy()
        InputScaling.apply(scaled)
        let expected = try Evaluation.predict(net, inputs: scaled).array
        let written = try predictor.run(inputs: [dir + "/in.png", dir + "/in2.npy"], directory: dir + "/out")
        XCTAssertEqual(written.map { ($0 as NSString).lastPathComponent }, ["in.npy", "in.png", "in2.npy", "in2.png"])
        for npy in [written[0], written[2]] {
            let back = try NPYArray.read(npy)
            XCTAssertEqual(back.shape, [32, 32])
            XCTAssertEqual(back.values, expected, npy)
        }
        XCTAssertEqual(try RGBImage.readPNG(written[1]).height > 32, true, "a panel with title and colour bar")

        try NPYArray(shape: [2, 16, 16], values: [Float](repeating: 1, count: 512)).write(to: dir + "/small.npy")
        XCTAssertThrowsError(try predictor.run(inputs: [dir + "/small.npy"], directory: dir + "/out")) {
            XCTAssertTrue("\($0)".contains("small.npy") && "\($0)".contains("expects 2 x 32 x 32"), "\($0)")
        }
        XCTAssertThrowsError(try predictor.readInput(dir + "/notes.txt")) {
            XCTAssertTrue("\($0)".contains("unsupported input"), "\($0)")
        }
    }

    func testCheckpointWithoutConfigIsRefused() throws {
        let dir = directory()
        let path = dir + "/bare.safetensors"
        try SafeTensors.write(
            ["w": SafeTensors.Entry(shape: [1], floats: UnsafeBufferPointer(start: [Float(1)], count: 1))],
            metadata: [:],
            to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try Predictor(checkpoint: path)) {
            XCTAssertTrue("\($0)".contains("no model configuration"), "\($0)")
        }
    }
}

/// Inputs are never overwritten and non-finite values never become silent NaN maps.
final class PredictorSafetyTests: XCTestCase {
    func testAnOutputOnAnInputIsRefusedBeforeAnythingIsWritten() throws {
        let dir = NSTemporaryDirectory() + "spio-predict-safety-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir + "/scans", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let net = EncoderDecoderNet(.preset("tiny")!, seed: 3)
        let ckpt = dir + "/model.safetensors"
        try Checkpoint.save(net, config: net.config.json, to: URL(fileURLWithPath: ckpt))
        let predictor = try Predictor(checkpoint: ckpt)
        var rng = SeededGenerator(seed: 5)
        let scan = dir + "/scans/x.npy"
        try NPYArray(shape: [2, 32, 32], values: (0..<2048).map { _ in Float(rng.normal()) }).write(to: scan)
        let before = try Data(contentsOf: URL(fileURLWithPath: scan))
        // The same folder (also spelled with '..'), so x.npy would be written over the scan.
        for out in [dir + "/scans", dir + "/scans/../scans"] {
            XCTAssertThrowsError(try predictor.run(inputs: [scan], directory: out)) { error in
                XCTAssertTrue("\(error)".contains("would be overwritten"), "\(error)")
            }
        }
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: scan)), before, "the input scan is unchanged")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/scans/x.png"), "nothing was written")

        // A non-finite input names its file and writes nothing.
        let bad = dir + "/scans/nan.npy"
        var values = (0..<2048).map { _ in Float(rng.normal()) }
        values[17] = .nan
        try NPYArray(shape: [2, 32, 32], values: values).write(to: bad)
        XCTAssertThrowsError(try predictor.run(inputs: [bad], directory: dir + "/out")) { error in
            XCTAssertTrue("\(error)".contains("nan.npy") && "\(error)".contains("non-finite"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/out/nan.npy"))
        // A valid input elsewhere works.
        XCTAssertEqual(try predictor.run(inputs: [scan], directory: dir + "/out").count, 2)
    }
}
