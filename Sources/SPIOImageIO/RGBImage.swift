import Foundation
import CPNG

/// An 8-bit RGB raster, row 0 at the top, written as PNG through libpng's simplified API.
package struct RGBImage {
    package let width: Int, height: Int
    package var pixels: [UInt8]

    package init(width: Int, height: Int, fill: (UInt8, UInt8, UInt8) = (255, 255, 255)) {
        self.width = width; self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) { pixels[3 * i] = fill.0; pixels[3 * i + 1] = fill.1; pixels[3 * i + 2] = fill.2 }
    }

    package subscript(x: Int, y: Int) -> (UInt8, UInt8, UInt8) {
        get { let i = 3 * (y * width + x); return (pixels[i], pixels[i + 1], pixels[i + 2]) }
        set {
            let i = 3 * (y * width + x); pixels[i] = newValue.0; pixels[i + 1] = newValue.1; pixels[i + 2] = newValue.2
        }
    }

    /// Sets a pixel, ignoring coordinates outside the image.
    package mutating func plot(_ x: Int, _ y: Int, _ c: (UInt8, UInt8, UInt8)) {
        if x >= 0 && x < width && y >= 0 && y < height { self[x, y] = c }
    }

    /// Copies `other` with its top-left corner at (x, y), clipped to this image.
    package mutating func paste(_ other: RGBImage, x: Int, y: Int) {
        for j in 0..<other.height { for i in 0..<other.width { plot(x + i, y + j, other[i, j]) } }
    }

    /// Reads any PNG (grey, palette, 16-bit, alpha) converted to 8-bit RGB by libpng.
    /// The largest PNG `readPNG` accepts (8192 x 8192).
    package static let maximumPixels = 8192 * 8192

    package static func readPNG(_ path: String) throws -> RGBImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        func message() -> String {
            withUnsafeBytes(of: image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        guard FileManager.default.fileExists(atPath: path) else { throw FileError(path, "no such file") }
        guard png_image_begin_read_from_file(&image, path) != 0 else {
            let m = message(); png_image_free(&image)
            throw FileError(path, "not a readable PNG: \(m)")
        }
        image.format = UInt32(PNG_FORMAT_RGB)
        // The header's size is checked before the pixels are allocated (libpng allows 10^6 x 10^6).
        guard Int(image.width) * Int(image.height) <= maximumPixels else {
            png_image_free(&image)
            throw FileError(
                path, "is \(image.width) x \(image.height) pixels; at most \(maximumPixels) pixels are read")
        }
        var out = RGBImage(width: Int(image.width), height: Int(image.height))
        let ok = out.pixels.withUnsafeMutableBytes {
            png_image_finish_read(&image, nil, $0.baseAddress, Int32(out.width * 3), nil)
        }
        guard ok != 0 else {
            let m = message(); png_image_free(&image)
            throw FileError(path, "PNG read failed: \(m)")
        }
        return out
    }

    /// Writes the image as a PNG, atomically (a temporary file renamed into place).
    package func writePNG(to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let tmp = PartialPath.of(path)
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width); image.height = UInt32(height)
        image.format = UInt32(PNG_FORMAT_RGB)
        let ok = pixels.withUnsafeBytes {
            png_image_write_to_file(&image, tmp, 0, $0.baseAddress, Int32(width * 3), nil)
        }
        if ok == 0 {
            let message = withUnsafeBytes(of: image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            png_image_free(&image)
            try? FileManager.default.removeItem(atPath: tmp)
            throw FileError(path, "PNG write failed: \(message)")
        }
        if rename(tmp, path) != 0 { throw FileError(path, "cannot be written (rename failed)") }
    }
}
