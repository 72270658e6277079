import SPIOConfig
import ArgumentParser
import Foundation
import SPIOBench
import SPIOKernels
import SPIONetworks
import SPIOTensor
import SPIOPhysics
import SPIOExperiments

/// A check in seconds that the engine trains on this machine: tiny DeepSPIO learns a toy
/// image-to-wavelet-band mapping, and the trained model is written as a safetensors checkpoint.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the tiny DeepSPIO on a toy regression and save a checkpoint (a smoke run of the engine).")
    @Option(help: "Training steps.") var steps = 60
    @Option(help: "Threads.") var threads = 2
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Workspace folder (default $SPIO_WORKSPACE or ./spio-runs).") var workspace: String?
    @OptionGroup var kernelOptions: KernelOptions

    func validate() throws {
        guard steps > 0, threads > 0 else { throw ValidationError("--steps and --threads must be positive") }
    }

    func run() throws {
        try kernelOptions.apply()
        Engine.setThreadCount(threads)
        try WorkspaceOptions.check(workspace)
        let root = URL(fileURLWithPath: WorkspaceOptions.folder(workspace))
        let dir = root.appendingPathComponent("demo")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let config = ModelConfig.preset("tiny")!
        let net = EncoderDecoderNet(config, seed: seed)
        let n = 32, s = config.inputSize
        // Inputs: smooth random images; targets: 2x2 block means of fixed channel mixes (a learnable
        // stand-in for wavelet bands until the View Line simulator exists).
        var rng = SeededGenerator(seed: seed &+ 1)
        let x = Tensor(shape: [n, 2, s, s])
        for i in 0..<x.count { x.data[i] = Float(rng.normal()) }
        let target = Tensor(shape: [n, 4, s / 2, s / 2])
        let mix: [(Float, Float)] = [(1, 1), (1, -1), (0.5, 0), (0, -0.5)]
        for b in 0..<n {
            for j in 0..<4 {
                for y in 0..<(s / 2) {
                    for xx in 0..<(s / 2) {
                        var v: Float = 0
                        for dy in 0..<2 {
                            for dx in 0..<2 {
                                v +=
                                    mix[j].0 * x[b, 0, 2 * y + dy, 2 * xx + dx] + mix[j].1
                                    * x[b, 1, 2 * y + dy, 2 * xx + dx]
                            }
                        }
                        target[b, j, y, xx] = v / 4
                    }
                }
            }
        }
        let adam = Adam(parameters: net.parameters, learningRate: 3e-3)
        let mse = MeanSquaredError()
        let t0 = Date()
        var first = 0.0, last = 0.0
        for step in 1...steps {
            let loss = adam.takeStep(net, x, target, loss: mse.callAsFunction)
            if step == 1 { first = loss }
            last = loss
            if step == 1 || step % 10 == 0 || step == steps {
                progress(
                    String(
                        format: "step %4d/%d  loss %.5f  %.1f steps/s", step, steps, loss,
                        Double(step) / Date().timeIntervalSince(t0)))
            }
        }
        let url = dir.appendingPathComponent("tiny-demo.safetensors")
        try Checkpoint.save(net, config: config.json, optimizer: adam, to: url)
        print(
            String(
                format: "tiny DeepSPIO (%d parameters): loss %.5f -> %.5f in %d steps (%.1f s); checkpoint %@",
                net.parameterCount, first, last, steps, Date().timeIntervalSince(t0), url.path))
    }
}
