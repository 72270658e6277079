import SPIOTensor

/// The paper's loss (section 4.4) without its weight term: for each sample i and band j,
/// w_j ||a_ij - a^_ij||_1 / (||a_ij||_1 + eps), summed over bands and averaged over samples
/// (the paper: w_j = 1).
/// With one band (a model that predicts the image) this is the per-image NMAE, averaged.
/// The L2 term lambda ||theta||^2 is added by `Adam(l2:)` to the gradients and by
/// `weightPenalty` to the reported loss.
public final class NormalisedL1Loss {
    /// Guards all-zero bands (our choice, networks.md). A larger value also damps the weight of
    /// the images with the least iron, whose norms are smallest (a recipe variant).
    public let epsilon: Double
    /// A weight per band (LL, LH, HL, HH; the paper's: all 1). nil is all 1.
    public let bandWeights: [Double]?
    private let grad = Tensor(shape: [0])
    /// Each band's term of the last call, averaged over its samples (weights applied): they sum to
    /// the loss it returned. What training logs per band.
    public private(set) var lastBandLosses: [Double] = []

    public init(epsilon: Double = 1e-6, bandWeights: [Double]? = nil) {
        self.epsilon = epsilon
        self.bandWeights = bandWeights
    }

    /// Loss and d(loss)/d(prediction) for N x B x h x w tensors (the gradient is owned by this
    /// object). At a zero difference the gradient of |.| is taken as 0.
    public func callAsFunction(_ prediction: Tensor, _ target: Tensor) -> (loss: Double, gradient: Tensor) {
        precondition(
            prediction.shape == target.shape && prediction.shape.count == 4,
            "NormalisedL1Loss needs equal N x B x h x w shapes, got \(prediction.shape) and \(target.shape)")
        let (n, bands, plane) = (prediction.shape[0], prediction.shape[1], prediction.shape[2] * prediction.shape[3])
        let weights = bandWeights ?? [Double](repeating: 1, count: bands)
        precondition(weights.count == bands, "NormalisedL1Loss has \(weights.count) band weights for \(bands) bands")
        grad.reshape(to: prediction.shape)
        var perBand = [Double](repeating: 0, count: n * bands)
        let (p, t, g, eps) = (prediction.data, target.data, grad.data, epsilon)
        perBand.withUnsafeMutableBufferPointer { out in
            Engine.parallelFor(n * bands) { r in
                for job in r {
                    let (a, b) = (t + job * plane, p + job * plane)
                    var norm = 0.0, diff = 0.0
                    for i in 0..<plane { norm += Double(abs(a[i])); diff += Double(abs(b[i] - a[i])) }
                    let weight = weights[job % bands]
                    let scale = Float(weight / ((norm + eps) * Double(n)))
                    let d = g + job * plane
                    for i in 0..<plane { let e = b[i] - a[i]; d[i] = e > 0 ? scale : (e < 0 ? -scale : 0) }
                    out[job] = weight * diff / (norm + eps)
                }
            }
        }
        lastBandLosses = (0..<bands).map { b in
            stride(from: b, to: n * bands, by: bands).reduce(0) { $0 + perBand[$1] } / Double(n)
        }
        return (perBand.reduce(0, +) / Double(n), grad)
    }

    /// lambda * sum of squared parameters (the loss's weight term, for reporting).
    public static func weightPenalty(_ parameters: [Parameter], lambda: Double) -> Double {
        guard lambda != 0 else { return 0 }
        return lambda
            * parameters.reduce(0.0) { s, p in
                (0..<p.value.count).reduce(s) { $0 + Double(p.value.data[$1] * p.value.data[$1]) }
            }
    }
}
