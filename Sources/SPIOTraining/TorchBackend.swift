import SPIOCoding
import Foundation
import SPIONetworks
import SPIOProcess

/// PyTorch as a training backend (`training.backend: torch`, docs/gpu.md): `python3 -m spio_torch
/// train JOB.json` (the package in `python/spio_torch`) in a child process, or `torch.distributed.run`
/// with `training.processes` > 1. It reads the same dataset folders, starts from the weights the
/// engine initialises for the seed, draws the same batches, minimises the same loss with the same
/// Adam, and writes the engine's epoch folders and `model.safetensors`; this side streams its
/// progress and epochs to the runner and checks that the final model loads into the engine.
package struct TorchBackend: TrainingBackend {
    package let name = "torch"
    /// Threads of PyTorch's CPU operations.
    package var threads: Int
    /// The Python interpreter: `SPIO_PYTHON`, or python3 on PATH.
    package var python = ProcessInfo.processInfo.environment["SPIO_PYTHON"] ?? "python3"

    package init(threads: Int) { self.threads = threads }

    /// The torch backend could not train.
    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    /// The folder holding `spio_torch/`: `SPIO_TORCH_PATH`, else `python/` of the checkout that
    /// holds this executable (`.build/<config>/spio`) or the working directory.
    package static func packageFolder() -> String? {
        let fm = FileManager.default
        if let given = ProcessInfo.processInfo.environment["SPIO_TORCH_PATH"] { return given }
        // The running executable itself (argv[0] may be a bare name found on PATH).
        let executable =
            (try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")).map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let starts = [executable.deletingLastPathComponent(), URL(fileURLWithPath: fm.currentDirectoryPath)]
        for start in starts {
            var dir = start
            for _ in 0..<8 {
                let candidate = dir.appendingPathComponent("python")
                if fm.fileExists(atPath: candidate.appendingPathComponent("spio_torch/__init__.py").path) {
                    return candidate.path
                }
                dir.deleteLastPathComponent()
            }
        }
        return nil
    }

    /// One line of the child's event stream (python/spio_torch/train.py).
    private struct Event: Decodable {
        var event: String
        var text: String?
        var epoch: Int?, epochs: Int?, batch: Int?, batches: Int?, step: Int?
        var loss: Double?, samplesPerSecond: Double?
        var history: [EpochRecord]?
        var model: String?, parameters: Int?, device: String?
        var versions: [String: String]?
        var what: String?, lastGoodCheckpoint: String?
    }

    package func train(_ job: TrainingJob, _ callbacks: TrainingCallbacks) throws -> TrainingResult {
        guard let folder = Self.packageFolder() else {
            throw Failure(
                description: "the torch backend needs python/spio_torch of the DeepSPIO-Lab checkout; set "
                    + "SPIO_TORCH_PATH to the folder that holds spio_torch/")
        }
        guard job.model.inputScaling == .percentile99 else {
            throw Failure(
                description: "the torch backend scales every input by its 99th percentile; model.inputScaling "
                    + "'\(job.model.inputScaling.rawValue)' trains on the swift backend only")
        }
        let fm = FileManager.default
        try fm.createDirectory(atPath: job.directory, withIntermediateDirectories: true)
        let checkpoints = Trainer.checkpointDirectory(ofRun: job.directory)
        if let start = job.continueFrom, Trainer.latestCheckpoint(in: checkpoints) == nil {
            try Trainer.seed(checkpoints, from: start)
            callbacks.log("continuing from \(start.owner.isEmpty ? start.folder.path : start.owner)")
        }
        // Both backends start from the engine's initial weights for the seed.
        let initial = (job.directory as NSString).appendingPathComponent("initial.safetensors")
        if Trainer.latestCheckpoint(in: checkpoints) == nil {
            try Checkpoint.save(
                EncoderDecoderNet(job.model, seed: job.training.seed), config: job.model.json,
                to: URL(fileURLWithPath: initial))
        }
        let jobPath = (job.directory as NSString).appendingPathComponent("torch-job.json")
        let spec: [String: Any] = [
            "name": job.name, "dataset": job.dataset, "validation": job.validation ?? NSNull(),
            "directory": job.directory, "initialWeights": initial, "threads": threads,
            "device": job.training.device,
            "model": try JSONSerialization.jsonObject(with: Data(job.model.json.utf8)),
            "training": try JSONSerialization.jsonObject(with: Data(job.training.json.utf8)),
            "modelJSON": job.model.json, "trainingJSON": job.training.json,
            "identityPrefix": Trainer.identityPrefix(model: job.model, training: job.training)
        ]
        try JSONSerialization.data(withJSONObject: spec, options: [.sortedKeys, .prettyPrinted]).write(
            to: URL(fileURLWithPath: jobPath), options: .atomic)

        let launch =
            job.training.processes > 1
            ? ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", String(job.training.processes)]
            : []
        var done: Event?, ending: Event?, history: [EpochRecord] = []
        let pythonPath = [folder, ProcessInfo.processInfo.environment["PYTHONPATH"]].compactMap { $0 }
        let end: Subprocess.Ending
        do {
            end = try Subprocess.stream(
                python, launch + ["-m", "spio_torch", "train", jobPath],
                environment: ["PYTHONPATH": pythonPath.joined(separator: ":"), "PYTHONUNBUFFERED": "1"],
                stop: callbacks.shouldStop, errorLine: { callbacks.log("torch: " + $0) }
            ) { line in
                guard let e = try? decodeCanonicalJSON(Event.self, from: line) else {
                    callbacks.log("torch: " + line)
                    return
                }
                switch e.event {
                case "log": callbacks.log(e.text ?? "")
                case "progress":
                    let (epoch, epochs, batch, batches) = (e.epoch ?? 0, e.epochs ?? 1, e.batch ?? 0, e.batches ?? 1)
                    callbacks.progress(
                        String(
                            format: "%@  epoch %d/%d  batch %d/%d  loss %.4f  %.1f samples/s (torch)", job.name,
                            epoch, epochs, batch, batches, e.loss ?? .nan, e.samplesPerSecond ?? 0),
                        (Double(epoch - 1) + Double(batch) / Double(max(batches, 1))) / Double(max(epochs, 1)))
                case "epoch":
                    history = e.history ?? []
                    try callbacks.epochFinished(history)
                case "done": done = e
                default: ending = e
                }
            }
        } catch let missing as Subprocess.NotFound {
            throw Failure(
                description: "the torch backend runs \(missing.program), which is not on PATH (set SPIO_PYTHON)")
        }
        switch (end.status, ending?.event) {
        case (0, _): break
        case (3, "interrupted"):
            throw TrainingError.interrupted(
                epoch: ending?.epoch ?? 0, step: ending?.step ?? 0, lastGoodCheckpoint: ending?.lastGoodCheckpoint)
        case (4, "nonFinite"):
            throw TrainingError.nonFinite(
                epoch: ending?.epoch ?? 0, step: ending?.step ?? 0, what: ending?.what ?? "a value",
                lastGoodCheckpoint: ending?.lastGoodCheckpoint)
        default:
            let text = end.errorTail.suffix(12).joined(separator: "\n")
            let hint =
                text.contains("No module named 'torch'")
                ? "\nPyTorch is not installed for \(python): pip install torch (docs/gpu.md)" : ""
            throw Failure(description: "the torch backend exited with status \(end.status):\n\(text)\(hint)")
        }
        guard let done, let model = done.model, let parameters = done.parameters else {
            throw Failure(description: "the torch backend exited without reporting its model")
        }
        // Evaluations, spio predict and audits load it with the engine's strict Checkpoint.load.
        var details = ["training.torch.device": done.device ?? "unknown"]
        for (k, v) in done.versions ?? [:] { details["training.torch.versions.\(k)"] = v }
        return TrainingResult(modelPath: model, parameters: parameters, history: history, details: details)
    }
}

extension TrainingConfig {
    /// The backend `backend` names, with `threads` for the torch backend's CPU operations.
    package func makeBackend(threads: Int) -> TrainingBackend {
        switch backend {
        case .swift: EngineBackend()
        case .torch: TorchBackend(threads: threads)
        }
    }

    /// The backend for `model`: the classical baseline tunes instead of training (`backend` is
    /// for networks; `StudyPlan` refuses torch with it).
    package func makeBackend(for model: ModelConfig, threads: Int) -> TrainingBackend {
        if model.architecture == .dipoleInversion { return DipoleInversionBackend() }
        return makeBackend(threads: threads)
    }
}
