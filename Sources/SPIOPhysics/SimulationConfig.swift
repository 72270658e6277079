import SPIOCoding
import Foundation

/// The `simulation` block of an experiment file: everything that determines a simulated dataset.
/// Every field has a default (forward-model.md); unknown keys are errors.
package struct SimulationConfig: Codable, Equatable, Sendable {
    /// Image matrix (square), pixels per side.
    package var imageSize = 64
    package var fovMM = 50.0
    /// Dataset seed: sample i uses the generator stream (seed, i).
    package var seed: UInt64 = 1
    package var anatomy = AnatomyConfig()
    package var scene = SceneConfig()
    package var sequence = ViewLineSequence()
    package var field = FieldConfig()
    package var noise = NoiseConfig()
    /// What the network is given: the View Line images (nil, the default) or, as an information
    /// control, the true in-plane field map. Written only when set, so every other dataset keeps
    /// its hash.
    package var input: SimulatedInput?

    package init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case imageSize, fovMM, seed, anatomy, scene, sequence, field, noise, input
    }

    package init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&imageSize, .imageSize); try c.update(&fovMM, .fovMM)
        try c.update(&seed, .seed)
        try c.update(&anatomy, .anatomy); try c.update(&scene, .scene)
        try c.update(&sequence, .sequence); try c.update(&field, .field)
        try c.update(&noise, .noise)
        if let i = try c.decodeIfPresent(SimulatedInput.self, forKey: .input), i != .viewLine { input = i }
    }

    /// Range and consistency checks beyond types.
    package func validate() throws {
        guard imageSize >= 8 && imageSize <= 1024 && imageSize % 2 == 0 else {
            throw SimulationError.invalid("imageSize must be even, 8 to 1024 (got \(imageSize))")
        }
        guard fovMM >= 1 && fovMM <= 1000 else {
            throw SimulationError.invalid("fovMM must be 1 to 1000 mm (got \(fovMM))")
        }
        try sequence.validate(); try field.validate(); try scene.validate()
    }
}

/// The two input channels of a simulated sample.
package enum SimulatedInput: String, Codable, CaseIterable, Sendable {
    /// The View Line images: even and odd stripes, distorted by the field (the paper's input).
    case viewLine
    /// The true field map of the slice in kHz, in both channels (so the network is the very one
    /// trained on images), noise-free and never wrapped: what a perfect field measurement would
    /// give. An information control (`model.inputScaling: none` keeps its amplitude), not a
    /// sequence.
    case field
}

/// Sources and the field grid.
package struct FieldConfig: Codable, Equatable, Sendable {
    package var b0Tesla = 7.0
    /// Saturation magnetisation of the particles per kg of iron (A m^2 / kg Fe).
    package var saturationMagnetisationAm2PerKg = 100.0
    /// Zero padding: padded size over grid size, every axis.
    package var paddingFactor = 2
    /// Field grid: the image matrix capped at this many voxels per axis.
    package var maxMatrix = 128
    /// Voxels on a shape's boundary are sub-sampled this many times per axis.
    package var partialVolumeSubsamples = 4
    /// Ignore all fields (imaging tests).
    package var enabled = true

    package init() {}
    enum CodingKeys: String, CodingKey, CaseIterable {
        case b0Tesla, saturationMagnetisationAm2PerKg, paddingFactor, maxMatrix, partialVolumeSubsamples, enabled
    }
    package init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&b0Tesla, .b0Tesla)
        try c.update(&saturationMagnetisationAm2PerKg, .saturationMagnetisationAm2PerKg)
        try c.update(&paddingFactor, .paddingFactor); try c.update(&maxMatrix, .maxMatrix)
        try c.update(&partialVolumeSubsamples, .partialVolumeSubsamples)
        try c.update(&enabled, .enabled)
    }
    func validate() throws {
        guard b0Tesla >= 0.1 && b0Tesla <= 20 else {
            throw SimulationError.invalid("field.b0Tesla must be 0.1 to 20 T (got \(b0Tesla))")
        }
        guard saturationMagnetisationAm2PerKg > 0 && saturationMagnetisationAm2PerKg <= 1000 else {
            throw SimulationError.invalid("field.saturationMagnetisationAm2PerKg must lie in (0, 1000]")
        }
        guard paddingFactor >= 1 && paddingFactor <= 4 else {
            throw SimulationError.invalid("field.paddingFactor must be 1 to 4")
        }
        guard maxMatrix >= 16 && maxMatrix <= 512 else {
            throw SimulationError.invalid("field.maxMatrix must be 16 to 512")
        }
        guard partialVolumeSubsamples >= 2 && partialVolumeSubsamples <= 16 else {
            throw SimulationError.invalid("field.partialVolumeSubsamples must be 2 to 16")
        }
    }
}

