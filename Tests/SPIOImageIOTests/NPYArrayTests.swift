import XCTest
import Foundation
@testable import SPIOImageIO

final class NPYArrayTests: XCTestCase {
    private func tempPath(_ name: String) -> String { NSTemporaryDirectory() + "spio-npy-\(getpid())-" + name }

    func testRoundTripAndHeaderAlignment() throws {
        let a = NPYArray(shape: [2, 3, 4], values: (0..<24).map { Float($0) * 0.5 - 3 })
        let path = tempPath("a.npy")
        try a.write(to: path)
        XCTAssertEqual(try NPYArray.read(path), a)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
        XCTAssertEqual((10 + headerLength) % 64, 0)
        XCTAssertEqual(bytes.count, 10 + headerLength + 24 * 4)
        let one = NPYArray(shape: [5], values: [1, 2, 3, 4, 5])
        try one.write(to: path)
        XCTAssertEqual(try NPYArray.read(path), one)
    }

    /// NumPy opens what we write, and we read what NumPy writes (float64, int16, big-endian).
    func testNumPyInterop() throws {
        let ours = tempPath("ours.npy"), dir = tempPath("numpy")
        try NPYArray(shape: [2, 3], values: [1, -2, 3.5, 4, 5, 6]).write(to: ours)
        let script = """
            import numpy as np, os
            a = np.load('\(ours)'); assert a.dtype == np.float32 and a.shape == (2, 3), (a.dtype, a.shape)
            assert a.tolist() == [[1, -2, 3.5], [4, 5, 6]], a
            os.makedirs('\(dir)', exist_ok=True)
            np.save('\(dir)/f8.npy', np.arange(6, dtype=np.float64).reshape(2, 3) / 4)
            np.save('\(dir)/i2.npy', np.array([-3, 0, 7], dtype=np.int16))
            np.save('\(dir)/be.npy', np.array([1.5, -2.25], dtype='>f4'))
            np.save('\(dir)/u1.npy', np.array([[0, 255]], dtype=np.uint8))
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env"); p.arguments = ["python3", "-c", script]
        try p.run(); p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw XCTSkip("numpy unavailable or failed (status \(p.terminationStatus))")
        }
        XCTAssertEqual(
            try NPYArray.read(dir + "/f8.npy"), NPYArray(shape: [2, 3], values: [0, 0.25, 0.5, 0.75, 1, 1.25]))
        XCTAssertEqual(try NPYArray.read(dir + "/i2.npy").values, [-3, 0, 7])
        XCTAssertEqual(try NPYArray.read(dir + "/be.npy").values, [1.5, -2.25])
        XCTAssertEqual(try NPYArray.read(dir + "/u1.npy"), NPYArray(shape: [1, 2], values: [0, 255]))
    }

    func testBadFilesGiveClearErrors() throws {
        let missing = tempPath("missing.npy")
        XCTAssertThrowsError(try NPYArray.read(missing)) { XCTAssertTrue("\($0)".contains(missing)) }
        let junk = tempPath("junk.npy")
        try Data("hello world, not an array".utf8).write(to: URL(fileURLWithPath: junk))
        XCTAssertThrowsError(try NPYArray.read(junk)) { XCTAssertTrue("\($0)".contains("bad magic")) }
        let path = tempPath("short.npy")
        try NPYArray(shape: [10], values: [Float](repeating: 1, count: 10)).write(to: path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count - 4).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try NPYArray.read(path)) { XCTAssertTrue("\($0)".contains("truncated")) }
    }
}
