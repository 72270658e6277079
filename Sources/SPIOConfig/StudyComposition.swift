import Foundation
import Yams

/// A study file composed into one configuration tree per run: presets merged in order under the
/// study's own blocks, every variant times every combination of grid values, then `--set`
/// overrides, with each file's sweeps expanded into list entries and list entries inheriting a
/// block from the run. What the blocks mean is the caller's (`Rules`); this type knows only trees,
/// so errors keep the `file:line:column: key.path:` of the value that caused them.
package struct StudyComposition {
    /// The domain's names: which top-level keys are run blocks, which other keys a study or a
    /// preset may hold, and how each file's typed blocks are checked.
    package struct Rules {
        /// Top-level keys that make up a run's configuration (`simulation`, `model`, ...).
        package var blocks: Set<String>
        /// Other keys a study file may hold (`study`, `presets`, `grid`, `variants`, ...).
        package var studyKeys: Set<String>
        /// Other keys a preset file may hold (`description`).
        package var presetKeys: Set<String>
        /// The list that sweeps expand into and whose entries inherit a block from the run, e.g.
        /// `evaluation.sets`; its sweeps are at `<parent>.sweeps` (e.g. `evaluation.sweeps`).
        package var list: String
        /// The block each entry of `list` inherits from the run, merged under its own (`simulation`).
        package var inherited: String
        /// Keys of `inherited` that an entry never inherits and may not write inside it, each with
        /// the message that says where the entry's own value goes (a test set's `simulation.seed`
        /// comes from its own `seed`, never from the training data's).
        package var notInherited: [String: String]
        /// Decodes one file's blocks from its own text, for exact error positions.
        package var checkBlocks: (ConfigTree) throws -> Void
        /// The most runs one study may expand to.
        package var maximumRuns: Int

        package init(
            blocks: Set<String>, studyKeys: Set<String>, presetKeys: Set<String>, list: String, inherited: String,
            notInherited: [String: String] = [:], maximumRuns: Int, checkBlocks: @escaping (ConfigTree) throws -> Void
        ) {
            self.blocks = blocks; self.studyKeys = studyKeys; self.presetKeys = presetKeys
            self.list = list; self.inherited = inherited; self.notInherited = notInherited
            self.maximumRuns = maximumRuns; self.checkBlocks = checkBlocks
        }
    }

    /// One run's effective configuration, before it is decoded into typed blocks.
    package struct Point {
        /// `("variant", name)` first if there are variants, then each grid key path and its value
        /// as text, in sorted key order.
        package let values: [(String, String)]
        package let tree: ConfigTree
    }

    package let file: String
    /// The study file as written, with its sweeps expanded.
    package let study: ConfigTree
    package let rules: Rules

    /// Reads and checks the study file.
    package init(path: String, rules: Rules) throws {
        file = path
        self.rules = rules
        var tree = try ConfigTree(contentsOf: path)
        try Self.expandSweeps(&tree, rules: rules)
        try Self.check(tree, allowed: rules.blocks.union(rules.studyKeys), rules: rules)
        study = tree
    }

    /// Composes every run, calling `each` with one point at a time (in variant, then grid order).
    /// `presets` are paths relative to the study file's folder, then to the working directory.
    package func compose(presets: [String], overrides: [String], each: (Point) throws -> Void) throws {
        var base = try ConfigTree(yaml: "{}", file: file)
        for (i, preset) in presets.enumerated() {
            let resolved = Self.resolve(preset, relativeTo: file)
            do {
                var tree = try ConfigTree(contentsOf: resolved)
                try Self.expandSweeps(&tree, rules: rules)
                try Self.check(tree, allowed: rules.blocks.union(rules.presetKeys), rules: rules)
                base.merge(tree.restricted(to: rules.blocks))
            } catch let error as ConfigError {
                // Say which line of the study brought the preset in.
                let mark = study.node(at: "presets")?.sequence?[i].mark
                throw ConfigError(
                    file: error.file, line: error.line, column: error.column, keyPath: error.keyPath,
                    message: error.message
                        + " (preset named at \(file):\(mark?.line ?? 0):\(mark?.column ?? 0), presets[\(i)])")
            }
        }
        base.merge(study.restricted(to: rules.blocks))

        var axes: [(String, [Node])] = []
        if let grid = study.node(at: "grid") {
            axes = try Self.axes(
                grid, keyPath: "grid", file: file, expected: "expected a mapping from key paths to lists of values")
            for (key, _) in axes where !rules.blocks.contains(String(key.split(separator: ".").first ?? "")) {
                let k = grid.mapping!.first { $0.key.string == key }!.key
                throw ConfigError(
                    file: file, line: k.mark?.line, column: k.mark?.column, keyPath: "grid.\(key)",
                    message: "grid keys start with one of \(rules.blocks.sorted().joined(separator: ", "))")
            }
            axes.sort { $0.0 < $1.0 }
        }
        let variants = try self.variants()
        // Counted before expanding: a grid of 9 keys x 10 values would be 10^9 runs.
        let limit = rules.maximumRuns
        let count = axes.reduce(max(1, variants.count)) { total, axis in
            total.multipliedReportingOverflow(by: max(1, axis.1.count)).partialValue > limit
                ? limit + 1 : total * max(1, axis.1.count)
        }
        if count > limit {
            let mark = study.node(at: "grid")?.mark ?? study.node(at: "variants")?.mark
            throw ConfigError(
                file: file, line: mark?.line, column: mark?.column, keyPath: "grid",
                message: "expands to more than \(limit) runs (variants times every grid combination); split the study")
        }
        for variant in variants.isEmpty ? [nil] : variants.map(Optional.some) {
            for combo in Self.product(axes) {
                var t = base
                for (k, v) in (variant?.settings ?? []) + combo { try t.set(k, to: v, from: file) }
                for o in overrides { try t.applyOverride(o, blocks: rules.blocks) }
                try inherit(&t)
                let values = (variant.map { [("variant", $0.name)] } ?? []) + combo.map { ($0.0, Self.text($0.1)) }
                try each(Point(values: values, tree: t))
            }
        }
    }

    /// A value as one line of text: scalars as written, collections in YAML flow style.
    static func text(_ node: Node) -> String {
        node.string ?? (try? Yams.serialize(node: node).trimmingCharacters(in: .whitespacesAndNewlines)) ?? "?"
    }

    /// A file's top-level keys, then its typed blocks.
    static func check(_ tree: ConfigTree, allowed: Set<String>, rules: Rules) throws {
        for (k, v) in tree.root.mapping! where !allowed.contains(k.string ?? "") {
            throw ConfigError(
                file: tree.file, line: k.mark?.line ?? v.mark?.line, column: k.mark?.column, keyPath: k.string ?? "?",
                message:
                    "unknown key '\(k.string ?? "?")'; expected one of: \(allowed.sorted().joined(separator: ", "))")
        }
        try rules.checkBlocks(tree)
    }

    /// `variants`: a list of named sets of overrides, e.g. `{name: unet, model.architecture: unet}`.
    func variants() throws -> [(name: String, settings: [(String, Node)])] {
        guard let node = study.node(at: "variants") else { return [] }
        func fail(_ n: Node?, _ key: String, _ message: String) -> ConfigError {
            ConfigError(file: file, line: n?.mark?.line, column: n?.mark?.column, keyPath: key, message: message)
        }
        guard let list = node.sequence, !list.isEmpty else {
            throw fail(node, "variants", "expected a non-empty list of {name: ..., key.path: value, ...}")
        }
        var out: [(name: String, settings: [(String, Node)])] = []
        for (i, item) in list.enumerated() {
            guard let m = item.mapping, let name = m["name"]?.string, !name.isEmpty else {
                throw fail(
                    item, "variants.\(i)", "expected a mapping with a name, e.g. {name: unet, model.architecture: unet}"
                )
            }
            guard !out.contains(where: { $0.name == name }) else {
                throw fail(m["name"], "variants.\(i).name", "variant '\(name)' is listed twice")
            }
            var settings: [(String, Node)] = []
            for (k, v) in m where k.string != "name" {
                let key = k.string ?? "?"
                guard rules.blocks.contains(String(key.split(separator: ".").first ?? "")) else {
                    throw fail(
                        k, "variants.\(i).\(key)",
                        "variant keys start with one of \(rules.blocks.sorted().joined(separator: ", "))")
                }
                settings.append((key, v))
            }
            out.append((name, settings))
        }
        return out
    }

    /// A mapping from key paths to non-empty lists of values (`grid`, a sweep's `over`), in file order.
    static func axes(_ node: Node, keyPath: String, file: String, expected: String) throws -> [(String, [Node])] {
        guard let m = node.mapping else {
            throw ConfigError(
                file: file, line: node.mark?.line, column: node.mark?.column, keyPath: keyPath, message: expected)
        }
        return try m.map { k, v in
            guard let key = k.string, let values = v.sequence, !values.isEmpty else {
                throw ConfigError(
                    file: file, line: v.mark?.line, column: v.mark?.column, keyPath: "\(keyPath).\(k.string ?? "?")",
                    message: "expected a non-empty list of values")
            }
            return (key, Array(values))
        }
    }

    /// Every combination of the axes' values, the first axis outermost.
    static func product(_ axes: [(String, [Node])]) -> [[(String, Node)]] {
        axes.reduce([[]]) { combos, axis in combos.flatMap { c in axis.1.map { c + [(axis.0, $0)] } } }
    }

    /// Expands `<parent>.sweeps` into `rules.list`: each sweep is an entry with `name` and `over`
    /// (dotted key paths inside the entry -> lists of values); every combination of values becomes
    /// an entry `name[key=value,...]` labelled with the values (by the last key of each path).
    static func expandSweeps(_ tree: inout ConfigTree, rules: Rules) throws {
        let parentPath = rules.list.split(separator: ".").dropLast().joined(separator: ".")
        let listKey = String(rules.list.split(separator: ".").last!)
        guard let parent = tree.node(at: parentPath)?.mapping, let sweeps = parent["sweeps"] else { return }
        let file = tree.file
        func fail(_ n: Node?, _ key: String, _ message: String) -> ConfigError {
            ConfigError(file: file, line: n?.mark?.line, column: n?.mark?.column, keyPath: key, message: message)
        }
        guard let list = sweeps.sequence else {
            throw fail(sweeps, "\(parentPath).sweeps", "expected a list of sweeps")
        }
        var entries = parent[listKey]?.sequence.map(Array.init) ?? []
        for (i, sweep) in list.enumerated() {
            let at = "\(parentPath).sweeps.\(i)"
            guard var m = sweep.mapping, let name = m["name"]?.string, !name.isEmpty else {
                throw fail(sweep, at, "expected a mapping with a name and over: {key.path: [values]}")
            }
            let expected =
                "expected a mapping from key paths inside the test set (e.g. simulation.noise.snrDB) to lists of values"
            guard let over = m["over"], over.mapping?.isEmpty == false else {
                throw fail(m["over"] ?? sweep, at + ".over", expected)
            }
            let axes = try Self.axes(over, keyPath: at + ".over", file: file, expected: expected)
            m["over"] = nil
            for combo in Self.product(axes) {
                var entry = try ConfigTree(root: .mapping(m), file: file)
                var labels = m["labels"]?.mapping ?? Node.Mapping([])
                var parts: [String] = []
                for (k, v) in combo {
                    try entry.set(k, to: v, from: file)
                    let label = String(k.split(separator: ".").last!), text = v.string ?? "?"
                    labels[label] = Node(text)
                    parts.append("\(label)=\(text)")
                }
                try entry.set("name", to: Node("\(name)[\(parts.joined(separator: ","))]"), from: file)
                try entry.set("sweep", to: Node(name), from: file)
                try entry.set("labels", to: .mapping(labels), from: file)
                entries.append(entry.root)
            }
        }
        var p = parent
        p["sweeps"] = nil
        p[listKey] = .sequence(Node.Sequence(entries))
        try tree.set(parentPath, to: .mapping(p), from: file)
    }

    /// Each entry of `rules.list` (at least one) gets the run's `rules.inherited` block, less
    /// `rules.notInherited`, with the entry's own keys merged over it.
    func inherit(_ t: inout ConfigTree) throws {
        let empty = Node.mapping(Node.Mapping([]))
        if t.node(at: rules.list) == nil { try t.set(rules.list, to: .sequence(Node.Sequence([empty])), from: t.file) }
        guard let entries = t.node(at: rules.list)?.sequence else { return }
        var base = (t.node(at: rules.inherited) ?? empty).mapping ?? Node.Mapping([])
        for key in rules.notInherited.keys { base[key] = nil }
        var merged: [Node] = []
        for (i, e) in entries.enumerated() {
            guard var m = e.mapping else { merged.append(e); continue }
            if let own = m[rules.inherited]?.mapping {
                for (key, why) in rules.notInherited.sorted(by: { $0.key < $1.key }) {
                    guard let written = own[key] else { continue }
                    throw ConfigError(
                        file: t.origins[rules.list]?.file ?? t.file, line: written.mark?.line,
                        column: written.mark?.column, keyPath: "\(rules.list).\(i).\(rules.inherited).\(key)",
                        message: why)
                }
            }
            m[rules.inherited] = ConfigTree.merged(.mapping(base), m[rules.inherited] ?? empty)
            merged.append(.mapping(m))
        }
        try t.set(rules.list, to: .sequence(Node.Sequence(merged)), from: t.file)
    }

    static func resolve(_ preset: String, relativeTo study: String) -> String {
        if preset.hasPrefix("/") { return preset }
        let beside = ((study as NSString).deletingLastPathComponent as NSString).appendingPathComponent(preset)
        return FileManager.default.fileExists(atPath: beside) ? beside : preset
    }
}
