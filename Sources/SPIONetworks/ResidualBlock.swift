import SPIOTensor

/// DeepSPIO's bottleneck block: y = ReLU(BN(Conv3x3(x))) + shortcut(x), where the shortcut is a
/// linear 1x1 convolution (the paper's projection) or, when channels match, the identity.
public final class ResidualBlock: Layer {
    public let conv: Conv2D
    public let bn: BatchNorm2D
    public let relu = ReLU()
    /// nil means the identity shortcut.
    public let shortcut: Conv2D?
    private let add = Add()
    private let inputGrad = Tensor(shape: [0])

    public init(_ inChannels: Int, _ outChannels: Int, projection: Bool = true, workspace: Workspace) {
        precondition(projection || inChannels == outChannels,
                     "an identity shortcut needs equal channels, got \(inChannels) -> \(outChannels)")
        conv = Conv2D(inChannels, outChannels, kernelSize: 3, workspace: workspace)
        bn = BatchNorm2D(outChannels)
        shortcut = projection ? Conv2D(inChannels, outChannels, kernelSize: 1, workspace: workspace) : nil
    }

    public func forward(_ x: Tensor) -> Tensor {
        let main = relu(bn(conv(x)))
        return add(main, shortcut.map { $0(x) } ?? x)
    }

    public func backward(_ dy: Tensor) -> Tensor {
        let (dMain, dSkip) = add.backward(dy)
        let dxMain = conv.backward(bn.backward(relu.backward(dMain)))
        let dxSkip = shortcut.map { $0.backward(dSkip) } ?? dSkip
        inputGrad.reshape(to: dxMain.shape)
        let (a, b, o) = (dxMain.data, dxSkip.data, inputGrad.data)
        Engine.parallelFor(inputGrad.count, minimumPerThread: 1 << 14) { r in for i in r { o[i] = a[i] + b[i] } }
        return inputGrad
    }

    public var children: [(String, Module)] {
        [("conv", conv), ("bn", bn)] + (shortcut.map { [("shortcut", $0 as Module)] } ?? [])
    }
}
