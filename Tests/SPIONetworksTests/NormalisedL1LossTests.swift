import XCTest
@testable import SPIONetworks
@testable import SPIOTensor

final class NormalisedL1LossTests: XCTestCase {
    /// Two samples, two bands of 2 values, worked by hand.
    func testValueByHand() {
        let target = Tensor(shape: [2, 2, 1, 2], values: [1, -3, 0, 0, 2, 2, 1, 1])
        let pred = Tensor(shape: [2, 2, 1, 2], values: [2, -3, 1, -1, 2, 0, 1, 1])
        let loss = NormalisedL1Loss(epsilon: 0)(pred, target).loss
        // Band 1 of sample 0 is all zero: without eps the loss is not finite.
        XCTAssertTrue(loss.isInfinite || loss.isNaN)
        let (l2, g2) = NormalisedL1Loss(epsilon: 1)(pred, target)
        // Sample 0: 1/(4+1) + 2/(0+1) = 2.2; sample 1: 2/(4+1) + 0 = 0.4; mean 1.3.
        XCTAssertEqual(l2, 1.3, accuracy: 1e-6)
        XCTAssertEqual(g2.array, [0.1, 0, 0.5, -0.5, 0, -0.1, 0, 0], "sign(pred - target) / ((|a| + eps) N)")
    }

    /// Finite differences away from the kinks of |.|.
    func testGradientMatchesFiniteDifferences() {
        let target = randomTensor([3, 4, 4, 4], seed: 1), pred = randomTensor([3, 4, 4, 4], seed: 2)
        assertGradientMatchesFiniteDifferences(NormalisedL1Loss().callAsFunction, pred, target, every: 7)
    }

    /// Central differences of `loss` in every `every`-th entry of `pred` against its analytic gradient.
    private func assertGradientMatchesFiniteDifferences(
        _ loss: (Tensor, Tensor) -> (loss: Double, gradient: Tensor), _ pred: Tensor, _ target: Tensor, every: Int
    ) {
        let analytic = loss(pred, target).gradient.copy()
        for i in stride(from: 0, to: pred.count, by: every) {
            let saved = pred.data[i]
            pred.data[i] = saved + 1e-3; let up = loss(pred, target).loss
            pred.data[i] = saved - 1e-3; let down = loss(pred, target).loss
            pred.data[i] = saved
            XCTAssertEqual(
                (up - down) / 2e-3, Double(analytic.data[i]), accuracy: 1e-4 + 1e-3 * abs(Double(analytic.data[i])),
                "entry \(i)")
        }
    }

    /// The band weights multiply each band's term and its gradient: the hand-worked case above
    /// with w = (2, 0.5) is 2 x 1/5 + 0.5 x 2 = 1.4 for sample 0 and 2 x 2/5 = 0.8 for sample 1.
    func testBandWeights() {
        let target = Tensor(shape: [2, 2, 1, 2], values: [1, -3, 0, 0, 2, 2, 1, 1])
        let pred = Tensor(shape: [2, 2, 1, 2], values: [2, -3, 1, -1, 2, 0, 1, 1])
        let (loss, g) = NormalisedL1Loss(epsilon: 1, bandWeights: [2, 0.5])(pred, target)
        XCTAssertEqual(loss, (1.4 + 0.8) / 2, accuracy: 1e-6)
        XCTAssertEqual(g.array, [0.2, 0, 0.25, -0.25, 0, -0.2, 0, 0])
    }

    /// The image term: its value is the normalised L1 of the inverse transforms, and the gradient
    /// of the whole loss (weighted bands plus the image term) matches finite differences.
    func testImageTermValueAndGradient() {
        let target = randomTensor([3, 4, 4, 4], seed: 1), pred = randomTensor([3, 4, 4, 4], seed: 2)
        let loss = BandAndImageLoss(epsilon: 0.5, bandWeights: [1, 2, 0.5, 1], imageWeight: 0.7)
        let bandsOnly = NormalisedL1Loss(epsilon: 0.5, bandWeights: [1, 2, 0.5, 1])(pred, target).loss
        let (pi, ti) = (Tensor(shape: [0]), Tensor(shape: [0]))
        DB4Wavelet.inverse(pred, into: pi)
        DB4Wavelet.inverse(target, into: ti)
        let image = NormalisedL1Loss(epsilon: 0.5)(pi, ti).loss
        XCTAssertEqual(loss(pred, target).loss, bandsOnly + 0.7 * image, accuracy: 1e-9 * image)
        XCTAssertGreaterThan(image, 0.1)
        assertGradientMatchesFiniteDifferences(loss.callAsFunction, pred, target, every: 5)
    }
}
