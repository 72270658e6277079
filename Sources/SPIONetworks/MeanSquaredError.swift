import SPIOTensor

/// Mean squared error over all elements, with its gradient (for demos and tests; the paper's
/// wavelet loss lives with the training code).
public final class MeanSquaredError {
    private let grad = Tensor(shape: [0])
    public init() {}

    /// Returns the loss and d(loss)/d(prediction) (owned by this object).
    public func callAsFunction(_ prediction: Tensor, _ target: Tensor) -> (loss: Double, gradient: Tensor) {
        precondition(
            prediction.shape == target.shape, "MSE needs equal shapes, got \(prediction.shape) and \(target.shape)")
        grad.reshape(to: prediction.shape)
        var s = 0.0
        let k = 2 / Float(prediction.count)
        for i in 0..<prediction.count {
            let d = prediction.data[i] - target.data[i]
            s += Double(d) * Double(d)
            grad.data[i] = k * d
        }
        return (s / Double(prediction.count), grad)
    }
}
