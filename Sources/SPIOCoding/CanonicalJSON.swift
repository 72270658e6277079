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
