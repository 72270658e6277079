import Foundation
import SPIOKernels
import SPIOConfig
import SPIODigest
import SPIONetworks
import SPIOPhysics
import SPIOTraining
import Yams

/// A study expanded into runs: presets merged in order under the study's own blocks, every
/// `variant` times every combination of `grid` values, then `--set` overrides; each file's
/// `evaluation.sweeps` expanded into test sets.
public struct StudyPlan {
    public struct PlannedRun {
        /// `study` or `study[key=value,...]` for grid points and variants.
        public let name: String
        public let gridValues: [(String, String)]
        public let config: RunConfig
        /// The effective configuration as YAML (stored with the run).
        public let yaml: String
        /// SHA-256 of `config.canonicalJSON`.
        public var hash: String { SHA256.hex(Array(config.canonicalJSON.utf8)) }

        public init(name: String, gridValues: [(String, String)], config: RunConfig, yaml: String) {
            self.name = name; self.gridValues = gridValues; self.config = config; self.yaml = yaml
        }
    }

    public let study: String
    public let description: String
    public let file: String
    public let report: ReportConfig
    /// The study's `kernel:` (portable or native); nil means the command line's or the default.
    public let kernel: KernelMode?
    public let runs: [PlannedRun]

    /// Loads `path`. Preset paths are relative to the study file's folder, then to the working
    /// directory (`configs/...`). `overrides` are `key.path=value` strings.
    public init(path: String, overrides: [String] = []) throws {
        file = path
        var studyTree = try ConfigTree(contentsOf: path)
        try Self.expandSweeps(&studyTree)
        try Self.validate(studyTree, isStudy: true)
        report = studyTree.node(at: "report") == nil ? ReportConfig() : try studyTree.decode(ReportConfig.self, key: "report")
        let head = try studyTree.restricted(to: ["study", "description", "presets", "kernel"]).decode(StudyHead.self)
        kernel = head.kernel
        study = head.study ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        if let why = Self.unsafeStudyName(study) {
            let mark = studyTree.node(at: "study")?.mark
            throw ConfigError(file: path, line: mark?.line, column: mark?.column, keyPath: "study",
                              message: "\(why); the study name names the report folder reports/<study>/")
        }
        description = head.description ?? ""
        var tree = try ConfigTree(yaml: "{}", file: path)
        for (i, preset) in head.presets.enumerated() {
            let resolved = Self.resolve(preset, relativeTo: path)
            do {
                var presetTree = try ConfigTree(contentsOf: resolved)
                try Self.expandSweeps(&presetTree)
                try Self.validate(presetTree, isStudy: false)
                tree.merge(presetTree.restricted(to: RunConfig.blocks))
            } catch let error as ConfigError {
                // Say which line of the study brought the preset in.
                let mark = studyTree.node(at: "presets")?.sequence?[i].mark
                throw ConfigError(file: error.file, line: error.line, column: error.column, keyPath: error.keyPath,
                                  message: error.message + " (preset named at \(path):\(mark?.line ?? 0):\(mark?.column ?? 0), presets[\(i)])")
            }
        }
        tree.merge(studyTree.restricted(to: RunConfig.blocks))

        // Grid: key path -> values, expanded in sorted key order.
        var axes: [(String, [Node])] = []
        if let grid = studyTree.node(at: "grid") {
            axes = try Self.axes(grid, keyPath: "grid", file: path, expected: "expected a mapping from key paths to lists of values")
            for (key, _) in axes where !RunConfig.blocks.contains(String(key.split(separator: ".").first ?? "")) {
                let k = grid.mapping!.first { $0.key.string == key }!.key
                throw ConfigError(file: path, line: k.mark?.line, column: k.mark?.column, keyPath: "grid.\(key)",
                                  message: "grid keys start with one of \(RunConfig.blocks.sorted().joined(separator: ", "))")
            }
            axes.sort { $0.0 < $1.0 }
        }
        let variants = try Self.variants(studyTree)
        // Counted before expanding: a grid of 9 keys x 10 values would be 10^9 runs.
        let count = axes.reduce(max(1, variants.count)) { total, axis in total.multipliedReportingOverflow(by: max(1, axis.1.count)).partialValue > Self.maximumRuns
            ? Self.maximumRuns + 1 : total * max(1, axis.1.count) }
        if count > Self.maximumRuns {
            let mark = studyTree.node(at: "grid")?.mark ?? studyTree.node(at: "variants")?.mark
            throw ConfigError(file: path, line: mark?.line, column: mark?.column, keyPath: "grid",
                              message: "expands to more than \(Self.maximumRuns) runs (variants times every grid combination); split the study")
        }
        var runs: [PlannedRun] = []
        for variant in variants.isEmpty ? [nil] : variants.map(Optional.some) {
            for combo in Self.product(axes) {
                var t = tree
                for (k, v) in (variant?.settings ?? []) + combo { try t.set(k, to: v, from: path) }
                for o in overrides { try t.applyOverride(o, blocks: RunConfig.blocks) }
                try Self.applyTestSetInheritance(&t)
                let config = try t.decode(RunConfig.self)
                try Self.check(config, file: path)
                let values = (variant.map { [("variant", $0.name)] } ?? [])
                    + combo.map { ($0.0, $0.1.string ?? (try? Yams.serialize(node: $0.1).trimmingCharacters(in: .whitespacesAndNewlines)) ?? "?") }
                let label = values.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
                runs.append(PlannedRun(name: values.isEmpty ? study : "\(study)[\(label)]", gridValues: values, config: config, yaml: try t.yaml()))
            }
        }
        self.runs = runs
    }

