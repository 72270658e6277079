import XCTest
import Foundation
@testable import SPIOImageIO
@testable import SPIOPlots

final class PNGTests: XCTestCase {
    func testWritesAValidPNGWithTheRightSize() throws {
        var image = RGBImage(width: 20, height: 10)
        for y in 0..<10 { for x in 0..<20 { image[x, y] = ColourMap.viridis.rgb(Double(x + y) / 28) } }
        let path = NSTemporaryDirectory() + "spio-png-\(getpid()).png"
        try image.writePNG(to: path)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        XCTAssertEqual(Array(bytes[0..<8]), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        func be32(_ o: Int) -> Int { (0..<4).reduce(0) { $0 << 8 | Int(bytes[o + $1]) } }
        XCTAssertEqual(String(decoding: bytes[12..<16], as: UTF8.self), "IHDR")
        XCTAssertEqual(be32(16), image.width); XCTAssertEqual(be32(20), image.height)
        // The colour map's ends: top-left is its minimum, bottom-right its maximum.
        XCTAssertEqual(image[0, 0].0, ColourMap.viridis.rgb(0).0)
        XCTAssertEqual(image[19, 9].1, ColourMap.viridis.rgb(1).1)
    }

    func testUnwritablePathIsAnError() {
        XCTAssertThrowsError(try RGBImage(width: 2, height: 2).writePNG(to: "/proc/forbidden/x.png"))
    }

    /// Written and read back exactly; a non-PNG and a missing file are errors naming the path.
    func testReadBackAndErrors() throws {
        var image = RGBImage(width: 3, height: 2)
        image[0, 0] = (1, 2, 3); image[2, 1] = (250, 128, 7)
        let path = NSTemporaryDirectory() + "spio-png-\(getpid()).png"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try image.writePNG(to: path)
        let back = try RGBImage.readPNG(path)
        XCTAssertEqual(back.width, 3); XCTAssertEqual(back.height, 2)
        XCTAssertEqual(back.pixels, image.pixels)
        try "not a png".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try RGBImage.readPNG(path)) {
            XCTAssertTrue("\($0)".contains(path) && "\($0)".contains("not a readable PNG"), "\($0)")
        }
        XCTAssertThrowsError(try RGBImage.readPNG(path + ".missing")) {
            XCTAssertTrue("\($0)".contains("no such file"), "\($0)")
        }
    }
}
