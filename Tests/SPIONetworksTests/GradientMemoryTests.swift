import XCTest

@testable import SPIONetworks
@testable import SPIOTensor

/// The backward pass's memory policy changes where gradients live, never what they are: with every
/// tensor routed through the storage pool (so reclaimed gradients reuse each other's stale
/// storage), and with im2col retention off, DeepSPIO, its skip variant and the U-Net train to the
/// same bits as with neither, and the layers hold far fewer gradient floats afterwards.
final class GradientMemoryTests: XCTestCase {
    private func train(
        _ config: ModelConfig, pooledFrom smallest: Int, retain: Int
    ) -> (
        weights: [[Float]], heldGradientFloats: Int
    ) {
        let saved = TensorStoragePool.smallest
        TensorStoragePool.smallest = smallest
        defer { TensorStoragePool.smallest = saved }
        let ws = Workspace()
        ws.retainBudgetFloats = retain
        let net = EncoderDecoderNet(config, seed: 3, workspace: ws)
        let adam = Adam(parameters: net.parameters, learningRate: 1e-3)
        let loss = NormalisedL1Loss()
        var rng = SeededGenerator(seed: 9)
        let s = config.inputSize
        let x = Tensor(shape: [4, 2, s, s], values: (0..<(4 * 2 * s * s)).map { _ in Float(rng.normal()) })
        let shape = net.outputShape(batch: 4)
        let y = Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in Float(rng.normal()) })
        for _ in 0..<3 { _ = adam.takeStep(net, x, y, loss: loss.callAsFunction) }
        var held = 0
        net.forEachModule { m in
            for child in Mirror(reflecting: m).children where child.label == "inputGrad" {
                held += (child.value as? Tensor)?.capacity ?? 0
            }
        }
        return (net.parameters.map(\.value.array), held)
    }

    func testPoolingAndRetentionChangeNoBit() {
        var deepspio = ModelConfig.preset("tiny")!
        deepspio.inputSize = 32
        var skips = deepspio
        skips.skips = true
        var unet = deepspio
        unet.architecture = .unet
        for config in [deepspio, skips, unet] {
            let plain = train(config, pooledFrom: Int.max, retain: 1 << 28)
            let pooled = train(config, pooledFrom: 1, retain: 0)
            for (k, (a, b)) in zip(plain.weights, pooled.weights).enumerated() {
                if let i = a.indices.first(where: { a[$0].bitPattern != b[$0].bitPattern }) {
                    XCTFail("\(config.architecture) skips \(config.skips): parameter \(k) entry \(i) differs")
                    break
                }
            }
            XCTAssertLessThan(
                pooled.heldGradientFloats * 3, plain.heldGradientFloats,
                "\(config.architecture): gradients held after a step, pooled against kept")
        }
    }
}