/// Complex Gaussian noise at an SNR in dB; `snrDB: inf` (or `.inf`, `none`) means none. Training
/// sets can instead draw each sample's SNR uniformly from `snrRangeDB: [lowest, highest]`.
package struct NoiseConfig: Codable, Equatable, Sendable {
    package var snrDB = Double.infinity
    /// Each sample's SNR drawn uniformly from [lowest, highest] dB (noise at many levels, as a
    /// scanner's images have it); nil: `snrDB` for every sample.
    package var snrRangeDB: [Double]? = nil
    package init() {}
    package init(snrDB: Double) { self.snrDB = snrDB }
    enum CodingKeys: String, CodingKey, CaseIterable { case snrDB, snrRangeDB }

    /// Whether the images get noise.
    package var isNoisy: Bool { snrDB.isFinite || snrRangeDB != nil }

    package init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        snrDB = try Self.decodeSNR(c)
        if let r = try c.decodeIfPresent([Double].self, forKey: .snrRangeDB) {
            if let problem = Self.rangeProblem(r) {
                throw DecodingError.dataCorruptedError(forKey: .snrRangeDB, in: c, debugDescription: problem)
            }
            guard !snrDB.isFinite else {
                throw DecodingError.dataCorruptedError(
                    forKey: .snrRangeDB, in: c, debugDescription: "set snrDB or snrRangeDB, not both")
            }
            snrRangeDB = r
        }
    }

    /// Why `range` is not an SNR range ([lowest, highest] dB), or nil.
    package static func rangeProblem(_ range: [Double]) -> String? {
        guard range.count == 2, range[0] <= range[1], range.allSatisfy({ (-40...200).contains($0) }) else {
            return "expected [lowest, highest] dB, each -40 to 200, lowest first; got \(range)"
        }
        return nil
    }

    private static func decodeSNR(_ c: KeyedDecodingContainer<CodingKeys>) throws -> Double {
        if let v = try? c.decodeIfPresent(Double.self, forKey: .snrDB) {
            guard v == .infinity || (-40...200).contains(v) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .snrDB, in: c, debugDescription: "expected -40 to 200 dB, or inf for no noise, got \(v)")
            }
            return v
        }
        if let s = try c.decodeIfPresent(String.self, forKey: .snrDB) {
            guard ["inf", "none", "off"].contains(s.lowercased()) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .snrDB, in: c, debugDescription: "expected a number of dB or inf, got '\(s)'")
            }
        }
        return .infinity
    }

    package func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        if snrDB.isFinite { try c.encode(snrDB, forKey: .snrDB) } else { try c.encode("inf", forKey: .snrDB) }
        // Written only when set: the configurations without it keep their hashes.
        try c.encodeIfPresent(snrRangeDB, forKey: .snrRangeDB)
    }
}

