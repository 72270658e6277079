import XCTest
@testable import SPIONetworks
@testable import SPIOTensor

/// Finite-difference gradient checks for every layer type (max relative error < 1e-3).
final class GradientCheckTests: XCTestCase {
    let ws = Workspace()

    private func initialised<L: Layer>(_ l: L, seed: UInt64 = 3) -> L {
        var rng = SeededGenerator(seed: seed)
        for p in l.parameters { for i in 0..<p.value.count { p.value.data[i] = Float(rng.normal() * 0.5) } }
        return l
    }

    func testConv2D() {
        for (k, s, bias) in [(3, 1, true), (3, 2, true), (1, 1, false), (2, 2, true)] {
            let conv = initialised(Conv2D(3, 4, kernelSize: k, stride: s, bias: bias, workspace: ws))
            checkLayer(conv, input: randomTensor([2, 3, 7, 6], seed: 1), step: 0.5)
        }
    }

    /// Few filters take the tap-plane path (one GEMM over taps, shifted sums); 5x5 checks the shifts.
    func testConv2DFewFilters() {
        for (ci, co, k, bias) in [(8, 1, 3, true), (8, 2, 3, false), (12, 3, 5, true)] {
            let conv = initialised(Conv2D(ci, co, kernelSize: k, bias: bias, workspace: ws))
            checkLayer(conv, input: randomTensor([2, ci, 7, 6], seed: 1), step: 0.5)
        }
    }

    /// Large planes are lowered one sample per thread (weight gradients summed over fixed chunks):
    /// the same checks with that path forced, including a batch that is not a multiple of the chunk.
    func testConv2DPerSamplePath() {
        let saved = perSampleMinimumPlane
        perSampleMinimumPlane = 0
        defer { perSampleMinimumPlane = saved }
        for (k, s, bias) in [(3, 1, true), (3, 2, true), (1, 1, false), (2, 2, true)] {
            let conv = initialised(Conv2D(3, 4, kernelSize: k, stride: s, bias: bias, workspace: ws))
            checkLayer(conv, input: randomTensor([5, 3, 7, 6], seed: 1), step: 0.5)
        }
        for t in [ConvTranspose2D.doubling3x3(3, 4, workspace: ws), ConvTranspose2D.doubling2x2(3, 2, workspace: ws)] {
            checkLayer(initialised(t), input: randomTensor([5, 3, 4, 3], seed: 2), step: 0.5)
        }
    }

    /// Stride-1 3x3 layers on the Winograd paths: finite differences, and the im2col path's numbers
    /// (F(2x2) and F(4x4) within their stated float error), with the rule's default path on a layer
    /// it sends to Winograd.
    func testConv2DWinogradPaths() {
        defer { conv3x3Path = .measured }
        XCTAssertEqual(Conv2D.winogradVariant(inChannels: 32, outChannels: 64, height: 16, width: 16), .f4x4)
        XCTAssertNil(Conv2D.winogradVariant(inChannels: 16, outChannels: 16, height: 64, width: 64))
        XCTAssertNil(Conv2D.winogradVariant(inChannels: 256, outChannels: 256, height: 4, width: 4))
        for variant in Winograd3x3.Variant.allCases {
            conv3x3Path = .winograd(variant)
            for bias in [true, false] {
                let conv = initialised(Conv2D(3, 4, kernelSize: 3, bias: bias, workspace: ws))
                checkLayer(conv, input: randomTensor([2, 3, 7, 6], seed: 1), step: 0.5)
            }
        }
        let x = randomTensor([3, 32, 9, 10], seed: 8), dy = randomTensor([3, 33, 9, 10], seed: 9)
        func run(_ path: Conv3x3Path) -> [[Float]] { convProducts(path, 32, 33, x, dy) }
        let reference = run(.im2col)
        XCTAssertEqual(run(.measured), run(.winograd(.f4x4)), "the rule sends 32 -> 33 channels at 9 x 10 to F(4x4)")
        // Evaluation keeps the transformed weights between calls; setTraining drops them, so new
        // weights loaded before it are used.
        conv3x3Path = .winograd(.f4x4)
        let kept = initialised(Conv2D(32, 33, kernelSize: 3, workspace: Workspace()))
        kept.setTraining(false)
        let first = kept(x).array
        XCTAssertEqual(kept(x).array, first)
        for i in 0..<kept.weight.value.count { kept.weight.value.data[i] *= 2 }
        kept.setTraining(false)
        let doubled = initialised(Conv2D(32, 33, kernelSize: 3, workspace: Workspace()))
        for i in 0..<doubled.weight.value.count { doubled.weight.value.data[i] *= 2 }
        doubled.setTraining(false)
        XCTAssertEqual(kept(x).array, doubled(x).array)
        XCTAssertNotEqual(kept(x).array, first)
        for (variant, bound) in [(Winograd3x3.Variant.f2x2, 1e-6), (.f4x4, 1e-5)] {
            for (got, want) in zip(run(.winograd(variant)), reference) {
                let scale = want.reduce(0) { max($0, abs($1)) }
                let error = zip(got, want).reduce(0) { max($0, abs($1.0 - $1.1)) }
                XCTAssertLessThan(Double(error / scale), bound, "\(variant)")
            }
        }
    }