    /// The most runs one study may expand to.
    public static let maximumRuns = 1_000

    /// Why `name` cannot be a study name, or nil. Names become folder names (`reports/<study>/`),
    /// so only a safe file-name alphabet is allowed: a name like `..` or `../x` would write outside
    /// `reports/` or over the working directory.
    public static func unsafeStudyName(_ name: String) -> String? {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        guard !name.isEmpty, name.count <= 100 else { return "a study name has 1 to 100 characters, got \(name.count)" }
        guard name.allSatisfy(allowed.contains), name.first!.isLetter || name.first!.isNumber else {
            return "study name '\(name)' may use only letters, digits, '.', '_' and '-', starting with a letter or digit"
        }
        return nil
    }

    private struct StudyHead: Decodable {
        var study: String?, description: String?, presets: [String] = [], kernel: KernelMode?
        enum CodingKeys: String, CodingKey { case study, description, presets, kernel }
        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            study = try c.decodeIfPresent(String.self, forKey: .study)
            description = try c.decodeIfPresent(String.self, forKey: .description)
            presets = try c.decodeIfPresent([String].self, forKey: .presets) ?? []
            if let text = try c.decodeIfPresent(String.self, forKey: .kernel) {
                guard let mode = KernelMode(rawValue: text) else {
                    throw DecodingError.dataCorruptedError(forKey: .kernel, in: c, debugDescription:
                        "unknown kernel mode '\(text)'; expected one of \(KernelMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                kernel = mode
            }
        }
    }

    /// Checks a file's top-level keys and each block against its own lines.
    static func validate(_ tree: ConfigTree, isStudy: Bool) throws {
        let allowed: Set<String> = isStudy ? RunConfig.blocks.union(["study", "description", "presets", "kernel", "grid", "variants", "report"])
            : RunConfig.blocks.union(["description"])
        for (k, v) in tree.root.mapping! where !allowed.contains(k.string ?? "") {
            throw ConfigError(file: tree.file, line: k.mark?.line ?? v.mark?.line, column: k.mark?.column, keyPath: k.string ?? "?",
                              message: "unknown key '\(k.string ?? "?")'; expected one of: \(allowed.sorted().joined(separator: ", "))")
        }
        _ = try tree.decode(FileBlocks.self)
    }

