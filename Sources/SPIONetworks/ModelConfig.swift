import Foundation
import SPIOCoding

/// The `model` block of an experiment: which network, its sizes, and the ablation switches of
/// networks.md. `preset: tiny | small | paper` sets the sizes first; any other key overrides.
public struct ModelConfig: Codable, Equatable, Sendable {
    /// DeepSPIO (paper section 4), the U-Net baseline, or the classical dipole inversion (no
    /// network: `inversion` says how; its "training" tunes one parameter on the training images).
    public enum Architecture: String, Codable, CaseIterable, Sendable {
        case deepspio, unet
        case dipoleInversion = "dipole-inversion"
    }
    /// How encoder stages halve the resolution.
    public enum Downsampling: String, Codable, CaseIterable, Sendable { case strided, maxpool }
    /// The bottleneck: residual blocks, the same blocks without shortcut, or nothing.
    public enum Bottleneck: String, Codable, CaseIterable, Sendable { case residual, plain, none }
    /// The residual shortcut: a linear 1x1 convolution, or the identity (zero-padded channels).
    public enum Shortcut: String, Codable, CaseIterable, Sendable { case projection, identity }
    /// Four wavelet decoders, one decoder with four band outputs, or one decoder straight to the image.
    public enum Head: String, Codable, CaseIterable, Sendable { case wavelet, shared, image }
    /// How inputs are normalised before the network: each image divided by its own 99th
    /// percentile (View Line images, whose amplitude is proton density, not iron), or taken as
    /// they are (inputs whose amplitude is the signal, such as a field map in kHz).
    public enum InputScaling: String, Codable, CaseIterable, Sendable { case percentile99, none }

    public var architecture = Architecture.deepspio
    /// Input height = width in pixels (a multiple of 16).
    public var inputSize = 64
    /// View Line channels (even and odd stripes).
    public var inputChannels = 2
    /// F: encoder stage s has F * 2^s filters (U-Net: the same, and 16F at the bottom).
    public var baseFilters = 16
    /// B: filters of the DeepSPIO bottleneck.
    public var bottleneckFilters = 256
    /// Blocks in the DeepSPIO bottleneck.
    public var residualBlocks = 4
    /// DeepSPIO decoder stage widths; nil means [8F, 4F, 2F] ([8F, 4F, 2F, F] for the image head).
    public var decoderWidths: [Int]? = nil
    public var downsampling = Downsampling.strided
    public var bottleneck = Bottleneck.residual
    public var shortcut = Shortcut.projection
    public var head = Head.wavelet
    /// U-Net style concatenation of encoder features into the decoders (DeepSPIO ablation).
    public var skips = false
    /// A fixed factor on the network's output (not trained): the last layers then fit the targets
    /// divided by it, which is target scaling with the predictions kept in ug/mm^3. 1, the
    /// default, is the paper's network.
    public var outputScale = 1.0
    /// Input normalisation; percentile99, the default, is the paper's.
    public var inputScaling = InputScaling.percentile99
    /// The classical baseline's settings (architecture dipole-inversion only).
    public var inversion: InversionConfig?

    public init() {}

