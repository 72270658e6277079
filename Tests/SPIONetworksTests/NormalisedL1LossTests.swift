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
        let loss = NormalisedL1Loss()
        let analytic = loss(pred, target).gradient.copy()
        for i in stride(from: 0, to: pred.count, by: 7) {
            let saved = pred.data[i]
            pred.data[i] = saved + 1e-3; let up = loss(pred, target).loss
            pred.data[i] = saved - 1e-3; let down = loss(pred, target).loss
            pred.data[i] = saved
            XCTAssertEqual(
                (up - down) / 2e-3, Double(analytic.data[i]), accuracy: 1e-4 + 1e-3 * abs(Double(analytic.data[i])))
        }
    }
}
