import SPIOTensor

/// DeepSPIO's bottleneck block: y = ReLU(BN(Conv3x3(x))) + shortcut(x). The shortcut is a linear
/// 1x1 convolution (the paper's projection), the identity (channels zero-padded when the block
/// widens, ResNet's option A), or absent (the `plain` bottleneck ablation).
public final class ResidualBlock: Layer {
    public enum Shortcut: Sendable { case projection, identity, none }

    public let conv: Conv2D
    public let bn: BatchNorm2D
    public let relu = ReLU()
    public let shortcutKind: Shortcut
    /// The 1x1 convolution of a projection shortcut.
    public let shortcut: Conv2D?
    private let inChannels: Int, outChannels: Int
    private let add = Add()
    private let padded = Tensor(shape: [0])
    private let inputGrad = Tensor(shape: [0])

    public init(_ inChannels: Int, _ outChannels: Int, shortcut kind: Shortcut = .projection, workspace: Workspace) {
        precondition(
            kind != .identity || inChannels <= outChannels,
            "an identity shortcut can only widen (zero-padding), got \(inChannels) -> \(outChannels)")
        self.inChannels = inChannels; self.outChannels = outChannels; shortcutKind = kind
        conv = Conv2D(inChannels, outChannels, kernelSize: 3, workspace: workspace)
        bn = BatchNorm2D(outChannels)
        shortcut = kind == .projection ? Conv2D(inChannels, outChannels, kernelSize: 1, workspace: workspace) : nil
    }

    public func forward(_ x: Tensor) -> Tensor {
        let main = relu(bn(conv(x)))
        switch shortcutKind {
        case .none: return main
        case .projection: return add(main, shortcut!(x))
        case .identity: return add(main, zeroPadded(x))
        }
    }

    private func zeroPadded(_ x: Tensor) -> Tensor {
        if inChannels == outChannels { return x }
        let (n, plane) = (x.shape[0], x.shape[2] * x.shape[3])
        padded.reshape(to: [n, outChannels, x.shape[2], x.shape[3]])
        padded.fill(0)
        for s in 0..<n {
            (padded.data + s * outChannels * plane).update(
                from: x.data + s * inChannels * plane, count: inChannels * plane)
        }
        return padded
    }

    public func backward(_ dy: Tensor) -> Tensor {
        if shortcutKind == .none { return backwardChain([conv, bn, relu] as [Layer], dy) }
        let (dMain, dSkip) = add.backward(dy)
        let dxMain = backwardChain([conv, bn, relu] as [Layer], dMain)
        inputGrad.assign(dxMain)
        if dxMain !== dMain { dxMain.reclaim() }
        if let shortcut {
            let dxSkip = shortcut.backward(dSkip)
            inputGrad.add(dxSkip)
            if dxSkip !== dSkip { dxSkip.reclaim() }
        } else {
            // Identity: the first inChannels of each sample's gradient pass through.
            let (n, plane, b, o) = (dy.shape[0], dy.shape[2] * dy.shape[3], dSkip.data, inputGrad.data)
            for s in 0..<n {
                for i in 0..<(inChannels * plane) { o[s * inChannels * plane + i] += b[s * outChannels * plane + i] }
            }
        }
        return inputGrad
    }

    public var children: [(String, Module)] {
        [("conv", conv), ("bn", bn)] + (shortcut.map { [("shortcut", $0 as Module)] } ?? [])
    }
}
