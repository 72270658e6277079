/// A voxel grid over the field of view. Voxel i along an axis of n voxels of size d is centred at
/// (i - n/2) d millimetres, so the image plane y = 0 is the centre of voxel ny/2.
/// Volumes are stored [z][y][x], x fastest.
package struct VolumeGrid: Hashable, Sendable {
    package let nx: Int, ny: Int, nz: Int
    package let voxelMM: PointMM

    package init(nx: Int, ny: Int, nz: Int, voxelMM: PointMM) {
        precondition(nx > 0 && ny > 0 && nz > 0 && voxelMM.min() > 0, "VolumeGrid needs positive sizes")
        self.nx = nx; self.ny = ny; self.nz = nz; self.voxelMM = voxelMM
    }

    /// A cube of n voxels per axis covering `fovMM`.
    package init(cube n: Int, fovMM: Double) {
        self.init(nx: n, ny: n, nz: n, voxelMM: PointMM(repeating: fovMM / Double(n)))
    }

    package var count: Int { nx * ny * nz }
    package var sizes: SIMD3<Int> { SIMD3(nx, ny, nz) }

    package func centreMM(_ i: Int, _ j: Int, _ k: Int) -> PointMM {
        PointMM(Double(i - nx / 2), Double(j - ny / 2), Double(k - nz / 2)) * voxelMM
    }

    /// Index ranges (per axis, clamped) of voxels that may overlap the box [lo, hi].
    func voxelRange(_ lo: PointMM, _ hi: PointMM) -> (SIMD3<Int>, SIMD3<Int>) {
        let n = SIMD3<Double>(Double(nx / 2), Double(ny / 2), Double(nz / 2))
        let a = ((lo / voxelMM) + n - 0.5).rounded(.down), b = ((hi / voxelMM) + n + 0.5).rounded(.up)
        let maxIndex = sizes &- 1
        let first = pointwiseMax(SIMD3<Int>(repeating: 0), SIMD3<Int>(a))
        let last = pointwiseMin(maxIndex, SIMD3<Int>(b))
        return (first, last)
    }
}

