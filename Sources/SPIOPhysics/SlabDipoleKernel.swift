import CFFTW
import Foundation

/// The in-plane field of an in-plane concentration map under a slab model of the out-of-plane
/// extent: each pixel's iron taken as a column `slabThicknessMM` long through the slice (along y),
/// centred on it. Field (Hz) = K c, a 2D convolution of the map (ug/mm^3) with the field that one
/// pixel's column makes in the slice plane.
///
/// The point-spread function comes from the simulator's own `DipoleFieldSolver` (the same kernel,
/// padding and units as the forward model), on a grid of twice the field of view so it reaches
/// every offset between two pixels of the image; K is applied as a zero-padded (linear)
/// convolution by FFTW on 2n x 2n. The classical baseline (`DipoleInversion`) inverts it.
package final class SlabDipoleKernel: @unchecked Sendable {
    /// Image pixels per side.
    package let n: Int
    /// The padded transform size, 2n.
    package let padded: Int
    package let slabThicknessMM: Double
    /// The transfer function on the padded grid, interleaved (re, im), row-major [kz][kx].
    package let spectrum: [Float]
    /// The largest |K(k)|^2: the Lipschitz constant of the least-squares gradient (K^T K).
    package let largestGainSquared: Float
    private let forward: fftwf_plan, inverse: fftwf_plan

    /// The kernel of `simulation`'s image size, field of view and particles.
    package init(simulation: SimulationConfig, slabThicknessMM: Double) {
        let n = simulation.imageSize, p = 2 * n, d = simulation.fovMM / Double(n)
        self.n = n; padded = p; self.slabThicknessMM = slabThicknessMM
        // The column through the centre voxel of a 2n grid, weighted by its overlap with the slab.
        let grid = VolumeGrid(cube: p, fovMM: 2 * simulation.fovMM)
        let solver = DipoleFieldSolver(grid: grid, padding: SIMD3(repeating: simulation.field.paddingFactor))
        var source = [Float](repeating: 0, count: grid.count)
        let teslaPerUgPerMM3 = PhysicalConstants.mu0TmPerA * simulation.field.saturationMagnetisationAm2PerKg
        for j in 0..<p {
            let y = Double(j - p / 2) * d
            let overlap = max(0, min(y + d / 2, slabThicknessMM / 2) - max(y - d / 2, -slabThicknessMM / 2)) / d
            if overlap > 0 { source[((p / 2) * p + j) * p + p / 2] = Float(teslaPerUgPerMM3 * overlap) }
        }
        let field = solver.planeField(sourceTesla: source).fieldHz
        // Offset (dz, dx) from the source sits at (dz mod p, dx mod p): a circular kernel whose
        // transform gives the linear convolution of an n x n map padded to p x p.
        let buffer = fftwf_alloc_complex(p * p)!, out = fftwf_alloc_complex(p * p)!
        defer { fftwf_free(buffer); fftwf_free(out) }
        DipoleFieldSolver.plannerLock.lock()
        forward = fftwf_plan_dft_2d(Int32(p), Int32(p), buffer, out, FFTW_FORWARD, UInt32(FFTW_ESTIMATE))
        inverse = fftwf_plan_dft_2d(Int32(p), Int32(p), buffer, out, FFTW_BACKWARD, UInt32(FFTW_ESTIMATE))
        DipoleFieldSolver.plannerLock.unlock()
        let raw = UnsafeMutableRawPointer(buffer).assumingMemoryBound(to: Float.self)
        for dz in -n..<n {
            for dx in -n..<n {
                let at = ((dz + p) % p * p + (dx + p) % p) * 2
                raw[at] = field[(p / 2 + dz) * p + p / 2 + dx]; raw[at + 1] = 0
            }
        }
        fftwf_execute_dft(forward, buffer, out)
        let spectrumPointer = UnsafeMutableRawPointer(out).assumingMemoryBound(to: Float.self)
        spectrum = Array(UnsafeBufferPointer(start: spectrumPointer, count: 2 * p * p))
        var largest: Float = 0
        for k in 0..<(p * p) {
            largest = max(largest, spectrum[2 * k] * spectrum[2 * k] + spectrum[2 * k + 1] * spectrum[2 * k + 1])
        }
        largestGainSquared = largest
    }

    deinit {
        DipoleFieldSolver.plannerLock.lock()
        fftwf_destroy_plan(forward); fftwf_destroy_plan(inverse)
        DipoleFieldSolver.plannerLock.unlock()
    }

    /// Scratch for `apply`: one per thread.
    package final class Scratch {
        let a: UnsafeMutablePointer<fftwf_complex>, b: UnsafeMutablePointer<fftwf_complex>
        package init(padded p: Int) { a = fftwf_alloc_complex(p * p)!; b = fftwf_alloc_complex(p * p)! }
        deinit { fftwf_free(a); fftwf_free(b) }
    }

    /// How the spectrum multiplies: the field of a map (K), its adjoint (K^T, for gradients), or
    /// thresholded division (the TKD inverse: 1/K where |K| exceeds `threshold` times max |K|, else 0).
    package enum Operation {
        case field, adjoint
        case thresholdedDivision(threshold: Double)
    }

    /// `operation` applied to an n x n map (its outside taken as zero); returns n x n.
    package func apply(_ map: [Float], _ operation: Operation, scratch: Scratch) -> [Float] {
        let (p, n) = (padded, n)
        let a = UnsafeMutableRawPointer(scratch.a).assumingMemoryBound(to: Float.self)
        let b = UnsafeMutableRawPointer(scratch.b).assumingMemoryBound(to: Float.self)
        a.update(repeating: 0, count: 2 * p * p)
        for r in 0..<n { for x in 0..<n { a[2 * (r * p + x)] = map[r * n + x] } }
        fftwf_execute_dft(forward, scratch.a, scratch.b)
        let floorSquared: Float
        if case let .thresholdedDivision(t) = operation {
            floorSquared = Float(t * t) * largestGainSquared
        } else {
            floorSquared = 0
        }
        spectrum.withUnsafeBufferPointer { k in
            for i in 0..<(p * p) {
                let (kr, ki) = (k[2 * i], k[2 * i + 1]), (xr, xi) = (b[2 * i], b[2 * i + 1])
                switch operation {
                case .field:
                    b[2 * i] = kr * xr - ki * xi; b[2 * i + 1] = kr * xi + ki * xr
                case .adjoint:
                    b[2 * i] = kr * xr + ki * xi; b[2 * i + 1] = kr * xi - ki * xr
                case .thresholdedDivision:
                    let g = kr * kr + ki * ki
                    if g > floorSquared && g > 0 {
                        b[2 * i] = (kr * xr + ki * xi) / g; b[2 * i + 1] = (kr * xi - ki * xr) / g
                    } else {
                        b[2 * i] = 0; b[2 * i + 1] = 0
                    }
                }
            }
        }
        fftwf_execute_dft(inverse, scratch.b, scratch.a)
        let scale = 1 / Float(p * p)
        var out = [Float](repeating: 0, count: n * n)
        for r in 0..<n { for x in 0..<n { out[r * n + x] = a[2 * (r * p + x)] * scale } }
        return out
    }
}