/// Which proton-density images the stripes are drawn on.
package struct AnatomyConfig: Codable, Equatable, Sendable {
    package static let kinds = ["procedural-brain", "procedural-breast", "agar", "uniform", "file"]
    package var kind = "procedural-brain"
    /// For `file`: a .nii, .nii.gz or .npy file, or a folder of them.
    package var path: String?
    package var sliceFraction = 0.5
    /// For `file`: the slices to draw from as fractions of the third axis, [from, to) with
    /// 0 <= from < to <= 1, e.g. [0.3, 0.6] to train and [0.65, 0.8] to test on slabs that share no
    /// slice. Replaces `sliceFraction` (the central fraction) when given.
    package var slab: [Double]?
    package var agarRadiusMM = 20.0
    package var bottleWallMM = 0.5
    /// For `file`: the kind to simulate instead when `path` does not exist on this machine (a study
    /// that uses a real volume where it is installed, e.g. Debian's mricron-data, and the
    /// procedural brain elsewhere). The plan resolves it before hashing, so the runs are what ran,
    /// and the report says which one it was.
    package var fallback: String?
    package init() {}
    package init(kind: String) { self.kind = kind }
    enum CodingKeys: String, CodingKey, CaseIterable {
        case kind, path, sliceFraction, slab, agarRadiusMM, bottleWallMM, fallback
    }

    /// This anatomy as it will run here: a `file` whose path is missing becomes its `fallback`.
    package var resolved: AnatomyConfig {
        guard kind == "file", let fallback, let path, !FileManager.default.fileExists(atPath: path) else {
            return self
        }
        var a = AnatomyConfig(kind: fallback)
        (a.agarRadiusMM, a.bottleWallMM) = (agarRadiusMM, bottleWallMM)
        return a
    }

    // Written only when set, so configurations without a slab keep their hashes.
    package func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind); try c.encodeIfPresent(path, forKey: .path)
        try c.encode(sliceFraction, forKey: .sliceFraction); try c.encodeIfPresent(slab, forKey: .slab)
        try c.encode(agarRadiusMM, forKey: .agarRadiusMM); try c.encode(bottleWallMM, forKey: .bottleWallMM)
        if kind == "file" { try c.encodeIfPresent(fallback, forKey: .fallback) }
    }
    package init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&kind, .kind, among: AnatomyConfig.kinds)
        path = try c.decodeIfPresent(String.self, forKey: .path)
        fallback = try c.decodeIfPresent(String.self, forKey: .fallback)
        // It applies to kind `file` only; other kinds keep it unused (a test set that changes only
        // the kind inherits the training set's fallback).
        if let fallback, fallback == "file" || !AnatomyConfig.kinds.contains(fallback) {
            throw DecodingError.dataCorruptedError(
                forKey: .fallback, in: c,
                debugDescription: "fallback names the kind to use instead of a missing file ("
                    + AnatomyConfig.kinds.filter { $0 != "file" }.joined(separator: ", ") + "), got '\(fallback)'")
        }
        if kind == "file" && path == nil {
            throw DecodingError.dataCorruptedError(
                forKey: .path, in: c, debugDescription: "anatomy kind 'file' needs a path")
        }
        try c.update(&sliceFraction, .sliceFraction)
        if let range = try c.decodeIfPresent([Double].self, forKey: .slab) {
            guard range.count == 2, range[0] >= 0, range[0] < range[1], range[1] <= 1 else {
                throw DecodingError.dataCorruptedError(
                    forKey: .slab, in: c, debugDescription: "expected [from, to] with 0 <= from < to <= 1, got \(range)"
                )
            }
            slab = range
        }
        try c.update(&agarRadiusMM, .agarRadiusMM); try c.update(&bottleWallMM, .bottleWallMM)
    }
}

/// A disk in image pixels: row and column of its centre (fractional) and its radius.
package struct PixelDisk: Equatable, Sendable {
    package var centreRow: Double
    package var centreColumn: Double
    package var radiusPixels: Double
}

extension SimulationConfig {
    /// Where a bottle phantom is read out in an image of `imageSize` pixels over this field of
    /// view: the disk of half the bottle's radius around its centre, away from the wall's pile-ups.
    /// Image row = z, column = x (forward-model.md), centred on the field of view.
    package func bottleReadoutDisk(imageSize n: Int) -> PixelDisk {
        let pixelMM = fovMM / Double(n)
        return PixelDisk(
            centreRow: Double(n) / 2 - 0.5 + scene.bottleCentreMM[2] / pixelMM,
            centreColumn: Double(n) / 2 - 0.5 + scene.bottleCentreMM[0] / pixelMM,
            radiusPixels: scene.bottleRadiusMM / 2 / pixelMM)
    }
}
