import XCTest
@testable import SPIONetworks
@testable import SPIOTensor

/// Forward passes against direct loops written from the PyTorch definitions.
final class ForwardReferenceTests: XCTestCase {
    let ws = Workspace()

    /// Covers im2col lowering (3->4) and the tap-plane path for few filters (8->1, 8->2, 5x5 12->3).
    func testConv2DMatchesDirectLoops() {
        for (ci, co, k, s, p) in [(3, 4, 3, 2, 1), (8, 1, 3, 1, 1), (8, 2, 3, 1, 1), (12, 3, 5, 1, 2)] {
            checkConvAgainstLoops(n: 2, ci: ci, co: co, h: 7, w: 6, k: k, s: s, p: p)
        }
    }

    private func checkConvAgainstLoops(n: Int, ci: Int, co: Int, h: Int, w: Int, k: Int, s: Int, p: Int) {
        let conv = Conv2D(ci, co, kernelSize: k, stride: s, padding: p, workspace: ws)
        HeInitialiser.initialise(conv, seed: 1)
        conv.bias!.value.assign(randomTensor([co], seed: 2))
        let x = randomTensor([n, ci, h, w], seed: 3)
        let y = conv(x)
        let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
        XCTAssertEqual(y.shape, [n, co, oh, ow])
        for b in 0..<n {
            for o in 0..<co {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var acc = Double(conv.bias!.value[o])
                        for c in 0..<ci {
                            for ky in 0..<k {
                                for kx in 0..<k {
                                    let iy = oy * s - p + ky, ix = ox * s - p + kx
                                    if iy >= 0 && iy < h && ix >= 0 && ix < w {
                                        acc += Double(conv.weight.value[o, c, ky, kx]) * Double(x[b, c, iy, ix])
                                    }
                                }
                            }
                        }
                        XCTAssertEqual(Double(y[b, o, oy, ox]), acc, accuracy: 1e-4)
                    }
                }
            }
        }
    }

    func testConvTransposeMatchesScatterDefinition() {
        let (n, ci, co, h, w) = (2, 3, 2, 3, 4)
        let ct = ConvTranspose2D.doubling3x3(ci, co, workspace: ws)
        HeInitialiser.initialise(ct, seed: 4)
        ct.bias!.value.assign(randomTensor([co], seed: 5))
        let x = randomTensor([n, ci, h, w], seed: 6)
        let y = ct(x)
        XCTAssertEqual(y.shape, [n, co, 2 * h, 2 * w])
        // out[oy = iy*2 - 1 + ky] += x[iy] * W[ci, co, ky, kx]  (PyTorch's definition, padding 1)
        var ref = [Double](repeating: 0, count: y.count)
        for b in 0..<n {
            for c in 0..<ci {
                for iy in 0..<h {
                    for ix in 0..<w {
                        for o in 0..<co {
                            for ky in 0..<3 {
                                for kx in 0..<3 {
                                    let oy = iy * 2 - 1 + ky, ox = ix * 2 - 1 + kx
                                    if oy >= 0 && oy < 2 * h && ox >= 0 && ox < 2 * w {
                                        ref[((b * co + o) * 2 * h + oy) * 2 * w + ox] +=
                                            Double(x[b, c, iy, ix]) * Double(ct.weight.value[c, o, ky, kx])
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        for i in 0..<y.count {
            let o = (i / (4 * h * w)) % co
            XCTAssertEqual(Double(y.data[i]), ref[i] + Double(ct.bias!.value[o]), accuracy: 1e-4)
        }
    }

    func testBatchNormNormalisesAndTracksRunningStatistics() {
        let bn = BatchNorm2D(2, momentum: 0.1)
        let x = randomTensor([3, 2, 4, 4], seed: 7)
        let y = bn(x)
        for c in 0..<2 {
            var vals: [Double] = []
            for b in 0..<3 { for i in 0..<16 { vals.append(Double(y.data[(b * 2 + c) * 16 + i])) } }
            let mean = vals.reduce(0, +) / 48, varb = vals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 48
            XCTAssertEqual(mean, 0, accuracy: 1e-5)
            XCTAssertEqual(varb, 1, accuracy: 1e-3)
            var xs: [Double] = []
            for b in 0..<3 { for i in 0..<16 { xs.append(Double(x.data[(b * 2 + c) * 16 + i])) } }
            let xm = xs.reduce(0, +) / 48, xv = xs.map { ($0 - xm) * ($0 - xm) }.reduce(0, +) / 47
            XCTAssertEqual(Double(bn.runningMean[c]), 0.1 * xm, accuracy: 1e-6)
            XCTAssertEqual(Double(bn.runningVar[c]), 0.9 + 0.1 * xv, accuracy: 1e-5)
        }
        XCTAssertEqual(bn.batchesTracked, 1)
    }

    func testMaxPoolPicksWindowMaximum() {
        let x = Tensor(shape: [1, 1, 2, 4], values: [1, 5, 2, 0, 3, 4, 8, 7])
        XCTAssertEqual(MaxPool2D()(x).array, [5, 8])
    }

    func testDeepSPIOShapesAndParameterNames() {
        let net = EncoderDecoderNet(ModelConfig.preset("tiny")!, seed: 0)
        let y = net(randomTensor([2, 2, 32, 32], seed: 8))
        XCTAssertEqual(y.shape, [2, 4, 16, 16])
        let names = net.namedParameters().map(\.0)
        XCTAssertEqual(names.first, "encoder.0.0.weight")
        XCTAssertTrue(names.contains("bottleneck.0.shortcut.weight"))
        XCTAssertTrue(names.contains("decoders.3.3.weight"), "the head of the fourth decoder")
        XCTAssertTrue(names.contains("decoders.3.2.3.weight"), "the conv of its third stage")
        XCTAssertTrue(net.namedBuffers().map(\.0).contains("encoder.0.1.running_var"))
    }
}
