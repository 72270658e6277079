import SPIOTensor

/// A table of a model's layers (output shape for one image, parameters, forward FLOPs), read off a
/// forward pass of one zero image with probes on every layer.
public struct ModelSummary {
    public struct Row: Equatable {
        public var name: String, type: String
        public var outputShape: [Int]
        public var parameters: Int
        /// 2 x multiply-adds of the convolutions in the layer, for one image.
        public var flops: Int
    }

    public let rows: [Row]
    public var totalParameters: Int { rows.reduce(0) { $0 + $1.parameters } }
    public var totalFLOPs: Int { rows.reduce(0) { $0 + $1.flops } }

    /// Probes every leaf layer (layers that are not themselves containers) of `model`.
    public init(_ model: EncoderDecoderNet) throws {
        let names = LayerProbe.layerNames(in: model).filter { name in
            guard let (c, child) = try? LayerProbe.locate(name, in: model) else { return false }
            return !(c.layer(named: child)! is LayerContainer)
        }
        let c = model.config
        rows = try LayerProbe.attach(to: model, at: names) { probes in
            _ = model.withEvaluationMode { model(Tensor(shape: [1, c.inputChannels, c.inputSize, c.inputSize])) }
            return zip(names, probes).map { name, probe in
                Row(
                    name: name, type: String(describing: type(of: probe.inner)),
                    outputShape: Array(probe.output.shape.dropFirst()),
                    parameters: probe.inner.parameterCount, flops: Self.flops(probe.inner, output: probe.output.shape))
            }
        }
    }

    /// Convolution FLOPs of a layer (element-wise layers count 0).
    static func flops(_ layer: Module, output: [Int]) -> Int {
        switch layer {
        case let conv as Conv2D:
            return 2 * conv.inChannels * conv.kernelSize * conv.kernelSize * output.dropFirst().reduce(1, *)
        case let t as ConvTranspose2D:
            return 2 * t.inChannels * t.outChannels * t.kernelSize * t.kernelSize
                * t.inputShape.dropFirst(2).reduce(1, *)
        case let block as ResidualBlock:
            return flops(block.conv, output: output) + (block.shortcut.map { flops($0, output: output) } ?? 0)
        default:
            return 0
        }
    }

    /// The table as aligned text with totals.
    public var text: String {
        func group(_ n: Int) -> String {
            let s = String(n)
            return String(
                s.reversed().enumerated().map { $0 > 0 && $0 % 3 == 0 ? [",", $1] : [$1] }.joined().reversed())
        }
        let header = ["layer", "type", "output (C x H x W)", "parameters", "FLOPs"]
        var table =
            [header]
            + rows.map {
                [
                    $0.name, $0.type, $0.outputShape.map(String.init).joined(separator: " x "), group($0.parameters),
                    group($0.flops)
                ]
            }
        table.append(["total", "", "", group(totalParameters), group(totalFLOPs)])
        let widths = header.indices.map { i in table.map { $0[i].count }.max()! }
        return table.enumerated().map { k, row in
            let line = row.enumerated().map { i, cell in
                i >= 3
                    ? String(repeating: " ", count: widths[i] - cell.count) + cell
                    : cell + String(repeating: " ", count: widths[i] - cell.count)
            }.joined(separator: "  ")
            return k == 0 || k == table.count - 1
                ? (k == 0
                    ? line + "\n" + String(repeating: "-", count: line.count)
                    : String(repeating: "-", count: line.count) + "\n" + line) : line
        }.joined(separator: "\n")
    }
}
