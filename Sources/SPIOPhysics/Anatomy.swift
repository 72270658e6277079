import Foundation
import SPIOTensor
import SPIOImageIO

/// A source of proton-density images (rho): one pixels x pixels slice per call, [z][x], row 0 at
/// the most negative z, values in [0, 1]. Randomness comes only from the generator passed in.
package protocol Anatomy: Sendable {
    func slice(pixels: Int, fovMM: Double, rng: inout SeededGenerator) throws -> [Float]
}

/// A smooth random field: a sum of random plane waves with wavelengths over `minimumWavelengthMM`.
struct SmoothNoise {
    var waves: [(kx: Double, kz: Double, phase: Double, amplitude: Double)] = []

    init(rng: inout SeededGenerator, count: Int, minimumWavelengthMM: Double, maximumWavelengthMM: Double) {
        var total = 0.0
        for _ in 0..<count {
            let wavelength = rng.uniform(minimumWavelengthMM, maximumWavelengthMM)
            let angle = rng.uniform(0, 2 * Double.pi)
            let a = wavelength  // longer waves carry more power, like 1/f texture
            waves.append(
                (cos(angle) * 2 * .pi / wavelength, sin(angle) * 2 * .pi / wavelength, rng.uniform(0, 2 * .pi), a))
            total += a * a
        }
        let norm = 1 / (total / 2).squareRoot()
        waves = waves.map { ($0.kx, $0.kz, $0.phase, $0.amplitude * norm) }
    }

    /// About unit standard deviation.
    func callAsFunction(_ x: Double, _ z: Double) -> Double {
        var s = 0.0
        for w in waves { s += w.amplitude * cos(w.kx * x + w.kz * z + w.phase) }
        return s
    }

    /// The field at the supersampling positions of `renderSupersampled` ((2n)^2 values, the
    /// same as calling it point by point): cos(a + b) = cos a cos b - sin a sin b makes each wave
    /// separable, so only 4n cosines per wave are needed.
    func supersampledGrid(pixels n: Int, fovMM: Double) -> [Double] {
        let m = 2 * n, coords = (0..<m).map { -fovMM / 2 + (Double($0) + 0.5) * fovMM / Double(m) }
        var out = [Double](repeating: 0, count: m * m)
        for w in waves {
            let cx = coords.map { cos(w.kx * $0) }, sx = coords.map { sin(w.kx * $0) }
            let cz = coords.map { cos(w.kz * $0 + w.phase) }, sz = coords.map { sin(w.kz * $0 + w.phase) }
            for j in 0..<m {
                let (a, b) = (w.amplitude * cz[j], w.amplitude * sz[j])
                for i in 0..<m { out[j * m + i] += a * cx[i] - b * sx[i] }
            }
        }
        return out
    }
}

/// Renders f(x, z, t) at 2 x 2 samples per pixel and averages (anti-aliased edges); t indexes
/// the (2n)^2 sample grid (row-major), for fields precomputed with `supersampledGrid`.
func renderSupersampled(pixels n: Int, fovMM: Double, _ f: (Double, Double, Int) -> Double) -> [Float] {
    let d = fovMM / Double(n)
    var out = [Float](repeating: 0, count: n * n)
    for r in 0..<n {
        for c in 0..<n {
            var s = 0.0
            for sz in 0..<2 {
                for sx in 0..<2 {
                    s += f(
                        -fovMM / 2 + (Double(c) + 0.25 + 0.5 * Double(sx)) * d,
                        -fovMM / 2 + (Double(r) + 0.25 + 0.5 * Double(sz)) * d,
                        (2 * r + sz) * 2 * n + 2 * c + sx)
                }
            }
            out[r * n + c] = Float(Swift.min(1, Swift.max(0, s / 4)))
        }
    }
    return out
}