    /// `variants`: a list of named sets of overrides, e.g. `{name: unet, model.architecture: unet}`.
    static func variants(_ tree: ConfigTree) throws -> [(name: String, settings: [(String, Node)])] {
        guard let node = tree.node(at: "variants") else { return [] }
        func fail(_ n: Node?, _ key: String, _ message: String) -> ConfigError {
            ConfigError(file: tree.file, line: n?.mark?.line, column: n?.mark?.column, keyPath: key, message: message)
        }
        guard let list = node.sequence, !list.isEmpty else { throw fail(node, "variants", "expected a non-empty list of {name: ..., key.path: value, ...}") }
        var out: [(name: String, settings: [(String, Node)])] = []
        for (i, item) in list.enumerated() {
            guard let m = item.mapping, let name = m["name"]?.string, !name.isEmpty else {
                throw fail(item, "variants.\(i)", "expected a mapping with a name, e.g. {name: unet, model.architecture: unet}")
            }
            guard !out.contains(where: { $0.name == name }) else { throw fail(m["name"], "variants.\(i).name", "variant '\(name)' is listed twice") }
            var settings: [(String, Node)] = []
            for (k, v) in m where k.string != "name" {
                let key = k.string ?? "?"
                guard RunConfig.blocks.contains(String(key.split(separator: ".").first ?? "")) else {
                    throw fail(k, "variants.\(i).\(key)", "variant keys start with one of \(RunConfig.blocks.sorted().joined(separator: ", "))")
                }
                settings.append((key, v))
            }
            out.append((name, settings))
        }
        return out
    }

    /// A mapping from key paths to non-empty lists of values (`grid`, a sweep's `over`), in file order.
    static func axes(_ node: Node, keyPath: String, file: String, expected: String) throws -> [(String, [Node])] {
        guard let m = node.mapping else { throw ConfigError(file: file, line: node.mark?.line, column: node.mark?.column, keyPath: keyPath, message: expected) }
        return try m.map { k, v in
            guard let key = k.string, let values = v.sequence, !values.isEmpty else {
                throw ConfigError(file: file, line: v.mark?.line, column: v.mark?.column, keyPath: "\(keyPath).\(k.string ?? "?")",
                                  message: "expected a non-empty list of values")
            }
            return (key, Array(values))
        }
    }

    /// Every combination of the axes' values, the first axis outermost.
    static func product(_ axes: [(String, [Node])]) -> [[(String, Node)]] {
        axes.reduce([[]]) { combos, axis in combos.flatMap { c in axis.1.map { c + [(axis.0, $0)] } } }
    }

    /// Expands `evaluation.sweeps` into `evaluation.sets`: each sweep is a test set with `name` and
    /// `over` (dotted key paths inside the set -> lists of values); every combination of values
    /// becomes a set `name[key=value,...]` labelled with the values (by the last key of each path).
    static func expandSweeps(_ tree: inout ConfigTree) throws {
        guard let evaluation = tree.node(at: "evaluation")?.mapping, let sweeps = evaluation["sweeps"] else { return }
        func fail(_ n: Node?, _ key: String, _ message: String) -> ConfigError {
            ConfigError(file: tree.file, line: n?.mark?.line, column: n?.mark?.column, keyPath: key, message: message)
        }
        guard let list = sweeps.sequence else { throw fail(sweeps, "evaluation.sweeps", "expected a list of sweeps") }
        var sets = evaluation["sets"]?.sequence.map(Array.init) ?? []
        for (i, sweep) in list.enumerated() {
            let at = "evaluation.sweeps.\(i)"
            guard var m = sweep.mapping, let name = m["name"]?.string, !name.isEmpty else {
                throw fail(sweep, at, "expected a mapping with a name and over: {key.path: [values]}")
            }
            let expected = "expected a mapping from key paths inside the test set (e.g. simulation.noise.snrDB) to lists of values"
            guard let over = m["over"], over.mapping?.isEmpty == false else { throw fail(m["over"] ?? sweep, at + ".over", expected) }
            let axes = try Self.axes(over, keyPath: at + ".over", file: tree.file, expected: expected)
            m["over"] = nil
            for combo in Self.product(axes) {
                var set = try ConfigTree(root: .mapping(m), file: tree.file)
                var labels = m["labels"]?.mapping ?? Node.Mapping([])
                var parts: [String] = []
                for (k, v) in combo {
                    try set.set(k, to: v, from: tree.file)
                    let label = String(k.split(separator: ".").last!), text = v.string ?? "?"
                    labels[label] = Node(text)
                    parts.append("\(label)=\(text)")
                }
                try set.set("name", to: Node("\(name)[\(parts.joined(separator: ","))]"), from: tree.file)
                try set.set("sweep", to: Node(name), from: tree.file)
                try set.set("labels", to: .mapping(labels), from: tree.file)
                sets.append(set.root)
            }
        }
        var e = evaluation
        e["sweeps"] = nil
        e["sets"] = .sequence(Node.Sequence(sets))
        try tree.set("evaluation", to: .mapping(e), from: tree.file)
    }

