import Foundation
import SPIOTensor

/// Batch normalisation over N, H, W per channel (PyTorch's `BatchNorm2d`).
///
/// Training: batch mean and biased variance normalise; running averages update with `momentum`
/// in PyTorch's sense (`running = (1 - momentum) * running + momentum * batch`, unbiased variance),
/// so Keras's momentum 0.99 is `momentum: 0.01` here. Evaluation: the running averages normalise.
public final class BatchNorm2D: Layer {
    public let channels: Int, epsilon: Float, momentum: Float
    /// gamma, initialised to 1.
    public let weight: Parameter
    /// beta, initialised to 0.
    public let bias: Parameter
    public let runningMean: Tensor
    public let runningVar: Tensor
    /// Batches seen in training (PyTorch's `num_batches_tracked`).
    public private(set) var batchesTracked: Int64 = 0

    private var training = true
    private var input: Tensor?
    private var mean: [Double], invStd: [Double]
    /// Per-channel Double sums (scratch for the statistics and the backward sums).
    private var sumA: [Double], sumB: [Double]
    private let output = Tensor(shape: [0])
    private let inputGrad = Tensor(shape: [0])

    public init(_ channels: Int, epsilon: Float = 1e-5, momentum: Float = 0.01) {
        precondition(channels > 0, "BatchNorm2D needs a positive channel count")
        self.channels = channels; self.epsilon = epsilon; self.momentum = momentum
        weight = Parameter(shape: [channels]); weight.value.fill(1)
        bias = Parameter(shape: [channels])
        runningMean = Tensor(shape: [channels])
        runningVar = Tensor(shape: [channels]); runningVar.fill(1)
        mean = Array(repeating: 0, count: channels)
        invStd = Array(repeating: 1, count: channels)
        sumA = Array(repeating: 0, count: channels)
        sumB = Array(repeating: 0, count: channels)
    }

    public var isTraining: Bool { training }
    public func setTraining(_ training: Bool) { self.training = training }

    public var ownParameters: [(String, Parameter)] { [("weight", weight), ("bias", bias)] }
    public var ownBuffers: [(String, Tensor)] { [("running_mean", runningMean), ("running_var", runningVar)] }

    /// Restores the tracked batch count (checkpoint loading).
    public func setBatchesTracked(_ n: Int64) { batchesTracked = n }

    public func forward(_ x: Tensor) -> Tensor {
        x.expectRank4("BatchNorm2D input")
        precondition(x.shape[1] == channels, "BatchNorm2D expects \(channels) channels, got shape \(x.shape)")
        let (n, plane) = (x.shape[0], x.shape[2] * x.shape[3])
        let m = n * plane
        output.reshape(to: x.shape)
        let gamma = weight.value.data, beta = bias.value.data
        let rm = runningMean.data, rv = runningVar.data
        let (eps, mom) = (Double(epsilon), momentum)
        let training = self.training
        precondition(
            !training || m > 1, "BatchNorm2D in training needs more than one value per channel, got shape \(x.shape)")
        let channels = self.channels
        mean.withUnsafeMutableBufferPointer { meanP in
            invStd.withUnsafeMutableBufferPointer { invP in
                sumA.withUnsafeMutableBufferPointer { squares in
                    if training {
                        ChannelReduction.sums(
                            x.data, samples: n, channels: channels, plane: plane, into: meanP.baseAddress!)
                        for c in 0..<channels { meanP[c] /= Double(m) }
                        ChannelReduction.squaredDeviations(
                            x.data, samples: n, channels: channels, plane: plane,
                            mean: meanP.baseAddress!, into: squares.baseAddress!)
                    }
                    Engine.parallelFor(channels) { range in
                        for c in range {
                            var mu: Double, inv: Double
                            if training {
                                mu = meanP[c]
                                let v = squares[c]
                                let varBiased = v / Double(m)
                                inv = 1 / (varBiased + eps).squareRoot()
                                rm[c] = (1 - mom) * rm[c] + mom * Float(mu)
                                rv[c] = (1 - mom) * rv[c] + mom * Float(v / Double(m - 1))
                            } else {
                                mu = Double(rm[c]); inv = 1 / (Double(rv[c]) + eps).squareRoot()
                            }
                            meanP[c] = mu; invP[c] = inv
                            let scale = Float(Double(gamma[c]) * inv), shift = beta[c] - Float(mu) * scale
                            for smp in 0..<n {
                                let off = (smp * self.channels + c) * plane
                                let p = x.data + off, o = self.output.data + off
                                for i in 0..<plane { o[i] = p[i] * scale + shift }
                            }
                        }
                    }
                }
            }
        }
        if training { batchesTracked += 1 }
        input = x
        return output
    }

    public func backward(_ dy: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("BatchNorm2D.backward needs a forward first") }
        dy.expectShape(x.shape, "BatchNorm2D.backward output gradient")
        let (n, plane) = (x.shape[0], x.shape[2] * x.shape[3])
        let m = Double(n * plane)
        inputGrad.reshape(to: x.shape)
        let gamma = weight.value.data, dGamma = weight.grad.data, dBeta = bias.grad.data
        let training = self.training
        let channels = self.channels
        mean.withUnsafeBufferPointer { meanP in
            invStd.withUnsafeBufferPointer { invP in
                sumA.withUnsafeMutableBufferPointer { sumDyP in
                    sumB.withUnsafeMutableBufferPointer { sumDyXhatP in
                        ChannelReduction.gradientSums(
                            dy: dy.data, x: x.data, samples: n, channels: channels, plane: plane,
                            mean: meanP.baseAddress!, invStd: invP.baseAddress!,
                            sumDy: sumDyP.baseAddress!, sumDyXhat: sumDyXhatP.baseAddress!)
                        Engine.parallelFor(channels) { range in
                            for c in range {
                                let mu = meanP[c], inv = invP[c]
                                let sumDy = sumDyP[c], sumDyXhat = sumDyXhatP[c]
                                dGamma[c] += Float(sumDyXhat)
                                dBeta[c] += Float(sumDy)
                                let k = Double(gamma[c]) * inv
                                for smp in 0..<n {
                                    let off = (smp * self.channels + c) * plane
                                    let p = x.data + off, g = dy.data + off, o = self.inputGrad.data + off
                                    if training {
                                        // dx = gamma * inv / m * (m * dy - sum(dy) - xhat * sum(dy * xhat))
                                        for i in 0..<plane {
                                            let xhat = (Double(p[i]) - mu) * inv
                                            o[i] = Float(k * (Double(g[i]) - sumDy / m - xhat * sumDyXhat / m))
                                        }
                                    } else {
                                        let kf = Float(k)
                                        for i in 0..<plane { o[i] = g[i] * kf }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return inputGrad
    }
}
