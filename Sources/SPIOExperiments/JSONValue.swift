import Foundation
import SPIOCoding

/// Dotted key -> value text of an encodable value (lists as JSON), for the params table.
func flatten<T: Encodable>(_ value: T, prefix: String) -> [String: String] {
    let tree = try! JSONDecoder().decode(JSONValue.self, from: Data(canonicalJSON(value).utf8))
    var out: [String: String] = [:]
    func walk(_ v: JSONValue, _ path: String) {
        if case let .object(d) = v {
            for (k, x) in d { walk(x, path.isEmpty ? k : path + "." + k) }
        } else {
            out[path] = v.text
        }
    }
    walk(tree, prefix)
    return out
}

/// Any JSON value (to flatten configurations into dotted parameters).
indirect enum JSONValue: Decodable {
    case bool(Bool), number(Double), string(String), array([JSONValue]), object([String: JSONValue]), null

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? c.decode(Double.self) {
            self = .number(n)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    /// Compact text: integers without a decimal point, lists as [a, b].
    var text: String {
        switch self {
        case let .bool(b): return b ? "true" : "false"
        case let .number(n): return n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : "\(n)"
        case let .string(s): return s
        case let .array(a): return "[" + a.map(\.text).joined(separator: ", ") + "]"
        case let .object(d): return "{" + d.keys.sorted().map { "\($0): \(d[$0]!.text)" }.joined(separator: ", ") + "}"
        case .null: return "null"
        }
    }
}
