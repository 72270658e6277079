import ArgumentParser
import Foundation
import SPIOBench
import SPIOExperiments
import SPIOKernels
import SPIONetworks
import SPIOTensor
import SPIOTraining

struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model", abstract: "Inspect network configurations.",
        subcommands: [Summary.self])

    struct Summary: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Layers with output shapes, parameter counts and forward FLOPs (one image), and the totals.",
            discussion: "Example: spio model summary small --set model.architecture=unet")
        @Argument(help: "Preset: \(ModelConfig.presetNames.joined(separator: ", ")).") var preset: String
        @Option(
            name: .customLong("set"), help: "Override a model key: model.KEY=VALUE (repeatable), e.g. model.head=image."
        )
        var overrides: [String] = []

        func run() throws {
            let config = try BlockOverrides(overrides, allowed: ["model"]).modelConfig(preset: preset)
            guard config.architecture != .dipoleInversion else {
                throw ValidationError("dipole-inversion is the classical baseline: no network, no layers to list")
            }
            let net = EncoderDecoderNet(config)
            let summary = try ModelSummary(net)
            print("\(config.architecture.rawValue) \(preset): \(config.json)\n")
            print(summary.text)
            print(
                String(
                    format: "\n%d parameters, %.3f GFLOP per image forward (convolutions)", summary.totalParameters,
                    Double(summary.totalFLOPs) / 1e9))
        }
    }
}

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The released models (models/, or $SPIO_MODELS): name, network, held-out NMAE.",
        discussion: """
            A released model is used by name: spio predict --model NAME IMAGES --out DIR. Each has a model card \
            (models/NAME/README.md): its training data and recipe, test metrics with intervals, the SHA-256 of its \
            weights (checked before every use), how to reproduce it, and what it is not validated for.
            """,
        subcommands: [List.self, Release.self], defaultSubcommand: List.self)

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the released models.")
        func run() throws {
            let models = try ReleasedModel.all()
            if models.isEmpty { print("no released models in \(ReleasedModel.folder)/") }
            for m in models { print(m.line) }
        }
    }

    struct Release: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Release a finished training run of the store as models/NAME (weights, model.json, card).")
        @Argument(help: "The training run's id (spio runs --kind train).") var id: Int64
        @Option(help: "The model's name.") var name: String
        @OptionGroup var workspace: WorkspaceOptions
        func run() throws {
            try ReleasedModel.release(store: try workspace.readingStore(), trainingRun: id, name: name)
            print((ReleasedModel.folder as NSString).appendingPathComponent(name))
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
    @Option(help: "A released model's name (spio models) or a checkpoint (.safetensors) written by `spio train`.")
    var model: String
    @Argument(help: "Input images.") var inputs: [String]
    @Option(help: "Output folder.") var out: String
    @Option(help: "Threads.") var threads = 2
    @OptionGroup var kernelOptions: KernelOptions

    func validate() throws { guard !inputs.isEmpty else { throw ValidationError("give at least one input file") } }

    func run() throws {
        try kernelOptions.apply()
        Engine.setThreadCount(threads)
        let predictor = try Predictor(checkpoint: try ReleasedModel.checkpoint(model))
        for path in try predictor.run(inputs: inputs, directory: out) { print(path) }
    }
}
