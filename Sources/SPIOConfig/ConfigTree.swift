import Foundation
import Yams

/// A YAML mapping tree with its source file, for composing experiment files: presets merged under
/// a study, grid values and `--set` overrides put at dotted key paths. Every value keeps the mark
/// (line, column) and file it came from, so a bad value is reported where it was written.
package struct ConfigTree {
    private(set) var root: Node
    /// Where each dotted path was last set from (file and mark), for error messages.
    private(set) var origins: [String: (file: String, mark: Mark?)] = [:]
    package let file: String
    /// The text this tree was parsed from, while it is unmodified (exact error positions).
    package private(set) var text: String?

    /// Parses `yaml` (an empty document is an empty mapping); the top level must be a mapping.
    package init(yaml: String, file: String) throws {
        self.file = file
        root = try ConfigFile.compose(yaml, file: file) ?? Node.mapping(Node.Mapping([]))
        guard root.mapping != nil else {
            throw ConfigError(
                file: file, line: root.mark?.line, column: root.mark?.column, keyPath: "",
                message: "expected a mapping at the top level")
        }
        recordOrigins(root, path: [], file: file)
        text = yaml
    }

    /// A tree over an already composed mapping node (a part of another file).
    init(root: Node, file: String) throws {
        guard root.mapping != nil else {
            throw ConfigError(
                file: file, line: root.mark?.line, column: root.mark?.column, keyPath: "", message: "expected a mapping"
            )
        }
        self.file = file
        self.root = root
        recordOrigins(root, path: [], file: file)
    }

    /// Reads a file.
    package init(contentsOf path: String) throws {
        try self.init(yaml: ConfigFile.read(path), file: path)
    }

    private mutating func recordOrigins(_ node: Node, path: [String], file: String, marks: Bool = true) {
        if !path.isEmpty { origins[path.joined(separator: ".")] = (file, marks ? node.mark : nil) }
        if let m = node.mapping {
            for (k, v) in m { if let key = k.string { recordOrigins(v, path: path + [key], file: file, marks: marks) } }
        }
    }

    /// Whether a value is set at a dotted path.
    package func contains(_ path: String) -> Bool { node(at: path) != nil }

    /// The line and column where the value at a dotted path was written, if known.
    package func position(of path: String) -> (line: Int, column: Int)? {
        node(at: path)?.mark.map { ($0.line, $0.column) }
    }

    /// The line and column of `key` in the entry named `name` of the list at a dotted path (or of
    /// the entry itself when it does not write `key`), e.g. a test set's seed.
    package func position(ofEntry name: String, in list: String, key: String) -> (line: Int, column: Int)? {
        guard let entry = node(at: list)?.sequence?.first(where: { $0.mapping?["name"]?.string == name }) else {
            return nil
        }
        return (entry.mapping?[key]?.mark ?? entry.mark).map { ($0.line, $0.column) }
    }

    /// Whether the entry named `name` of the sequence at `list` writes `key` itself.
    package func entry(_ name: String, in list: String, writes key: String) -> Bool {
        node(at: list)?.sequence?.first(where: { $0.mapping?["name"]?.string == name })?.mapping?[key] != nil
    }

    /// The text of the scalar at a dotted path as written (quoted or not), if there is one.
    package func scalarText(at path: String) -> String? { node(at: path)?.scalar?.string }

    /// The node at a dotted path, if present.
    func node(at path: String) -> Node? {
        var node: Node? = root
        for key in path.split(separator: ".") { node = node?.mapping?[String(key)] }
        return node
    }

    /// Keeps only the listed top-level keys.
    package func restricted(to keys: Set<String>) -> ConfigTree {
        var copy = self
        copy.root = .mapping(
            Node.Mapping(root.mapping!.filter { keys.contains($0.key.string ?? "") }.map { ($0.key, $0.value) }))
        copy.text = nil
        return copy
    }

    /// Merges `other` over this tree: mappings merge key by key, anything else is replaced.
    package mutating func merge(_ other: ConfigTree) {
        root = Self.merged(root, other.root)
        for (k, v) in other.origins { origins[k] = v }
        text = nil
    }

    static func merged(_ base: Node, _ over: Node) -> Node {
        guard var b = base.mapping, let o = over.mapping else { return over }
        for (k, v) in o {
            if let existing = b[k], existing.mapping != nil, v.mapping != nil {
                b[k] = merged(existing, v)
            } else {
                b[k] = v
            }
        }
        return .mapping(b)
    }

    /// Puts `value` at a dotted path, creating mappings on the way. Errors in it are later
    /// reported at its own line and column unless `marks` is false (command-line values).
    mutating func set(_ path: String, to value: Node, from file: String, marks: Bool = true) throws {
        let keys = path.split(separator: ".").map(String.init)
        guard !keys.isEmpty, keys.allSatisfy({ !$0.isEmpty }) else {
            throw ConfigError(
                file: file, line: value.mark?.line, column: value.mark?.column, keyPath: path,
                message: "expected a dotted key path such as model.head")
        }
        func put(_ node: Node, _ rest: ArraySlice<String>) throws -> Node {
            guard let key = rest.first else { return value }
            guard var m = node.mapping else {
                throw ConfigError(
                    file: file, line: value.mark?.line, column: value.mark?.column, keyPath: path,
                    message: "cannot set a key inside '\(keys[keys.count - rest.count - 1])', which is not a mapping")
            }
            m[key] = try put(m[key] ?? .mapping(Node.Mapping([])), rest.dropFirst())
            return .mapping(m)
        }
        root = try put(root, keys[...])
        text = nil
        recordOrigins(value, path: keys, file: file, marks: marks)
    }

    /// Applies one command-line override `block.key.path=value` (the value parsed as YAML), whose
    /// first key must be one of `blocks`; errors are reported against "--set".
    package mutating func applyOverride(_ pair: String, blocks: Set<String>) throws {
        guard let eq = pair.firstIndex(of: "=") else {
            throw ConfigError(
                file: "--set", line: nil, column: nil, keyPath: pair,
                message: "expected key.path=value, e.g. training.epochs=5")
        }
        let key = String(pair[..<eq]), text = String(pair[pair.index(after: eq)...])
        guard blocks.contains(String(key.split(separator: ".").first ?? "")) else {
            throw ConfigError(
                file: "--set", line: nil, column: nil, keyPath: key,
                message: "keys start with one of \(blocks.sorted().joined(separator: ", "))")
        }
        try set(key, to: try Self.parseValue(text, file: "--set", path: key), from: "--set", marks: false)
    }

    /// Parses a `--set` value as a YAML scalar or flow collection (`5`, `image`, `[1, 2]`).
    static func parseValue(_ text: String, file: String, path: String) throws -> Node {
        do {
            return try Yams.compose(yaml: text) ?? Node("", Tag(.null))
        } catch {
            throw ConfigError(
                file: file, line: nil, column: nil, keyPath: path, message: "'\(text)' is not a YAML value")
        }
    }

    /// The tree as YAML text (for decoding and for storing the effective configuration).
    package func yaml() throws -> String { try Yams.serialize(node: root, sortKeys: true) }

    /// Decodes the tree (or its block `key`); errors name the file, line and column where the
    /// offending value was written.
    package func decode<T: Decodable>(_ type: T.Type, key: String? = nil) throws -> T {
        if let original = self.text { return try ConfigFile.decode(type, yaml: original, file: file, key: key) }
        let text = try yaml()
        do {
            return try ConfigFile.decode(type, yaml: text, file: file, key: key)
        } catch let error as ConfigError {
            // Map the position in the serialised text back to the value's origin.
            var path = error.keyPath
            while !path.isEmpty {
                if let o = origins[path] {
                    throw ConfigError(
                        file: o.file, line: o.mark?.line, column: o.mark?.column, keyPath: error.keyPath,
                        message: error.message)
                }
                path = path.split(separator: ".").dropLast().joined(separator: ".")
            }
            throw ConfigError(file: file, line: nil, column: nil, keyPath: error.keyPath, message: error.message)
        }
    }
}