    /// The named presets of networks.md (DeepSPIO sizes; the U-Net reads inputSize and baseFilters).
    public static func preset(_ name: String) -> ModelConfig? {
        var c = ModelConfig()
        switch name {
        case "tiny": (c.inputSize, c.baseFilters, c.bottleneckFilters) = (32, 4, 64)
        case "small": (c.inputSize, c.baseFilters, c.bottleneckFilters) = (64, 16, 256)
        case "paper": (c.inputSize, c.baseFilters, c.bottleneckFilters) = (256, 32, 512)
        default: return nil
        }
        return c
    }
    public static let presetNames = ["tiny", "small", "paper"]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case preset, architecture, inputSize, inputChannels, baseFilters, bottleneckFilters, residualBlocks,
            decoderWidths, downsampling, bottleneck, shortcut, head, skips, outputScale, inputScaling,
            inversion
    }

    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var presetName = "small"
        try c.update(&presetName, .preset, among: Self.presetNames)
        self = Self.preset(presetName)!
        try c.update(&architecture, .architecture)
        try c.update(&inputSize, .inputSize); try c.update(&inputChannels, .inputChannels)
        try c.update(&baseFilters, .baseFilters); try c.update(&bottleneckFilters, .bottleneckFilters)
        try c.update(&residualBlocks, .residualBlocks)
        if let w = try c.decodeIfPresent([Int].self, forKey: .decoderWidths) { decoderWidths = w }
        try c.update(&downsampling, .downsampling); try c.update(&bottleneck, .bottleneck)
        try c.update(&shortcut, .shortcut); try c.update(&head, .head); try c.update(&skips, .skips)
        try c.update(&outputScale, .outputScale); try c.update(&inputScaling, .inputScaling)
        inversion = try c.decodeIfPresent(InversionConfig.self, forKey: .inversion)
        if architecture == .dipoleInversion && inversion == nil { inversion = InversionConfig() }
        if architecture != .dipoleInversion && inversion != nil {
            throw DecodingError.dataCorruptedError(
                forKey: .inversion, in: c, debugDescription: "inversion is for architecture dipole-inversion only")
        }
        if let problem = problem {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: problem))
        }
    }

    /// Every field, never the preset name, so equal networks hash equally.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(architecture, forKey: .architecture)
        try c.encode(inputSize, forKey: .inputSize); try c.encode(inputChannels, forKey: .inputChannels)
        try c.encode(baseFilters, forKey: .baseFilters); try c.encode(bottleneckFilters, forKey: .bottleneckFilters)
        try c.encode(residualBlocks, forKey: .residualBlocks)
        try c.encodeIfPresent(decoderWidths, forKey: .decoderWidths)
        try c.encode(downsampling, forKey: .downsampling); try c.encode(bottleneck, forKey: .bottleneck)
        try c.encode(shortcut, forKey: .shortcut); try c.encode(head, forKey: .head);
        try c.encode(skips, forKey: .skips)
        // Written only when set, so the networks without it keep their hashes.
        if outputScale != 1 { try c.encode(outputScale, forKey: .outputScale) }
        if inputScaling != .percentile99 { try c.encode(inputScaling, forKey: .inputScaling) }
        try c.encodeIfPresent(inversion, forKey: .inversion)
    }

    /// Decoder stage widths with the default filled in.
    public var resolvedDecoderWidths: [Int] {
        decoderWidths ?? (head == .image ? [8, 4, 2, 1] : [8, 4, 2]).map { $0 * baseFilters }
    }

    /// What the network outputs: the four db4 bands at half size, or the concentration map itself.
    public var predictsWaveletBands: Bool { architecture == .deepspio && head != .image }

    /// The first inconsistency, in words, or nil.
    public var problem: String? {
        if inputSize <= 0 || inputSize % 16 != 0 || inputSize > 2048 {
            return "inputSize must be a multiple of 16 from 16 to 2048, got \(inputSize)"
        }
        if !(1...64).contains(inputChannels) || !(1...1024).contains(baseFilters)
            || !(1...8192).contains(bottleneckFilters)
        {
            return "inputChannels (1 to 64), baseFilters (1 to 1024) and bottleneckFilters (1 to 8192) are out of range"
        }
        if !(outputScale > 0 && outputScale <= 1e6) { return "outputScale must lie in (0, 1e6], got \(outputScale)" }
        if residualBlocks < 0 || residualBlocks > 64 { return "residualBlocks must be 0 to 64, got \(residualBlocks)" }
        let stages = head == .image ? 4 : 3
        if architecture == .deepspio && resolvedDecoderWidths.count != stages {
            return
                "decoderWidths needs \(stages) entries for the \(head.rawValue) head, got "
                + "\(resolvedDecoderWidths.count)"
        }
        if resolvedDecoderWidths.contains(where: { $0 <= 0 || $0 > 8192 }) {
            return "decoderWidths must be 1 to 8192, got \(resolvedDecoderWidths)"
        }
        if architecture == .deepspio && bottleneck == .residual && shortcut == .identity
            && bottleneckFilters < 8 * baseFilters
        {
            return
                "an identity shortcut zero-pads channels, so bottleneckFilters (\(bottleneckFilters)) must be at "
                + "least 8 x baseFilters (\(8 * baseFilters))"
        }
        return nil
    }

    /// Canonical JSON (sorted keys), as stored in checkpoints and hashed by the run store.
    public var json: String { canonicalJSON(self) }

    /// Decodes the JSON a checkpoint stores.
    public static func fromJSON(_ text: String) throws -> ModelConfig {
        try JSONDecoder().decode(ModelConfig.self, from: Data(text.utf8))
    }
}

