import Foundation

/// An n-dimensional array as NumPy's NPY format stores it, held as Float in C order.
/// Writes version 1.0, little-endian float32; reads float32/64, (u)int8/16/32/64 and bool of
/// either byte order (converted to Float), C order only.
package struct NPYArray: Equatable {
    package var shape: [Int]
    package var values: [Float]

    package init(shape: [Int], values: [Float]) {
        precondition(
            shape.reduce(1, *) == values.count, "NPYArray: shape \(shape) does not hold \(values.count) values")
        self.shape = shape; self.values = values
    }

    /// The NPY bytes (header padded so the data starts on a 64-byte boundary).
    package static func encode(shape: [Int], values: UnsafeBufferPointer<Float>) -> [UInt8] {
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(dims), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        let len = UInt16(header.utf8.count)
        bytes += [UInt8(len & 0xff), UInt8(len >> 8)] + Array(header.utf8)
        bytes.reserveCapacity(bytes.count + values.count * 4)
        #if _endian(little)
        // The values' own bytes are the file's ('<f4'): one copy instead of four appends per value.
        bytes.append(contentsOf: UnsafeRawBufferPointer(values))
        #else
        for v in values {
            let b = v.bitPattern.littleEndian
            bytes += [UInt8(b & 0xff), UInt8((b >> 8) & 0xff), UInt8((b >> 16) & 0xff), UInt8(b >> 24)]
        }
        #endif
        return bytes
    }

    package func write(to path: String) throws {
        let bytes = values.withUnsafeBufferPointer { NPYArray.encode(shape: shape, values: $0) }
        try FileBytes.writeAtomically(bytes, to: path)
    }

    package static func read(_ path: String) throws -> NPYArray {
        try decode(FileBytes.read(path), path: path)
    }

    package static func decode(_ bytes: [UInt8], path: String) throws -> NPYArray {
        guard bytes.count >= 10, bytes[0] == 0x93, Array(bytes[1...5]) == Array("NUMPY".utf8) else {
            throw FileError(path, "not an NPY file (bad magic)")
        }
        let major = bytes[6]
        let headerLength: Int, start: Int
        switch major {
        case 1: headerLength = Int(bytes[8]) | Int(bytes[9]) << 8; start = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw FileError(path, "truncated NPY header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }; start = 12
        default: throw FileError(path, "unsupported NPY version \(major)")
        }
        guard bytes.count >= start + headerLength else { throw FileError(path, "truncated NPY header") }
        let header = String(decoding: bytes[start..<(start + headerLength)], as: UTF8.self)
        guard let descr = field(header, "descr").map({ $0.trimmingCharacters(in: CharacterSet(charactersIn: "'\"")) }),
            let shapeText = field(header, "shape")
        else { throw FileError(path, "NPY header lacks descr or shape: \(header)") }
        if field(header, "fortran_order") == "True" {
            throw FileError(path, "Fortran-order NPY arrays are not supported")
        }
        let shape = try shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() ")).split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            .map { (s: String) -> Int in
                guard let v = Int(s), v >= 0 else { throw FileError(path, "bad NPY shape \(shapeText)") }
                return v
            }
        guard let type = ElementType(descr) else { throw FileError(path, "unsupported NPY dtype \(descr)") }
        let dataStart = start + headerLength
        // The declared shape is checked against the bytes present before anything is allocated; a
        // header claiming 10^30 values must not overflow or abort.
        var count = 1
        for d in shape {
            let (c, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, c <= (bytes.count - dataStart) / max(1, type.size) || d == 0 else {
                throw FileError(
                    path,
                    "truncated or corrupt: shape \(shapeText) of \(descr) needs more than the "
                        + "\(bytes.count - dataStart) data bytes present"
                )
            }
            count = c
        }
        guard bytes.count - dataStart >= count * type.size else {
            throw FileError(
                path,
                "truncated: \(count) values of \(descr) need \(count * type.size) bytes, \(bytes.count - dataStart) "
                    + "present"
            )
        }
        let values = bytes.withUnsafeBytes { raw in
            (0..<count).map { type.value(raw, at: dataStart + $0 * type.size) }
        }
        return NPYArray(shape: shape, values: values)
    }

    /// The text after `'key':` up to the next top-level comma (a tuple counts as one value).
    private static func field(_ header: String, _ key: String) -> String? {
        guard let r = header.range(of: "'\(key)':") else { return nil }
        var depth = 0, out = ""
        for ch in header[r.upperBound...] {
            if ch == "(" { depth += 1 } else if ch == ")" { depth -= 1 }
            if (ch == "," || ch == "}") && depth == 0 { break }
            out.append(ch)
            if depth < 0 { break }
        }
        return out.trimmingCharacters(in: .whitespaces)
    }
}

/// A NumPy scalar type as written in `descr`, read into Float.
struct ElementType {
    enum Kind { case float, signed, unsigned }
    let kind: Kind, size: Int, bigEndian: Bool

    init?(_ descr: String) {
        guard descr.count >= 3 else { return nil }
        let order = descr.first!, code = descr.dropFirst().first!, digits = Int(descr.dropFirst(2))
        bigEndian = order == ">"
        guard let size = digits, order == "<" || order == ">" || order == "|" || order == "=" else { return nil }
        self.size = size
        switch (code, size) {
        case ("f", 4), ("f", 8): kind = .float
        case ("i", 1), ("i", 2), ("i", 4), ("i", 8): kind = .signed
        case ("u", 1), ("u", 2), ("u", 4), ("u", 8), ("b", 1): kind = .unsigned
        default: return nil
        }
    }

    init(kind: Kind, size: Int, bigEndian: Bool) { self.kind = kind; self.size = size; self.bigEndian = bigEndian }

    func value(_ raw: UnsafeRawBufferPointer, at offset: Int) -> Float {
        var bits: UInt64 = 0
        for i in 0..<size { bits |= UInt64(raw[offset + (bigEndian ? size - 1 - i : i)]) << (8 * UInt64(i)) }
        switch (kind, size) {
        case (.float, 4): return Float(bitPattern: UInt32(bits))
        case (.float, _): return Float(Double(bitPattern: bits))
        case (.unsigned, _): return Float(bits)
        case (.signed, _):
            let shift = UInt64(64 - 8 * size)
            return Float(Int64(bitPattern: bits << shift) >> Int64(shift))
        }
    }
}
