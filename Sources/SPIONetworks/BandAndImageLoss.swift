import SPIOTensor

/// The training loss of a model that predicts the four db4 bands: the paper's normalised L1 on
/// the bands (with the recipe's eps and band weights), plus `imageWeight` times the normalised L1
/// of the image, the inverse transform of the bands against the concentration map (a recipe
/// variant; 0 is the paper's loss). The filter bank is orthogonal, so the image term's gradient
/// with respect to the bands is the forward transform of its gradient with respect to the image.
public final class BandAndImageLoss {
    public let bands: NormalisedL1Loss
    public let imageWeight: Double
    private let image: NormalisedL1Loss
    private let predictedImages = Tensor(shape: [0]), targetImages = Tensor(shape: [0])
    private let imageGradientBands = Tensor(shape: [0])

    public init(epsilon: Double = 1e-6, bandWeights: [Double]? = nil, imageWeight: Double = 0) {
        bands = NormalisedL1Loss(epsilon: epsilon, bandWeights: bandWeights)
        image = NormalisedL1Loss(epsilon: epsilon)
        self.imageWeight = imageWeight
    }

    /// Loss and d(loss)/d(prediction) for N x 4 x h x w bands (the gradient is owned by this object).
    public func callAsFunction(_ prediction: Tensor, _ target: Tensor) -> (loss: Double, gradient: Tensor) {
        let (bandLoss, gradient) = bands(prediction, target)
        guard imageWeight != 0 else { return (bandLoss, gradient) }
        DB4Wavelet.inverse(prediction, into: predictedImages)
        DB4Wavelet.inverse(target, into: targetImages)
        let (value, imageGradient) = image(predictedImages, targetImages)
        DB4Wavelet.forward(imageGradient, into: imageGradientBands)
        gradient.add(imageGradientBands, times: Float(imageWeight))
        return (bandLoss + imageWeight * value, gradient)
    }
}
