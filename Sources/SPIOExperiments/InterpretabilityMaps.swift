import SPIONetworks
import SPIOTensor
import SPIOTraining

/// The maps a test set's `interpretability` block asks for, as named arrays an evaluation stores
/// (`interp-*.npy`) and a report draws.
enum InterpretabilityMaps {
    /// For the first `config.images` images of an evaluation (its scaled inputs, N x 2 x H x W):
    /// `interp-input.npy` (channel 0), `interp-prediction.npy`, `interp-gradcam-<layer>.npy` per
    /// layer and `interp-saliency.npy` (|d/dx| summed over both input channels), each N' x H x W;
    /// `interp-features-<layer>.npy`: the layer's first `featureCount` activation maps of the
    /// first image, K x h x w.
    static func compute(
        _ config: InterpretabilityConfig, model: EncoderDecoderNet, result: EvaluationResult
    ) throws -> [(String, Tensor)] {
        let inputs = result.inputs
        let (n, c, h, w) = (min(config.images, result.count), inputs.shape[1], inputs.shape[2], inputs.shape[3])
        let plane = h * w
        func stack(_ maps: [[Float]]) -> Tensor { Tensor(shape: [maps.count, h, w], values: maps.flatMap { $0 }) }
        func image(_ i: Int) -> Tensor {
            Tensor(shape: [1, c, h, w], values: (0..<c).flatMap { result.input(i, channel: $0) })
        }
        var out: [(String, Tensor)] = [
            ("interp-input.npy", stack((0..<n).map { result.input($0) })),
            ("interp-prediction.npy", stack((0..<n).map { result.map($0) }))
        ]
        for layer in config.gradCAM {
            let maps = try (0..<n).map {
                try Interpretability.gradCAM(model: model, input: image($0), layer: layer, outputChannel: config.band)
                    .array
            }
            out.append(("interp-gradcam-\(layer).npy", stack(maps)))
        }
        if config.saliency {
            let maps = (0..<n).map { i -> [Float] in
                let g = Interpretability.saliency(model: model, input: image(i), outputChannel: config.band)
                return (0..<plane).map { p in (0..<c).reduce(Float(0)) { $0 + abs(g.data[$1 * plane + p]) } }
            }
            out.append(("interp-saliency.npy", stack(maps)))
        }
        if let layer = config.features {
            let features = try LayerProbe.attach(to: model, at: [layer]) { probes -> Tensor in
                _ = model.withEvaluationMode { model.forward(image(0)) }
                let a = probes[0].output
                let k = min(config.featureCount, a.shape[1])
                return Tensor(shape: [k, a.shape[2], a.shape[3]], values: a.values(0..<(k * a.shape[2] * a.shape[3])))
            }
            out.append(("interp-features-\(layer).npy", features))
        }
        return out
    }
}