    /// A study or preset file's blocks, decoded from its own text for exact error positions.
    private struct FileBlocks: Decodable {
        enum CodingKeys: String, CodingKey { case simulation, data, model, training, evaluation }
        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            _ = try c.decodeIfPresent(SimulationConfig.self, forKey: .simulation)
            _ = try c.decodeIfPresent(DataConfig.self, forKey: .data)
            _ = try c.decodeIfPresent(ModelConfig.self, forKey: .model)
            _ = try c.decodeIfPresent(TrainingConfig.self, forKey: .training)
            _ = try c.decodeIfPresent(EvaluationConfig.self, forKey: .evaluation)
        }
    }

    /// Each test set's `simulation` is the run's simulation with the set's keys merged over it.
    static func applyTestSetInheritance(_ t: inout ConfigTree) throws {
        if t.node(at: "evaluation.sets") == nil { try t.set("evaluation.sets", to: .sequence(Node.Sequence([.mapping(Node.Mapping([]))])), from: t.file) }
        guard let sets = t.node(at: "evaluation.sets")?.sequence else { return }
        let base = t.node(at: "simulation") ?? .mapping(Node.Mapping([]))
        var merged: [Node] = []
        for s in sets {
            guard var m = s.mapping else { merged.append(s); continue }
            m["simulation"] = ConfigTree.merged(base, m["simulation"] ?? .mapping(Node.Mapping([])))
            merged.append(.mapping(m))
        }
        try t.set("evaluation.sets", to: .sequence(Node.Sequence(merged)), from: t.file)
    }

    /// Cross-block checks beyond types.
    static func check(_ c: RunConfig, file: String) throws {
        func fail(_ path: String, _ message: String) -> ConfigError { ConfigError(file: file, line: nil, column: nil, keyPath: path, message: message) }
        do { try c.simulation.validate() } catch { throw fail("simulation", "\(error)") }
        if let p = c.model.problem { throw fail("model", p) }
        if let p = c.training.problem { throw fail("training", p) }
        if c.simulation.imageSize != c.model.inputSize {
            throw fail("model.inputSize", "the model takes \(c.model.inputSize) x \(c.model.inputSize) images but simulation.imageSize is \(c.simulation.imageSize)")
        }
        for s in c.evaluation.sets where s.simulation.imageSize != c.model.inputSize {
            throw fail("evaluation.sets", "test set '\(s.name)' has imageSize \(s.simulation.imageSize); the model takes \(c.model.inputSize)")
        }
        // Test-set mistakes are found now, not after hours of training.
        for s in c.evaluation.sets {
            do { try s.simulation.validate() } catch { throw fail("evaluation.sets", "test set '\(s.name)': \(error)") }
            for f in s.files where !FileManager.default.isReadableFile(atPath: f) {
                throw fail("evaluation.sets", "test set '\(s.name)': cannot read '\(f)' (file paths are relative to the working directory)")
            }
            guard let interp = s.interpretability else { continue }
            if s.files.isEmpty && interp.images > s.samples {
                throw fail("evaluation.sets", "test set '\(s.name)': interpretability.images is \(interp.images) but the set has \(s.samples) images")
            }
            let bands = c.model.predictsWaveletBands ? 4 : 1
            if interp.band >= bands {
                throw fail("evaluation.sets", "test set '\(s.name)': interpretability.band is \(interp.band); this model has \(bands) output channel(s)")
            }
            let layers = interp.gradCAM + (interp.features.map { [$0] } ?? [])
            if !layers.isEmpty {
                let net = EncoderDecoderNet(c.model)
                for name in layers {
                    do { _ = try LayerProbe.locate(name, in: net) } catch { throw fail("evaluation.sets", "test set '\(s.name)': \(error)") }
                }
            }
        }
    }

    static func resolve(_ preset: String, relativeTo study: String) -> String {
        if preset.hasPrefix("/") { return preset }
        let beside = ((study as NSString).deletingLastPathComponent as NSString).appendingPathComponent(preset)
        return FileManager.default.fileExists(atPath: beside) ? beside : preset
    }
}
