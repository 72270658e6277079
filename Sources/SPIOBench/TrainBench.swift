import Foundation
import SPIOKernels
import SPIONetworks
import SPIOTensor

/// `spio bench train`: training throughput (forward, the paper's loss, backward, Adam) on random
/// data, single-image inference latency, and the process's peak resident memory. The same
/// figures as bench/peers/bench_peer.py measures for PyTorch and Keras.
package struct TrainBench {
    package let config: ModelConfig
    package let batch: Int, threads: Int, steps: Int, repeats: Int
    package let log: (String) -> Void

    package init(
        config: ModelConfig, batch: Int = 32, threads: Int = 2, steps: Int = 5, repeats: Int = 5,
        log: @escaping (String) -> Void = { _ in }
    ) {
        self.config = config; self.batch = batch; self.threads = threads; self.steps = steps; self.repeats = repeats;
        self.log = log
    }

    package struct Result: Codable {
        package var framework = "DeepSPIO-Lab (Swift, OpenBLAS)"
        /// The kernel mode and OpenBLAS kernel, e.g. `portable (Haswell)`.
        package var kernel = KernelPolicy.state.description
        package var cpu = cpuModel
        package var architecture: String
        package var parameters: Int
        package var batch: Int, threads: Int
        /// Median over repeats of (steps x batch) / seconds.
        package var trainSamplesPerSecond: Double
        package var trainSamplesPerSecondRuns: [Double]
        /// Median single-image forward time in evaluation mode.
        package var inferenceMilliseconds: Double
        package var peakResidentMiB: Double
        /// The model's scratch (`Workspace` slots) and the im2col matrices its layers keep from
        /// forward to backward, after the timed training steps: where the engine's memory goes beyond
        /// weights, optimizer state and activations.
        package var scratchMiB: Double? = nil
        package var retainedMiB: Double? = nil
        /// The tensors the model's layers hold after the training steps, by the role their field
        /// names (`output`, `inputGrad`, ...), in MiB of capacity: what a training step keeps alive.
        package var tensorMiBByRole: [String: Double]? = nil
        /// Forward+backward convolution GFLOP per training sample.
        package var convolutionGFLOPPerSample: Double
        /// sgemm 1024^3 GFLOP/s measured in the same run (the faster of `Gemm` and OpenBLAS's threads).
        package var sgemmGFLOPS: Double
        /// Samples/s an engine that lowers every convolution to sgemm could reach at that rate with
        /// nothing else to do: a ceiling for this engine's design on this machine and BLAS kernel.
        package var sgemmCeilingSamplesPerSecond: Double { sgemmGFLOPS / convolutionGFLOPPerSample }
    }

    package func run() -> Result {
        Engine.setThreadCount(threads)
        let workspace = Workspace()
        let net = EncoderDecoderNet(config, seed: 1, workspace: workspace)
        let adam = Adam(parameters: net.parameters, learningRate: 1e-4)
        let loss = NormalisedL1Loss()
        var rng = SeededGenerator(seed: 3)
        let s = config.inputSize
        let x = Tensor(
            shape: [batch, config.inputChannels, s, s],
            values: (0..<(batch * config.inputChannels * s * s)).map { _ in Float(rng.normal()) })
        let outShape = net.outputShape(batch: batch)
        let y = Tensor(shape: outShape, values: (0..<outShape.reduce(1, *)).map { _ in Float(rng.normal()) })
        func step() { _ = adam.takeStep(net, x, y, loss: loss.callAsFunction) }
        step(); step()  // warm-up: workspaces, BLAS buffers
        let gflopPerSample = EngineBench.convolutionFLOP(net, inference: false) * 1e-9 / Double(batch)
        var rates: [Double] = []
        for r in 0..<repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<steps { step() }
            let sec = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            rates.append(Double(steps * batch) / sec)
            log(
                "\(config.architecture.rawValue) train run \(r + 1)/\(repeats): "
                    + "\(String(format: "%.1f", rates.last!)) samples/s"
            )
        }
        let (scratchFloats, retainedFloats) = (workspace.allocatedFloats, workspace.retainedFloats)
        let heldByRole = Self.tensorMiBByRole(net)
        net.setTraining(false)  // timed inference from here on; the network is not trained again
        let one = Tensor(
            shape: [1, config.inputChannels, s, s], values: Array(x.array.prefix(config.inputChannels * s * s)))
        for _ in 0..<3 { _ = net(one) }
        var times: [Double] = []
        for _ in 0..<21 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = net(one)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let sgemm = EngineBench.measureSgemm(n: 1024, repeats: 5, threads: threads)
        return Result(
            architecture: config.architecture.rawValue, parameters: net.parameterCount, batch: batch, threads: threads,
            trainSamplesPerSecond: medianOf(rates), trainSamplesPerSecondRuns: rates,
            inferenceMilliseconds: medianOf(times),
            peakResidentMiB: Double(usage.ru_maxrss) / 1024,
            scratchMiB: Double(scratchFloats) * 4 / 1_048_576, retainedMiB: Double(retainedFloats) * 4 / 1_048_576,
            tensorMiBByRole: heldByRole,
            convolutionGFLOPPerSample: gflopPerSample,
            sgemmGFLOPS: max(sgemm.0, sgemm.1))
    }

    /// MiB of tensor capacity held by the model's layers, by stored-property name (parameters as
    /// `parameter.value`, `parameter.grad`), read by reflection.
    static func tensorMiBByRole(_ net: Module) -> [String: Double] {
        var floats: [String: Int] = [:]
        var seen = Set<ObjectIdentifier>()
        func add(_ name: String, _ value: Any) {
            if let t = value as? Tensor {
                guard seen.insert(ObjectIdentifier(t)).inserted else { return }
                floats[name, default: 0] += t.capacity
            } else if let t = value as? Tensor?, let t {
                add(name, t)
            } else if let p = value as? Parameter {
                add("parameter.value", p.value); add("parameter.grad", p.grad)
            } else if let list = value as? [Tensor] {
                for t in list { add(name, t) }
            }
        }
        net.forEachModule { m in
            for child in Mirror(reflecting: m).children { add(child.label ?? "?", child.value) }
        }
        floats["pool (free)"] = TensorStoragePool.shared.freeFloats
        return floats.mapValues { Double($0) * 4 / 1_048_576 }
    }
}
