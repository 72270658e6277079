import ArgumentParser
import Foundation
import SPIOConfig
import SPIOImageIO
import SPIOPlots
import SPIONetworks
import SPIOTensor
import SPIOTraining

/// `--set block.key=value` overrides applied to a preset, through the same `ConfigTree` overrides
/// (and messages) as `spio run`.
struct BlockOverrides {
    private var tree: ConfigTree

    init(_ pairs: [String], allowed: Set<String> = ["model", "training"]) throws {
        tree = try ConfigTree(yaml: "model: {}\ntraining: {}\n", file: "--set")
        for pair in pairs { try tree.applyOverride(pair, blocks: allowed) }
    }

    func modelConfig(preset: String) throws -> ModelConfig {
        guard ModelConfig.preset(preset) != nil else {
            throw ValidationError(
                "unknown preset '\(preset)'; expected one of \(ModelConfig.presetNames.joined(separator: ", "))")
        }
        var t = tree
        if !t.contains("model.preset") { try t.applyOverride("model.preset=\(preset)", blocks: ["model"]) }
        return try t.decode(ModelConfig.self, key: "model")
    }

    func trainingConfig() throws -> TrainingConfig { try tree.decode(TrainingConfig.self, key: "training") }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model on a simulated dataset folder (from `spio simulate`), checkpointing every epoch.",
        discussion: """
            The last validationFraction of the images is held out unless --validation names another folder.
            Running again with the same --out resumes after the last complete epoch.
            Example: spio train --data data/brain --model small --set training.epochs=20 --set \
            training.learningRate=1e-3 --out runs/small
            """)
    @Option(help: "Dataset folder with images.npy and concentration.npy.") var data: String
    @Option(help: "Validation dataset folder (default: hold out part of --data).") var validation: String?
    @Option(help: "Model preset: \(ModelConfig.presetNames.joined(separator: ", ")).") var model = "small"
    @Option(
        name: .customLong("set"),
        help: "Override a model or training key: model.KEY=VALUE or training.KEY=VALUE (repeatable).")
    var overrides: [String] = []
    @Option(help: "Output folder: checkpoints/, history.json, model.safetensors.") var out: String
    @Option(help: "Threads.") var threads = 2
    @OptionGroup var kernelOptions: KernelOptions

    func run() throws {
        try kernelOptions.apply()
        Engine.setThreadCount(threads)
        let sets = try BlockOverrides(overrides)
        let modelConfig = try sets.modelConfig(preset: model)
        let trainingConfig = try sets.trainingConfig()
        let meter = ProgressLine()
        let callbacks = TrainingCallbacks(log: progress, progress: { meter.update($0, fraction: $1) })
        progress("\(modelConfig.architecture.rawValue) \(model), \(trainingConfig.epochs) epochs")
        let result = try trainingConfig.makeBackend(for: modelConfig, threads: threads).train(
            TrainingJob(
                name: model, model: modelConfig, training: trainingConfig, dataset: data,
                validation: validation, directory: out), callbacks)
        meter.finish()
        let history = result.history
        let outURL = URL(fileURLWithPath: out)
        for r in history {
            print(
                String(
                    format: "epoch %3d  step %6d  train loss %.4f  validation NMAE %.4f +- %.4f  (%.1f s)",
                    r.epoch, r.step, r.trainLoss, r.validationNMAE, r.validationNMAESD, r.seconds))
        }
        let enc = JSONEncoder(); enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        try enc.encode(history).write(to: outURL.appendingPathComponent("history.json"))
        try TrainingCurve.write(history, to: outURL.appendingPathComponent("curve").path)
        print("model: \(result.modelPath) (\(result.parameters) parameters)")
    }
}

/// Training loss per step (moving mean of 20 batches) and validation NMAE per epoch:
/// `curve-loss.svg/png` and `curve-validation.svg/png`.
enum TrainingCurve {
    static func write(_ history: [EpochRecord], to base: String) throws {
        let steps = history.flatMap { r in
            r.batchLosses.enumerated().map { (Double(r.step - r.batchLosses.count + $0 + 1), $1) }
        }
        var loss = Chart(xLabel: "Adam step", yLabel: "training loss (moving mean of 20 batches)")
        loss.series = [
            Chart.Series(label: "", x: steps.map(\.0), y: Chart.movingMean(steps.map(\.1), window: 20))
        ]
        loss.logY = true
        try loss.write(to: base + "-loss")
        var val = Chart(xLabel: "epoch", yLabel: "validation NMAE (mean ± sd over images)")
        val.series = [
            Chart.Series(
                label: "", x: history.map { Double($0.epoch) }, y: history.map(\.validationNMAE),
                spread: history.map(\.validationNMAESD), style: .errorLines)
        ]
        try val.write(to: base + "-validation")
    }
}

/// One progress line: redrawn in place on a terminal, a plain line every few seconds otherwise.
final class ProgressLine {
    private let isTerminal = isatty(fileno(stderr)) != 0
    private var last = Date.distantPast
    private var start = Date()
    /// The fraction at the first update of the current run: a resumed run starts part-way, and its
    /// rate is measured from there.
    private var first = 0.0
    /// The fraction of the update before (infinite before any): a study's next run starts again
    /// from a smaller one, and its rate is measured from there, not from the first run's start
    /// (which gave an eta of hours).
    private var previous = Double.infinity

    func update(_ text: String, fraction: Double) {
        let now = Date()
        if fraction < previous { first = fraction; start = now }
        previous = fraction
        guard now.timeIntervalSince(last) >= (isTerminal ? 0.2 : 10) else { return }
        last = now
        let elapsed = now.timeIntervalSince(start), done = fraction - first
        let eta = done > 0 ? elapsed * (1 - fraction) / done : 0
        let line = String(format: "%@  %3.0f%%  eta %@", text, fraction * 100, Self.duration(eta))
        if isTerminal {
            FileHandle.standardError.write(("\r\u{1B}[K" + line).data(using: .utf8)!)
        } else {
            progress(line)
        }
    }

    func finish() { if isTerminal { FileHandle.standardError.write("\n".data(using: .utf8)!) } }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600
            ? String(format: "%dh%02dm", t / 3600, t % 3600 / 60) : String(format: "%dm%02ds", t / 60, t % 60)
    }
}
