import XCTest
@testable import SPIONetworks
@testable import SPIOTensor

/// A tiny conv net learning a toy regression, and bitwise determinism across runs and thread counts.
final class TrainingTests: XCTestCase {
    /// Student: Conv3x3(2->8) BN ReLU Conv3x3(8->8, stride 2) BN LeakyReLU ConvT(8->4) ReLU Conv1x1(4->1).
    /// Teacher: a fixed random 3x3 filter followed by ReLU. Full-batch Adam on 16 images of 16 x 16.
    private func train(steps: Int, threads: Int, seed: UInt64 = 1) -> (losses: [Double], weights: [[Float]]) {
        let savedThreads = Engine.threadCount
        Engine.setThreadCount(threads)
        defer { Engine.setThreadCount(savedThreads) }
        let ws = Workspace()
        let net = Sequential([
            Conv2D(2, 8, kernelSize: 3, workspace: ws), BatchNorm2D(8, momentum: 0.1), ReLU(),
            Conv2D(8, 8, kernelSize: 3, stride: 2, workspace: ws), BatchNorm2D(8, momentum: 0.1), LeakyReLU(),
            ConvTranspose2D.doubling3x3(8, 4, workspace: ws), ReLU(),
            Conv2D(4, 1, kernelSize: 1, workspace: ws)
        ])
        HeInitialiser.initialise(net, seed: seed)
        let x = randomTensor([16, 2, 16, 16], seed: 100)
        let teacher = Conv2D(2, 1, kernelSize: 3, workspace: ws)
        HeInitialiser.initialise(teacher, seed: 200)
        let target = ReLU()(teacher(x)).copy()
        let adam = Adam(parameters: net.parameters, learningRate: 1e-2)
        let mse = MeanSquaredError()
        var losses: [Double] = []
        for _ in 0..<steps {
            net.zeroGrad()
            let (loss, g) = mse(net(x), target)
            losses.append(loss)
            _ = net.backward(g)
            adam.update()
        }
        return (losses, net.parameters.map(\.value.array))
    }

    func testToyRegressionLossFallsTenfold() {
        let (losses, _) = train(steps: 150, threads: 2)
        let first = losses[0], last = losses.suffix(5).reduce(0, +) / 5
        XCTAssertLessThan(last, first / 10, "loss \(first) -> \(last)")
    }

    /// Names the first differing loss or weight instead of printing whole arrays.
    private func assertBitwiseEqual(
        _ a: (losses: [Double], weights: [[Float]]), _ b: (losses: [Double], weights: [[Float]]),
        file: StaticString = #filePath, line: UInt = #line
    ) {
        if let i = a.losses.indices.first(where: { a.losses[$0].bitPattern != b.losses[$0].bitPattern }) {
            XCTFail("loss at step \(i) differs: \(a.losses[i]) vs \(b.losses[i])", file: file, line: line)
        }
        XCTAssertEqual(a.weights.count, b.weights.count, file: file, line: line)
        for (k, (wa, wb)) in zip(a.weights, b.weights).enumerated() {
            if let i = wa.indices.first(where: { wa[$0].bitPattern != wb[$0].bitPattern }) {
                XCTFail("parameter \(k) entry \(i) differs: \(wa[i]) vs \(wb[i])", file: file, line: line); return
            }
        }
    }

    func testTwoRunsGiveBitwiseIdenticalWeights() {
        assertBitwiseEqual(train(steps: 20, threads: 1), train(steps: 20, threads: 1))
    }

    func testOneAndTwoThreadsGiveBitwiseIdenticalWeights() {
        assertBitwiseEqual(train(steps: 20, threads: 1), train(steps: 20, threads: 2))
    }

    /// One sample through the per-sample paths (a strided convolution and a transposed one on
    /// planes of 1,024 pixels): a single part, so the im2col, GEMM and col2im inside run on both
    /// threads, and must give the same bits as on one.
    func testOneSampleThroughPerSampleLayersSameBitsOnOneAndTwoThreads() {
        func run(threads: Int) -> [[Float]] {
            let savedThreads = Engine.threadCount
            Engine.setThreadCount(threads)
            defer { Engine.setThreadCount(savedThreads) }
            let ws = Workspace()
            let net = Sequential([
                Conv2D(32, 32, kernelSize: 3, stride: 2, workspace: ws),
                ConvTranspose2D.doubling3x3(32, 16, workspace: ws)
            ])
            HeInitialiser.initialise(net, seed: 7)
            let x = randomTensor([1, 32, 64, 64], seed: 8)
            net.zeroGrad()
            let y = net(x).array
            let dx = net.backward(randomTensor([1, 16, 64, 64], seed: 9)).array
            return [y, dx] + net.parameters.map(\.grad.array)
        }
        let (one, two) = (run(threads: 1), run(threads: 2))
        XCTAssertEqual(one.count, two.count)
        for (k, (a, b)) in zip(one, two).enumerated() {
            XCTAssertEqual(a.count, b.count)
            let differing = zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
            XCTAssertEqual(differing, 0, "array \(k) (output, input gradient, then parameter gradients)")
        }
    }

    func testAdamBiasCorrectedFirstStep() {
        // After one step from zero moments, the update is lr * g / (|g| + eps') = lr * sign(g).
        let p = Parameter(shape: [3])
        p.value.assign(Tensor(shape: [3], values: [1, 2, 3]))
        p.grad.assign(Tensor(shape: [3], values: [0.5, -2, 1e-3]))
        let adam = Adam(parameters: [p], learningRate: 0.1)
        adam.update()
        XCTAssertEqual(p.value.array[0], 0.9, accuracy: 1e-6)
        XCTAssertEqual(p.value.array[1], 2.1, accuracy: 1e-6)
        XCTAssertEqual(p.value.array[2], 2.9, accuracy: 1e-4)
    }

    func testL2WeightDecayAddsTwoLambdaTheta() {
        let p = Parameter(shape: [1]), q = Parameter(shape: [1])
        p.value.fill(2); q.value.fill(2)
        p.grad.fill(0); q.grad.fill(2 * 0.25 * 2)  // 2 * lambda * theta
        let withDecay = Adam(parameters: [p], learningRate: 0.01, l2: 0.25)
        let explicit = Adam(parameters: [q], learningRate: 0.01)
        withDecay.update(); explicit.update()
        XCTAssertEqual(p.value.array, q.value.array)
    }
}
