import Foundation
import SPIOConfig
import SPIODigest
import SPIONetworks
import SPIOPhysics
import SPIOTraining
import Yams

/// A study expanded into runs: presets merged in order under the study's own blocks, every
/// combination of `grid` values, then `--set` overrides.
public struct StudyPlan {
    public struct PlannedRun {
        /// `study` or `study[key=value,...]` for grid points.
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
    public let runs: [PlannedRun]

    /// Loads `path`. Preset paths are relative to the study file's folder, then to the working
    /// directory (`configs/...`). `overrides` are `key.path=value` strings.
    public init(path: String, overrides: [String] = []) throws {
        file = path
        let studyTree = try ConfigTree(contentsOf: path)
        try Self.validate(studyTree, isStudy: true)
        let head = try studyTree.restricted(to: ["study", "description", "presets"]).decode(StudyHead.self)
        study = head.study ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        description = head.description ?? ""
        var tree = try ConfigTree(yaml: "{}", file: path)
        for preset in head.presets {
            let resolved = Self.resolve(preset, relativeTo: path)
            let presetTree = try ConfigTree(contentsOf: resolved)
            try Self.validate(presetTree, isStudy: false)
            tree.merge(presetTree.restricted(to: RunConfig.blocks))
        }
        tree.merge(studyTree.restricted(to: RunConfig.blocks))

        // Grid: key path -> values, expanded in sorted key order.
        var axes: [(String, [Node])] = []
        if let grid = studyTree.node(at: "grid") {
            guard let m = grid.mapping else {
                throw ConfigError(file: path, line: grid.mark?.line, column: grid.mark?.column, keyPath: "grid", message: "expected a mapping from key paths to lists of values")
            }
            for (k, v) in m {
                guard let key = k.string, let values = v.sequence, !values.isEmpty else {
                    throw ConfigError(file: path, line: v.mark?.line, column: v.mark?.column, keyPath: "grid.\(k.string ?? "?")", message: "expected a non-empty list of values")
                }
                guard RunConfig.blocks.contains(String(key.split(separator: ".").first ?? "")) else {
                    throw ConfigError(file: path, line: k.mark?.line, column: k.mark?.column, keyPath: "grid.\(key)",
                                      message: "grid keys start with one of \(RunConfig.blocks.sorted().joined(separator: ", "))")
                }
                axes.append((key, Array(values)))
            }
            axes.sort { $0.0 < $1.0 }
        }
        var combos: [[(String, Node)]] = [[]]
        for (key, values) in axes { combos = combos.flatMap { c in values.map { c + [(key, $0)] } } }
        var runs: [PlannedRun] = []
        for combo in combos {
            var t = tree
            for (k, v) in combo { try t.set(k, to: v, from: path) }
            for o in overrides { try t.applyOverride(o, blocks: RunConfig.blocks) }
            try Self.applyTestSetInheritance(&t)
            let config = try t.decode(RunConfig.self)
            try Self.check(config, file: path)
            let values = combo.map { ($0.0, $0.1.string ?? (try? Yams.serialize(node: $0.1).trimmingCharacters(in: .whitespacesAndNewlines)) ?? "?") }
            let label = values.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
            runs.append(PlannedRun(name: values.isEmpty ? study : "\(study)[\(label)]", gridValues: values, config: config, yaml: try t.yaml()))
        }
        self.runs = runs
    }

    private struct StudyHead: Decodable {
        var study: String?, description: String?, presets: [String] = []
        enum CodingKeys: String, CodingKey { case study, description, presets }
        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            study = try c.decodeIfPresent(String.self, forKey: .study)
            description = try c.decodeIfPresent(String.self, forKey: .description)
            presets = try c.decodeIfPresent([String].self, forKey: .presets) ?? []
        }
    }

    /// Checks a file's top-level keys and each block against its own lines.
    static func validate(_ tree: ConfigTree, isStudy: Bool) throws {
        let allowed: Set<String> = isStudy ? RunConfig.blocks.union(["study", "description", "presets", "grid"]) : RunConfig.blocks.union(["description"])
        for (k, v) in tree.root.mapping! where !allowed.contains(k.string ?? "") {
            throw ConfigError(file: tree.file, line: k.mark?.line ?? v.mark?.line, column: k.mark?.column, keyPath: k.string ?? "?",
                              message: "unknown key '\(k.string ?? "?")'; expected one of: \(allowed.sorted().joined(separator: ", "))")
        }
        _ = try tree.decode(FileBlocks.self)
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
    }

    static func resolve(_ preset: String, relativeTo study: String) -> String {
        if preset.hasPrefix("/") { return preset }
        let beside = ((study as NSString).deletingLastPathComponent as NSString).appendingPathComponent(preset)
        return FileManager.default.fileExists(atPath: beside) ? beside : preset
    }
}
