/// A point in millimetres: x (phase encoding), y (through the image plane), z (B0 and readout).
package typealias PointMM = SIMD3<Double>

/// The solid shapes of a scene (paper eqs. 2 and 3, plus shapes for phantoms and tests).
/// All sizes are in millimetres.
package enum Shape: Equatable, Sendable {
    case sphere(centerMM: PointMM, radiusMM: Double)
    /// A finite cylinder; `axis` need not be normalised.
    case cylinder(centerMM: PointMM, radiusMM: Double, lengthMM: Double, axis: PointMM)
    case box(centerMM: PointMM, sizeMM: PointMM)
    /// Axis along z as in the paper: (sqrt((x-x0)^2 + (y-y0)^2) - R)^2 + (z-z0)^2 <= r^2.
    case torus(centerMM: PointMM, majorRadiusMM: Double, minorRadiusMM: Double)
    /// sum_i 1/|x - x_i|^2 >= l with l in mm^-2.
    case metaball(centersMM: [PointMM], thresholdPerMM2: Double)

    /// Whether `p` is inside; for many points, take `insideTest()` once instead.
    package func contains(_ p: PointMM) -> Bool { insideTest()(p) }

    /// The inside test with the shape's parameters unpacked once: for the voxeliser's hot loops,
    /// where matching the enum on every point costs more than the test itself.
    package func insideTest() -> (PointMM) -> Bool {
        switch self {
        case let .sphere(c, r):
            let r2 = r * r
            return { p in
                let d = p - c; return (d * d).sum() <= r2
            }
        case let .cylinder(c, r, length, axis):
            let a = axis / (axis * axis).sum().squareRoot(), r2 = r * r, half = length / 2
            return { p in
                let d = p - c
                let along = (d * a).sum(), radial = d - along * a
                return abs(along) <= half && (radial * radial).sum() <= r2
            }
        case let .box(c, size):
            let half = size / 2
            return { p in
                let d = p - c; return abs(d.x) <= half.x && abs(d.y) <= half.y && abs(d.z) <= half.z
            }
        case let .torus(c, bigR, r):
            let r2 = r * r
            return { p in
                let d = p - c
                let ring = (d.x * d.x + d.y * d.y).squareRoot() - bigR
                return ring * ring + d.z * d.z <= r2
            }
        case let .metaball(centers, l):
            let storage = MetaballCentres(centers)
            // Every term is positive, so the partial sums only grow: once one reaches l the point
            // is inside, whatever the remaining centres add (the same answer as the full sum).
            return { p in
                var s = 0.0
                for i in 0..<storage.count {
                    let d = p - storage.pointer[i]
                    let r2 = (d * d).sum()
                    if r2 == 0 { return true }
                    s += 1 / r2
                    if s >= l { return true }
                }
                return false
            }
        }
    }

    /// Which of the first `lanes` points (xs[i], y, z) are inside, as bit i of the answer: the
    /// voxeliser's corners and sub-samples along x, four at a time. Metaballs and tori, the random
    /// scenes' shapes, are tested on all four lanes at once with the same arithmetic per point as
    /// `insideTest()` (the same operations in the same order), so the answers are the same bit for
    /// bit.
    package func insideLanes() -> (_ xs: SIMD4<Double>, _ y: Double, _ z: Double, _ lanes: Int) -> UInt8 {
        func bits(_ inside: SIMDMask<SIMD4<Int64>>, _ lanes: Int) -> UInt8 {
            var m: UInt8 = 0
            for i in 0..<lanes where inside[i] { m |= 1 << i }
            return m
        }
        switch self {
        case let .torus(c, bigR, r):
            let r2 = r * r
            return { xs, y, z, lanes in
                let dx = xs - c.x, dy = y - c.y, dz = z - c.z
                let ring = (dx * dx + dy * dy).squareRoot() - bigR
                return bits(ring * ring + dz * dz .<= r2, lanes)
            }
        case let .metaball(centers, l):
            let storage = MetaballCentres(centers)
            // A centre hit exactly gives 1/0 = +inf, which is >= l, as the scalar test's early
            // return says.
            return { xs, y, z, lanes in
                var s = SIMD4<Double>(repeating: 0)
                for i in 0..<storage.count {
                    let c = storage.pointer[i]
                    let dx = xs - c.x, dy = y - c.y, dz = z - c.z
                    s += 1 / ((dx * dx + dy * dy) + dz * dz)
                }
                return bits(s .>= l, lanes)
            }
        default:
            let inside = insideTest()
            return { xs, y, z, lanes in
                var m: UInt8 = 0
                for i in 0..<lanes where inside(PointMM(xs[i], y, z)) { m |= 1 << i }
                return m
            }
        }
    }

    /// An axis-aligned box (min, max) that contains the shape.
    package var boundsMM: (PointMM, PointMM) {
        switch self {
        case let .sphere(c, r): return (c - r, c + r)
        case let .cylinder(c, r, length, axis):
            let a = axis / (axis * axis).sum().squareRoot()
            // Half-extent per axis: |a_i| L/2 + r sqrt(1 - a_i^2).
            let ones = PointMM(repeating: 1)
            let radial: PointMM = (ones - a * a).squareRoot() * r
            let absA = PointMM(abs(a.x), abs(a.y), abs(a.z))
            let e: PointMM = absA * (length / 2) + radial
            return (c - e, c + e)
        case let .box(c, size): return (c - size / 2, c + size / 2)
        case let .torus(c, bigR, r):
            let e = PointMM(bigR + r, bigR + r, r)
            return (c - e, c + e)
        case let .metaball(centers, l):
            // Inside needs some |x - x_i|^2 <= n / l.
            let reach = (Double(centers.count) / l).squareRoot()
            var lo = PointMM(repeating: .infinity), hi = PointMM(repeating: -.infinity)
            for c in centers { lo = pointwiseMin(lo, c - reach); hi = pointwiseMax(hi, c + reach) }
            return (lo, hi)
        }
    }
}

/// One object of a scene: a shape filled with SPIO at a concentration, or with a linear
/// susceptibility difference (air), or both.
package struct SceneObject: Equatable, Sendable {
    package var shape: Shape
    /// Iron concentration in ug Fe / mm^3 (= mg/mL).
    package var concentrationUgPerMM3: Double
    /// Volume susceptibility difference to tissue, SI, in parts per million.
    package var deltaChiPPM: Double

    package init(shape: Shape, concentrationUgPerMM3: Double = 0, deltaChiPPM: Double = 0) {
        self.shape = shape; self.concentrationUgPerMM3 = concentrationUgPerMM3; self.deltaChiPPM = deltaChiPPM
    }
}

/// The metaball centres of an `insideTest` closure in plain memory, so the hot loop reads them
/// without retaining an array per point.
private final class MetaballCentres {
    let pointer: UnsafeMutablePointer<PointMM>
    let count: Int
    init(_ centres: [PointMM]) {
        count = centres.count
        pointer = .allocate(capacity: count)
        pointer.initialize(from: centres, count: count)
    }
    deinit { pointer.deallocate() }
}
