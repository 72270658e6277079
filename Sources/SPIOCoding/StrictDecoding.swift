/// The strict-decoding rules every configuration type follows: unknown keys are errors, and
/// missing keys take the documented defaults.
package struct AnyCodingKey: CodingKey {
    package var stringValue: String
    package var intValue: Int? { nil }
    package init(stringValue: String) { self.stringValue = stringValue }
    package init?(intValue: Int) { nil }
}

package extension Decoder {
    /// Throws for any key of this mapping that `Keys` does not list, naming the allowed keys.
    func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_: Keys.Type) throws {
        let container = try self.container(keyedBy: AnyCodingKey.self)
        let allowed = Keys.allCases.map(\.stringValue)
        for key in container.allKeys where !allowed.contains(key.stringValue) {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: codingPath + [key],
                    debugDescription:
                        "unknown key '\(key.stringValue)'; expected one of: \(allowed.joined(separator: ", "))"))
        }
    }
}

/// Decoding into a value that already holds its default: an absent key leaves it unchanged.
package extension KeyedDecodingContainer {
    func update<T: Decodable>(_ value: inout T, _ key: Key) throws {
        if let v = try decodeIfPresent(T.self, forKey: key) { value = v }
    }

    /// A fixed-length list of numbers (a point, a range), with a message naming the length.
    func update<T: Decodable>(_ value: inout [T], _ key: Key, count: Int) throws {
        guard let v = try decodeIfPresent([T].self, forKey: key) else { return }
        guard v.count == count else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: self, debugDescription: "expected a list of \(count) numbers, got \(v.count)")
        }
        value = v
    }

    /// A choice among fixed words.
    func update(_ value: inout String, _ key: Key, among options: [String]) throws {
        guard let v = try decodeIfPresent(String.self, forKey: key) else { return }
        guard options.contains(v) else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: self, debugDescription: "'\(v)' is not one of: \(options.joined(separator: ", "))")
        }
        value = v
    }
}

package extension KeyedDecodingContainer {
    /// A choice among an enumeration's raw words, with the same message as `update(_:_:among:)`.
    func update<E: RawRepresentable & CaseIterable>(_ value: inout E, _ key: Key) throws where E.RawValue == String {
        var word = value.rawValue
        try update(&word, key, among: E.allCases.map(\.rawValue))
        value = E(rawValue: word)!
    }
}
