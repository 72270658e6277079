import SPIOCoding
import Foundation
import SPIOTensor

/// How each sample's SPIO (and air) objects are made.
/// - `random`: the paper's generator: 1-5 metaballs and tori sharing one concentration.
/// - `objects`: exactly the listed objects.
/// - `bottle`: the agar phantom's SPIO bottle, a cylinder along y.
/// - `none`: no objects.
/// Listed `objects` are added to the random and bottle scenes too (e.g. an air sphere).
package struct SceneConfig: Codable, Equatable, Sendable {
    package static let kinds = ["random", "objects", "bottle", "none"]
    package var kind = "random"
    package var shapeCount = [1, 5]
    package var concentrationRangeUgPerMM3 = [0.22, 17.5]
    package var shapeKinds = ["metaball", "torus"]
    /// Centres lie within this fraction of the FOV (centred) in x and z ...
    package var centreFraction = 0.6
    /// ... and within this distance of the image plane.
    package var planeDistanceMM = 3.0
    package var metaballThresholdRangePerMM2 = [0.01, 0.05]
    package var metaballCentreCount = [1, 4]
    /// Metaball centres lie within this distance of each other.
    package var metaballSpreadMM = 8.0
    package var torusMinorRadiusRangeMM = [2.0, 4.0]
    package var torusMajorRadiusRangeMM = [5.0, 10.0]
    package var objects: [ObjectConfig] = []
    /// The bottle scene.
    package var concentrationUgPerMM3 = 13.95
    package var bottleRadiusMM = 4.0
    package var bottleLengthMM = 30.0
    package var bottleCentreMM = [0.0, 0.0, 0.0]

    package init() {}
    package init(kind: String) { self.kind = kind }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case kind, shapeCount, concentrationRangeUgPerMM3, shapeKinds, centreFraction, planeDistanceMM,
            metaballThresholdRangePerMM2, metaballCentreCount, metaballSpreadMM, torusMinorRadiusRangeMM,
            torusMajorRadiusRangeMM, objects, concentrationUgPerMM3, bottleRadiusMM, bottleLengthMM, bottleCentreMM
    }

    package init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&kind, .kind, among: SceneConfig.kinds)
        try c.update(&shapeCount, .shapeCount, count: 2)
        try c.update(&concentrationRangeUgPerMM3, .concentrationRangeUgPerMM3, count: 2)
        try c.update(&shapeKinds, .shapeKinds)
        for k in shapeKinds where !["metaball", "torus", "sphere"].contains(k) {
            throw DecodingError.dataCorruptedError(
                forKey: .shapeKinds, in: c, debugDescription: "'\(k)' is not one of: metaball, torus, sphere")
        }
        try c.update(&centreFraction, .centreFraction)
        try c.update(&planeDistanceMM, .planeDistanceMM)
        try c.update(&metaballThresholdRangePerMM2, .metaballThresholdRangePerMM2, count: 2)
        try c.update(&metaballCentreCount, .metaballCentreCount, count: 2)
        try c.update(&metaballSpreadMM, .metaballSpreadMM)
        try c.update(&torusMinorRadiusRangeMM, .torusMinorRadiusRangeMM, count: 2)
        try c.update(&torusMajorRadiusRangeMM, .torusMajorRadiusRangeMM, count: 2)
        try c.update(&objects, .objects)
        try c.update(&concentrationUgPerMM3, .concentrationUgPerMM3)
        try c.update(&bottleRadiusMM, .bottleRadiusMM)
        try c.update(&bottleLengthMM, .bottleLengthMM)
        try c.update(&bottleCentreMM, .bottleCentreMM, count: 3)
    }

    func validate() throws {
        func range<T: Comparable>(_ r: [T], _ name: String) throws {
            if r[0] > r[1] { throw SimulationError.invalid("scene.\(name): low end above high end") }
        }
        try range(shapeCount, "shapeCount"); try range(concentrationRangeUgPerMM3, "concentrationRangeUgPerMM3")
        try range(metaballThresholdRangePerMM2, "metaballThresholdRangePerMM2");
        try range(metaballCentreCount, "metaballCentreCount")
        try range(torusMinorRadiusRangeMM, "torusMinorRadiusRangeMM");
        try range(torusMajorRadiusRangeMM, "torusMajorRadiusRangeMM")
        if shapeCount[0] < 1 || metaballCentreCount[0] < 1 {
            throw SimulationError.invalid("scene: counts must be at least 1")
        }
        if metaballThresholdRangePerMM2[0] <= 0 {
            throw SimulationError.invalid("scene.metaballThresholdRangePerMM2 must be positive")
        }
        if concentrationRangeUgPerMM3[0] < 0 {
            throw SimulationError.invalid("scene.concentrationRangeUgPerMM3 must not be negative")
        }
        if kind == "random" && shapeKinds.isEmpty { throw SimulationError.invalid("scene.shapeKinds is empty") }
    }

    /// The objects of one sample.
    package func objects(fovMM: Double, rng: inout SeededGenerator) -> [SceneObject] {
        var out = objects.map { $0.object }
        switch kind {
        case "random":
            let c = rng.uniform(concentrationRangeUgPerMM3[0], concentrationRangeUgPerMM3[1])
            let half = centreFraction * fovMM / 2
            func centre() -> PointMM {
                PointMM(
                    rng.uniform(-half, half), rng.uniform(-planeDistanceMM, planeDistanceMM), rng.uniform(-half, half))
            }
            for _ in 0..<rng.int(in: shapeCount[0]...shapeCount[1]) {
                let kind = shapeKinds[rng.int(in: 0...(shapeKinds.count - 1))]
                let shape: Shape
                switch kind {
                case "torus":
                    shape = .torus(
                        centerMM: centre(),
                        majorRadiusMM: rng.uniform(torusMajorRadiusRangeMM[0], torusMajorRadiusRangeMM[1]),
                        minorRadiusMM: rng.uniform(torusMinorRadiusRangeMM[0], torusMinorRadiusRangeMM[1]))
                case "sphere":
                    shape = .sphere(
                        centerMM: centre(),
                        radiusMM: rng.uniform(torusMinorRadiusRangeMM[0], torusMajorRadiusRangeMM[0]))
                default:
                    // Centres within `metaballSpreadMM` of each other: uniform in a ball of half that radius.
                    let middle = centre()
                    let count = rng.int(in: metaballCentreCount[0]...metaballCentreCount[1])
                    var centres: [PointMM] = []
                    while centres.count < count {
                        let p = PointMM(rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(-1, 1))
                        if (p * p).sum() <= 1 { centres.append(middle + p * (metaballSpreadMM / 2)) }
                    }
                    shape = .metaball(
                        centersMM: centres,
                        thresholdPerMM2: rng.uniform(metaballThresholdRangePerMM2[0], metaballThresholdRangePerMM2[1]))
                }
                out.append(SceneObject(shape: shape, concentrationUgPerMM3: c))
            }
        case "bottle":
            out.append(
                SceneObject(
                    shape: .cylinder(
                        centerMM: PointMM(bottleCentreMM[0], bottleCentreMM[1], bottleCentreMM[2]),
                        radiusMM: bottleRadiusMM, lengthMM: bottleLengthMM, axis: PointMM(0, 1, 0)),
                    concentrationUgPerMM3: concentrationUgPerMM3))
        default: break
        }
        return out
    }
}

