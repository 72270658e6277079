import Foundation
import SPIOImageIO
import SPIOPlots
import SPIONetworks
import SPIOTensor

/// A trained model loaded from a checkpoint, turning View Line images into concentration maps.
///
/// Inputs (2 channels, H = W = the model's input size; no resampling):
/// - NPY: 2 x H x W or N x 2 x H x W (float or integer types);
/// - NIfTI (.nii, .nii.gz): nx = W, ny = H, nz = 2 (channel 0 = even stripes, as `spio simulate` writes);
/// - PNG: red = channel 0, green = channel 1 (blue is ignored).
package final class Predictor {
    package let config: ModelConfig
    /// The network, or nil for the classical baseline (`inversion`).
    package let model: EncoderDecoderNet?
    /// The classical dipole inversion, for a checkpoint of architecture dipole-inversion.
    package let inversion: DipoleInversionEstimator?
    /// The checkpoint file the model was loaded from.
    package let checkpointPath: String

    package init(checkpoint: String) throws {
        checkpointPath = checkpoint
        let url = URL(fileURLWithPath: checkpoint)
        guard let json = try Checkpoint.config(at: url) else {
            throw FileError(checkpoint, "holds no model configuration in its metadata (not a DeepSPIO-Lab checkpoint?)")
        }
        let config: ModelConfig
        do { config = try ModelConfig.fromJSON(json) } catch {
            throw FileError(checkpoint, "its metadata 'config' is not a model configuration: \(error)")
        }
        self.config = config
        if config.architecture == .dipoleInversion {
            model = nil
            inversion = try DipoleInversionEstimator.load(url, model: config)
        } else {
            let net = EncoderDecoderNet(config)
            try Checkpoint.load(net, from: url)
            net.setTraining(false)
            model = net; inversion = nil
        }
    }

    /// How inputs are scaled for this model: the inversion reads intensities and fields as they are.
    var scaling: ModelConfig.InputScaling { inversion == nil ? config.inputScaling : .none }

    /// Concentration maps of scaled inputs.
    private func maps(_ inputs: Tensor, shouldStop: () -> Bool) throws -> Tensor {
        if let inversion { return try inversion.estimate(inputs, shouldStop: shouldStop) }
        return try Evaluation.predict(model!, inputs: inputs, shouldStop: shouldStop)
    }

    /// Reads one input file as N x 2 x H x W, unscaled.
    package func readInput(_ path: String) throws -> Tensor {
        try Self.readInput(path, channels: config.inputChannels, size: config.inputSize)
    }

    /// Reads one input file for a model of `channels` x `size` x `size` inputs (`spio validate`
    /// checks a study's file sets with it before any training).
    package static func readInput(_ path: String, channels: Int, size: Int) throws -> Tensor {
        var isFolder: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
            throw FileError(path, "is a folder; a file set lists image files (.npy, .nii, .nii.gz or .png)")
        }
        let lower = path.lowercased()
        let t: Tensor
        if lower.hasSuffix(".npy") {
            let a = try NPYArray.read(path)
            let shape = a.shape.count == 3 ? [1] + a.shape : a.shape
            t = Tensor(shape: shape, values: a.values)
        } else if lower.hasSuffix(".nii") || lower.hasSuffix(".nii.gz") {
            let v = try NIfTIVolume.read(path)
            t = Tensor(shape: [1, v.nz, v.ny, v.nx], values: v.values)
        } else if lower.hasSuffix(".png") {
            let img = try RGBImage.readPNG(path)
            t = Tensor(shape: [1, 2, img.height, img.width])
            for p in 0..<(img.width * img.height) {
                t.data[p] = Float(img.pixels[3 * p]) / 255
                t.data[img.width * img.height + p] = Float(img.pixels[3 * p + 1]) / 255
            }
        } else {
            throw FileError(path, "unsupported input; expected .npy, .nii, .nii.gz or .png")
        }
        guard t.shape.count == 4, t.shape[1] == channels, t.shape[2] == size, t.shape[3] == size else {
            throw FileError(
                path,
                "has shape \(t.shape.dropFirst().map(String.init).joined(separator: " x ")) per image; the model "
                    + "expects \(channels) x \(size) x \(size)"
            )
        }
        return t
    }

    /// Concentration maps (N x H x W, ug/mm^3) of unscaled N x 2 x H x W images.
    package func predict(_ images: Tensor) throws -> Tensor { try evaluate(unscaled: images, truth: nil).maps }

    /// The one inference route: scales the images, predicts, and keeps what an evaluation reports.
    package func evaluate(_ source: TestImageSource, shouldStop: () -> Bool = { false }) throws -> EvaluationResult {
        switch source {
        case let .dataset(directory):
            let set = try TrainingSet(directory: directory, scaling: scaling)
            return EvaluationResult(
                inputs: set.inputs, truth: set.concentration, maps: try maps(set.inputs, shouldStop: shouldStop))
        case let .files(paths):
            return try evaluate(
                unscaled: Tensor.concatenate(try paths.map(readFiniteInput)), truth: nil, shouldStop: shouldStop)
        }
    }

    private func evaluate(
        unscaled images: Tensor, truth: Tensor?, shouldStop: () -> Bool = { false }
    ) throws -> EvaluationResult {
        let x = images.copy()
        InputScaling.apply(x, scaling)
        return EvaluationResult(inputs: x, truth: truth, maps: try maps(x, shouldStop: shouldStop))
    }

    /// `readInput`, refusing non-finite values (a View Line image is finite; NaN would spread
    /// through every map of the batch).
    package func readFiniteInput(_ path: String) throws -> Tensor {
        try Self.readFiniteInput(path, channels: config.inputChannels, size: config.inputSize)
    }

    /// `readInput(_:channels:size:)`, refusing non-finite values.
    package static func readFiniteInput(_ path: String, channels: Int, size: Int) throws -> Tensor {
        let images = try readInput(path, channels: channels, size: size)
        if let bad = images.array.firstIndex(where: { !$0.isFinite }) {
            throw FileError(
                path, "holds a non-finite value (\(images.data[bad])) at element \(bad); View Line images are finite")
        }
        return images
    }

    /// Predicts every input and writes `<stem>.npy` (H x W, or N x H x W) and `<stem>.png` (viridis
    /// with a colour bar) into `directory`. Returns the written paths.
    package func run(inputs: [String], directory: String) throws -> [String] {
        // Every output name first, so that an output landing on an input (or on the checkpoint) is
        // refused before anything is written.
        var stems = Set<String>()
        var outputs: [(input: String, npy: String, png: String)] = []
        for path in inputs {
            var stem = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
            if stem.hasSuffix(".nii") { stem = (stem as NSString).deletingPathExtension }
            while stems.contains(stem) { stem += "_" }
            stems.insert(stem)
            outputs.append(
                (
                    path, (directory as NSString).appendingPathComponent(stem + ".npy"),
                    (directory as NSString).appendingPathComponent(stem + ".png")
                ))
        }
        let protected = Set((inputs + [checkpointPath]).map(Self.resolved))
        for o in outputs {
            for out in [o.npy, o.png] where protected.contains(Self.resolved(out)) {
                throw FileError(
                    out,
                    "is an input of this prediction and would be overwritten; choose another output folder (nothing "
                        + "was written)"
                )
            }
        }
        // Only files an earlier prediction by this model wrote here may be replaced: never the
        // user's own scan.npy beside scan.nii, nor another model's maps.
        let manifest = OutputManifest(
            directory: directory, name: ".predict-files", owner: "spio predict with \(Self.resolved(checkpointPath))")
        let names = outputs.flatMap { [$0.npy, $0.png] }.map { ($0 as NSString).lastPathComponent }
        try manifest.checkWritable(names)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var written: [String] = []
        for o in outputs {
            let maps = try predict(try readFiniteInput(o.input))
            let mapValues = maps.array
            if mapValues.contains(where: { !$0.isFinite }) {
                throw FileError(
                    checkpointPath,
                    "gives non-finite concentrations for \(o.input): the checkpoint's weights are not finite or "
                        + "overflow"
                )
            }
            let (n, size) = (maps.shape[0], maps.shape[1])
            try NPYArray(shape: n == 1 ? [size, size] : maps.shape, values: mapValues).write(to: o.npy)
            let panels = (0..<min(n, 8)).map { s in
                ImageGrid.Panel(
                    maps.values((s * size * size)..<((s + 1) * size * size)), size: size,
                    title: n == 1 ? "estimated concentration" : "image \(s)", colourMap: .viridis, unit: "µg/mm^3")
            }
            try ImageGrid(row: panels).writePNG(to: o.png)
            written += [o.npy, o.png]
            try manifest.record(written.map { ($0 as NSString).lastPathComponent }, replacing: false)
        }
        return written
    }

    /// A path with `.`, `..` and symbolic links resolved, for comparing files.
    static func resolved(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }
}
