/// Decoding helpers shared by the configuration types: unknown keys are errors, and missing keys
/// take the documented defaults.
struct AnyCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension Decoder {
    /// Throws for any key of this mapping that `Keys` does not list, naming the allowed keys.
    func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_: Keys.Type) throws {
        let container = try self.container(keyedBy: AnyCodingKey.self)
        let allowed = Keys.allCases.map(\.stringValue)
        for key in container.allKeys where !allowed.contains(key.stringValue) {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath + [key],
                debugDescription: "unknown key '\(key.stringValue)'; expected one of: \(allowed.joined(separator: ", "))"))
        }
    }
}

extension KeyedDecodingContainer {
    /// The value for `key`, or `fallback` when the key is absent.
    func value<T: Decodable>(_ key: Key, or fallback: T) throws -> T {
        try decodeIfPresent(T.self, forKey: key) ?? fallback
    }

    /// A fixed-length list of numbers (a point, a range), with a message naming the length.
    func list<T: Decodable>(_ key: Key, count: Int, or fallback: [T]) throws -> [T] {
        guard let v = try decodeIfPresent([T].self, forKey: key) else { return fallback }
        guard v.count == count else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "expected a list of \(count) numbers, got \(v.count)")
        }
        return v
    }

    /// A choice among fixed words.
    func word(_ key: Key, among options: [String], or fallback: String) throws -> String {
        let v = try value(key, or: fallback)
        guard options.contains(v) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "'\(v)' is not one of: \(options.joined(separator: ", "))")
        }
        return v
    }
}
