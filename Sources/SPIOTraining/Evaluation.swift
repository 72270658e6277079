import SPIONetworks
import SPIOTensor

/// Concentration maps from a model, and the paper's metrics (section 5).
package enum Evaluation {
    /// Runs `model` in evaluation mode over scaled `inputs` (N x C x H x W) in batches and returns
    /// N x H x W concentration maps (the inverse db4 transform of predicted bands).
    /// `shouldStop` is asked before each batch; once it says yes, `StopRequested` is thrown.
    package static func predict(
        _ model: EncoderDecoderNet, inputs: Tensor, batchSize: Int = 32, shouldStop: () -> Bool = { false }
    ) throws -> Tensor {
        try model.withEvaluationMode {
            let (n, size) = (inputs.shape[0], model.config.inputSize)
            let maps = Tensor(shape: [n, size, size])
            let batch = Tensor(shape: [0]), image = Tensor(shape: [0])
            var start = 0
            while start < n {
                if shouldStop() { throw StopRequested("evaluation after \(start) of \(n) images") }
                let idx = Array(start..<min(n, start + batchSize))
                let y = model(gather(inputs, idx, into: batch))
                let out: Tensor
                if model.config.predictsWaveletBands {
                    DB4Wavelet.inverse(y, into: image); out = image
                } else {
                    out = y
                }
                (maps.data + start * size * size).update(from: out.data, count: idx.count * size * size)
                start += idx.count
            }
            return maps
        }
    }

    /// NMAE = ||C^ - C||_1 / ||C||_1 per image. Images whose truth is all zero have no NMAE and
    /// are returned as nil.
    package static func nmae(prediction: Tensor, truth: Tensor) -> [Double?] {
        precondition(
            prediction.count == truth.count && prediction.shape[0] == truth.shape[0],
            "NMAE needs equal shapes, got \(prediction.shape) and \(truth.shape)")
        let n = truth.shape[0], plane = truth.count / max(n, 1)
        return (0..<n).map { s in
            var diff = 0.0, norm = 0.0
            for i in 0..<plane {
                let (p, t) = (Double(prediction.data[s * plane + i]), Double(truth.data[s * plane + i]))
                diff += abs(p - t); norm += abs(t)
            }
            return norm > 0 ? diff / norm : nil
        }
    }

    /// Mean and sample standard deviation.
    package static func meanAndSD(_ values: [Double]) -> (mean: Double, sd: Double) {
        guard !values.isEmpty else { return (.nan, .nan) }
        let mean = values.reduce(0, +) / Double(values.count)
        guard values.count > 1 else { return (mean, 0) }
        let v = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
        return (mean, v.squareRoot())
    }

    /// The phantom-table estimate: the mean of `map` (H x W) over the disk of `radiusPixels` around
    /// (`centreRow`, `centreColumn`) (networks.md: half the bottle's radius).
    package static func regionMean(
        _ map: UnsafePointer<Float>, size: Int, centreRow: Double, centreColumn: Double,
        radiusPixels: Double
    ) -> Double {
        var sum = 0.0, count = 0
        for r in 0..<size {
            for c in 0..<size {
                let (dy, dx) = (Double(r) - centreRow, Double(c) - centreColumn)
                if dy * dy + dx * dx <= radiusPixels * radiusPixels { sum += Double(map[r * size + c]); count += 1 }
            }
        }
        precondition(
            count > 0, "the region of radius \(radiusPixels) px at (\(centreRow), \(centreColumn)) holds no pixel")
        return sum / Double(count)
    }
}