/// The classical baseline (`model.architecture: dipole-inversion`, `SPIOPhysics.DipoleInversion`):
/// the field from the View Line stripes (or, as an oracle, the true field given as the input),
/// inverted to concentration under a slab model of the iron's out-of-plane extent. Nothing is
/// trained: the "training" run tunes the method's one parameter on the first `tuningImages`
/// training images (never a test image) and keeps the best.
public struct InversionConfig: Codable, Equatable, Sendable {
    /// Thresholded k-space division, or the non-negative sparsity-regularised least squares.
    public enum Method: String, Codable, CaseIterable, Sendable { case tkd, sparse }
    /// Where the field comes from: the stripes' displacement, or the input itself (a dataset with
    /// `simulation.input: field`, kHz): the oracle.
    public enum FieldSource: String, Codable, CaseIterable, Sendable { case stripes, input }

    public var method = Method.sparse
    public var field = FieldSource.stripes
    /// The out-of-plane extent each pixel's iron is modelled with (a column through the slice).
    public var slabThicknessMM = 16.0
    /// The values tried on the training images: lambda in Hz^2 per ug/mm^3 (sparse), or the
    /// threshold as a fraction of the largest |K| (tkd). Nil: the method's default list.
    public var candidates: [Double]?
    /// FISTA iterations (sparse).
    public var iterations = 100
    public var tuningImages = 50
    /// The stripes' samples must agree with their neighbours across columns within this many Hz
    /// (`StripeFieldEstimator.consistencyHz`; 0: no check).
    public var consistencyHz = 300.0

    public init() {}
    enum CodingKeys: String, CodingKey, CaseIterable {
        case method, field, slabThicknessMM, candidates, iterations, tuningImages, consistencyHz
    }
    public init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&method, .method); try c.update(&field, .field)
        try c.update(&slabThicknessMM, .slabThicknessMM)
        candidates = try c.decodeIfPresent([Double].self, forKey: .candidates)
        try c.update(&iterations, .iterations); try c.update(&tuningImages, .tuningImages)
        try c.update(&consistencyHz, .consistencyHz)
        guard consistencyHz >= 0 && consistencyHz <= 1e6, slabThicknessMM > 0 && slabThicknessMM <= 200,
            (1...10_000).contains(iterations),
            (1...100_000).contains(tuningImages), resolvedCandidates.allSatisfy({ $0 > 0 && $0.isFinite }),
            !resolvedCandidates.isEmpty
        else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription:
                        "inversion: slabThicknessMM must lie in (0, 200], iterations 1 to 10000, tuningImages 1 to "
                        + "100000, candidates positive"))
        }
    }

    /// The candidates with the method's default filled in.
    public var resolvedCandidates: [Double] {
        candidates ?? (method == .sparse ? [1e5, 3e5, 1e6, 3e6] : [0.03, 0.05, 0.1, 0.2])
    }
}
