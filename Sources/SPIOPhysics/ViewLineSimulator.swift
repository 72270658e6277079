import Foundation
import SPIOTensor

/// One simulated training sample: the two-channel View Line image and its targets.
package struct SimulatedSample: Sendable {
    /// 2 x n x n: channel 0 the even stripes, channel 1 the odd ones.
    package var image: [Float]
    /// n x n: the concentration in the image plane (ug/mm^3), partial-volume averaged per pixel.
    package var concentration: [Float]
    /// n x n: the field offset in the image plane at the pixel centres (Hz).
    package var fieldHz: [Float]
    package var objects: [SceneObject]
    /// n x n: the anatomy the stripes were drawn on (for previews).
    package var protonDensity: [Float]
}

/// The whole forward model for one configuration: anatomy, scene, dipole field, View Line imaging
/// and noise. `sample(_:)` is a pure function of (configuration, index) and may run on many
/// threads at once.
package final class ViewLineSimulator: @unchecked Sendable {
    package let config: SimulationConfig
    package let anatomy: Anatomy
    package let fieldGrid: VolumeGrid
    private let solver: DipoleFieldSolver?
    private let imager: ViewLineImager

    package init(config: SimulationConfig) throws {
        try config.validate()
        self.config = config
        switch config.anatomy.kind {
        case "procedural-breast": anatomy = ProceduralBreast()
        case "agar":
            var agar = AgarPhantom()
            agar.agarRadiusMM = config.anatomy.agarRadiusMM
            agar.bottleWallMM = config.anatomy.bottleWallMM
            if config.scene.kind == "bottle" {
                agar.bottleRadiusMM = config.scene.bottleRadiusMM
                agar.bottleCentreXMM = config.scene.bottleCentreMM[0];
                agar.bottleCentreZMM = config.scene.bottleCentreMM[2]
            } else {
                agar.bottleRadiusMM = 0; agar.bottleWallMM = 0
            }
            anatomy = agar
        case "uniform": anatomy = UniformAnatomy()
        case "file":
            anatomy = try FileAnatomy(
                path: config.anatomy.path ?? "", sliceFraction: config.anatomy.sliceFraction, slab: config.anatomy.slab)
        default: anatomy = ProceduralBrain()
        }
        let m = Swift.min(config.imageSize, config.field.maxMatrix)
        fieldGrid = VolumeGrid(cube: m, fovMM: config.fovMM)
        solver =
            config.field.enabled
            ? DipoleFieldSolver(grid: fieldGrid, padding: SIMD3(repeating: config.field.paddingFactor)) : nil
        imager = ViewLineImager(sequence: config.sequence, pixels: config.imageSize, fovMM: config.fovMM)
    }

    /// The source of an object in tesla: mu0 Ms C for the saturated particles plus B0 Delta chi.
    package func sourceTesla(_ o: SceneObject) -> Double {
        PhysicalConstants.mu0TmPerA * config.field.saturationMagnetisationAm2PerKg * o.concentrationUgPerMM3
            + config.field.b0Tesla * o.deltaChiPPM * 1e-6
    }

    /// The noise level of a sample with this proton density: S / 10^(snrDB / 20), where S is the
    /// signal of the same anatomy and stripes without SPIO or any field (forward-model.md section
    /// 6). A scanner's noise does not depend on the iron in the slice, so at one nominal SNR every
    /// concentration gets the same sigma; a reference taken from the distorted image itself would
    /// grow with the pile-ups.
    package func noiseSigma(protonDensity rho: [Float], snrDB: Double? = nil) -> Double {
        let snr = snrDB ?? config.noise.snrDB
        guard snr.isFinite else { return 0 }
        let reference = imager.image(protonDensity: rho, fineConcentration: nil, fieldHz: nil, dFieldDyHzPerMM: nil)
        return NoiseModel.signalLevel(reference) / pow(10, snr / 20)
    }

    package func sample(_ index: Int) throws -> SimulatedSample {
        var rng = SeededGenerator(seed: config.seed, stream: UInt64(index))
        let n = config.imageSize, s = config.sequence.samplesPerPixel, fov = config.fovMM
        let objects = config.scene.objects(fovMM: fov, rng: &rng)
        var rho = try anatomy.slice(pixels: n, fovMM: fov, rng: &rng)
        // Air (an object with a susceptibility and no SPIO) holds no protons: a signal void, by
        // partial volume at the object's edge.
        let voids = objects.filter { $0.deltaChiPPM != 0 && $0.concentrationUgPerMM3 == 0 }
        if !voids.isEmpty {
            let fine = n * s
            let air = Voxeliser(subsamples: 1).plane(voids, pixels: fine, fovMM: fov) { _ in 1 }
            for r in 0..<n {
                for x in 0..<n {
                    var inside: Float = 0
                    for a in 0..<s { for b in 0..<s { inside += air[(r * s + a) * fine + x * s + b] } }
                    rho[r * n + x] *= 1 - Swift.min(1, inside / Float(s * s))
                }
            }
        }

        // Concentration at the fine points (n*s per axis): per-column fine samples for the
        // imaging, s x s block means for the target.
        let fine = n * s
        let points = Voxeliser(subsamples: 1).plane(objects, pixels: fine, fovMM: fov) { $0.concentrationUgPerMM3 }
        var columnFine = [Float](repeating: 0, count: fine * n)
        var target = [Float](repeating: 0, count: n * n)
        for f in 0..<fine {
            for x in 0..<n {
                var sum: Float = 0
                for sx in 0..<s { sum += points[f * fine + x * s + sx] }
                columnFine[f * n + x] = sum / Float(s)
                target[(f / s) * n + x] += sum / Float(s * s)
            }
        }

        var fieldFine: [Float]? = nil, gradientFine: [Float]? = nil
        var fieldPixels = [Float](repeating: 0, count: n * n)
        if let solver, objects.contains(where: { sourceTesla($0) != 0 }) {
            var source = [Float](repeating: 0, count: fieldGrid.count)
            Voxeliser(subsamples: config.field.partialVolumeSubsamples).accumulate(
                objects, grid: fieldGrid, into: &source
            ) { self.sourceTesla($0) }
            let plane = solver.planeField(sourceTesla: source)
            var f0 = [Float](repeating: 0, count: fine * n), g0 = f0
            let d = fov / Double(n)
            for f in 0..<fine {
                let z = -fov / 2 + (Double(f) + 0.5) * d / Double(s)
                for x in 0..<n {
                    let xm = -fov / 2 + (Double(x) + 0.5) * d
                    f0[f * n + x] = Float(plane.sample(plane.fieldHz, xMM: xm, zMM: z))
                    g0[f * n + x] = Float(plane.sample(plane.dFieldDyHzPerMM, xMM: xm, zMM: z))
                }
            }
            for r in 0..<n {
                for x in 0..<n {
                    fieldPixels[r * n + x] = Float(
                        plane.sample(
                            plane.fieldHz, xMM: -fov / 2 + (Double(x) + 0.5) * d, zMM: -fov / 2 + (Double(r) + 0.5) * d)
                    )
                }
            }
            fieldFine = f0; gradientFine = g0
        }
        var image = imager.image(
            protonDensity: rho, fineConcentration: columnFine, fieldHz: fieldFine, dFieldDyHzPerMM: gradientFine)
        let snr = config.noise.snrRangeDB.map { rng.uniform($0[0], $0[1]) } ?? config.noise.snrDB
        if snr.isFinite {
            NoiseModel.apply(to: &image, sigma: noiseSigma(protonDensity: rho, snrDB: snr), rng: &rng)
        }
        return SimulatedSample(
            image: image, concentration: target, fieldHz: fieldPixels, objects: objects, protonDensity: rho)
    }
}

/// Complex Gaussian noise at a given SNR (forward-model.md section 6).
package enum NoiseModel {
    /// S: the mean magnitude over pixels above 10 % of the maximum of a SPIO-free reference image
    /// (the stripes' tissue signal; the gaps between stripes are left out).
    package static func signalLevel(_ image: [Float]) -> Double {
        let peak = image.max() ?? 0
        let bright = image.filter { $0 > 0.1 * peak }
        return bright.isEmpty ? 0 : bright.reduce(0.0) { $0 + Double($1) } / Double(bright.count)
    }

    /// Replaces each pixel m by |m + n_re + i n_im|, n_re and n_im normal with standard deviation
    /// `sigma`.
    package static func apply(to image: inout [Float], sigma: Double, rng: inout SeededGenerator) {
        for i in image.indices {
            let re = Double(image[i]) + sigma * rng.normal(), im = sigma * rng.normal()
            image[i] = Float((re * re + im * im).squareRoot())
        }
    }
}
