import Foundation
import SPIOImageIO
import SPIOTensor

/// The images a model is evaluated on: a simulated dataset folder (`images.npy` with its true
/// `concentration.npy`) or image files without truth (NPY, NIfTI, PNG; see `Predictor`).
package enum TestImageSource: Sendable {
    case dataset(directory: String)
    case files([String])
}

/// What one evaluation of a model produced: the scaled inputs it saw, the truth where there is
/// one, and the predicted concentration maps, with the paper's and the reviewers' metrics per
/// image. Images are addressed by index; no caller does pointer arithmetic on the tensors.
package struct EvaluationResult {
    /// N x 2 x H x W, each image divided by its own 99th percentile (what the network saw).
    package let inputs: Tensor
    /// N x H x W true concentrations (ug/mm^3) of simulated sets; nil for files.
    package let truth: Tensor?
    /// N x H x W predicted concentrations (ug/mm^3).
    package let maps: Tensor

    package init(inputs: Tensor, truth: Tensor?, maps: Tensor) {
        self.inputs = inputs; self.truth = truth; self.maps = maps
    }

    package var count: Int { inputs.shape[0] }
    package var imageSize: Int { inputs.shape[3] }
    private var plane: Int { imageSize * imageSize }

    /// Channel `channel` of scaled input `i`, H x W row-major.
    package func input(_ i: Int, channel: Int = 0) -> [Float] {
        let start = (i * inputs.shape[1] + channel) * plane
        return inputs.values(start..<(start + plane))
    }

    /// The predicted map of image `i`.
    package func map(_ i: Int) -> [Float] { maps.values((i * plane)..<((i + 1) * plane)) }

    /// The true map of image `i`, if the set has truth.
    package func truth(_ i: Int) -> [Float]? { truth?.values((i * plane)..<((i + 1) * plane)) }

    /// NMAE per image (nil where the truth is all zero); empty without truth.
    package func nmae() -> [Double?] { truth.map { Evaluation.nmae(prediction: maps, truth: $0) } ?? [] }

    /// RMSE, HFEN, SSIM and the total-iron error of image `i`; nil without truth.
    package func imageMetrics(_ i: Int) -> ImageMetrics? {
        guard let truth else { return nil }
        return ImageMetrics(prediction: maps.data + i * plane, truth: truth.data + i * plane, size: imageSize)
    }

    /// The mean true and estimated concentration (ug/mm^3) of image `i` over its SPIO (the pixels
    /// where the truth is above zero): a point of the linearity fit over a concentration sweep.
    /// nil without truth or SPIO.
    public func spioMeans(_ i: Int) -> (truth: Double, estimate: Double)? {
        guard let t = truth(i) else { return nil }
        let m = map(i)
        var sumTruth = 0.0, sumEstimate = 0.0, count = 0
        for p in t.indices where t[p] > 0 { sumTruth += Double(t[p]); sumEstimate += Double(m[p]); count += 1 }
        return count == 0 ? nil : (sumTruth / Double(count), sumEstimate / Double(count))
    }

    /// The mean of image `i`'s predicted map (or its truth) over a disk (the phantom table's
    /// estimate); nil when `ofTruth` and the set has none.
    package func regionMean(
        _ i: Int, ofTruth: Bool = false, centreRow: Double, centreColumn: Double, radiusPixels: Double
    ) -> Double? {
        guard let source = ofTruth ? truth : maps else { return nil }
        return Evaluation.regionMean(
            source.data + i * plane, size: imageSize, centreRow: centreRow, centreColumn: centreColumn,
            radiusPixels: radiusPixels)
    }
}
