import Foundation
import CFFTW

/// Physical constants of the forward model.
package enum PhysicalConstants {
    /// Vacuum permeability in T m / A.
    package static let mu0TmPerA = 4e-7 * Double.pi
    /// Proton gyromagnetic ratio over 2 pi, in Hz / T.
    package static let gammaBarHzPerT = 42.577478e6
    /// 1 ug Fe / mm^3 in mmol/L of Fe (1000 mg/L / 55.845 g/mol).
    package static let millimolarPerUgPerMM3 = 1000 / 55.845
}

/// The field offset of a source volume through the Lorentz-corrected dipole kernel
/// D(k) = 1/3 - kz^2/|k|^2, D(0) = 0, by zero-padded FFTs (FFTW, single precision).
///
/// Only the image plane is needed, so the inverse transform along y is a sum over ky evaluated
/// at three planes (y = 0 and its neighbours, for the through-plane gradient), followed by 2D
/// inverse FFTs: the 3D inverse FFT is never done.
///
/// Plans are made once with FFTW_ESTIMATE: FFTW_MEASURE may choose different algorithms from run
/// to run, which would change the last bits of the field and break bitwise reproducibility.
/// `planeField` may be called from several threads at once.
package final class DipoleFieldSolver: @unchecked Sendable {
    package let grid: VolumeGrid
    /// Padded sizes per axis (z, y, x order in memory).
    package let paddedX: Int, paddedY: Int, paddedZ: Int
    private let kernel: UnsafeMutablePointer<Float>  // D on the r2c half spectrum [kz][ky][kx]
    private let forwardPlan: fftwf_plan
    private let inversePlan: fftwf_plan
    private var freeBuffers: [Buffers] = []
    private let lock = NSLock()

    /// The field in the plane y = 0 on the field grid [z][x] (Hz) and its derivative along y (Hz/mm).
    package struct PlaneField {
        package let nx: Int, nz: Int
        package let voxelXMM: Double, voxelZMM: Double
        package var fieldHz: [Float]
        package var dFieldDyHzPerMM: [Float]

        /// `map` (one of the two fields) interpolated at (x, z) mm; grid centres are (i - n/2) d.
        package func sample(_ map: [Float], xMM: Double, zMM: Double) -> Double {
            bilinearSample(
                map, width: nx, height: nz, x: xMM / voxelXMM + Double(nx / 2), y: zMM / voxelZMM + Double(nz / 2))
        }
    }

    private final class Buffers {
        let real: UnsafeMutablePointer<Float>
        let spectrum: UnsafeMutablePointer<fftwf_complex>
        /// The half spectra of the three planes y = -dy, 0, +dy.
        let planes: [UnsafeMutablePointer<fftwf_complex>]
        let planeReal: UnsafeMutablePointer<Float>
        init(realCount: Int, spectrumCount: Int, planeCount: Int, planeRealCount: Int) {
            real = fftwf_alloc_real(realCount)!
            spectrum = fftwf_alloc_complex(spectrumCount)!
            planes = (0..<3).map { _ in fftwf_alloc_complex(planeCount)! }
            planeReal = fftwf_alloc_real(planeRealCount)!
        }
        deinit { fftwf_free(real); fftwf_free(spectrum); planes.forEach { fftwf_free($0) }; fftwf_free(planeReal) }
    }

    /// FFTW's planner is not thread-safe; every plan is made under this lock.
    private static let plannerLock = NSLock()

    /// - Parameter padding: padded size over grid size per axis (at least 1; 2 is the default).
    package init(grid: VolumeGrid, padding: SIMD3<Int> = SIMD3(repeating: 2)) {
        precondition(padding.min() >= 1, "DipoleFieldSolver: padding factors must be at least 1")
        precondition(grid.ny >= 3, "DipoleFieldSolver: the grid needs at least 3 planes along y")
        self.grid = grid
        paddedX = grid.nx * padding.x; paddedY = grid.ny * padding.y; paddedZ = grid.nz * padding.z
        let hx = paddedX / 2 + 1
        let spectrumCount = paddedZ * paddedY * hx
        kernel = .allocate(capacity: spectrumCount)
        let lx = Double(paddedX) * grid.voxelMM.x, ly = Double(paddedY) * grid.voxelMM.y,
            lz = Double(paddedZ) * grid.voxelMM.z
        func signed(_ m: Int, _ n: Int) -> Double { Double(m <= n / 2 ? m : m - n) }
        for c in 0..<paddedZ {
            let kz = signed(c, paddedZ) / lz
            for b in 0..<paddedY {
                let ky = signed(b, paddedY) / ly
                for a in 0..<hx {
                    let kx = Double(a) / lx
                    let k2 = kx * kx + ky * ky + kz * kz
                    kernel[(c * paddedY + b) * hx + a] = k2 == 0 ? 0 : Float(1.0 / 3 - kz * kz / k2)
                }
            }
        }
        let probe = Buffers(
            realCount: paddedZ * paddedY * paddedX, spectrumCount: spectrumCount,
            planeCount: paddedZ * hx, planeRealCount: paddedZ * paddedX)
        DipoleFieldSolver.plannerLock.lock()
        forwardPlan = fftwf_plan_dft_r2c_3d(
            Int32(paddedZ), Int32(paddedY), Int32(paddedX), probe.real, probe.spectrum, UInt32(FFTW_ESTIMATE))
        inversePlan = fftwf_plan_dft_c2r_2d(
            Int32(paddedZ), Int32(paddedX), probe.planes[0], probe.planeReal, UInt32(FFTW_ESTIMATE))
        DipoleFieldSolver.plannerLock.unlock()
        freeBuffers = [probe]
    }

    deinit {
        DipoleFieldSolver.plannerLock.lock()
        fftwf_destroy_plan(forwardPlan); fftwf_destroy_plan(inversePlan)
        DipoleFieldSolver.plannerLock.unlock()
        kernel.deallocate()
    }

    private func takeBuffers() -> Buffers {
        lock.lock(); defer { lock.unlock() }
        if let b = freeBuffers.popLast() { return b }
        return Buffers(
            realCount: paddedZ * paddedY * paddedX, spectrumCount: paddedZ * paddedY * (paddedX / 2 + 1),
            planeCount: paddedZ * (paddedX / 2 + 1), planeRealCount: paddedZ * paddedX)
    }

    private func giveBack(_ b: Buffers) { lock.lock(); freeBuffers.append(b); lock.unlock() }

    /// The field offset in Hz in the plane y = 0 for a source volume in tesla
    /// (mu0 M for saturated SPIO, B0 Delta chi for linear sources), stored [z][y][x] on `grid`.
    package func planeField(sourceTesla source: [Float]) -> PlaneField {
        precondition(
            source.count == grid.count, "DipoleFieldSolver: source has \(source.count) voxels, grid \(grid.count)")
        let b = takeBuffers(); defer { giveBack(b) }
        let (nx, ny, nz) = (grid.nx, grid.ny, grid.nz)
        let (px, py, pz) = (paddedX, paddedY, paddedZ), hx = px / 2 + 1
        b.real.update(repeating: 0, count: px * py * pz)
        source.withUnsafeBufferPointer { s in
            for k in 0..<nz {
                for j in 0..<ny {
                    (b.real + (k * py + j) * px).update(from: s.baseAddress! + (k * ny + j) * nx, count: nx)
                }
            }
        }
        fftwf_execute_dft_r2c(forwardPlan, b.real, b.spectrum)
        let scale = PhysicalConstants.gammaBarHzPerT / Double(px * py * pz)
        // G_j[kz][kx] = sum_ky D F e^{2 pi i ky j / py} for the planes j = ny/2 - 1, ny/2, ny/2 + 1,
        // all three in one pass over the spectrum.
        let j0 = ny / 2
        var phases = [Float](repeating: 0, count: py * 6)  // (cos, sin) for each ky and plane
        for m in 0..<py {
            for (p, j) in [j0 - 1, j0, j0 + 1].enumerated() {
                let t = 2 * Double.pi * Double((m * j) % py) / Double(py)
                phases[m * 6 + 2 * p] = Float(cos(t)); phases[m * 6 + 2 * p + 1] = Float(sin(t))
            }
        }
        let spectrum = UnsafeMutableRawPointer(b.spectrum).assumingMemoryBound(to: Float.self)
        let outs = b.planes.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: Float.self) }
        for o in outs { o.update(repeating: 0, count: 2 * pz * hx) }
        phases.withUnsafeBufferPointer { ph in
            for c in 0..<pz {
                for m in 0..<py {
                    let row = (c * py + m) * hx
                    for (p, out) in outs.enumerated() {
                        let (cr, ci) = (ph[m * 6 + 2 * p], ph[m * 6 + 2 * p + 1])
                        let o = out + 2 * c * hx
                        for a in 0..<hx {
                            let d = kernel[row + a]
                            let re = spectrum[2 * (row + a)] * d, im = spectrum[2 * (row + a) + 1] * d
                            o[2 * a] += re * cr - im * ci
                            o[2 * a + 1] += re * ci + im * cr
                        }
                    }
                }
            }
        }
        var planes: [[Float]] = []
        for plane in b.planes {
            fftwf_execute_dft_c2r(inversePlan, plane, b.planeReal)
            var out = [Float](repeating: 0, count: nz * nx)
            for k in 0..<nz { for i in 0..<nx { out[k * nx + i] = Float(Double(b.planeReal[k * px + i]) * scale) } }
            planes.append(out)
        }
        let inv2dy = Float(1 / (2 * grid.voxelMM.y))
        let gradient = zip(planes[2], planes[0]).map { ($0 - $1) * inv2dy }
        return PlaneField(
            nx: nx, nz: nz, voxelXMM: grid.voxelMM.x, voxelZMM: grid.voxelMM.z, fieldHz: planes[1],
            dFieldDyHzPerMM: gradient)
    }
}
