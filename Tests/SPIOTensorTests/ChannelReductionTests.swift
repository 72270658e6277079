import XCTest
@testable import SPIOTensor

final class ChannelReductionTests: XCTestCase {
    /// Each lane's sums are bitwise those of a scalar loop over (sample, pixel), for channel counts
    /// that fill the four lanes and ones that do not, on 1 and 2 threads.
    func testSumsEqualScalarLoopsBitwise() {
        let threadsBefore = Engine.threadCount
        defer { Engine.setThreadCount(threadsBefore) }
        for (samples, channels, plane) in [(3, 1, 7), (2, 3, 5), (4, 4, 16), (3, 7, 9), (2, 16, 33)] {
            var rng = SeededGenerator(seed: UInt64(channels))
            let count = samples * channels * plane
            let x = (0..<count).map { _ in Float(rng.normal() * 3 + 1) }
            let dy = (0..<count).map { _ in Float(rng.normal()) }
            let mean = (0..<channels).map { _ in rng.normal() }
            let invStd = (0..<channels).map { _ in 0.5 + abs(rng.normal()) }
            // The scalar loops BatchNorm2D and the bias gradients used before the lanes.
            var sums = [Double](repeating: 0, count: channels), squares = sums, sumDy = sums, sumDyXhat = sums
            for c in 0..<channels {
                for n in 0..<samples {
                    for i in 0..<plane {
                        let k = (n * channels + c) * plane + i
                        sums[c] += Double(x[k])
                        let d = Double(x[k]) - mean[c]
                        squares[c] += d * d
                        let g = Double(dy[k])
                        sumDy[c] += g
                        sumDyXhat[c] += g * (Double(x[k]) - mean[c]) * invStd[c]
                    }
                }
            }
            for threads in [1, 2] {
                Engine.setThreadCount(threads)
                var s = [Double](repeating: .nan, count: channels), q = s, a = s, b = s
                ChannelReduction.sums(x, samples: samples, channels: channels, plane: plane, into: &s)
                ChannelReduction.squaredDeviations(
                    x, samples: samples, channels: channels, plane: plane, mean: mean, into: &q)
                ChannelReduction.gradientSums(
                    dy: dy, x: x, samples: samples, channels: channels, plane: plane,
                    mean: mean, invStd: invStd, sumDy: &a, sumDyXhat: &b)
                let shape = "\(samples) x \(channels) x \(plane), \(threads) threads"
                XCTAssertEqual(s.map(\.bitPattern), sums.map(\.bitPattern), shape)
                XCTAssertEqual(q.map(\.bitPattern), squares.map(\.bitPattern), shape)
                XCTAssertEqual(a.map(\.bitPattern), sumDy.map(\.bitPattern), shape)
                XCTAssertEqual(b.map(\.bitPattern), sumDyXhat.map(\.bitPattern), shape)
            }
        }
    }
}
