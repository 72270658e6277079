import Foundation
import CFFTW
import SPIOTensor

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
/// D(k) = 1/3 - kz^2/|k|^2, D(0) = 0, on the zero-padded grid (FFTW, single precision).
///
/// Only the plane y = 0 is needed (and its neighbours, for the through-plane gradient), and the
/// sources fill only the slabs of the grid near it, so no 3D transform is done: each slab j that
/// holds a source is transformed in 2D (z, x), weighted by the kernel's inverse transform along
/// y at the slab's offset from each plane, T_d(kz, kx) = (1/py) sum_ky D(kz, ky, kx) e^{2 pi i ky d / py}
/// (real, as D is even in ky; computed once per solver), and summed; three 2D inverse transforms
/// give the planes. This is the same sum as the padded 3D convolution, at the cost of one 2D FFT
/// per occupied slab instead of a 3D FFT of the whole padded cube. Each 2D transform is done as its
/// two 1D passes (the sub-problems FFTW's 2D plan solves; the datasets of four configurations came
/// out bit for bit the same as with that plan, FFTW 3.3.10), so the row pass skips the rows of a
/// slab that are zero (padding, and blocks of 8 rows without a source) and the inverse's row pass
/// the padding rows of a plane, which are not needed.
///
/// Plans are made once with FFTW_ESTIMATE: FFTW_MEASURE may choose different algorithms from run
/// to run, which would change the last bits of the field and break bitwise reproducibility.
/// `planeField` may be called from several threads at once.
package final class DipoleFieldSolver: @unchecked Sendable {
    package let grid: VolumeGrid
    /// Padded sizes per axis (z, y, x order in memory).
    package let paddedX: Int, paddedY: Int, paddedZ: Int
    /// T_d on the r2c half spectrum [d][kz][kx] for offsets d = 0...maxOffset (T_-d = T_d).
    private let table: DipoleKernelTable
    private let maxOffset: Int
    private let forwardRows: fftwf_plan, forwardColumns: fftwf_plan
    /// Rows per execution of `forwardRows`.
    private let rowBlock: Int
    private let inverseColumns: fftwf_plan, inverseRows: fftwf_plan
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
        /// One padded (z, x) slab and its half spectrum.
        let slab: UnsafeMutablePointer<Float>
        let spectrum: UnsafeMutablePointer<fftwf_complex>
        /// The half spectra of the three planes y = -dy, 0, +dy.
        let planes: [UnsafeMutablePointer<fftwf_complex>]
        let planeReal: UnsafeMutablePointer<Float>
        init(slabCount: Int, spectrumCount: Int) {
            // Zeroed once: every call overwrites the same nz x nx corner, and the padding stays
            // zero (an out-of-place r2c transform leaves its input as it was).
            slab = fftwf_alloc_real(slabCount)!
            slab.update(repeating: 0, count: slabCount)
            spectrum = fftwf_alloc_complex(spectrumCount)!
            planes = (0..<3).map { _ in fftwf_alloc_complex(spectrumCount)! }
            planeReal = fftwf_alloc_real(slabCount)!
        }
        deinit { fftwf_free(slab); fftwf_free(spectrum); planes.forEach { fftwf_free($0) }; fftwf_free(planeReal) }
    }

    /// FFTW's planner is not thread-safe: every plan of the package is made under this lock.
    package static let plannerLock = NSLock()

    /// - Parameter padding: padded size over grid size per axis (at least 1; 2 is the default).
    package init(grid: VolumeGrid, padding: SIMD3<Int> = SIMD3(repeating: 2)) {
        precondition(padding.min() >= 1, "DipoleFieldSolver: padding factors must be at least 1")
        precondition(grid.ny >= 3, "DipoleFieldSolver: the grid needs at least 3 planes along y")
        self.grid = grid
        paddedX = grid.nx * padding.x; paddedY = grid.ny * padding.y; paddedZ = grid.nz * padding.z
        let (px, py, pz) = (paddedX, paddedY, paddedZ), hx = px / 2 + 1
        // The planes j0 - 1 ... j0 + 1 are at most this far from a slab of the grid.
        maxOffset = Swift.min(py - 1, Swift.max(grid.ny / 2 + 1, grid.ny - grid.ny / 2))
        let planeCount = pz * hx
        table = DipoleKernelTable.shared(grid: grid, padded: SIMD3(px, py, pz), maxOffset: maxOffset)
        let probe = Buffers(slabCount: pz * px, spectrumCount: planeCount)
        DipoleFieldSolver.plannerLock.lock()
        // The 2D transforms as their two 1D passes, skipping the rows that are zero (forward) or
        // not needed (inverse): rows z >= nz of a slab are padding.
        var n = Int32(px), m = Int32(pz)
        // Rows go through in blocks of 8 (offsets of 8 rows keep the planned 64-byte alignment), so a
        // block of zero rows of a slab is skipped; a grid whose nz is not a multiple of 8 is one block.
        rowBlock = grid.nz % 8 == 0 ? 8 : grid.nz
        forwardRows = fftwf_plan_many_dft_r2c(
            1, &n, Int32(rowBlock), probe.slab, nil, 1, Int32(px), probe.spectrum, nil, 1, Int32(hx),
            UInt32(FFTW_ESTIMATE))
        forwardColumns = fftwf_plan_many_dft(
            1, &m, Int32(hx), probe.spectrum, nil, Int32(hx), 1, probe.spectrum, nil, Int32(hx), 1, FFTW_FORWARD,
            UInt32(FFTW_ESTIMATE))
        inverseColumns = fftwf_plan_many_dft(
            1, &m, Int32(hx), probe.planes[0], nil, Int32(hx), 1, probe.planes[0], nil, Int32(hx), 1, FFTW_BACKWARD,
            UInt32(FFTW_ESTIMATE))
        inverseRows = fftwf_plan_many_dft_c2r(
            1, &n, Int32(grid.nz), probe.planes[0], nil, 1, Int32(hx), probe.planeReal, nil, 1, Int32(px),
            UInt32(FFTW_ESTIMATE))
        DipoleFieldSolver.plannerLock.unlock()
        freeBuffers = [probe]
    }

    deinit {
        DipoleFieldSolver.plannerLock.lock()
        for plan in [forwardRows, forwardColumns, inverseColumns, inverseRows] { fftwf_destroy_plan(plan) }
        DipoleFieldSolver.plannerLock.unlock()
    }

    private func takeBuffers() -> Buffers {
        lock.lock(); defer { lock.unlock() }
        if let b = freeBuffers.popLast() { return b }
        return Buffers(slabCount: paddedZ * paddedX, spectrumCount: paddedZ * (paddedX / 2 + 1))
    }

    private func giveBack(_ b: Buffers) { lock.lock(); freeBuffers.append(b); lock.unlock() }

    /// The field offset in Hz in the plane y = 0 for a source volume in tesla
    /// (mu0 M for saturated SPIO, B0 Delta chi for linear sources), stored [z][y][x] on `grid`.
    package func planeField(sourceTesla source: [Float]) -> PlaneField {
        precondition(
            source.count == grid.count, "DipoleFieldSolver: source has \(source.count) voxels, grid \(grid.count)")
        let b = takeBuffers(); defer { giveBack(b) }
        let (nx, ny, nz) = (grid.nx, grid.ny, grid.nz)
        let (px, pz) = (paddedX, paddedZ), hx = px / 2 + 1, planeCount = pz * hx
        let spectrum = UnsafeMutableRawPointer(b.spectrum).assumingMemoryBound(to: Float.self)
        let outs = b.planes.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: Float.self) }
        for o in outs { o.update(repeating: 0, count: 2 * planeCount) }
        let j0 = ny / 2
        source.withUnsafeBufferPointer { s in
            // Slabs without a source add nothing, nor do blocks of rows without one. Found in one
            // pass in memory order.
            let blocks = nz / rowBlock
            var used = [Bool](repeating: false, count: ny * blocks)
            for k in 0..<nz {
                for j in 0..<ny where !used[j * blocks + k / rowBlock] {
                    let row = s.baseAddress! + (k * ny + j) * nx
                    for i in 0..<nx where row[i] != 0 { used[j * blocks + k / rowBlock] = true; break }
                }
            }
            for j in 0..<ny where used[(j * blocks)..<((j + 1) * blocks)].contains(true) {
                for block in 0..<blocks {
                    let first = block * rowBlock
                    guard used[j * blocks + block] else {
                        (spectrum + 2 * first * hx).update(repeating: 0, count: 2 * rowBlock * hx)
                        continue
                    }
                    for k in first..<(first + rowBlock) {
                        (b.slab + k * px).update(from: s.baseAddress! + (k * ny + j) * nx, count: nx)
                    }
                    fftwf_execute_dft_r2c(forwardRows, b.slab + first * px, b.spectrum + first * hx)
                }
                // The column pass ran in place over the padding rows of the last slab.
                (spectrum + 2 * nz * hx).update(repeating: 0, count: 2 * (pz - nz) * hx)
                fftwf_execute_dft(forwardColumns, b.spectrum, b.spectrum)
                // Complex spectrum times real T_d, eight floats (four entries) at a time with each
                // T value spread over its entry's two floats; the three planes share one pass.
                let (t0, t1, t2) = (
                    table.values + abs(j0 - 1 - j) * planeCount, table.values + abs(j0 - j) * planeCount,
                    table.values + abs(j0 + 1 - j) * planeCount
                )
                let (o0, o1, o2) = (outs[0], outs[1], outs[2])
                func spread(_ t: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
                    let q = UnsafeRawPointer(t).loadUnaligned(as: SIMD4<Float>.self)
                    return SIMD8(q[0], q[0], q[1], q[1], q[2], q[2], q[3], q[3])
                }
                func accumulate(_ o: UnsafeMutablePointer<Float>, _ v: SIMD8<Float>, _ t: SIMD8<Float>) {
                    let raw = UnsafeMutableRawPointer(o)
                    raw.storeBytes(of: raw.loadUnaligned(as: SIMD8<Float>.self) + v * t, as: SIMD8<Float>.self)
                }
                var e = 0
                while e + 4 <= planeCount {
                    let v = UnsafeRawPointer(spectrum + 2 * e).loadUnaligned(as: SIMD8<Float>.self)
                    accumulate(o0 + 2 * e, v, spread(t0 + e))
                    accumulate(o1 + 2 * e, v, spread(t1 + e))
                    accumulate(o2 + 2 * e, v, spread(t2 + e))
                    e += 4
                }
                for e in e..<planeCount {
                    for part in 0..<2 {
                        let v = spectrum[2 * e + part]
                        o0[2 * e + part] += v * t0[e]; o1[2 * e + part] += v * t1[e]; o2[2 * e + part] += v * t2[e]
                    }
                }
            }
        }
        let scale = PhysicalConstants.gammaBarHzPerT / Double(px * pz)
        var planes: [[Float]] = []
        for plane in b.planes {
            fftwf_execute_dft(inverseColumns, plane, plane)
            fftwf_execute_dft_c2r(inverseRows, plane, b.planeReal)
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

/// T_d(kz, kx) of `DipoleFieldSolver` for one grid and padding: the costliest
/// part of a solver (about 0.5 s on one core for a 128^3 grid padded to 256^3), so it is made once per process
/// and shared by every solver of that geometry (a study simulates its training, validation and
/// test sets on the same grid). Rows kz are computed in parallel; each value is the same
/// double-precision sum in the same order on any thread count.
final class DipoleKernelTable: @unchecked Sendable {
    let values: UnsafeMutablePointer<Float>

    private struct Key: Hashable {
        let grid: VolumeGrid, padded: SIMD3<Int>, maxOffset: Int
    }
    private static var cache: [Key: DipoleKernelTable] = [:]
    private static let cacheLock = NSLock()

    static func shared(grid: VolumeGrid, padded: SIMD3<Int>, maxOffset: Int) -> DipoleKernelTable {
        let key = Key(grid: grid, padded: padded, maxOffset: maxOffset)
        // Held while computing, so two simulators of one geometry never compute it twice.
        cacheLock.lock(); defer { cacheLock.unlock() }
        if let table = cache[key] { return table }
        let table = DipoleKernelTable(grid: grid, padded: padded, maxOffset: maxOffset)
        cache[key] = table
        return table
    }

    private init(grid: VolumeGrid, padded: SIMD3<Int>, maxOffset: Int) {
        let (px, py, pz) = (padded.x, padded.y, padded.z), hx = px / 2 + 1, planeCount = pz * hx
        values = .allocate(capacity: (maxOffset + 1) * planeCount)
        let lx = Double(px) * grid.voxelMM.x, ly = Double(py) * grid.voxelMM.y, lz = Double(pz) * grid.voxelMM.z
        func signed(_ m: Int, _ n: Int) -> Double { Double(m <= n / 2 ? m : m - n) }
        // T_d = (1/py) sum_b D_b cos(2 pi b d / py), in double precision, with the cosines tabulated.
        var cosines = [Double](repeating: 0, count: (maxOffset + 1) * py)
        for d in 0...maxOffset {
            for b in 0..<py { cosines[d * py + b] = cos(2 * Double.pi * Double((b * d) % py) / Double(py)) }
        }
        let values = values
        cosines.withUnsafeBufferPointer { cosines in
            Engine.parallelFor(pz) { rows in
                var column = [Double](repeating: 0, count: py)
                for c in rows {
                    let kz = signed(c, pz) / lz
                    for a in 0..<hx {
                        let kx = Double(a) / lx
                        for b in 0..<py {
                            let ky = signed(b, py) / ly
                            let k2 = kx * kx + ky * ky + kz * kz
                            column[b] = k2 == 0 ? 0 : 1.0 / 3 - kz * kz / k2
                        }
                        for d in 0...maxOffset {
                            var t = 0.0
                            for b in 0..<py { t += column[b] * cosines[d * py + b] }
                            values[d * planeCount + c * hx + a] = Float(t / Double(py))
                        }
                    }
                }
            }
        }
    }

    deinit { values.deallocate() }
}