    /// Stride-1 3x3 layers on the direct kernel: finite differences (a partial block of input
    /// gradient filters with 3 input channels, with and without bias), the im2col path's numbers
    /// within float error, and the rule: direct where Winograd does not apply and the width is a
    /// multiple of 16, im2col on other widths.
    func testConv2DDirectPath() {
        defer { conv3x3Path = .measured }
        XCTAssertTrue(Conv2D.usesDirectByDefault(inChannels: 16, outChannels: 16, height: 64, width: 64))
        XCTAssertFalse(Conv2D.usesDirectByDefault(inChannels: 32, outChannels: 32, height: 16, width: 16), "F(4x4)")
        XCTAssertFalse(Conv2D.usesDirectByDefault(inChannels: 8, outChannels: 8, height: 8, width: 8), "width 8")
        XCTAssertFalse(Conv2D.usesDirectByDefault(inChannels: 8, outChannels: 6, height: 16, width: 16), "6 filters")
        conv3x3Path = .direct
        for bias in [true, false] {
            let conv = initialised(Conv2D(3, 4, kernelSize: 3, bias: bias, workspace: ws))
            checkLayer(conv, input: randomTensor([2, 3, 5, 16], seed: 1), step: 0.5)
            XCTAssertEqual(conv.lastPath, "direct")
        }
        let x = randomTensor([3, 8, 6, 32], seed: 8), dy = randomTensor([3, 12, 6, 32], seed: 9)
        func run(_ path: Conv3x3Path) -> [[Float]] { convProducts(path, 8, 12, x, dy) }
        let reference = run(.im2col)
        XCTAssertEqual(run(.measured), run(.direct), "the rule sends 8 -> 12 channels at 6 x 32 to the direct kernel")
        for (got, want) in zip(run(.direct), reference) {
            let scale = want.reduce(0) { max($0, abs($1)) }
            let error = zip(got, want).reduce(0) { max($0, abs($1.0 - $1.1)) }
            XCTAssertLessThan(Double(error / scale), 1e-6)
        }
    }

    /// A 3x3 layer's output, input gradient, weight and bias gradients on `path` (same initial weights).
    private func convProducts(_ path: Conv3x3Path, _ c: Int, _ o: Int, _ x: Tensor, _ dy: Tensor) -> [[Float]] {
        conv3x3Path = path
        let conv = initialised(Conv2D(c, o, kernelSize: 3, workspace: Workspace()))
        return [conv(x).array, conv.backward(dy).array, conv.weight.grad.array, conv.bias!.grad.array]
    }

