import Foundation
import XCTest
@testable import SPIONetworks
@testable import SPIOTensor

/// db4 against PyWavelets' numbers (Fixtures/db4.json, written by make_wavelet_fixtures.py).
final class DB4WaveletTests: XCTestCase {
    private struct Case: Decodable { let input: [Double]; let shape: [Int]; let bands: [Double] }

    private func fixture(_ name: String) throws -> Case {
        let url = Bundle.module.url(forResource: "Fixtures/db4", withExtension: "json")!
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let data = try JSONSerialization.data(withJSONObject: root[name]!)
        return try JSONDecoder().decode(Case.self, from: data)
    }

    /// Absolute error relative to the largest coefficient (Float32 storage of values up to ~250).
    private func check(_ name: String) throws {
        let c = try fixture(name)
        let (h, w) = (c.shape[0], c.shape[1])
        let x = Tensor(shape: [1, 1, h, w], values: c.input.map(Float.init))
        let bands = Tensor(shape: [0])
        DB4Wavelet.forward(x, into: bands)
        XCTAssertEqual(bands.shape, [1, 4, h / 2, w / 2])
        let scale = max(1, c.bands.map(abs).max()!)
        let err = zip(bands.array, c.bands).map { abs(Double($0) - $1) }.max()!
        XCTAssertLessThan(err / scale, 1e-5, "\(name): forward differs from pywt.dwt2 by \(err)")
        let back = Tensor(shape: [0])
        DB4Wavelet.inverse(bands, into: back)
        let inputScale = max(1, c.input.map(abs).max()!)
        let roundTrip = zip(back.array, c.input).map { abs(Double($0) - $1) }.max()!
        XCTAssertLessThan(roundTrip / inputScale, 1e-5, "\(name): inverse(forward(x)) differs from x by \(roundTrip)")
    }

    func testArange8x8MatchesPyWavelets() throws { try check("arange8") }
    func testRandom64x64MatchesPyWavelets() throws { try check("random64") }

    /// Each band is a distinct basis: a single LH coefficient inverts to an image whose transform
    /// has that coefficient alone (band order and orthogonality).
    func testSingleCoefficientRoundTrip() {
        let bands = Tensor(shape: [1, 4, 8, 8])
        bands[1 * 64 + 3 * 8 + 5] = 1
        let img = Tensor(shape: [0]), again = Tensor(shape: [0])
        DB4Wavelet.inverse(bands, into: img)
        XCTAssertEqual(img.array.map { Double($0 * $0) }.reduce(0, +), 1, accuracy: 1e-6, "energy is preserved")
        DB4Wavelet.forward(img, into: again)
        for i in 0..<again.count { XCTAssertEqual(again[i], bands[i], accuracy: 1e-6) }
    }
}
