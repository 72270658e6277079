import Foundation

/// A NIfTI-1 volume (single file, `.nii` or `.nii.gz`) read into Float with scl_slope and
/// scl_inter applied as nibabel does (slope 0 or not finite means no scaling).
/// Values are in file order: x fastest, then y, then z (`values[(z * ny + y) * nx + x]`).
package struct NIfTIVolume {
    /// Voxel counts along x, y, z (a 2D image has nz = 1).
    package let nx: Int, ny: Int, nz: Int
    /// Voxel sizes in millimetres (pixdim[1...3]).
    package let voxelSizeMM: (x: Double, y: Double, z: Double)
    /// The NIfTI datatype code of the file (2 uint8, 4 int16, 8 int32, 16 float32, 64 float64, ...).
    package let datatype: Int
    package let values: [Float]

    package subscript(x: Int, y: Int, z: Int) -> Float { values[(z * ny + y) * nx + x] }

    package static func read(_ path: String) throws -> NIfTIVolume {
        guard path.hasSuffix(".nii") || path.hasSuffix(".nii.gz") else {
            throw FileError(path, "expected a .nii or .nii.gz file")
        }
        return try decode(FileBytes.read(path), path: path)
    }

    package static func decode(_ bytes: [UInt8], path: String) throws -> NIfTIVolume {
        guard bytes.count >= 348 else {
            throw FileError(path, "too short for a NIfTI-1 header (\(bytes.count) bytes, need 348)")
        }
        let le = readInt(bytes, 0, 4, bigEndian: false), be = readInt(bytes, 0, 4, bigEndian: true)
        let bigEndian: Bool
        if le == 348 {
            bigEndian = false
        } else if be == 348 {
            bigEndian = true
        } else {
            throw FileError(path, "not a NIfTI-1 file (sizeof_hdr is \(le), expected 348)")
        }
        let magic = String(decoding: bytes[344..<347], as: UTF8.self)
        guard magic == "n+1" else {
            throw FileError(
                path,
                magic == "ni1"
                    ? "two-file NIfTI (.hdr/.img) is not supported" : "wrong NIfTI magic \"\(magic)\" (expected n+1)")
        }
        func int16(_ o: Int) -> Int {
            let v = readInt(bytes, o, 2, bigEndian: bigEndian); return v >= 32768 ? v - 65536 : v
        }
        func float32(_ o: Int) -> Float { Float(bitPattern: UInt32(readInt(bytes, o, 4, bigEndian: bigEndian))) }
        let rank = int16(40)
        guard (1...7).contains(rank) else { throw FileError(path, "absurd dim[0] = \(rank) (expected 1 to 7)") }
        let dims = (1...7).map { $0 <= rank ? int16(40 + 2 * $0) : 1 }
        guard dims.allSatisfy({ $0 >= 1 }) else { throw FileError(path, "absurd dimensions \(Array(dims[0..<rank]))") }
        let (nx, ny, nz) = (dims[0], dims[1], dims[2])
        guard nx.multipliedReportingOverflow(by: ny).partialValue <= Int(Int32.max),
            nx * ny <= Int(Int32.max) / nz
        else { throw FileError(path, "absurd dimensions \(Array(dims[0..<rank])): too many voxels") }
        let datatype = int16(70)
        let type: ElementType
        switch datatype {
        case 2: type = ElementType(kind: .unsigned, size: 1, bigEndian: bigEndian)
        case 4: type = ElementType(kind: .signed, size: 2, bigEndian: bigEndian)
        case 8: type = ElementType(kind: .signed, size: 4, bigEndian: bigEndian)
        case 16: type = ElementType(kind: .float, size: 4, bigEndian: bigEndian)
        case 64: type = ElementType(kind: .float, size: 8, bigEndian: bigEndian)
        case 256: type = ElementType(kind: .signed, size: 1, bigEndian: bigEndian)
        case 512: type = ElementType(kind: .unsigned, size: 2, bigEndian: bigEndian)
        case 768: type = ElementType(kind: .unsigned, size: 4, bigEndian: bigEndian)
        default: throw FileError(path, "unsupported NIfTI datatype \(datatype)")
        }
        // vox_offset is a float: NaN or 1e30 must be an error, not a trap converting it to Int.
        let voxOffset = float32(108)
        guard voxOffset.isFinite, voxOffset >= 348, voxOffset <= Float(bytes.count) else {
            throw FileError(path, "bad vox_offset \(voxOffset) (expected 348 to the file's \(bytes.count) bytes)")
        }
        let offset = Int(voxOffset)
        let count = nx * ny * nz  // the first volume when dims 4-7 hold more than one
        guard bytes.count >= offset + count * type.size else {
            throw FileError(
                path,
                "truncated: \(nx)x\(ny)x\(nz) voxels of \(type.size) bytes need \(offset + count * type.size) bytes, "
                    + "file has \(bytes.count)"
            )
        }
        let slope = float32(112), inter = float32(116)
        let scaled = slope != 0 && slope.isFinite
        let values: [Float] = bytes.withUnsafeBytes { raw in
            (0..<count).map { i in
                let v = type.value(raw, at: offset + i * type.size)
                return scaled ? Float(Double(v) * Double(slope) + Double(inter.isFinite ? inter : 0)) : v
            }
        }
        let pix = (1...3).map { Double(abs(float32(76 + 4 * $0))) }
        return NIfTIVolume(
            nx: nx, ny: ny, nz: nz,
            voxelSizeMM: (pix[0] > 0 ? pix[0] : 1, pix[1] > 0 ? pix[1] : 1, pix[2] > 0 ? pix[2] : 1),
            datatype: datatype, values: values)
    }

    private static func readInt(_ b: [UInt8], _ o: Int, _ size: Int, bigEndian: Bool) -> Int {
        (0..<size).reduce(0) { $0 | Int(b[o + (bigEndian ? size - 1 - $1 : $1)]) << (8 * $1) }
    }
}