/// A random head-like slice (proton-density contrast): scalp, skull, CSF, a folded cortical
/// ribbon (grey matter) with CSF-filled sulci, white matter, the interhemispheric fissure,
/// ventricles, deep grey nuclei, smooth texture and a gentle coil bias field.
package struct ProceduralBrain: Anatomy {
    package init() {}

    package func slice(pixels n: Int, fovMM: Double, rng: inout SeededGenerator) throws -> [Float] {
        let s = fovMM / 50  // designed on a 50 mm FOV, scaled to any other
        let ax = rng.uniform(18, 21) * s, az = rng.uniform(20.5, 23.5) * s
        let tilt = rng.uniform(-0.15, 0.15)
        let outlineAmplitude = 0.025
        let outline = (1...4).map { _ in
            (rng.uniform(-outlineAmplitude, outlineAmplitude), rng.uniform(0, 2 * Double.pi))
        }
        // The outline multiplies the radius by at least this much, so a point whose plain
        // ellipse radius times it is still past 1 is outside: it skips the trigonometry.
        let smallestOutlineFactor = pow(1 - outlineAmplitude, Double(outline.count))
        // Gyri: the white-matter boundary undulates; sulci cut in where it is deepest.
        let gyri = (0..<3).map { _ in
            (Double(rng.int(in: 14...26)), rng.uniform(0, 2 * Double.pi), rng.uniform(0.03, 0.05))
        }
        let ventricleSize = rng.uniform(0.07, 0.15), ventricleGap = rng.uniform(0.03, 0.06)
        let nucleiSize = rng.uniform(0.12, 0.18)
        let texture = SmoothNoise(rng: &rng, count: 24, minimumWavelengthMM: 2 * s, maximumWavelengthMM: 14 * s)
        let bias = SmoothNoise(rng: &rng, count: 3, minimumWavelengthMM: 60 * s, maximumWavelengthMM: 120 * s)
        let (csf, grey, white, scalp, bone) = (
            1.0, rng.uniform(0.8, 0.88), rng.uniform(0.55, 0.63), rng.uniform(0.55, 0.7), 0.06
        )
        let deepGrey = (grey + white) / 2
        let textureGrid = texture.supersampledGrid(pixels: n, fovMM: fovMM),
            biasGrid = bias.supersampledGrid(pixels: n, fovMM: fovMM)
        let cosTilt = cos(tilt), sinTilt = sin(tilt)
        return renderSupersampled(pixels: n, fovMM: fovMM) { x0, z0, t in
            let x = x0 * cosTilt - z0 * sinTilt, z = x0 * sinTilt + z0 * cosTilt
            var radius = (x * x / (ax * ax) + z * z / (az * az)).squareRoot()
            if radius * smallestOutlineFactor > 1.01 { return 0 }
            let theta = atan2(z / az, x / ax)
            for (h, (a, p)) in outline.enumerated() { radius *= 1 - a * cos(Double(h + 2) * theta + p) }
            var v: Double
            if radius > 1 { return 0 }
            if radius > 0.95 {
                v = scalp
            } else if radius > 0.89 {
                v = bone
            } else if radius > 0.87 {
                v = csf
            } else {
                var fold = 0.0
                for (k, p, a) in gyri { fold += a * sin(k * theta + p) }
                let whiteEdge = 0.7 + fold
                v = radius > whiteEdge ? grey : white
                // A sulcus: a thin CSF cleft from the surface down where the fold is deepest.
                if fold > 0.045 && radius > whiteEdge - 0.02 && radius < 0.87 {
                    var slope = 0.0
                    for (k, p, a) in gyri { slope += a * k * cos(k * theta + p) }
                    if abs(slope) * radius < 0.35 { v = csf }
                }
                // Interhemispheric fissure along the long axis (the top half of the slice).
                if abs(x / ax) < 0.012 && z / az > 0.3 { v = csf }
                // Deep grey nuclei, then the ventricles: two mirrored crescents near the centre.
                for side in [-1.0, 1.0] {
                    let gx = (x / ax - side * (ventricleGap + ventricleSize * 1.4)) / nucleiSize
                    let gz = (z / az + 0.1) / (nucleiSize * 1.3)
                    if gx * gx + gz * gz < 1 { v = deepGrey }
                    let vx = (x / ax - side * (ventricleGap + ventricleSize * 0.5)) / (ventricleSize * 0.5)
                    let vz = (z / az - 0.02) / (ventricleSize * 2.2)
                    if vx * vx + vz * vz < 1 { v = csf }
                }
                v *= 1 + 0.03 * textureGrid[t]
            }
            return v * (1 + 0.06 * biasGrid[t])
        }
    }
}