/// Voxelises scene objects with partial volume: a voxel whose 8 corners agree is taken as fully
/// inside or outside; a voxel on a boundary is sub-sampled `subsamples`^3 times.
package struct Voxeliser: Sendable {
    package var subsamples = 4

    package init(subsamples: Int = 4) { precondition(subsamples >= 1); self.subsamples = subsamples }

    /// Adds value(object) x (volume fraction of the object in each voxel) into `volume`.
    package func accumulate(
        _ objects: [SceneObject], grid: VolumeGrid, into volume: inout [Float],
        value: (SceneObject) -> Double
    ) {
        precondition(volume.count == grid.count, "Voxeliser: volume has \(volume.count) voxels, grid \(grid.count)")
        for object in objects {
            let v = value(object)
            if v == 0 { continue }
            let (lo, hi) = object.shape.boundsMM
            let (first, last) = grid.voxelRange(lo, hi)
            if any(first .> last) { continue }
            let insideLanes = object.shape.insideLanes()
            let span = last &- first &+ 1, cs = span &+ 1
            // Corner (a, b, c) of the sub-grid sits at the low corner of voxel first + (a, b, c):
            // centreMM(i, j, k) - voxel / 2 per axis, tested four corners along x at a time.
            var corner = [Bool](repeating: false, count: cs.x * cs.y * cs.z)
            // Whether any corner of line (c, b) is inside: a row of voxels whose four corner lines
            // have none is outside whole (fraction 0), which is most rows of a metaball's box.
            var lineInside = [Bool](repeating: false, count: cs.y * cs.z)
            let lanesX = SIMD4<Double>(0, 1, 2, 3), halfVoxel = grid.voxelMM / 2
            for c in 0...span.z {
                let z = Double(first.z + c - grid.nz / 2) * grid.voxelMM.z - halfVoxel.z
                for b in 0...span.y {
                    let y = Double(first.y + b - grid.ny / 2) * grid.voxelMM.y - halfVoxel.y
                    for a0 in stride(from: 0, through: span.x, by: 4) {
                        let lanes = Swift.min(4, span.x + 1 - a0)
                        let xs = (Double(first.x + a0 - grid.nx / 2) + lanesX) * grid.voxelMM.x - halfVoxel.x
                        let inside = insideLanes(xs, y, z, lanes)
                        for l in 0..<lanes { corner[(c * cs.y + b) * cs.x + a0 + l] = inside & (1 << l) != 0 }
                        if inside != 0 { lineInside[c * cs.y + b] = true }
                    }
                }
            }
            let s = subsamples, inv = 1 / Double(s)
            let offsetsX = SIMD4<Double>(0.5, 1.5, 2.5, 3.5)
            for c in 0..<span.z {
                for b in 0..<span.y {
                    let line = c * cs.y + b
                    if !(lineInside[line] || lineInside[line + 1] || lineInside[line + cs.y]
                        || lineInside[line + cs.y + 1])
                    {
                        continue
                    }
                    for a in 0..<span.x {
                        var insideCorners = 0
                        for dz in 0...1 {
                            for dy in 0...1 {
                                for dx in 0...1 where corner[((c + dz) * cs.y + b + dy) * cs.x + a + dx] {
                                    insideCorners += 1
                                }
                            }
                        }
                        let (i, j, k) = (first.x + a, first.y + b, first.z + c)
                        var fraction: Double
                        if insideCorners == 8 {
                            fraction = 1
                        } else if insideCorners == 0 {
                            fraction = 0
                        } else {
                            // Sub-sample (sx, sy, sz) sits at base + ((s. + 0.5) / s) * voxel per axis.
                            let base = grid.centreMM(i, j, k) - grid.voxelMM / 2
                            var hits = 0
                            for sz in 0..<s {
                                let z = base.z + ((Double(sz) + 0.5) * inv) * grid.voxelMM.z
                                for sy in 0..<s {
                                    let y = base.y + ((Double(sy) + 0.5) * inv) * grid.voxelMM.y
                                    for x0 in stride(from: 0, to: s, by: 4) {
                                        let lanes = Swift.min(4, s - x0)
                                        let xs = base.x + ((offsetsX + Double(x0)) * inv) * grid.voxelMM.x
                                        hits += insideLanes(xs, y, z, lanes).nonzeroBitCount
                                    }
                                }
                            }
                            fraction = Double(hits) / Double(s * s * s)
                        }
                        if fraction > 0 { volume[(k * grid.ny + j) * grid.nx + i] += Float(v * fraction) }
                    }
                }
            }
        }
    }

    /// The partial-volume fraction-weighted value of `objects` in the plane y = `yMM`, on an
    /// n x n pixel grid over `fovMM` (pixel centres at -fov/2 + (i + 1/2) d), each pixel
    /// sub-sampled `subsamples`^2 times. Row = z, column = x.
    package func plane(
        _ objects: [SceneObject], pixels n: Int, fovMM: Double, yMM: Double = 0,
        value: (SceneObject) -> Double
    ) -> [Float] {
        let s = subsamples, d = fovMM / Double(n), fine = n * s
        var out = [Float](repeating: 0, count: n * n)
        for object in objects {
            let v = value(object)
            let (lo, hi) = object.shape.boundsMM
            if v == 0 || yMM < lo.y || yMM > hi.y { continue }
            func fineRange(_ a: Double, _ b: Double) -> Range<Int> {
                let i0 = Swift.max(0, Int(((a + fovMM / 2) / d * Double(s)).rounded(.down)))
                let i1 = Swift.min(fine, Int(((b + fovMM / 2) / d * Double(s)).rounded(.up)) + 1)
                return i0..<Swift.max(i0, i1)
            }
            let weight = v / Double(s * s)
            let inside = object.shape.insideTest()
            for fz in fineRange(lo.z, hi.z) {
                for fx in fineRange(lo.x, hi.x) {
                    let p = PointMM(
                        -fovMM / 2 + (Double(fx) + 0.5) * d / Double(s), yMM,
                        -fovMM / 2 + (Double(fz) + 0.5) * d / Double(s))
                    if inside(p) { out[(fz / s) * n + fx / s] += Float(weight) }
                }
            }
        }
        return out
    }
}
