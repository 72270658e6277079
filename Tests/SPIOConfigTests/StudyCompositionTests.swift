import Foundation
import SPIOTestSupport
import XCTest

@testable import SPIOConfig

/// The configuration layer on its own: trees with positions, strict decoding with
/// `file:line:column` errors, and composition of presets, grid and overrides, with toy blocks.
final class StudyCompositionTests: ScratchDirectoryTestCase {
    private struct Model: Decodable { var width = 1, depth = 1 }

    private let rules = StudyComposition.Rules(
        blocks: ["model", "evaluation", "simulation"], studyKeys: ["study", "presets", "grid", "variants"],
        presetKeys: ["description"], list: "evaluation.sets", inherited: "simulation", maximumRuns: 8,
        checkBlocks: { _ in })

    private func write(_ name: String, _ text: String) throws -> String {
        let path = (dir as NSString).appendingPathComponent(name)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testTreesKeepWhereEachValueWasWritten() throws {
        let tree = try ConfigTree(yaml: "model:\n  width: 3\n  depth: 2\n", file: "m.yaml")
        XCTAssertTrue(tree.contains("model.depth"))
        XCTAssertFalse(tree.contains("model.height"))
        XCTAssertEqual(tree.position(of: "model.depth")?.line, 3)
        XCTAssertEqual(tree.scalarText(at: "model.width"), "3")
        XCTAssertThrowsError(try ConfigTree(yaml: "- a\n- b\n", file: "list.yaml")) {
            XCTAssertTrue("\($0)".hasPrefix("list.yaml:1:"), "\($0)")
            XCTAssertTrue("\($0)".contains("expected a mapping at the top level"), "\($0)")
        }
    }

    func testABadValueIsReportedWhereItWasWritten() throws {
        XCTAssertThrowsError(try ConfigFile.decode(Model.self, yaml: "width: 2\ndepth: deep\n", file: "m.yaml")) {
            XCTAssertTrue("\($0)".hasPrefix("m.yaml:2:"), "\($0)")
            XCTAssertTrue("\($0)".contains("depth"), "\($0)")
        }
        XCTAssertEqual(try ConfigFile.decode(Model.self, yaml: "width: 2\ndepth: 1\n", file: "m.yaml").width, 2)
        XCTAssertThrowsError(try ConfigFile.decode(Model.self, yaml: "width: 2\n", file: "m.yaml")) {
            XCTAssertTrue("\($0)".contains("missing required key 'depth'"), "\($0)")
        }
    }

    /// Presets under the study's blocks, the grid in sorted key order, overrides last; a grid key
    /// outside the blocks and a grid larger than the limit are refused at their line.
    func testPresetsGridAndOverridesCompose() throws {
        _ = try write("preset.yaml", "description: shared\nmodel: {width: 4, depth: 9}\n")
        let study = try write(
            "study.yaml", "study: s\npresets: [preset.yaml]\nmodel: {depth: 2}\ngrid:\n  model.width: [8, 16]\n")
        var points: [(values: [(String, String)], width: Int, depth: Int)] = []
        try StudyComposition(path: study, rules: rules).compose(presets: ["preset.yaml"], overrides: []) { p in
            let m = try p.tree.decode(Model.self, key: "model")
            points.append((p.values, m.width, m.depth))
        }
        XCTAssertEqual(points.map { $0.values.map { "\($0.0)=\($0.1)" } }, [["model.width=8"], ["model.width=16"]])
        XCTAssertEqual(points.map(\.width), [8, 16])
        XCTAssertEqual(points.map(\.depth), [2, 2], "the study's own value wins over the preset's")
        var overridden: [Int] = []
        try StudyComposition(path: study, rules: rules).compose(presets: ["preset.yaml"], overrides: ["model.depth=5"])
        {
            overridden.append(try $0.tree.decode(Model.self, key: "model").depth)
        }
        XCTAssertEqual(overridden, [5, 5])

        let outside = try write("outside.yaml", "study: s\ngrid:\n  training.epochs: [1, 2]\n")
        XCTAssertThrowsError(
            try StudyComposition(path: outside, rules: rules).compose(presets: [], overrides: []) { _ in }
        ) {
            XCTAssertTrue("\($0)".contains("outside.yaml:3:") && "\($0)".contains("grid keys start with"), "\($0)")
        }
        let huge = try write("huge.yaml", "study: s\ngrid:\n  model.width: [1, 2, 3]\n  model.depth: [1, 2, 3]\n")
        XCTAssertThrowsError(
            try StudyComposition(path: huge, rules: rules).compose(presets: [], overrides: []) { _ in }
        ) {
            XCTAssertTrue("\($0)".contains("expands to more than 8 runs"), "\($0)")
        }
    }
}
