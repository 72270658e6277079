import XCTest
import Foundation
@testable import SPIOImageIO

/// The NIfTI reader against nibabel (fixtures and expected values from Fixtures/make_fixtures.py).
final class NIfTIVolumeTests: XCTestCase {
    private var fixtures: String { Bundle.module.resourcePath! + "/Fixtures" }

    private struct Expected: Decodable {
        let shape: [Int]; let values: [Double]; let datatype: Int; let pixdim: [Double]
    }

    func testMatchesNibabel() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixtures + "/expected.json"))
        let expected = try JSONDecoder().decode([String: Expected].self, from: data)
        XCTAssertEqual(expected.count, 7)
        for (name, e) in expected.sorted(by: { $0.key < $1.key }) {
            let v = try NIfTIVolume.read(fixtures + "/" + name)
            XCTAssertEqual([v.nx, v.ny, v.nz], e.shape, name)
            XCTAssertEqual(v.datatype, e.datatype, name)
            XCTAssertEqual(v.voxelSizeMM.x, e.pixdim[0], accuracy: 1e-6);
            XCTAssertEqual(v.voxelSizeMM.z, e.pixdim[2], accuracy: 1e-6)
            XCTAssertEqual(v.values.count, e.values.count, name)
            for (a, b) in zip(v.values, e.values) {
                XCTAssertEqual(Double(a), b, accuracy: 1e-6 * max(1, abs(b)), name)
            }
        }
    }

    private func tempPath(_ name: String) -> String { NSTemporaryDirectory() + "spio-nifti-\(getpid())-" + name }

    private func assertError(_ path: String, contains text: String, file: StaticString = #filePath, line: UInt = #line)
    {
        XCTAssertThrowsError(try NIfTIVolume.read(path), file: file, line: line) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains(path), "message names the file: \(message)", file: file, line: line)
            XCTAssertTrue(message.contains(text), "expected '\(text)' in: \(message)", file: file, line: line)
        }
    }

    func testBadFilesGiveClearErrors() throws {
        assertError(tempPath("missing.nii"), contains: "no such file")
        let good = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixtures + "/float32.nii")))
        // Wrong magic.
        var bad = good; bad[344] = UInt8(ascii: "x")
        let magic = tempPath("magic.nii"); try Data(bad).write(to: URL(fileURLWithPath: magic))
        assertError(magic, contains: "magic")
        // Not NIfTI at all.
        let junk = tempPath("junk.nii"); try Data(repeating: 7, count: 400).write(to: URL(fileURLWithPath: junk))
        assertError(junk, contains: "sizeof_hdr")
        // Absurd dimensions: dim[0] = 9, then a negative size.
        bad = good; bad[40] = 9
        let rank = tempPath("rank.nii"); try Data(bad).write(to: URL(fileURLWithPath: rank))
        assertError(rank, contains: "dim[0]")
        bad = good; bad[42] = 0xff; bad[43] = 0xff
        let negative = tempPath("negative.nii"); try Data(bad).write(to: URL(fileURLWithPath: negative))
        assertError(negative, contains: "absurd dimensions")
        bad = good; bad[42] = 0xff; bad[43] = 0x7f; bad[44] = 0xff; bad[45] = 0x7f; bad[46] = 0xff; bad[47] = 0x7f
        let huge = tempPath("huge.nii"); try Data(bad).write(to: URL(fileURLWithPath: huge))
        assertError(huge, contains: "absurd dimensions")
        // Truncated data and truncated gzip.
        let short = tempPath("short.nii"); try Data(good.prefix(good.count - 8)).write(to: URL(fileURLWithPath: short))
        assertError(short, contains: "truncated")
        let gz = try [UInt8](Data(contentsOf: URL(fileURLWithPath: fixtures + "/float32_gz.nii.gz")))
        let cut = tempPath("cut.nii.gz"); try Data(gz.prefix(gz.count / 2)).write(to: URL(fileURLWithPath: cut))
        assertError(cut, contains: "gzip")
        let tiny = tempPath("tiny.nii"); try Data(good.prefix(100)).write(to: URL(fileURLWithPath: tiny))
        assertError(tiny, contains: "too short")
        assertError(tempPath("image.png"), contains: ".nii")
    }
}
