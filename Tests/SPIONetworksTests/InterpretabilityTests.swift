import XCTest
@testable import SPIONetworks
@testable import SPIOTensor

final class InterpretabilityTests: XCTestCase {
    let ws = Workspace()

    /// y = sum_ij sum_k w_k A^k_ij through a linear 1x1 head: dy/dA^k = w_k everywhere, so
    /// alpha_k = w_k and the map is ReLU(sum_k w_k A^k), the head's own output, clipped.
    func testGradCAMOfALinearHeadIsTheClippedHeadOutput() throws {
        let features = Conv2D(2, 3, kernelSize: 3, workspace: ws),
            head = Conv2D(3, 1, kernelSize: 1, bias: false, workspace: ws)
        let model = Sequential([features, head])
        HeInitialiser.initialise(model, seed: 2)
        let x = randomTensor([1, 2, 8, 8], seed: 3)
        let map = try Interpretability.gradCAM(model: model, input: x, layer: "0")
        let expected = model(x).array.map { max($0, 0) }
        XCTAssertEqual(map.shape, [8, 8])
        for (a, b) in zip(map.array, expected) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        XCTAssertTrue(expected.contains { $0 > 0 } && expected.contains { $0 == 0 }, "the case exercises the ReLU")
    }

    /// With a ReLU after the features, dy/dA^k_ij = w_k [A^k_ij > 0]: alpha_k = w_k * (fraction
    /// of positive A^k), computed here straight from A. The map is at half resolution (a stride-2
    /// layer) and resized bilinearly to the input size.
    func testGradCAMThroughAReLUAndResize() throws {
        let features = Conv2D(2, 3, kernelSize: 3, stride: 2, workspace: ws)
        let head = Conv2D(3, 1, kernelSize: 1, bias: false, workspace: ws)
        let model = Sequential([features, ReLU(), head])
        HeInitialiser.initialise(model, seed: 5)
        let x = randomTensor([1, 2, 8, 8], seed: 6)
        let map = try Interpretability.gradCAM(model: model, input: x, layer: "0")
        let a = features(x)
        let w = head.weight.value.array
        let small = Tensor(shape: [4, 4])
        for k in 0..<3 {
            let positive = Float((0..<16).filter { a.data[k * 16 + $0] > 0 }.count) / 16
            for i in 0..<16 { small.data[i] += w[k] * positive * a.data[k * 16 + i] }
        }
        for i in 0..<16 { small.data[i] = max(small.data[i], 0) }
        let expected = Interpretability.resizeBilinear(small, height: 8, width: 8)
        for (p, q) in zip(map.array, expected.array) { XCTAssertEqual(p, q, accuracy: 1e-5) }
        // Upsampling 4 -> 8 with aligned centres: output pixel 1 lies 1/4 of the way from input 0 to 1.
        let ramp = Tensor(shape: [1, 4], values: [0, 4, 8, 12])
        XCTAssertEqual(Interpretability.resizeBilinear(ramp, height: 1, width: 8).array, [0, 1, 3, 5, 7, 9, 11, 12])
    }

    /// A single linear convolution: d(sum of output channel o)/dx at interior pixels is the sum of
    /// filter o over its taps (per input channel), whatever the input.
    func testSaliencyOfALinearConvolution() {
        let conv = Conv2D(2, 3, kernelSize: 3, workspace: ws)
        HeInitialiser.initialise(conv, seed: 7)
        let w = conv.weight.value.array
        for o in 0..<3 {
            let s = Interpretability.saliency(
                model: Sequential([conv]), input: randomTensor([1, 2, 6, 6], seed: 8), outputChannel: o)
            XCTAssertEqual(s.shape, [2, 6, 6])
            for c in 0..<2 {
                let expected = (0..<9).reduce(Float(0)) { $0 + w[(o * 2 + c) * 9 + $1] }
                XCTAssertEqual(s.data[c * 36 + 2 * 6 + 3], expected, accuracy: 1e-5)
            }
        }
    }

    /// Guided back-propagation through a ReLU passes only positive gradients at active units.
    func testGuidedSaliencyStopsNegativeGradients() {
        let relu = ReLU()
        let x = Tensor(shape: [1, 1, 1, 4], values: [1, -1, 2, 3])
        let scale = Conv2D(1, 1, kernelSize: 1, bias: false, workspace: ws)
        scale.weight.value.data[0] = -2
        // y = -2 * relu(x): d/dx = -2 at active units; guided stops these negative gradients.
        let model = Sequential([relu, scale])
        XCTAssertEqual(Interpretability.saliency(model: model, input: x, guided: false).array, [-2, 0, -2, -2])
        XCTAssertEqual(Interpretability.saliency(model: model, input: x, guided: true).array, [0, 0, 0, 0])
        scale.weight.value.data[0] = 3
        XCTAssertEqual(Interpretability.saliency(model: model, input: x, guided: true).array, [3, 0, 3, 3])
    }

    func testUnknownLayerNamesTheKnownOnes() {
        let model = Sequential([Conv2D(1, 1, kernelSize: 1, workspace: ws)])
        XCTAssertThrowsError(
            try Interpretability.gradCAM(model: model, input: Tensor(shape: [1, 1, 2, 2]), layer: "decoder.9")
        ) {
            XCTAssertTrue("\($0)".contains("is not a layer of this model") && "\($0)".contains("0"), "\($0)")
        }
    }
}
