import XCTest
@testable import SPIONetworks

final class ModelSummaryTests: XCTestCase {
    /// Rows cover every parameter once; shapes and FLOPs of known layers by hand.
    func testTinySummary() throws {
        let net = EncoderDecoderNet(.preset("tiny")!)
        let s = try ModelSummary(net)
        XCTAssertEqual(s.totalParameters, net.parameterCount)
        let first = s.rows[0]
        XCTAssertEqual(first.name, "encoder.0.0")
        XCTAssertEqual(first.outputShape, [4, 32, 32])
        XCTAssertEqual(first.flops, 2 * 2 * 9 * 4 * 32 * 32)
        let down = s.rows.first { $0.name == "encoder.0.6" }!
        XCTAssertEqual(down.outputShape, [4, 16, 16], "the stride-2 convolution halves H and W")
        let head = s.rows.first { $0.name == "decoders.3.3" }!
        XCTAssertEqual(head.outputShape, [1, 16, 16])
        let up = s.rows.first { $0.name == "decoders.0.0.0" }!
        XCTAssertEqual(up.type, "ConvTranspose2D")
        XCTAssertEqual(up.outputShape, [32, 4, 4])
        XCTAssertEqual(up.flops, 2 * 64 * 32 * 9 * 2 * 2, "each of the 2 x 2 input pixels scatters 3 x 3 taps")
        XCTAssertTrue(s.text.contains("total"))
        // The probes are gone afterwards: the model still runs and names are unchanged.
        XCTAssertEqual(net.namedParameters().first?.0, "encoder.0.0.weight")
    }
}
