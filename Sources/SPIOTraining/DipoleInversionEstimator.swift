import SPIOCoding
import Foundation
import SPIOImageIO
import SPIONetworks
import SPIOPhysics
import SPIOTensor

/// The classical baseline as an estimator (`model.architecture: dipole-inversion`): concentration
/// maps from unscaled two-channel inputs through `SPIOPhysics.DipoleInversion`, with its one
/// parameter (lambda, or the TKD threshold) as tuned on training images.
///
/// Its "checkpoint" is a safetensors file like a network's: the model configuration in the
/// metadata (`config`), the simulation whose physics it inverts (`simulation`: field of view,
/// sequence, particles) and the tuned parameter (`inversion.parameter`, also as a tensor), so
/// evaluations, `spio predict` and released models read it as they read a network.
package final class DipoleInversionEstimator {
    package let model: ModelConfig
    package let inversion: InversionConfig
    package let simulation: SimulationConfig
    /// Lambda (sparse) or the threshold (tkd).
    package let parameter: Double
    let kernel: SlabDipoleKernel
    let stripes: StripeFieldEstimator

    package init(model: ModelConfig, simulation: SimulationConfig, parameter: Double) {
        self.model = model
        inversion = model.inversion ?? InversionConfig()
        self.simulation = simulation
        self.parameter = parameter
        kernel = SlabDipoleKernel(simulation: simulation, slabThicknessMM: inversion.slabThicknessMM)
        var stripes = StripeFieldEstimator(simulation: simulation)
        stripes.consistencyHz = inversion.consistencyHz
        self.stripes = stripes
    }

    /// N x H x W maps (ug/mm^3) of N x 2 x H x W unscaled inputs.
    package func estimate(_ images: Tensor, shouldStop: () -> Bool = { false }) throws -> Tensor {
        try Self.estimate(images, kernel: kernel, stripes: stripes, inversion: inversion, parameters: [parameter])[0]
    }

    /// The maps for each of `parameters` (the tuning tries them on the same fields).
    static func estimate(
        _ images: Tensor, kernel: SlabDipoleKernel, stripes: StripeFieldEstimator, inversion: InversionConfig,
        parameters: [Double]
    ) throws -> [Tensor] {
        let (count, n) = (images.shape[0], images.shape[3])
        precondition(n == kernel.n && images.shape[1] == 2, "DipoleInversion: inputs must be N x 2 x \(kernel.n)^2")
        let plane = n * n
        let maps = parameters.map { _ in Tensor(shape: [count, n, n]) }
        Engine.parallelEach(count) { s in
            let scratch = SlabDipoleKernel.Scratch(padded: kernel.padded)
            let input = Array(UnsafeBufferPointer(start: images.data + s * 2 * plane, count: 2 * plane))
            let fieldHz: [Float], measured: [Float]
            switch inversion.field {
            case .input:
                fieldHz = input[0..<plane].map { $0 * 1000 }
                measured = [Float](repeating: 1, count: plane)
            case .stripes:
                (fieldHz, measured) = stripes.map(stripes.samples(input))
            }
            for (k, value) in parameters.enumerated() {
                let map: [Float]
                switch inversion.method {
                case .tkd:
                    // TKD needs a whole map: unmeasured pixels are taken as zero field.
                    map = DipoleInversion.thresholdedDivision(
                        fieldHz: zip(fieldHz, measured).map { $0 * $1 }, kernel: kernel, threshold: value,
                        scratch: scratch)
                case .sparse:
                    map = DipoleInversion.nonNegativeSparse(
                        fieldHz: fieldHz, weight: measured, kernel: kernel, lambda: value,
                        iterations: inversion.iterations, scratch: scratch)
                }
                (maps[k].data + s * plane).update(from: map, count: plane)
            }
        }
        return maps
    }

    /// Writes the estimator as `url` (safetensors; see the type's documentation).
    package func save(to url: URL, extraMetadata: [String: String] = [:]) throws {
        var meta = extraMetadata
        meta["config"] = model.json
        meta["simulation"] = String(decoding: try JSONEncoder().encode(simulation), as: UTF8.self)
        meta["format"] = "pt"
        meta["inversion.parameter"] = String(parameter)  // exact; the tensor holds it as F32
        let value = Float(parameter)
        let bytes = withUnsafeBytes(of: value.bitPattern.littleEndian) { Data($0) }
        try SafeTensors.write(
            ["inversion.parameter": SafeTensors.Entry(dtype: .f32, shape: [1], bytes: bytes)], metadata: meta, to: url)
    }

    /// Reads what `save` wrote.
    package static func load(_ url: URL, model: ModelConfig) throws -> DipoleInversionEstimator {
        let file = try SafeTensors.read(url)
        guard let json = file.metadata["simulation"],
            let simulation = try? decodeCanonicalJSON(SimulationConfig.self, from: json),
            let parameter = file.metadata["inversion.parameter"].flatMap(Double.init), parameter.isFinite
        else {
            throw FileError(url.path, "is a dipole-inversion model without its simulation or parameter")
        }
        return DipoleInversionEstimator(model: model, simulation: simulation, parameter: parameter)
    }
}

