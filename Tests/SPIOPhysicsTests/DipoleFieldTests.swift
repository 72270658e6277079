import XCTest
@testable import SPIOPhysics

/// The field of voxelised shapes against analytic solutions (forward-model.md section 3).
final class DipoleFieldTests: XCTestCase {
    /// delta = field / (mu0 M): with a source of 1 T, the plane field in Hz over gammaBar.
    private func relativeField(_ objects: [SceneObject], grid: VolumeGrid, padding: SIMD3<Int>) -> [Double] {
        var source = [Float](repeating: 0, count: grid.count)
        Voxeliser(subsamples: 4).accumulate(objects, grid: grid, into: &source) { _ in 1 }
        let plane = DipoleFieldSolver(grid: grid, padding: padding).planeField(sourceTesla: source)
        return plane.fieldHz.map { Double($0) / PhysicalConstants.gammaBarHzPerT }
    }

    func testSphereMatchesAnalyticDipoleOutside() {
        let grid = VolumeGrid(cube: 64, fovMM: 50)
        let a = 8 * grid.voxelMM.x
        let delta = relativeField(
            [SceneObject(shape: .sphere(centerMM: .zero, radiusMM: a))], grid: grid, padding: SIMD3(repeating: 2))
        var worst = 0.0, inside = 0.0, checked = 0
        for k in 0..<grid.nz {
            for i in 0..<grid.nx {
                let p = grid.centreMM(i, grid.ny / 2, k)
                let r = (p.x * p.x + p.z * p.z).squareRoot()
                if r > 1.5 * a {
                    let c = p.z / r
                    let exact = (1.0 / 3) * pow(a / r, 3) * (3 * c * c - 1)
                    worst = max(worst, abs(delta[k * grid.nx + i] - exact)); checked += 1
                } else if r < 0.5 * a {
                    inside = max(inside, abs(delta[k * grid.nx + i]))
                }
            }
        }
        print(
            "sphere a = 8 voxels: max |error| outside r > 1.5a = \(worst) over \(checked) points; max |delta| inside "
                + "r < a/2 = \(inside)"
        )
        XCTAssertLessThan(worst, 2e-3)
        XCTAssertLessThan(inside, 5e-3)
    }

    /// A cylinder along y spanning the whole (unpadded, so periodic) y axis is infinite. The FFT
    /// field has zero mean over the x-z cell; the analytic one has mean -1/6 x area fraction.
    func testInfiniteCylinderPerpendicularToB0() {
        let grid = VolumeGrid(cube: 64, fovMM: 50)
        let a = 8 * grid.voxelMM.x
        let cylinder = SceneObject(
            shape: .cylinder(centerMM: .zero, radiusMM: a, lengthMM: 1000, axis: PointMM(0, 1, 0)))
        let padding = SIMD3(2, 1, 2)
        var delta = relativeField([cylinder], grid: grid, padding: padding)
        let cellArea = Double(grid.nx * padding.x) * grid.voxelMM.x * Double(grid.nz * padding.z) * grid.voxelMM.z
        let offset = -1.0 / 6 * Double.pi * a * a / cellArea
        delta = delta.map { $0 + offset }
        var worstOut = 0.0, worstIn = 0.0
        for k in 0..<grid.nz {
            for i in 0..<grid.nx {
                let p = grid.centreMM(i, grid.ny / 2, k)
                let r = (p.x * p.x + p.z * p.z).squareRoot()
                let v = delta[k * grid.nx + i]
                if r > 1.5 * a {
                    let cos2phi = (p.z * p.z - p.x * p.x) / (r * r)  // phi from B0 (z)
                    worstOut = max(worstOut, abs(v - 0.5 * (a / r) * (a / r) * cos2phi))
                } else if r < 0.5 * a {
                    worstIn = max(worstIn, abs(v + 1.0 / 6))
                }
            }
        }
        print("cylinder a = 8 voxels: max |error| outside r > 1.5a = \(worstOut), inside r < a/2 = \(worstIn)")
        XCTAssertLessThan(worstOut, 2e-3)
        XCTAssertLessThan(worstIn, 5e-3)
    }

    func testFieldScalesWithConcentrationAndIsInHz() throws {
        var config = SimulationConfig()
        config.imageSize = 32
        config.scene = SceneConfig(kind: "objects")
        var o = ObjectConfig(); o.radiusMM = 5; o.concentrationUgPerMM3 = 10
        config.scene.objects = [o]
        let sim = try ViewLineSimulator(config: config)
        XCTAssertEqual(sim.sourceTesla(o.object), 4e-7 * .pi * 100 * 10, accuracy: 1e-12)
        let f10 = try sim.sample(0).fieldHz
        config.scene.objects[0].concentrationUgPerMM3 = 5
        let f5 = try ViewLineSimulator(config: config).sample(0).fieldHz
        for (a, b) in zip(f10, f5) { XCTAssertEqual(Double(a), 2 * Double(b), accuracy: 1e-3 * max(1, abs(Double(a)))) }
        // Units: the largest offset (on the z axis at the surface) is 2/3 mu0 M gammaBar = 35.7 kHz;
        // the nearest pixel centres sit a little off the surface.
        let peak = Double(f10.max()!), surface = (2.0 / 3) * 4e-7 * .pi * 1000 * PhysicalConstants.gammaBarHzPerT
        XCTAssertGreaterThan(peak, 0.3 * surface)
        XCTAssertLessThan(peak, surface)
    }
}
