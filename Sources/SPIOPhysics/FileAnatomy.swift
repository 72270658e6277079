import Foundation
import SPIOTensor
import SPIOImageIO
import SPIODigest

/// Slices of real images: NIfTI-1 volumes (a file or every .nii/.nii.gz in a folder, e.g. IXI PD)
/// or an NPY stack (N x H x W, or one H x W image). Each call picks a file and a slice from the
/// central `sliceFraction` of the third axis (or from a `slab` of it, so that training and test
/// sets can be drawn from slabs that share no slice), resamples it bilinearly to the image matrix and
/// scales it so its 99.5th percentile is 1. Files are read once and kept.
package final class FileAnatomy: Anatomy, @unchecked Sendable {
    package let paths: [String]
    package let sliceFraction: Double
    /// [from, to) fractions of the third axis, or nil for the central `sliceFraction`.
    package let slab: [Double]?
    private var cache: [String: (nx: Int, ny: Int, nz: Int, values: [Float])] = [:]
    private let lock = NSLock()

    /// - Parameter path: a .nii, .nii.gz or .npy file, or a folder of NIfTI files.
    package init(path: String, sliceFraction: Double = 0.5, slab: [Double]? = nil) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FileError(path, "no such file or folder")
        }
        paths = try Self.files(at: path)
        guard sliceFraction > 0 && sliceFraction <= 1 else {
            throw SimulationError.invalid("anatomy.sliceFraction must be in (0, 1]")
        }
        self.sliceFraction = sliceFraction
        self.slab = slab
    }

    /// The volumes at `path`: the file itself, or a folder's .nii, .nii.gz and .npy files by name.
    package static func files(at path: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FileError(path, "no such file or folder")
        }
        guard isDirectory.boolValue else {
            guard path.hasSuffix(".nii") || path.hasSuffix(".nii.gz") || path.hasSuffix(".npy") else {
                throw FileError(path, "expected a .nii, .nii.gz or .npy file")
            }
            return [path]
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
            .filter { $0.hasSuffix(".nii") || $0.hasSuffix(".nii.gz") || $0.hasSuffix(".npy") }
        guard !names.isEmpty else { throw FileError(path, "folder holds no .nii, .nii.gz or .npy files") }
        return names.map { (path as NSString).appendingPathComponent($0) }
    }

    /// SHA-256 over the volumes at `path` (each file's name within a folder and its contents'
    /// digest): what a dataset drawn from them is keyed by, so an edited or replaced volume is
    /// simulated again and a moved one is not. Kept per process by path, size, inode and modification
    /// time.
    package static func contentDigest(_ path: String) throws -> String {
        var key = path
        let files = try files(at: path)
        for f in files {
            let a = try FileManager.default.attributesOfItem(atPath: f)
            let size = (a[.size] as? NSNumber)?.intValue ?? -1,
                inode = (a[.systemFileNumber] as? NSNumber)?.intValue ?? -1
            key += "|\(f) \(size) \(inode) \((a[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)"
        }
        if let known = digestLock.withLock({ digests[key] }) { return known }
        var listing = ""
        for f in files {
            guard let bytes = FileManager.default.contents(atPath: f) else { throw FileError(f, "cannot be read") }
            listing += "\((f as NSString).lastPathComponent) \(SHA256.hex(bytes))\n"
        }
        let digest = SHA256.hex(listing)
        digestLock.withLock { digests[key] = digest }
        return digest
    }
    nonisolated(unsafe) private static var digests: [String: String] = [:]
    private static let digestLock = NSLock()

    /// The slice indices drawn from in a volume of `nz` slices: the slab's, or the central fraction.
    package func sliceRange(nz: Int) -> Range<Int> {
        if let slab {
            let first = Swift.min(nz - 1, Int((slab[0] * Double(nz)).rounded(.down)))
            let end = Swift.max(first + 1, Swift.min(nz, Int((slab[1] * Double(nz)).rounded(.up))))
            return first..<end
        }
        let span = Swift.max(1, Int((Double(nz) * sliceFraction).rounded()))
        let first = (nz - span) / 2
        return first..<(first + span)
    }

    private func volume(_ path: String) throws -> (nx: Int, ny: Int, nz: Int, values: [Float]) {
        lock.lock(); defer { lock.unlock() }
        if let v = cache[path] { return v }
        let v: (nx: Int, ny: Int, nz: Int, values: [Float])
        if path.hasSuffix(".npy") {
            let a = try NPYArray.read(path)
            switch a.shape.count {
            case 2: v = (a.shape[1], a.shape[0], 1, a.values)
            case 3: v = (a.shape[2], a.shape[1], a.shape[0], a.values)
            default: throw FileError(path, "expected an image (H x W) or a stack (N x H x W), got shape \(a.shape)")
            }
        } else {
            let nii = try NIfTIVolume.read(path)
            v = (nii.nx, nii.ny, nii.nz, nii.values)
        }
        guard v.nx >= 2 && v.ny >= 2 else { throw FileError(path, "images of \(v.nx) x \(v.ny) are too small") }
        cache[path] = v
        return v
    }

    package func slice(pixels n: Int, fovMM: Double, rng: inout SeededGenerator) throws -> [Float] {
        let path = paths[rng.int(in: 0...(paths.count - 1))]
        let v = try volume(path)
        let range = sliceRange(nz: v.nz)
        let k = range.lowerBound + rng.int(in: 0...(range.count - 1))
        let plane = Array(v.values[(k * v.nx * v.ny)..<((k + 1) * v.nx * v.ny)])
        var out = FileAnatomy.resample(plane, width: v.nx, height: v.ny, to: n)
        let sorted = out.sorted()
        let top = sorted[Swift.min(sorted.count - 1, Int(Double(sorted.count) * 0.995))]
        let scale: Float = top > 0 ? 1 / top : 1
        for i in out.indices { out[i] = Swift.min(1, Swift.max(0, out[i] * scale)) }
        return out
    }

    /// Bilinear resampling of a width x height image (x fastest) to n x n, aligning pixel centres.
    package static func resample(_ image: [Float], width: Int, height: Int, to n: Int) -> [Float] {
        var out = [Float](repeating: 0, count: n * n)
        for r in 0..<n {
            for c in 0..<n {
                let y = (Double(r) + 0.5) * Double(height) / Double(n) - 0.5,
                    x = (Double(c) + 0.5) * Double(width) / Double(n) - 0.5
                out[r * n + c] = Float(bilinearSample(image, width: width, height: height, x: x, y: y))
            }
        }
        return out
    }
}
