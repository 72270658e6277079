import SPIOConfig
import ArgumentParser
import Foundation
import SPIOBench
import SPIOKernels
import SPIONetworks
import SPIOTensor
import SPIOPhysics
import SPIOExperiments

/// The `spio` command line.
struct Spio: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spio",
        abstract: "DeepSPIO-Lab: simulate View Line MRI, train DeepSPIO, measure the engine.",
        subcommands: [Run.self, Validate.self, Runs.self, Show.self, Compare.self, Report.self, Audit.self, Verify.self, Simulate.self, Train.self, Predict.self, ModelCommand.self, Bench.self, Demo.self])
}

/// Writes a line to standard error (progress), keeping standard output for results.
func progress(_ line: String) {
    FileHandle.standardError.write((line + "\n").data(using: .utf8)!)
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmarks (use a release build).", subcommands: [EngineCommand.self, SimulateCommand.self, TrainCommand.self])

    struct EngineCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "engine",
            abstract: "Forward+backward time and GFLOP/s per DeepSPIO convolution shape and for the whole network, against sgemm.")
        @Option(help: "Network preset: \(ModelConfig.presetNames.joined(separator: ", ")).") var preset = "small"
        @Option(help: "Batch size.") var batch = 32
        @Option(help: "Threads (engine loops and sgemm blocks).") var threads = 2
        @Option(help: "Timed repetitions per measurement (the median is reported).") var repeats = 5
        @Option(help: "Passes over the whole table, each with its own sgemm reference (medians over rounds are reported).") var rounds = 3
        @Option(help: "Also write the Markdown table to this file.") var out: String?
        @Option(help: "Only the layers whose description contains this text, e.g. 'Conv3x3/2 32->32' (for profiling).") var only: String?
        @OptionGroup var kernelOptions: KernelOptions

        func validate() throws {
            guard ModelConfig.preset(preset) != nil else {
                throw ValidationError("unknown preset '\(preset)'; expected one of \(ModelConfig.presetNames.joined(separator: ", "))")
            }
            guard batch > 0, threads > 0, repeats > 0, rounds > 0 else {
                throw ValidationError("--batch, --threads, --repeats and --rounds must be positive")
            }
        }

        func run() throws {
            #if DEBUG
            progress("warning: this is a debug build; benchmark with `swift build -c release` (make bench).")
            #endif
            try kernelOptions.apply()
            var bench = EngineBench(preset: preset, batch: batch, threads: threads, repeats: repeats, rounds: rounds, log: progress)
            bench.only = only
            let result = bench.run()
            print(result.markdown)
            if let out { try result.markdown.write(toFile: out, atomically: true, encoding: .utf8) }
        }
    }
}

extension Bench {
    struct SimulateCommand: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "simulate", abstract: "Simulated samples per second at 64 x 64 and 256 x 256.")
        @Option(help: "Image sizes, comma separated.") var sizes = "64,256"
        @Option(help: "Samples per timed run at 64 x 64 (an eighth of that at 256).") var samples = 128
        @Option(help: "Threads.") var threads = 2
        @Option(help: "Timed repetitions (the median is reported).") var repeats = 3
        @Option(help: "Also write the Markdown table to this file.") var out: String?

        func run() throws {
            #if DEBUG
            progress("warning: this is a debug build; benchmark with `swift build -c release`.")
            #endif
            let list = sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !list.isEmpty, threads > 0, repeats > 0, samples > 0 else { throw ValidationError("bad --sizes, --threads, --repeats or --samples") }
            let rows = try SimulateBench(sizes: list, samples: samples, threads: threads, repeats: repeats, log: progress).run()
            let md = SimulateBench.markdown(rows, threads: threads)
            print(md)
            if let out { try md.write(toFile: out, atomically: true, encoding: .utf8) }
        }
    }
}

