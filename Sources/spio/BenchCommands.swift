import SPIOConfig
import ArgumentParser
import Foundation
import SPIOBench
import SPIOKernels
import SPIONetworks
import SPIOTensor
import SPIOPhysics
import SPIOExperiments

/// `spio bench`: the engine per layer, the simulator and training, each against its peers.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Benchmarks (use a release build).",
        subcommands: [EngineCommand.self, SimulateCommand.self, TrainCommand.self])

    struct EngineCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "engine",
            abstract:
                "Forward+backward time and GFLOP/s per DeepSPIO convolution shape and for the whole network, against "
                + "sgemm.",
            discussion:
                "--pass inference times the forward pass in evaluation mode instead (what one-image inference costs, "
                + "with --batch 1), and sums the convolutions' share of the whole network."
        )
        @Option(help: "Network preset: \(ModelConfig.presetNames.joined(separator: ", ")).") var preset = "small"
        @Option(help: "Batch size.") var batch = 32
        @Option(help: "Threads (engine loops and sgemm blocks).") var threads = 2
        @Option(help: "Timed repetitions per measurement (the median is reported).") var repeats = 5
        @Option(
            help: "Passes over the whole table, each with its own sgemm reference (medians over rounds are reported).")
        var rounds = 3
        @Option(help: "Also write the Markdown table to this file.") var out: String?
        @Option(help: "Only the layers whose description contains this text, e.g. 'Conv3x3/2 32->32' (for profiling).")
        var only: String?
        @Option(name: .customLong("input-size"), help: "Image size instead of the preset's (a multiple of 16).")
        var inputSize: Int?
        @Option(help: "What to time: train (forward+backward) or inference (forward, evaluation mode).")
        var pass = "train"
        @OptionGroup var kernelOptions: KernelOptions
        @OptionGroup var pathOption: Conv3x3PathOption

        func validate() throws {
            guard pass == "train" || pass == "inference" else {
                throw ValidationError("--pass '\(pass)': expected train or inference")
            }
            if let inputSize, inputSize < 16 || inputSize % 16 != 0 || inputSize > 2048 {
                throw ValidationError("--input-size must be a multiple of 16 from 16 to 2048, got \(inputSize)")
            }
            guard ModelConfig.preset(preset) != nil else {
                throw ValidationError(
                    "unknown preset '\(preset)'; expected one of \(ModelConfig.presetNames.joined(separator: ", "))")
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
            pathOption.apply()
            var bench = EngineBench(
                preset: preset, batch: batch, threads: threads, repeats: repeats, rounds: rounds, log: progress)
            bench.only = only
            bench.inputSize = inputSize
            bench.inference = pass == "inference"
            let result = bench.run()
            print(result.markdown)
            if let out { try result.markdown.write(toFile: out, atomically: true, encoding: .utf8) }
        }
    }
}

extension Bench {
    struct SimulateCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "simulate", abstract: "Simulated samples per second at 64 x 64 and 256 x 256.")
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
            guard !list.isEmpty, threads > 0, repeats > 0, samples > 0 else {
                throw ValidationError("bad --sizes, --threads, --repeats or --samples")
            }
            let rows = try SimulateBench(
                sizes: list, samples: samples, threads: threads, repeats: repeats, log: progress
            ).run()
            let md = SimulateBench.markdown(rows, threads: threads)
            print(md)
            if let out { try md.write(toFile: out, atomically: true, encoding: .utf8) }
        }
    }
}

extension Bench {
    struct TrainCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "train",
            abstract: "Training samples/s (batch 32), one-image inference latency and peak memory on random data.",
            discussion:
                "bench/peers/run.sh measures the same for PyTorch and Keras in the same run and writes bench/train.md.")
        @Option(help: "Preset.") var preset = "small"
        @Option(name: .customLong("set"), help: "Override a model key: model.KEY=VALUE (repeatable).") var overrides:
            [String] = []
        @Option(help: "Batch size.") var batch = 32
        @Option(help: "Threads.") var threads = 2
        @Option(help: "Training steps per timed run.") var steps = 5
        @Option(help: "Timed runs (the median is reported).") var repeats = 5
        @Flag(help: "Print the result as JSON.") var json = false
        @OptionGroup var kernelOptions: KernelOptions
        @OptionGroup var pathOption: Conv3x3PathOption

        func run() throws {
            #if DEBUG
            progress("warning: this is a debug build; benchmark with `swift build -c release`.")
            #endif
            let kernel = try kernelOptions.apply()
            pathOption.apply()
            let config = try BlockOverrides(overrides, allowed: ["model"]).modelConfig(preset: preset)
            let r = TrainBench(
                config: config, batch: batch, threads: threads, steps: steps, repeats: repeats, log: progress
            ).run()
            if json {
                let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys]
                print(String(decoding: try enc.encode(r), as: UTF8.self))
            } else {
                print("kernels: \(kernel); CPU: \(r.cpu)")
                print(
                    String(
                        format:
                            "%@ %@ (%d parameters), batch %d, %d threads: %.1f training samples/s (median of %d), "
                            + "inference %.2f ms/image, peak RSS %.0f MiB",
                        r.architecture, preset, r.parameters, batch, threads, r.trainSamplesPerSecond, repeats,
                        r.inferenceMilliseconds, r.peakResidentMiB))
                print(
                    String(
                        format:
                            "convolutions: %.3f GFLOP per training sample; at this run's sgemm rate (%.1f GFLOP/s) an "
                            + "engine that lowers them to sgemm tops out at %.1f samples/s",
                        r.convolutionGFLOPPerSample, r.sgemmGFLOPS, r.sgemmCeilingSamplesPerSecond))
            }
        }
    }
}

/// `--conv3x3`: the path of stride-1 3 x 3 convolutions in a benchmark (the measured rule by default).
struct Conv3x3PathOption: ParsableArguments {
    @Option(
        name: .customLong("conv3x3"),
        help: """
            Stride-1 3x3 convolutions: measured (the shape rule every run uses), im2col, direct (where the \
            shape allows it), f2x2 or f4x4 (Winograd).
            """)
    var path = "measured"

    func validate() throws {
        guard parsed != nil else {
            throw ValidationError("--conv3x3 '\(path)': expected measured, im2col, direct, f2x2 or f4x4")
        }
    }

    private var parsed: Conv3x3Path? {
        switch path {
        case "measured": return .measured
        case "im2col": return .im2col
        case "direct": return .direct
        case "f2x2": return .winograd(.f2x2)
        case "f4x4": return .winograd(.f4x4)
        default: return nil
        }
    }

    func apply() { conv3x3Path = parsed ?? .measured }
}