    /// Batches too large for one column matrix are lowered in sample groups; results must agree.
    func testGroupedLoweringMatchesSingleGroup() {
        let x = randomTensor([5, 2, 6, 6], seed: 4), dy = randomTensor([5, 3, 6, 6], seed: 5)
        func run(limit: Int) -> ([Float], [Float], [Float]) {
            let saved = maxColumnFloats
            maxColumnFloats = limit
            defer { maxColumnFloats = saved }
            let conv = initialised(Conv2D(2, 3, kernelSize: 3, workspace: Workspace()))
            let y = conv(x).array
            let dx = conv.backward(dy).array
            return (y, dx, conv.weight.grad.array)
        }
        let one = run(limit: 1 << 25), grouped = run(limit: 18 * 36 * 2)  // two samples per group
        XCTAssertEqual(one.0, grouped.0)
        XCTAssertEqual(one.1, grouped.1)
        for (a, b) in zip(one.2, grouped.2) { XCTAssertEqual(a, b, accuracy: 1e-4 * max(1, abs(a))) }
    }

    /// Keeping the forward im2col matrix for backward (within the workspace budget) or rebuilding it
    /// gives bitwise the same outputs and gradients.
    func testRetainedColumnsMatchRebuiltOnes() {
        let x = randomTensor([4, 3, 6, 6], seed: 6), dy = randomTensor([4, 5, 6, 6], seed: 7)
        func run(budget: Int) -> [[Float]] {
            let ws = Workspace()
            ws.retainBudgetFloats = budget
            let conv = initialised(Conv2D(3, 5, kernelSize: 3, workspace: ws))
            let y = conv(x).array
            XCTAssertEqual(ws.retainedFloats, budget > 0 ? 27 * 4 * 36 : 0)
            let dx = conv.backward(dy).array
            return [y, dx, conv.weight.grad.array, conv.bias!.grad.array]
        }
        XCTAssertEqual(run(budget: 1 << 20), run(budget: 0))
    }

    func testConvTranspose2D() {
        for l in [ConvTranspose2D.doubling3x3(3, 2, workspace: ws), ConvTranspose2D.doubling2x2(3, 2, workspace: ws)] {
            let x = randomTensor([2, 3, 4, 5], seed: 2)
            let layer = initialised(l)
            XCTAssertEqual(layer(x).shape, [2, 2, 8, 10])
            checkLayer(layer, input: x, step: 0.5)
        }
    }

    func testBatchNormTraining() {
        let bn = initialised(BatchNorm2D(3))
        checkLayer(bn, input: randomTensor([4, 3, 3, 3], seed: 5), step: 1e-2)
    }

    func testBatchNormEvaluation() {
        let bn = initialised(BatchNorm2D(3))
        _ = bn(randomTensor([4, 3, 3, 3], seed: 6))
        bn.setTraining(false)
        checkLayer(bn, input: randomTensor([4, 3, 3, 3], seed: 5), step: 0.5)
    }

    func testReLUAndLeakyReLU() {
        checkLayer(ReLU(), input: randomTensor([2, 3, 4, 4], seed: 7, margin: 0.05))
        checkLayer(LeakyReLU(slope: 0.01), input: randomTensor([2, 3, 4, 4], seed: 8, margin: 0.05))
    }

    func testMaxPool() {
        // Distinct values spaced 0.05 apart, so a +-0.01 step never changes a window's maximum.
        var rng = SeededGenerator(seed: 9)
        var vals = (0..<(2 * 2 * 6 * 6)).map { Float($0) * 0.05 }
        vals.shuffle(using: &rng)
        checkLayer(MaxPool2D(), input: Tensor(shape: [2, 2, 6, 6], values: vals))
    }

    func testAddAndConcat() {
        let a = randomTensor([2, 3, 4, 4], seed: 10), b = randomTensor([2, 3, 4, 4], seed: 11)
        let c = randomTensor([2, 2, 4, 4], seed: 12)
        let add = Add(), cat = Concat()
        var grads: [Tensor] = []
        let check = GradientCheck(
            forward: { cat(add(a, b), c) },
            backward: { dy in
                let (dSum, dc) = cat.backward(dy)
                let (da, db) = add.backward(dSum)
                grads = [da.copy(), db.copy(), dc.copy()]
            },
            variables: [
                .init(name: "a", value: a, analytic: { grads[0] }),
                .init(name: "b", value: b, analytic: { grads[1] }),
                .init(name: "c", value: c, analytic: { grads[2] })
            ], step: 0.5)
        let (err, where_) = check.maxRelativeError()
        XCTAssertLessThan(err, 1e-3, where_)
        XCTAssertEqual(cat(a, c).shape, [2, 5, 4, 4])
    }

