import XCTest
@testable import SPIOPhysics
import SPIOTensor

final class ShapeTests: XCTestCase {
    /// The voxeliser's four-lane test gives, lane for lane, the scalar inside test's answer
    /// (it must: the simulator's output, and so every dataset hash, depends on it bit for bit).
    /// Points are drawn in and around each shape, some on a metaball centre exactly, and every
    /// lane count from 1 to 4 is used.
    func testFourLaneTestAgreesWithTheScalarTest() {
        var rng = SeededGenerator(seed: 7)
        func point(_ lo: Double, _ hi: Double) -> PointMM {
            PointMM(rng.uniform(lo, hi), rng.uniform(lo, hi), rng.uniform(lo, hi))
        }
        var shapes: [Shape] = []
        for _ in 0..<20 {
            let centres = (0..<Int(rng.uniform(1, 6))).map { _ in point(-3, 3) }
            shapes.append(.metaball(centersMM: centres, thresholdPerMM2: rng.uniform(0.2, 2)))
            shapes.append(
                .torus(centerMM: point(-2, 2), majorRadiusMM: rng.uniform(1, 3), minorRadiusMM: rng.uniform(0.3, 1)))
        }
        shapes.append(.sphere(centerMM: PointMM(0.5, 0, -1), radiusMM: 2))
        shapes.append(.cylinder(centerMM: .zero, radiusMM: 1, lengthMM: 4, axis: PointMM(1, 1, 0)))
        var tested = 0, inside = 0
        for shape in shapes {
            let scalar = shape.insideTest(), fourLanes = shape.insideLanes()
            let centre: PointMM? = if case let .metaball(c, _) = shape { c[0] } else { nil }
            for trial in 0..<400 {
                let lanes = trial % 4 + 1
                let y = rng.uniform(-4, 4), z = rng.uniform(-4, 4)
                var xs = SIMD4<Double>((0..<4).map { _ in rng.uniform(-4, 4) })
                var (py, pz) = (y, z)
                if let centre, trial % 50 == 0 { xs[0] = centre.x; py = centre.y; pz = centre.z }
                let expected = (0..<lanes).reduce(UInt8(0)) { m, i in
                    scalar(PointMM(xs[i], py, pz)) ? m | 1 << i : m
                }
                XCTAssertEqual(fourLanes(xs, py, pz, lanes), expected, "\(shape), lanes \(lanes)")
                tested += lanes; inside += expected.nonzeroBitCount
            }
        }
        // Both answers occur often, so agreement is not the trivial all-outside case.
        XCTAssertGreaterThan(inside, 1000)
        XCTAssertGreaterThan(tested - inside, 1000)
    }
}
