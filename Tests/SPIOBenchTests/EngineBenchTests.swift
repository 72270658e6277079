import XCTest
@testable import SPIOBench

/// `spio bench engine`'s accounting: a training pass counts each layer's forward and backward
/// FLOPs, an inference pass (`--pass inference`) the forward FLOPs alone, over the same layers.
final class EngineBenchTests: XCTestCase {
    func testInferenceTimesTheForwardPassOfTheSameLayers() {
        var bench = EngineBench(preset: "tiny", batch: 1, threads: 1, repeats: 1, rounds: 1)
        bench.inputSize = 32
        let train = bench.run()
        bench.inference = true
        let inference = bench.run()
        XCTAssertFalse(inference.rows.isEmpty)
        XCTAssertEqual(train.rows.map(\.layer), inference.rows.map(\.layer))
        for (t, i) in zip(train.rows, inference.rows) {
            // Forward, input gradient and weight gradient cost the same; the first layer has no input gradient.
            let passes: Double = t.layer.hasSuffix("(no dx)") ? 2 : 3
            XCTAssertEqual(t.gflop, passes * i.gflop, accuracy: 1e-9 * t.gflop, t.layer)
            XCTAssertTrue(i.seconds.allSatisfy { $0 > 0 }, i.layer)
        }
        XCTAssertGreaterThan(train.networkGFLOP, 2 * inference.networkGFLOP)
        XCTAssertLessThanOrEqual(train.networkGFLOP, 3 * inference.networkGFLOP * (1 + 1e-9))
        XCTAssertTrue(inference.markdown.contains("| fwd ms |"), inference.markdown)
        XCTAssertTrue(inference.markdown.contains("in evaluation mode"), inference.markdown)
        XCTAssertTrue(inference.markdown.contains("add up to"), inference.markdown)
        XCTAssertTrue(train.markdown.contains("| fwd+bwd ms |"), train.markdown)
        XCTAssertTrue(train.markdown.contains("training images/s"), train.markdown)
    }
}
