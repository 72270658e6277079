/// A point in millimetres: x (phase encoding), y (through the image plane), z (B0 and readout).
public typealias PointMM = SIMD3<Double>

/// The solid shapes of a scene (paper eqs. 2 and 3, plus shapes for phantoms and tests).
/// All sizes are in millimetres.
public enum Shape: Equatable, Sendable {
    case sphere(centerMM: PointMM, radiusMM: Double)
    /// A finite cylinder; `axis` need not be normalised.
    case cylinder(centerMM: PointMM, radiusMM: Double, lengthMM: Double, axis: PointMM)
    case box(centerMM: PointMM, sizeMM: PointMM)
    /// Axis along z as in the paper: (sqrt((x-x0)^2 + (y-y0)^2) - R)^2 + (z-z0)^2 <= r^2.
    case torus(centerMM: PointMM, majorRadiusMM: Double, minorRadiusMM: Double)
    /// sum_i 1/|x - x_i|^2 >= l with l in mm^-2.
    case metaball(centersMM: [PointMM], thresholdPerMM2: Double)

    public func contains(_ p: PointMM) -> Bool {
        switch self {
        case let .sphere(c, r):
            let d = p - c
            return (d * d).sum() <= r * r
        case let .cylinder(c, r, length, axis):
            let a = axis / (axis * axis).sum().squareRoot(), d = p - c
            let along = (d * a).sum(), radial = d - along * a
            return abs(along) <= length / 2 && (radial * radial).sum() <= r * r
        case let .box(c, size):
            let d = p - c
            return abs(d.x) <= size.x / 2 && abs(d.y) <= size.y / 2 && abs(d.z) <= size.z / 2
        case let .torus(c, bigR, r):
            let d = p - c
            let ring = (d.x * d.x + d.y * d.y).squareRoot() - bigR
            return ring * ring + d.z * d.z <= r * r
        case let .metaball(centers, l):
            var s = 0.0
            for c in centers {
                let d = p - c
                let r2 = (d * d).sum()
                if r2 == 0 { return true }
                s += 1 / r2
            }
            return s >= l
        }
    }

    /// The inside test with the shape's parameters unpacked once: for the voxeliser's hot loops,
    /// where matching the enum on every point costs more than the test itself.
    public func insideTest() -> (PointMM) -> Bool {
        switch self {
        case let .sphere(c, r):
            let r2 = r * r
            return { p in let d = p - c; return (d * d).sum() <= r2 }
        case let .torus(c, bigR, r):
            let r2 = r * r
            return { p in
                let d = p - c
                let ring = (d.x * d.x + d.y * d.y).squareRoot() - bigR
                return ring * ring + d.z * d.z <= r2
            }
        case let .metaball(centers, l):
            let count = centers.count
            let storage = UnsafeMutablePointer<PointMM>.allocate(capacity: count)
            storage.initialize(from: centers, count: count)
            let box = MetaballStorage(storage)
            return { p in
                _ = box
                var s = 0.0
                for i in 0..<count {
                    let d = p - storage[i]
                    let r2 = (d * d).sum()
                    if r2 == 0 { return true }
                    s += 1 / r2
                }
                return s >= l
            }
        default:
            return { p in self.contains(p) }
        }
    }

    /// An axis-aligned box (min, max) that contains the shape.
    public var boundsMM: (PointMM, PointMM) {
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
public struct SceneObject: Equatable, Sendable {
    public var shape: Shape
    /// Iron concentration in ug Fe / mm^3 (= mg/mL).
    public var concentrationUgPerMM3: Double
    /// Volume susceptibility difference to tissue, SI, in parts per million.
    public var deltaChiPPM: Double

    public init(shape: Shape, concentrationUgPerMM3: Double = 0, deltaChiPPM: Double = 0) {
        self.shape = shape; self.concentrationUgPerMM3 = concentrationUgPerMM3; self.deltaChiPPM = deltaChiPPM
    }
}

/// Owns the unpacked metaball centres of an `insideTest` closure.
private final class MetaballStorage {
    let pointer: UnsafeMutablePointer<PointMM>
    init(_ pointer: UnsafeMutablePointer<PointMM>) { self.pointer = pointer }
    deinit { pointer.deallocate() }
}
