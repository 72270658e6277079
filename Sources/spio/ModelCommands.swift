import ArgumentParser
import Foundation
import SPIOBench
import SPIOKernels
import SPIONetworks
import SPIOTensor
import SPIOTraining

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "model", abstract: "Inspect network configurations.",
                                                    subcommands: [Summary.self])

    struct Summary: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Layers with output shapes, parameter counts and forward FLOPs (one image), and the totals.",
            discussion: "Example: spio model summary small --set model.architecture=unet")
        @Argument(help: "Preset: \(ModelConfig.presetNames.joined(separator: ", ")).") var preset: String
        @Option(name: .customLong("set"), help: "Override a model key: model.KEY=VALUE (repeatable), e.g. model.head=image.")
        var overrides: [String] = []

        func run() throws {
            let config = try BlockOverrides(overrides, allowed: ["model"]).modelConfig(preset: preset)
            let net = EncoderDecoderNet(config)
            let summary = try ModelSummary(net)
            print("\(config.architecture.rawValue) \(preset): \(config.json)\n")
            print(summary.text)
            print(String(format: "\n%d parameters, %.3f GFLOP per image forward (convolutions)", summary.totalParameters, Double(summary.totalFLOPs) / 1e9))
        }
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Concentration maps from View Line images with a trained checkpoint.",
        discussion: """
        Inputs: .npy (2 x H x W or N x 2 x H x W), .nii/.nii.gz (nx = W, ny = H, nz = 2) or .png (red = channel 0,
        green = channel 1), at the model's input size. Writes <name>.npy (ug/mm^3) and <name>.png per input.
        """)
    @Option(help: "Checkpoint (.safetensors) written by `spio train`.") var model: String
    @Argument(help: "Input images.") var inputs: [String]
    @Option(help: "Output folder.") var out: String
    @Option(help: "Threads.") var threads = 2
    @OptionGroup var kernelOptions: KernelOptions

    func validate() throws { guard !inputs.isEmpty else { throw ValidationError("give at least one input file") } }

    func run() throws {
        try kernelOptions.apply()
        Engine.setThreadCount(threads)
        let predictor = try Predictor(checkpoint: model)
        for path in try predictor.run(inputs: inputs, directory: out) { print(path) }
    }
}

extension Bench {
    struct TrainCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "train",
            abstract: "Training samples/s (batch 32), one-image inference latency and peak memory on random data.",
            discussion: "bench/peers/run.sh measures the same for PyTorch and Keras in the same run and writes bench/train.md.")
        @Option(help: "Preset.") var preset = "small"
        @Option(name: .customLong("set"), help: "Override a model key: model.KEY=VALUE (repeatable).") var overrides: [String] = []
        @Option(help: "Batch size.") var batch = 32
        @Option(help: "Threads.") var threads = 2
        @Option(help: "Training steps per timed run.") var steps = 5
        @Option(help: "Timed runs (the median is reported).") var repeats = 5
        @Flag(help: "Print the result as JSON.") var json = false
        @OptionGroup var kernelOptions: KernelOptions

        func run() throws {
            #if DEBUG
            progress("warning: this is a debug build; benchmark with `swift build -c release`.")
            #endif
            let kernel = try kernelOptions.apply()
            let config = try BlockOverrides(overrides, allowed: ["model"]).modelConfig(preset: preset)
            let r = TrainBench(config: config, batch: batch, threads: threads, steps: steps, repeats: repeats, log: progress).run()
            if json {
                let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
                print(String(decoding: try enc.encode(r), as: UTF8.self))
            } else {
                print("kernels: \(kernel); CPU: \(r.cpu)")
                print(String(format: "%@ %@ (%d parameters), batch %d, %d threads: %.1f training samples/s (median of %d), inference %.2f ms/image, peak RSS %.0f MiB",
                             r.architecture, preset, r.parameters, batch, threads, r.trainSamplesPerSecond, repeats, r.inferenceMilliseconds, r.peakResidentMiB))
                print(String(format: "convolutions: %.3f GFLOP per training sample; at this run's sgemm rate (%.1f GFLOP/s) an engine that lowers them to sgemm tops out at %.1f samples/s",
                             r.convolutionGFLOPPerSample, r.sgemmGFLOPS, r.sgemmCeilingSamplesPerSecond))
            }
        }
    }
}