    func testResidualBlockWithProjection() {
        let block = initialised(ResidualBlock(3, 4, shortcut: .projection, workspace: ws))
        checkLayer(
            block, input: randomTensor([3, 3, 4, 4], seed: 13), step: 1e-2,
            activationPattern: { block.relu.lastOutput!.array.map { $0 > 0 } })
    }

    func testResidualBlockIdentityShortcut() {
        let block = initialised(ResidualBlock(3, 3, shortcut: .identity, workspace: ws))
        checkLayer(
            block, input: randomTensor([3, 3, 4, 4], seed: 14), step: 1e-2,
            activationPattern: { block.relu.lastOutput!.array.map { $0 > 0 } })
    }

    /// DeepSPIO's backward routes each band's gradient to its own decoder only, and sums the four
    /// decoders' gradients into the bottleneck (the layers themselves are checked above).
    func testDeepSPIOBandGradientsReachOnlyTheirDecoder() {
        let net = EncoderDecoderNet(.preset("tiny")!, seed: 1)
        let x = randomTensor([4, 2, 32, 32], seed: 15)
        let y = net(x)
        var perBand: [[Float]] = []
        for band in 0..<4 {
            let dy = Tensor(shape: y.shape)
            for s in 0..<4 { for i in 0..<256 { dy.data[(s * 4 + band) * 256 + i] = Float(i % 7) - 3 } }
            net.zeroGrad()
            _ = net(x)
            _ = net.backward(dy)
            for (k, d) in net.decoders.enumerated() {
                let g = d.parameters.reduce(0.0) { $0 + $1.grad.array.reduce(0.0) { $0 + Double(abs($1)) } }
                if k == band {
                    XCTAssertGreaterThan(g, 0)
                } else {
                    XCTAssertEqual(g, 0, "band \(band) reached decoder \(k)")
                }
            }
            perBand.append(net.firstConv.weight.grad.array)
        }
        // All four bands at once: the encoder gradient is the sum of the per-band ones.
        let dy = Tensor(shape: y.shape)
        for s in 0..<4 { for b in 0..<4 { for i in 0..<256 { dy.data[(s * 4 + b) * 256 + i] = Float(i % 7) - 3 } } }
        net.zeroGrad(); _ = net(x); _ = net.backward(dy)
        let all = net.firstConv.weight.grad.array
        for i in 0..<all.count {
            let sum = perBand.reduce(0) { $0 + $1[i] }
            XCTAssertEqual(all[i], sum, accuracy: 1e-3 * max(1, abs(sum)))
        }
    }

    /// Output channels without a shortcut term are a bare ReLU, so more entries sit at kinks
    /// (skipped, as in Caffe's checker); at least 65 % are still checked.
    func testResidualBlockWideningIdentityAndPlain() {
        let widening = initialised(ResidualBlock(3, 5, shortcut: .identity, workspace: ws))
        checkLayer(
            widening, input: randomTensor([3, 3, 4, 4], seed: 16), step: 1e-2,
            activationPattern: { widening.relu.lastOutput!.array.map { $0 > 0 } }, maxSkipped: 0.35)
        let plain = initialised(ResidualBlock(3, 4, shortcut: .none, workspace: ws))
        checkLayer(
            plain, input: randomTensor([3, 3, 4, 4], seed: 17), step: 1e-2,
            activationPattern: { plain.relu.lastOutput!.array.map { $0 > 0 } }, maxSkipped: 0.35)
    }

