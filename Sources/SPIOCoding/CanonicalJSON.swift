import Foundation

/// JSON with sorted keys: the text configurations are stored, compared and hashed as, so equal
/// values give equal text whatever order their files wrote them in.
///
/// Configuration files cannot hold non-finite numbers (`ConfigFile` refuses them where they are
/// written), but values built in code can; they are written as the strings "inf", "-inf" and "nan"
/// instead of stopping the process, the one way plain Codable values fail to encode.
package func canonicalJSON<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return String(decoding: try! encoder.encode(value), as: UTF8.self)
}

/// Reads back what `canonicalJSON` wrote, its "inf", "-inf" and "nan" strings as the numbers they
/// stand for (a plain `JSONDecoder` refuses them: the noise sweep's noise-free point is one).
package func decodeCanonicalJSON<T: Decodable>(_ type: T.Type, from json: String) throws -> T {
    try decodeCanonicalJSON(type, from: Data(json.utf8))
}

/// `decodeCanonicalJSON` of a file's or a stream's bytes.
package func decodeCanonicalJSON<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return try decoder.decode(type, from: data)
}
