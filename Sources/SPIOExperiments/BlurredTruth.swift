import Foundation
import SPIOImageIO
import SPIOTensor
import SPIOTraining

/// What NMAE a map that is right but blurry scores: the truth convolved with a Gaussian of sigma
/// pixels (separable, truncated at 4 sigma, zero outside the image, so iron near the border leaks
/// out as it would from a blurry estimate). It turns an NMAE into a picture: the scaling report
/// draws these levels beside its curves.
package enum BlurredTruth {
    /// One H x W plane blurred.
    package static func blur(_ plane: [Float], size n: Int, sigmaPixels sigma: Double) -> [Float] {
        guard sigma > 0 else { return plane }
        let radius = Int((4 * sigma).rounded(.up))
        var kernel = (-radius...radius).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }
        let total = kernel.reduce(0, +)
        kernel = kernel.map { $0 / total }
        func pass(_ input: [Float], along rows: Bool) -> [Float] {
            var output = [Float](repeating: 0, count: n * n)
            for r in 0..<n {
                for c in 0..<n {
                    var sum = 0.0
                    for k in -radius...radius {
                        let (rr, cc) = rows ? (r + k, c) : (r, c + k)
                        guard rr >= 0, rr < n, cc >= 0, cc < n else { continue }
                        sum += kernel[k + radius] * Double(input[rr * n + cc])
                    }
                    output[r * n + c] = Float(sum)
                }
            }
            return output
        }
        return pass(pass(plane, along: true), along: false)
    }

    /// The mean NMAE of N x H x W true maps blurred by `sigmaPixels`, over the maps that hold iron.
    package static func nmae(_ truth: NPYArray, sigmaPixels: Double) -> Double {
        let n = truth.shape.last!, count = truth.values.count / (n * n)
        var blurred: [Float] = []
        blurred.reserveCapacity(truth.values.count)
        for s in 0..<count {
            blurred += blur(Array(truth.values[(s * n * n)..<((s + 1) * n * n)]), size: n, sigmaPixels: sigmaPixels)
        }
        let values = Evaluation.nmae(
            prediction: Tensor(shape: [count, n, n], values: blurred),
            truth: Tensor(shape: [count, n, n], values: truth.values)
        ).compactMap { $0 }
        return Evaluation.meanAndSD(values).mean
    }
}