/// `spio simulate`: a dataset from the `simulation` block of a YAML file, as NPY + PNG previews.
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Simulate View Line images from the `simulation` block of a YAML file.",
        discussion: """
        Writes images.npy (N x 2 x H x W; channel 0 the even stripes, 1 the odd ones), concentration.npy \
        (N x H x W, ug Fe/mm^3 in the image plane), field.npy (N x H x W, Hz, with --save-field), manifest.json \
        (configuration, content hash, counts) and PNG previews of the first samples. Sample i depends only on \
        the configuration and i, so any thread count gives the same arrays. See docs/simulation.md for every key.
        """)
    @Argument(help: "YAML file with a `simulation:` block.") var config: String
    @Option(help: "Number of samples.") var count = 16
    @Option(help: "Output folder.") var out: String
    @Flag(help: "Also write the in-plane field map (field.npy).") var saveField = false
    @Option(help: "PNG previews of the first samples.") var previews = 4
    @Option(help: "Threads.") var threads = 2
    @Option(help: "Override the seed of the configuration.") var seed: UInt64?

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive") }
        guard threads > 0 else { throw ValidationError("--threads must be positive") }
    }

    func run() throws {
        var sim = try ConfigFile.load(SimulationConfig.self, from: config, key: "simulation")
        if let seed { sim.seed = seed }
        do { try sim.validate() } catch { throw ValidationError("\(config): \(error)") }
        Engine.setThreadCount(threads)
        let start = Date()
        var last = Date()
        let dataset = try SimulatedDataset.generate(config: sim, count: count, keepField: saveField) { done in
            if Date().timeIntervalSince(last) > 2 || done == count {
                last = Date()
                let rate = Double(done) / max(1e-9, Date().timeIntervalSince(start))
                progress("simulated \(done)/\(count) (\(String(format: "%.1f", rate)) samples/s)")
            }
        }
        try dataset.write(to: out, previews: previews)
        print("wrote \(count) samples (\(sim.imageSize) x \(sim.imageSize)) to \(out); content hash \(SimulatedDataset.contentHash(config: sim, count: count).prefix(16))")
    }
}

// The release build is compiled for Haswell (AVX2 + FMA): say so on an older CPU instead of
// stopping on an illegal instruction. SPIOKernels is built without those flags.
#if !DEBUG
if let why = KernelPolicy.unsupported(.portable) {
    FileHandle.standardError.write("error: \(why)\n".data(using: .utf8)!)
    exit(1)
}
#endif
// Argument errors, help and exit codes go through ArgumentParser; a full disk, a read-only
// workspace or a damaged store get their cause in words instead of SQLite's or Foundation's codes.
do {
    var command = try Spio.parseAsRoot()
    try command.run()
} catch {
    if let text = WorkspaceFault.translated(error) {
        progress("Error: " + text)
        Spio.exit(withError: ExitCode(1))
    }
    Spio.exit(withError: error)
}

/// Until the simulator and studies land, `make quickstart` runs this: tiny DeepSPIO learns a toy
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
        let root = URL(fileURLWithPath: workspace ?? ProcessInfo.processInfo.environment["SPIO_WORKSPACE"] ?? "spio-runs")
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
        for b in 0..<n { for j in 0..<4 { for y in 0..<(s / 2) { for xx in 0..<(s / 2) {
            var v: Float = 0
            for dy in 0..<2 { for dx in 0..<2 { v += mix[j].0 * x[b, 0, 2 * y + dy, 2 * xx + dx] + mix[j].1 * x[b, 1, 2 * y + dy, 2 * xx + dx] } }
            target[b, j, y, xx] = v / 4
        } } } }
        let adam = Adam(parameters: net.parameters, learningRate: 3e-3)
        let mse = MeanSquaredError()
        let t0 = Date()
        var first = 0.0, last = 0.0
        for step in 1...steps {
            net.zeroGrad()
            let (loss, grad) = mse(net(x), target)
            if step == 1 { first = loss }
            last = loss
            _ = net.backward(grad)
            adam.update()
            if step == 1 || step % 10 == 0 || step == steps {
                progress(String(format: "step %4d/%d  loss %.5f  %.1f steps/s", step, steps, loss, Double(step) / Date().timeIntervalSince(t0)))
            }
        }
        let url = dir.appendingPathComponent("tiny-demo.safetensors")
        try Checkpoint.save(net, config: config.json, optimizer: adam, to: url)
        print(String(format: "tiny DeepSPIO (%d parameters): loss %.5f -> %.5f in %d steps (%.1f s); checkpoint %@",
                     net.parameterCount, first, last, steps, Date().timeIntervalSince(t0), url.path))
    }
}