/// One object written out in a config, e.g.
/// `{shape: sphere, centerMM: [0, 0, 5], radiusMM: 3, concentrationUgPerMM3: 10}` or an air
/// sphere `{shape: sphere, centerMM: [8, 0, 0], radiusMM: 4, deltaChiPPM: 9.4}`.
package struct ObjectConfig: Codable, Equatable, Sendable {
    package static let shapes = ["sphere", "cylinder", "box", "torus", "metaball"]
    package var shape = "sphere"
    package var centerMM = [0.0, 0.0, 0.0]
    package var radiusMM = 3.0
    package var lengthMM = 20.0
    /// Cylinder axis direction (x, y, z).
    package var axis = [0.0, 1.0, 0.0]
    package var sizeMM = [4.0, 4.0, 4.0]
    package var majorRadiusMM = 7.0, minorRadiusMM = 3.0
    package var centersMM: [[Double]] = []
    package var thresholdPerMM2 = 0.03
    package var concentrationUgPerMM3 = 0.0
    package var deltaChiPPM = 0.0

    package init() {}
    enum CodingKeys: String, CodingKey, CaseIterable {
        case shape, centerMM, radiusMM, lengthMM, axis, sizeMM, majorRadiusMM, minorRadiusMM, centersMM,
            thresholdPerMM2,
            concentrationUgPerMM3, deltaChiPPM
    }
    package init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try c.update(&shape, .shape, among: ObjectConfig.shapes)
        try c.update(&centerMM, .centerMM, count: 3); try c.update(&radiusMM, .radiusMM)
        try c.update(&lengthMM, .lengthMM); try c.update(&axis, .axis, count: 3)
        try c.update(&sizeMM, .sizeMM, count: 3)
        try c.update(&majorRadiusMM, .majorRadiusMM); try c.update(&minorRadiusMM, .minorRadiusMM)
        try c.update(&centersMM, .centersMM)
        if shape == "metaball" && (centersMM.isEmpty || centersMM.contains { $0.count != 3 }) {
            throw DecodingError.dataCorruptedError(
                forKey: .centersMM, in: c, debugDescription: "a metaball needs centersMM, a list of [x, y, z] points")
        }
        try c.update(&thresholdPerMM2, .thresholdPerMM2)
        try c.update(&concentrationUgPerMM3, .concentrationUgPerMM3)
        try c.update(&deltaChiPPM, .deltaChiPPM)
        if axis.allSatisfy({ $0 == 0 }) {
            throw DecodingError.dataCorruptedError(forKey: .axis, in: c, debugDescription: "the axis must not be zero")
        }
        if [radiusMM, lengthMM, majorRadiusMM, minorRadiusMM, thresholdPerMM2].contains(where: { $0 <= 0 })
            || sizeMM.contains(where: { $0 <= 0 })
        {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "object sizes must be positive"))
        }
    }

    package var object: SceneObject {
        let p = PointMM(centerMM[0], centerMM[1], centerMM[2])
        let s: Shape
        switch shape {
        case "cylinder":
            s = .cylinder(centerMM: p, radiusMM: radiusMM, lengthMM: lengthMM, axis: PointMM(axis[0], axis[1], axis[2]))
        case "box": s = .box(centerMM: p, sizeMM: PointMM(sizeMM[0], sizeMM[1], sizeMM[2]))
        case "torus": s = .torus(centerMM: p, majorRadiusMM: majorRadiusMM, minorRadiusMM: minorRadiusMM)
        case "metaball":
            s = .metaball(centersMM: centersMM.map { PointMM($0[0], $0[1], $0[2]) }, thresholdPerMM2: thresholdPerMM2)
        default: s = .sphere(centerMM: p, radiusMM: radiusMM)
        }
        return SceneObject(shape: s, concentrationUgPerMM3: concentrationUgPerMM3, deltaChiPPM: deltaChiPPM)
    }
}