/// A random breast-like slice: the chest wall (ribs, pectoral muscle) on the left, a breast of
/// fat with fibroglandular texture, skin and nipple, air elsewhere.
package struct ProceduralBreast: Anatomy {
    package init() {}

    package func slice(pixels n: Int, fovMM: Double, rng: inout SeededGenerator) throws -> [Float] {
        let s = fovMM / 50
        let wall = rng.uniform(-17, -13) * s, depth = rng.uniform(28, 36) * s, halfHeight = rng.uniform(18, 23) * s
        let droop = rng.uniform(-3, 3) * s, muscle = rng.uniform(3, 5) * s, skin = rng.uniform(0.6, 0.9) * s
        let density = rng.uniform(-0.4, 0.5)
        let glandular = SmoothNoise(rng: &rng, count: 30, minimumWavelengthMM: 2.5 * s, maximumWavelengthMM: 12 * s)
        let texture = SmoothNoise(rng: &rng, count: 16, minimumWavelengthMM: 1.5 * s, maximumWavelengthMM: 6 * s)
        let ribs = (0..<5).map { i in
            (-20 * s + Double(i) * 10 * s + rng.uniform(-1.5, 1.5) * s, rng.uniform(2, 2.8) * s)
        }
        let (fat, fibro, pectoral) = (rng.uniform(0.85, 0.95), rng.uniform(0.38, 0.5), rng.uniform(0.3, 0.38))
        let glandularGrid = glandular.supersampledGrid(pixels: n, fovMM: fovMM),
            textureGrid = texture.supersampledGrid(pixels: n, fovMM: fovMM)
        return renderSupersampled(pixels: n, fovMM: fovMM) { x, z, t in
            if x < wall - muscle {
                // Thorax: dark lung with ribs.
                for (rz, rr) in ribs {
                    let dx = x - (wall - muscle - 3 * s), dz = z - rz
                    if dx * dx + dz * dz < rr * rr { return 0.5 }
                }
                return 0.08
            }
            if x < wall { return pectoral * (1 + 0.05 * textureGrid[t]) }
            // Breast: a half ellipse from the chest wall, tip slightly drooped.
            let u = (x - wall) / depth
            let centreZ = droop * u * u
            let r = ((z - centreZ) / halfHeight) * ((z - centreZ) / halfHeight) + u * u
            let nipple = { () -> Bool in
                let dx = x - (wall + depth), dz = z - centreZ; return dx * dx + dz * dz < (1.6 * s) * (1.6 * s)
            }()
            if r > 1 { return nipple ? 0.6 : 0 }
            let edge = (1 - r.squareRoot()) * Swift.min(depth, halfHeight)
            if edge < skin { return 0.65 }
            // Fibroglandular tissue: denser near the axis behind the nipple, thinning out to the fat.
            let axial = 1 - abs(z - centreZ) / halfHeight
            let g = glandularGrid[t] + 1.6 * axial - 0.9 + density - 0.8 * u
            let mix = 1 / (1 + exp(-6 * g))
            return (fat * (1 - mix) + fibro * mix) * (1 + 0.04 * textureGrid[t])
        }
    }
}

/// The agar phantom: a uniform agar disk (a cylinder along y) in air, holding the SPIO bottle
/// (a cylinder along y through the plane) with an optional plastic wall. The bottle's contents
/// are water (rho 1); the particles make them a void through the concentration.
package struct AgarPhantom: Anatomy, Equatable {
    package var agarRadiusMM = 20.0
    package var bottleRadiusMM = 4.0
    package var bottleWallMM = 0.5
    /// Bottle centre in the image plane (x, z) in mm.
    package var bottleCentreXMM = 0.0, bottleCentreZMM = 0.0
    package init() {}

    package func slice(pixels n: Int, fovMM: Double, rng: inout SeededGenerator) throws -> [Float] {
        renderSupersampled(pixels: n, fovMM: fovMM) { x, z, _ in
            let r = (x * x + z * z).squareRoot()
            if r > agarRadiusMM { return 0 }
            let dx = x - bottleCentreXMM, dz = z - bottleCentreZMM, rb = (dx * dx + dz * dz).squareRoot()
            if rb > bottleRadiusMM && rb <= bottleRadiusMM + bottleWallMM { return 0 }
            return 1
        }
    }
}

/// Uniform proton density 1 everywhere (tests and calibration).
package struct UniformAnatomy: Anatomy {
    package init() {}
    package func slice(pixels n: Int, fovMM: Double, rng: inout SeededGenerator) throws -> [Float] {
        [Float](repeating: 1, count: n * n)
    }
}