/// "Training" for the classical baseline: each candidate parameter is tried on the first
/// `tuningImages` training images (those with SPIO), the one with the lowest mean NMAE is kept,
/// and its NMAE on the validation images is logged as epoch 1's validation NMAE.
package struct DipoleInversionBackend: TrainingBackend {
    package let name = "dipole-inversion"
    package init() {}

    package func train(_ job: TrainingJob, _ callbacks: TrainingCallbacks) throws -> TrainingResult {
        let start = Date()
        let inversion = job.model.inversion ?? InversionConfig()
        guard let folder = try DatasetShards.folders(job.dataset).first, let manifest = DatasetManifest.read(folder)
        else { throw FileError(job.dataset, "holds no dataset manifest") }
        var simulation = manifest.config
        simulation.noise = NoiseConfig()
        let (all, _) = try TrainingSet(directory: job.dataset, scaling: .none).droppingEmptyTargets()
        let (train, validation) = try Trainer.split(all, validationFraction: job.training.validationFraction)
        let tuning = train.subset(0..<min(inversion.tuningImages, train.count))
        let kernel = SlabDipoleKernel(simulation: simulation, slabThicknessMM: inversion.slabThicknessMM)
        var stripes = StripeFieldEstimator(simulation: simulation)
        stripes.consistencyHz = inversion.consistencyHz
        let candidates = inversion.resolvedCandidates
        callbacks.progress("\(job.name)  tuning \(candidates.count) values on \(tuning.count) training images", 0)
        let maps = try DipoleInversionEstimator.estimate(
            tuning.inputs, kernel: kernel, stripes: stripes, inversion: inversion, parameters: candidates)
        let scores = maps.map {
            Evaluation.meanAndSD(
                Evaluation.nmae(prediction: $0, truth: tuning.concentration)
                    .compactMap { $0 }
            ).mean
        }
        let best = scores.indices.min { scores[$0] < scores[$1] }!
        let tried = zip(candidates, scores).map { String(format: "%g: %.4f", $0, $1) }.joined(separator: ", ")
        callbacks.log(
            "\(job.name): tuning NMAE on \(tuning.count) training images: \(tried); keeping \(candidates[best])")
        let estimator = DipoleInversionEstimator(model: job.model, simulation: simulation, parameter: candidates[best])
        var record = EpochRecord(
            epoch: 1, step: 0, trainLoss: scores[best], validationNMAE: .nan, validationNMAESD: .nan, seconds: 0,
            batchLosses: [])
        if let validation {
            let m = try estimator.estimate(validation.inputs, shouldStop: callbacks.shouldStop)
            (record.validationNMAE, record.validationNMAESD) = Evaluation.meanAndSD(
                Evaluation.nmae(prediction: m, truth: validation.concentration).compactMap { $0 })
        }
        record.seconds = Date().timeIntervalSince(start)
        try callbacks.epochFinished([record])
        try FileManager.default.createDirectory(atPath: job.directory, withIntermediateDirectories: true)
        let model = (job.directory as NSString).appendingPathComponent("model.safetensors")
        try estimator.save(to: URL(fileURLWithPath: model), extraMetadata: ["training": job.training.json])
        return TrainingResult(
            modelPath: model, parameters: 0, history: [record],
            details: ["inversion.tuning": tried, "inversion.parameter": String(candidates[best])])
    }
}
