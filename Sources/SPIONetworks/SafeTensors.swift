import Foundation

/// Reads and writes the safetensors format: an 8-byte little-endian header length, a JSON header
/// `{name: {dtype, shape, data_offsets}, "__metadata__": {string: string}}`, then raw little-endian
/// tensor bytes. Only what checkpoints need: F32 and I64.
public enum SafeTensors {
    /// Element types we read and write.
    public enum DType: String, Sendable {
        case f32 = "F32", i64 = "I64"
        var size: Int { self == .f32 ? 4 : 8 }
    }

    /// One named tensor's type, shape and bytes (little-endian).
    public struct Entry: Equatable {
        public var dtype: DType
        public var shape: [Int]
        public var bytes: Data
        public init(dtype: DType, shape: [Int], bytes: Data) {
            self.dtype = dtype; self.shape = shape; self.bytes = bytes
        }

        /// An F32 entry from floats.
        public init(shape: [Int], floats: UnsafeBufferPointer<Float>) {
            self.init(dtype: .f32, shape: shape, bytes: Data(buffer: floats))
        }
        /// An I64 scalar (shape []).
        public init(int64 value: Int64) {
            var v = value.littleEndian
            self.init(dtype: .i64, shape: [], bytes: Data(bytes: &v, count: 8))
        }
        /// The I64 value of a one-element entry.
        public var int64Value: Int64? {
            guard dtype == .i64, bytes.count == 8 else { return nil }
            return bytes.withUnsafeBytes { Int64(littleEndian: $0.loadUnaligned(as: Int64.self)) }
        }
    }

    /// A failure to read a safetensors file, with the file and what was wrong.
    public struct FormatError: Error, CustomStringConvertible {
        public let path: String, reason: String
        public var description: String { "\(path): not a valid safetensors file: \(reason)" }
    }

    /// Writes `tensors` (in sorted name order) and `metadata` to `url` atomically.
    public static func write(_ tensors: [String: Entry], metadata: [String: String], to url: URL) throws {
        var header = "{"
        var parts: [String] = []
        if !metadata.isEmpty {
            let meta = metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(metadata[$0]!))" }
            parts.append("\"__metadata__\":{\(meta.joined(separator: ","))}")
        }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let e = tensors[name]!
            precondition(
                e.bytes.count == e.shape.reduce(1, *) * e.dtype.size,
                "safetensors entry \(name): byte count does not match its shape")
            parts.append(
                "\(jsonString(name)):{\"dtype\":\"\(e.dtype.rawValue)\","
                    + "\"shape\":[\(e.shape.map(String.init).joined(separator: ","))],"
                    + "\"data_offsets\":[\(offset),\(offset + e.bytes.count)]}"
            )
            offset += e.bytes.count
        }
        header += parts.joined(separator: ",") + "}"
        // Pad with spaces to 8-byte alignment, as the reference implementation does.
        while header.utf8.count % 8 != 0 { header += " " }
        var out = Data()
        var len = UInt64(header.utf8.count).littleEndian
        out.append(Data(bytes: &len, count: 8))
        out.append(header.data(using: .utf8)!)
        for name in names { out.append(tensors[name]!.bytes) }
        try out.write(to: url, options: .atomic)
    }

    /// Reads every tensor and the metadata of the file at `url`, checking the header thoroughly.
    public static func read(_ url: URL) throws -> (tensors: [String: Entry], metadata: [String: String]) {
        let path = url.path
        func fail(_ reason: String) -> FormatError { FormatError(path: path, reason: reason) }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw fail("cannot read the file (\(error.localizedDescription))")
        }
        guard data.count >= 8 else {
            throw fail("the file has \(data.count) bytes, fewer than the 8-byte header length")
        }
        let headerLength = data.prefix(8).withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength <= UInt64(data.count - 8), headerLength <= 100_000_000 else {
            throw fail(
                "header length \(headerLength) exceeds the file (\(data.count) bytes): truncated or not safetensors")
        }
        let headerData = data.subdata(in: 8..<(8 + Int(headerLength)))
        guard let json = try? JSONSerialization.jsonObject(with: headerData), let header = json as? [String: Any] else {
            throw fail("the header is not a JSON object")
        }
        let body = data.subdata(in: (8 + Int(headerLength))..<data.count)
        var tensors: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        var covered = 0
        var ranges: [(Int, Int, String)] = []
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else { throw fail("__metadata__ is not an object") }
                for (k, v) in m {
                    guard let s = v as? String else { throw fail("__metadata__ value for \(k) is not a string") }
                    metadata[k] = s
                }
                continue
            }
            guard let info = value as? [String: Any], let dt = info["dtype"] as? String,
                let shape = (info["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                let offs = (info["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                offs.count == 2
            else { throw fail("tensor \(name) lacks dtype, shape or data_offsets") }
            guard let dtype = DType(rawValue: dt) else {
                throw fail("tensor \(name) has dtype \(dt); only F32 and I64 are supported")
            }
            guard shape.allSatisfy({ $0 >= 0 }), offs[0] >= 0, offs[0] <= offs[1] else {
                throw fail("tensor \(name) has a negative size or offset")
            }
            guard offs[1] <= body.count else {
                throw fail(
                    "tensor \(name) ends at byte \(offs[1]) of the data but only \(body.count) are present: the file "
                        + "is truncated"
                )
            }
            var expected = dtype.size
            for d in shape {
                let (e, overflow) = expected.multipliedReportingOverflow(by: d)
                guard !overflow, e <= body.count else {
                    throw fail("tensor \(name) has shape \(shape), larger than the file's data")
                }
                expected = e
            }
            guard offs[1] - offs[0] == expected else {
                throw fail(
                    "tensor \(name) has shape \(shape) (\(expected) bytes) but its data_offsets span "
                        + "\(offs[1] - offs[0])"
                )
            }
            tensors[name] = Entry(dtype: dtype, shape: shape, bytes: body.subdata(in: offs[0]..<offs[1]))
            covered += expected
            ranges.append((offs[0], offs[1], name))
        }
        // The tensors tile the data section: two entries sharing bytes would alias one another.
        var end = 0
        for r in ranges.sorted(by: { ($0.0, $0.1) < ($1.0, $1.1) }) {
            guard r.0 >= end else { throw fail("tensor \(r.2) overlaps the tensor before it (bytes \(r.0)..<\(r.1))") }
            end = r.1
        }
        guard covered == body.count else {
            throw fail("the data section has \(body.count) bytes but the tensors cover \(covered)")
        }
        return (tensors, metadata)
    }

    private static func jsonString(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}
