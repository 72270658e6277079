import SPIOTensor

/// Grad-CAM and guided-backpropagation saliency (paper section 5.2, networks.md), for any model
/// made of `LayerContainer`s. Both run the model with BatchNorm on its running statistics (as in
/// evaluation) while keeping what backward needs, and leave every layer in the mode it was in.
public enum Interpretability {
    /// Grad-CAM of `layer` (a dotted name such as "encoder.3.5") for one input image
    /// (1 x C x H x W): alpha_k = mean over (i, j) of dy/dA^k_ij, map = ReLU(sum_k alpha_k A^k),
    /// bilinearly resized to H x W. y is the sum of output channel `outputChannel` (a band of
    /// DeepSPIO's output, i.e. one decoder; 0 for one-output models).
    public static func gradCAM(model: Layer, input: Tensor, layer: String, outputChannel: Int = 0) throws -> Tensor {
        precondition(
            input.shape.count == 4 && input.shape[0] == 1, "Grad-CAM takes one image, 1 x C x H x W; got \(input.shape)"
        )
        return try LayerProbe.attach(to: model, at: [layer]) { probes in
            _ = run(model, input, outputChannel: outputChannel, guided: false)
            let (a, g) = (probes[0].output, probes[0].outputGradient)
            precondition(a.shape.count == 4, "Grad-CAM needs feature maps N x K x h x w; \(layer) gives \(a.shape)")
            let (k, h, w) = (a.shape[1], a.shape[2], a.shape[3])
            let map = Tensor(shape: [h, w])
            for c in 0..<k {
                var alpha = 0.0
                for i in 0..<(h * w) { alpha += Double(g.data[c * h * w + i]) }
                alpha /= Double(h * w)
                for i in 0..<(h * w) { map.data[i] += Float(alpha) * a.data[c * h * w + i] }
            }
            for i in 0..<map.count { map.data[i] = max(map.data[i], 0) }
            return resizeBilinear(map, height: input.shape[2], width: input.shape[3])
        }
    }

    /// d(sum of output channel `outputChannel`)/d(input) for one image, C x H x W; with `guided`
    /// (the paper's Fig. 13), ReLUs and LeakyReLUs also stop negative gradients.
    public static func saliency(model: Layer, input: Tensor, outputChannel: Int = 0, guided: Bool = true) -> Tensor {
        precondition(
            input.shape.count == 4 && input.shape[0] == 1, "saliency takes one image, 1 x C x H x W; got \(input.shape)"
        )
        let g = run(model, input, outputChannel: outputChannel, guided: guided)
        return Tensor(shape: Array(input.shape.dropFirst()), values: g.array)
    }

    /// Forward and backward of a one-hot channel sum, in evaluation numerics; returns d/d(input).
    private static func run(_ model: Layer, _ input: Tensor, outputChannel: Int, guided: Bool) -> Tensor {
        // Evaluation numerics with a backward pass: BatchNorm on its running statistics, every other
        // layer keeping what backward needs; each layer's mode is restored afterwards.
        model.preservingModes {
            var firstLayers: [Conv2D] = []
            model.setTraining(true)
            model.forEachModule { m in
                (m as? BatchNorm2D)?.setTraining(false)
                if let c = m as? Conv2D, !c.computesInputGradient {
                    firstLayers.append(c); c.computesInputGradient = true
                }
                (m as? ReLU)?.guided = guided
                (m as? LeakyReLU)?.guided = guided
            }
            defer {
                model.forEachModule { m in
                    (m as? ReLU)?.guided = false
                    (m as? LeakyReLU)?.guided = false
                }
                for c in firstLayers { c.computesInputGradient = false }
            }
            let y = model.forward(input)
            precondition(
                outputChannel >= 0 && outputChannel < y.shape[1],
                "output channel \(outputChannel) out of 0..<\(y.shape[1])")
            let dy = Tensor(shape: y.shape)
            let plane = y.shape[2] * y.shape[3]
            for i in 0..<plane { dy.data[outputChannel * plane + i] = 1 }
            model.zeroGrad()
            let dx = model.backward(dy).copy()
            model.zeroGrad()
            return dx
        }
    }

    /// Bilinear resize of an h x w map with pixel centres aligned (PyTorch's
    /// `interpolate(mode='bilinear', align_corners=False)`).
    public static func resizeBilinear(_ map: Tensor, height: Int, width: Int) -> Tensor {
        let (h, w) = (map.shape[0], map.shape[1])
        let out = Tensor(shape: [height, width])
        func source(_ i: Int, _ outSize: Int, _ inSize: Int) -> (Int, Int, Float) {
            let x = max(0, (Float(i) + 0.5) * Float(inSize) / Float(outSize) - 0.5)
            let i0 = min(Int(x), inSize - 1)
            return (i0, min(i0 + 1, inSize - 1), x - Float(i0))
        }
        for r in 0..<height {
            let (r0, r1, fy) = source(r, height, h)
            for c in 0..<width {
                let (c0, c1, fx) = source(c, width, w)
                let top = map.data[r0 * w + c0] * (1 - fx) + map.data[r0 * w + c1] * fx
                let bottom = map.data[r1 * w + c0] * (1 - fx) + map.data[r1 * w + c1] * fx
                out.data[r * width + c] = top * (1 - fy) + bottom * fy
            }
        }
        return out
    }
}
