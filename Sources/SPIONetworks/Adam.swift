import Foundation
import SPIOTensor

/// Adam with bias correction (Kingma and Ba, 2015), in PyTorch's form, plus coupled L2 weight decay:
/// the paper's loss term lambda * ||theta||^2 adds 2 * lambda * theta to each gradient before the
/// moment updates.
public final class Adam {
    public var learningRate: Float
    public let beta1: Float, beta2: Float, epsilon: Float
    /// lambda of the loss term lambda * ||theta||^2.
    public let l2: Float
    /// Updates taken so far (t in the bias corrections).
    public private(set) var step: Int = 0
    /// First and second moments per parameter, same order as `parameters`.
    public let firstMoments: [Tensor], secondMoments: [Tensor]
    public let parameters: [Parameter]

    public init(
        parameters: [Parameter], learningRate: Float, beta1: Float = 0.9, beta2: Float = 0.999,
        epsilon: Float = 1e-8, l2: Float = 0
    ) {
        precondition(learningRate > 0, "Adam learning rate must be positive, got \(learningRate)")
        self.parameters = parameters
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.l2 = l2
        firstMoments = parameters.map { Tensor(shape: $0.value.shape) }
        secondMoments = parameters.map { Tensor(shape: $0.value.shape) }
    }

    /// Restores the step count (checkpoint loading).
    public func setStep(_ t: Int) { step = t }

    /// One update of every parameter from its accumulated gradient.
    public func update() {
        step += 1
        let t = Float(step)
        let c1 = 1 - Foundation.pow(beta1, t), c2 = 1 - Foundation.pow(beta2, t)
        let (b1, b2, eps, lr, decay) = (beta1, beta2, epsilon, learningRate, 2 * l2)
        for (k, p) in parameters.enumerated() {
            let (w, g, m, v) = (p.value.data, p.grad.data, firstMoments[k].data, secondMoments[k].data)
            Engine.parallelFor(p.value.count, minimumPerThread: 1 << 14) { r in
                for i in r {
                    let gi = g[i] + decay * w[i]
                    m[i] = b1 * m[i] + (1 - b1) * gi
                    v[i] = b2 * v[i] + (1 - b2) * gi * gi
                    w[i] -= lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + eps)
                }
            }
        }
    }
}

extension Adam {
    /// One optimisation step on `model`: zero its gradients, forward `inputs`, `loss` against
    /// `targets`, backward, update. Returns the loss before the update; a non-finite loss updates
    /// nothing. The one place a step is written: the trainer, `spio bench train` and `spio demo`
    /// call it.
    public func takeStep(
        _ model: EncoderDecoderNet, _ inputs: Tensor, _ targets: Tensor,
        loss: (Tensor, Tensor) -> (loss: Double, gradient: Tensor)
    ) -> Double {
        model.zeroGrad()
        let (value, gradient) = loss(model(inputs), targets)
        guard value.isFinite else { return value }
        _ = model.backward(gradient)
        update()
        return value
    }
}