    /// Whole networks with skip connections (every encoder stage feeds a decoder stage), through
    /// Euler's identity. With zero biases and BatchNorm on running statistics with zero mean and
    /// zero shift, every layer (conv, ReLU, LeakyReLU, max-pool, BN, concat, add) is positively
    /// homogeneous, so L(x) = <r, f(x)> satisfies <dL/dx, x> = L exactly, whatever the kinks.
    /// The input gradient sums over every path from input to output, so a lost or misrouted skip,
    /// band or shortcut gradient breaks the identity by that path's share of L.
    func testNetworksWithSkipsEndToEnd() {
        var deep = ModelConfig.preset("tiny")!
        (deep.inputSize, deep.baseFilters, deep.bottleneckFilters, deep.residualBlocks) = (32, 2, 16, 2)
        (deep.skips, deep.head) = (true, .image)
        var wavelet = deep
        wavelet.head = .wavelet
        var shared = deep
        (shared.head, shared.skips, shared.shortcut, shared.downsampling) = (.shared, false, .identity, .maxpool)
        var unet = deep
        unet.architecture = .unet
        for config in [deep, wavelet, shared, unet] {
            let net = EncoderDecoderNet(config, seed: 4)
            var rng = SeededGenerator(seed: 5)
            net.forEachModule { m in
                guard let bn = m as? BatchNorm2D else { return }
                bn.setTraining(false)
                for c in 0..<bn.channels {
                    bn.weight.value.data[c] = Float(rng.uniform(0.5, 1.5))
                    bn.runningVar.data[c] = Float(rng.uniform(0.5, 1.5))
                }
            }
            for (name, p) in net.namedParameters()
            where name.hasSuffix("bias") && !(p.value.array.allSatisfy { $0 == 0 }) {
                XCTFail("\(name) is not zero after initialisation")
            }
            net.firstConv.computesInputGradient = true
            let x = randomTensor([2, 2, 32, 32], seed: 18)
            let y = net(x)
            let r = randomTensor(y.shape, seed: 19)
            let loss = (0..<y.count).reduce(0.0) { $0 + Double(y.data[$1]) * Double(r.data[$1]) }
            let dx = net.backward(r)
            let euler = (0..<x.count).reduce(0.0) { $0 + Double(dx.data[$1]) * Double(x.data[$1]) }
            let rel = abs(euler - loss) / abs(loss)
            print(
                "Euler identity \(config.architecture) head \(config.head) skips \(config.skips): L = \(loss), "
                    + "<dL/dx, x> = \(euler), relative error \(String(format: "%.1e", rel))"
            )
            XCTAssertLessThan(rel, 1e-4, "\(config.architecture) \(config.head)")
        }
    }

    /// `outputScale` multiplies the output and the gradient reaching the network by the same
    /// factor, bit for bit, on a wavelet and an image head: the same weights with scale s on the
    /// output gradient r equal scale 1 on s r.
    func testOutputScale() {
        var base = ModelConfig.preset("tiny")!
        (base.inputSize, base.baseFilters, base.bottleneckFilters, base.residualBlocks) = (32, 2, 16, 1)
        for head in [ModelConfig.Head.wavelet, .image] {
            base.head = head
            var scaled = base
            scaled.outputScale = 4
            let (a, b) = (EncoderDecoderNet(base, seed: 3), EncoderDecoderNet(scaled, seed: 3))
            let x = randomTensor([2, 2, 32, 32], seed: 8)
            let ya = a(x).copy(), yb = b(x).copy()
            XCTAssertEqual(yb.array, ya.array.map { $0 * 4 }, "\(head) output")
            let r = randomTensor(ya.shape, seed: 9)
            let r4 = Tensor(shape: r.shape, values: r.array.map { $0 * 4 })
            _ = a.backward(r4)
            _ = b.backward(r)
            XCTAssertEqual(r.array, randomTensor(ya.shape, seed: 9).array, "the caller's gradient is left as it was")
            for ((name, p), (_, q)) in zip(a.namedParameters(), b.namedParameters()) {
                XCTAssertEqual(p.grad.array, q.grad.array, "\(head) \(name)")
            }
        }
    }
}
