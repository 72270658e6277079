import Foundation

/// JSON with sorted keys: the text configurations are stored, compared and hashed as, so equal
/// values give equal text whatever order their files wrote them in.
public func canonicalJSON<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: try! encoder.encode(value), as: UTF8.self)
}
