import SPIOCoding
import Foundation
import Yams

/// A configuration error pinned to its place: file, line, column, key path and what was expected.
package struct ConfigError: Error, CustomStringConvertible {
    package let file: String
    package let line: Int?, column: Int?
    package let keyPath: String
    package let message: String

    package init(file: String, line: Int?, column: Int?, keyPath: String, message: String) {
        self.file = file; self.line = line; self.column = column; self.keyPath = keyPath; self.message = message
    }

    package var description: String {
        let place = line.map { "\(file):\($0):\(column ?? 1)" } ?? file
        return keyPath.isEmpty ? "\(place): \(message)" : "\(place): \(keyPath): \(message)"
    }
}

/// Reads YAML into Codable configuration types, turning Yams' errors into `ConfigError`s that
/// point at the line and column of the offending key or value.
package enum ConfigFile {
    /// Decodes `T` from the block under `key` (or the whole document when nil) of a YAML file.
    package static func load<T: Decodable>(_ type: T.Type, from path: String, key: String? = nil) throws -> T {
        try decode(type, yaml: read(path), file: path, key: key)
    }

    /// The text of a configuration file.
    static func read(_ path: String) throws -> String {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
        if let size, size > maximumBytes {
            throw ConfigError(
                file: path, line: nil, column: nil, keyPath: "",
                message: "is \(size) bytes; configuration files are at most \(maximumBytes)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigError(file: path, line: nil, column: nil, keyPath: "", message: "cannot read the file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, line: nil, column: nil, keyPath: "", message: "is not valid UTF-8 text")
        }
        return text
    }

    /// Bounds on a configuration file, checked before and after parsing: its size, how deeply its
    /// values nest (a parser recursing 10,000 levels would overflow its stack) and how many values
    /// it holds once aliases are expanded (a kilobyte of nested aliases can stand for 10^9 values).
    package static let maximumBytes = 1 << 20
    package static let maximumDepth = 64
    package static let maximumValues = 100_000

    /// The deepest nesting of `text`: flow brackets, and block indentation (spaces and `- `
    /// markers before a line's content) counted in steps of one column, outside quotes and comments.
    static func nestingDepth(_ text: String) -> (depth: Int, line: Int) {
        var worst = (0, 1), line = 1, flow = 0, indent = 0
        var quote: Character? = nil, lineStart = true, comment = false
        var previous: Character = "\n"  // the last character that is not a space
        var before: Character = "\n"  // the character just before this one
        for ch in text {
            defer { before = ch }
            if ch == "\n" { line += 1; lineStart = true; indent = 0; comment = false; previous = "\n"; continue }
            if comment { continue }
            if let q = quote { if ch == q { quote = nil; previous = ch }; continue }
            if lineStart {
                if ch == " " || ch == "-" {
                    indent += 1; if indent / 2 > worst.0 { worst = (indent / 2, line) }; previous = ch; continue
                }
                lineStart = false
            }
            switch ch {
            // A quote opens a quoted scalar only where a value starts (not in "the paper's loss").
            case let q where (q == "'" || q == "\"") && ":-[{,\n".contains(previous): quote = q
            case "#" where before == " " || before == "\n": comment = true
            case "[", "{": flow += 1; if flow + indent / 2 > worst.0 { worst = (flow + indent / 2, line) }
            case "]", "}": flow = max(0, flow - 1)
            default: break
            }
            if ch != " " { previous = ch }
        }
        return worst
    }

    /// The YAML tree of `yaml` (nil for an empty document); syntax errors as `ConfigError`s.
    static func compose(_ yaml: String, file: String) throws -> Node? {
        if yaml.utf8.count > maximumBytes {
            throw ConfigError(
                file: file, line: nil, column: nil, keyPath: "",
                message: "is \(yaml.utf8.count) bytes; configuration files are at most \(maximumBytes)")
        }
        let (depth, line) = nestingDepth(yaml)
        if depth > maximumDepth {
            throw ConfigError(
                file: file, line: line, column: nil, keyPath: "", message: "nests deeper than \(maximumDepth) levels")
        }
        let root: Node?
        do { root = try Yams.compose(yaml: yaml) } catch let error as YamlError {
            throw ConfigError(
                file: file, line: yamlMark(error)?.line, column: yamlMark(error)?.column, keyPath: "",
                message: "not valid YAML: \(yamlProblem(error))")
        }
        // Counted before any caller walks the tree: an alias bomb of mappings would otherwise be
        // expanded path by path (recording origins) before `checkValues` ever ran.
        if let root {
            var budget = maximumValues
            try countValues(root, path: [], file: file, budget: &budget)
        }
        return root
    }

    /// Counts values, aliases expanded, and stops at the first one past `maximumValues`.
    static func countValues(_ node: Node, path: [String], file: String, budget: inout Int) throws {
        budget -= 1
        if budget < 0 {
            throw ConfigError(
                file: file, line: node.mark?.line, column: node.mark?.column, keyPath: path.joined(separator: "."),
                message: "the file holds more than \(maximumValues) values once its aliases are expanded")
        }
        switch node {
        case let .mapping(m):
            for (k, v) in m { try countValues(v, path: path + [k.string ?? "?"], file: file, budget: &budget) }
        case let .sequence(items):
            for (i, v) in items.enumerated() { try countValues(v, path: path + ["\(i)"], file: file, budget: &budget) }
        default: break
        }
    }

    package static func decode<T: Decodable>(_ type: T.Type, yaml: String, file: String, key: String? = nil) throws -> T
    {
        guard let root = try compose(yaml, file: file) else {
            throw ConfigError(file: file, line: nil, column: nil, keyPath: "", message: "the file is empty")
        }
        try checkValues(root, path: [], file: file)
        if let key {
            guard let mapping = root.mapping else {
                throw ConfigError(
                    file: file, line: root.mark?.line, column: root.mark?.column, keyPath: "",
                    message: "expected a mapping at the top level")
            }
            guard mapping[key] != nil else {
                throw ConfigError(file: file, line: nil, column: nil, keyPath: "", message: "no '\(key)' block")
            }
        }
        do {
            if let key {
                return try YAMLDecoder().decode(Block<T>.self, from: yaml, userInfo: [Block<T>.keyInfo: key]).value
            }
            return try YAMLDecoder().decode(type, from: yaml)
        } catch let error as DecodingError {
            var (path, message) = describe(error)
            let (mark, keyPath, node) = locate(path, in: root, pointAtKey: message.hasPrefix("unknown key"))
            // Yams reports a scalar that does not parse as the type as "not found": say what was written.
            if message.hasSuffix(", found nothing"), let text = node?.scalar?.string,
                !["", "~", "null", "Null", "NULL"].contains(text)
            {
                message = message.replacingOccurrences(of: ", found nothing", with: ", got '\(text)'")
            }
            throw ConfigError(
                file: file, line: mark?.line, column: mark?.column, keyPath: keyPath.joined(separator: "."),
                message: message)
        }
    }

    /// Checks every value where it was written: numbers must be finite (a `.nan`, `.inf` or `1e400`
    /// would otherwise mean a default, a crash or a run that never ends; the one infinity with a
    /// meaning is a noise-free `snrDB`), a key must have a value (an empty one silently meant the
    /// default) and appear once in its mapping (`compose` has bounded the values, aliases expanded).
    static func checkValues(_ node: Node, path: [String], file: String) throws {
        switch node {
        case let .scalar(s):
            let empty = s.string.isEmpty || (s.style == .plain && ["~", "null", "Null", "NULL"].contains(s.string))
            if empty && !path.isEmpty && path.last != "description" {
                throw ConfigError(
                    file: file, line: node.mark?.line, column: node.mark?.column, keyPath: path.joined(separator: "."),
                    message: "has no value; write one, or delete the key for its default")
            }
            guard s.style == .plain else { return }
            let lower = s.string.lowercased()
            let named = [".nan", ".inf", "+.inf", "-.inf"].contains(lower)
            let value: Double? =
                named
                ? (lower == ".nan" ? .nan : lower.hasPrefix("-") ? -.infinity : .infinity)
                : (lower.contains(where: \.isNumber) ? Double(lower) : nil)
            guard let value, !value.isFinite else { return }
            if path.last == "snrDB" && value == .infinity { return }
            throw ConfigError(
                file: file, line: node.mark?.line, column: node.mark?.column, keyPath: path.joined(separator: "."),
                message: "expected a finite number, got '\(s.string)'"
                    + (path.last == "snrDB" ? " (write inf for no noise)" : ""))
        case let .mapping(m):
            var seen = Set<String>()
            for (k, v) in m {
                let key = k.string ?? "?"
                if !seen.insert(key).inserted {
                    throw ConfigError(
                        file: file, line: k.mark?.line, column: k.mark?.column,
                        keyPath: (path + [key]).joined(separator: "."),
                        message: "'\(key)' appears twice in this mapping")
                }
                try checkValues(v, path: path + [key], file: file)
            }
        case let .sequence(q):
            for (i, v) in q.enumerated() { try checkValues(v, path: path + [String(i)], file: file) }
        default:
            return
        }
    }

    /// The value under one top-level key (named through userInfo); other top-level keys belong to
    /// other parts of the experiment schema.
    private struct Block<Value: Decodable>: Decodable {
        static var keyInfo: CodingUserInfoKey { CodingUserInfoKey(rawValue: "spio.block")! }
        let value: Value
        init(from decoder: Decoder) throws {
            let key = AnyCodingKey(stringValue: decoder.userInfo[Block.keyInfo] as? String ?? "")
            value = try decoder.container(keyedBy: AnyCodingKey.self).decode(Value.self, forKey: key)
        }
    }

    private static func describe(_ error: DecodingError) -> ([CodingKey], String) {
        switch error {
        case let .typeMismatch(type, c):
            // Yams's own words ("Expected to decode Sequence but found Node instead") add nothing.
            let detail = c.debugDescription.hasPrefix("Expected to decode") ? "" : ": \(c.debugDescription)"
            return (c.codingPath, "expected \(typeName(type))\(detail)")
        case let .valueNotFound(type, c): return (c.codingPath, "expected \(typeName(type)), found nothing")
        case let .keyNotFound(key, c): return (c.codingPath + [key], "missing required key '\(key.stringValue)'")
        case let .dataCorrupted(c): return (c.codingPath, c.debugDescription)
        @unknown default: return ([], "\(error)")
        }
    }

    private static func typeName(_ t: Any.Type) -> String {
        switch t {
        case is Int.Type, is UInt64.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        default:
            let name = "\(t)"
            return name.hasPrefix("Array") || name == "Sequence"
                ? "a list" : name.hasPrefix("Dictionary") ? "a mapping" : "a mapping (\(name))"
        }
    }

    /// Follows the coding path through the YAML tree; the mark of the deepest node found
    /// (the key itself for a mapping entry).
    private static func locate(_ path: [CodingKey], in root: Node, pointAtKey: Bool) -> (Mark?, [String], Node?) {
        var node: Node? = root, mark = root.mark, names: [String] = []
        for key in path {
            if let index = key.intValue, let seq = node?.sequence {
                names.append("[\(index)]")
                node = index < seq.count ? seq[index] : nil
            } else if let mapping = node?.mapping {
                names.append(key.stringValue)
                let pair = mapping.first { $0.key.string == key.stringValue }
                if let pair {
                    mark = pair.key.mark ?? mark; node = pair.value
                    if !pointAtKey || key.stringValue != path.last?.stringValue, let m = node?.mark, node?.scalar == nil
                    {
                        mark = m
                    }
                    continue
                }
                node = nil
            } else {
                names.append(key.intValue.map { "[\($0)]" } ?? key.stringValue)
                node = nil
            }
            if let m = node?.mark { mark = m }
        }
        // For a wrong value point at the value rather than its key.
        if !pointAtKey, let m = node?.mark, node?.scalar != nil { mark = m }
        // "objects", "[1]" -> "objects[1]"
        return (
            mark,
            names.reduce(into: [String]()) { acc, s in
                if s.hasPrefix("["), let last = acc.popLast() { acc.append(last + s) } else { acc.append(s) }
            }, node
        )
    }

    private static func yamlMark(_ e: YamlError) -> Mark? {
        switch e {
        case let .scanner(_, _, mark, _), let .parser(_, _, mark, _): return mark
        default: return nil
        }
    }

    private static func yamlProblem(_ e: YamlError) -> String {
        switch e {
        case let .scanner(_, problem, _, _), let .parser(_, problem, _, _): return problem
        default: return "\(e)"
        }
    }
}
