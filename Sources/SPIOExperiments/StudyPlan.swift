import SPIOCoding
import Foundation
import SPIOKernels
import SPIOConfig
import SPIODigest
import SPIONetworks
import SPIOPhysics
import SPIOTraining

/// A study expanded into typed runs: `StudyComposition` (SPIOConfig) merges presets under the
/// study's own blocks, expands every `variant` times every combination of `grid` values, applies
/// `--set` overrides and each file's `evaluation.sweeps`; each point is decoded into a `RunConfig`
/// and checked across blocks here.
package struct StudyPlan {
    package struct PlannedRun {
        /// `study` or `study[key=value,...]` for grid points and variants.
        package let name: String
        package let gridValues: [(String, String)]
        package let config: RunConfig

        package init(name: String, gridValues: [(String, String)], config: RunConfig) {
            self.name = name; self.gridValues = gridValues; self.config = config
        }
    }

    package let study: String
    package let description: String
    package let file: String
    package private(set) var report: ReportConfig
    /// The study's `kernel:` (portable or native); nil means the command line's or the default.
    package let kernel: KernelMode?
    /// The study's `slurm:` block: settings for `spio run --executor slurm`.
    package let slurm: SlurmOptions
    /// The `--set` overrides the plan was made with (a cluster task plans the same study again).
    package let overrides: [String]
    package let runs: [PlannedRun]

    /// Loads `path`. Preset paths are relative to the study file's folder, then to the working
    /// directory (`configs/...`). `overrides` are `key.path=value` strings.
    package init(path: String, overrides: [String] = []) throws {
        file = path
        self.overrides = overrides
        let composition = try StudyComposition(path: path, rules: Self.rules)
        let studyTree = composition.study
        report = studyTree.contains("report") ? try studyTree.decode(ReportConfig.self, key: "report") : ReportConfig()
        let head = try studyTree.restricted(to: ["study", "description", "presets", "kernel"]).decode(StudyHead.self)
        kernel = head.kernel
        slurm = studyTree.contains("slurm") ? try studyTree.decode(SlurmOptions.self, key: "slurm") : SlurmOptions()
        // A quoted '~' or 'null' is text the YAML decoder still reads as no value: say so rather than
        // fall back to the file name.
        if head.study == nil, let written = studyTree.scalarText(at: "study") {
            let at = studyTree.position(of: "study")
            throw ConfigError(
                file: path, line: at?.line, column: at?.column, keyPath: "study",
                message: "'\(written)' is not a study name; write a name, or delete the key for the file's name")
        }
        study = head.study ?? ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        if let why = Self.unsafeStudyName(study) {
            let at = studyTree.position(of: "study")
            throw ConfigError(
                file: path, line: at?.line, column: at?.column, keyPath: "study",
                message: "\(why); the study name names the report folder reports/<study>/")
        }
        description = head.description ?? ""
        var runs: [PlannedRun] = []
        let study = self.study
        var anatomyNotes: [String] = []
        try composition.compose(presets: head.presets, overrides: overrides) { point in
            var config = try point.tree.decode(RunConfig.self)
            for note in config.resolveAnatomyFiles() where !anatomyNotes.contains(note) { anatomyNotes.append(note) }
            try Self.check(
                config, file: path, study: studyTree,
                overridden: Set(overrides.map { String($0.prefix { $0 != "=" }) }))
            let label = point.values.map { "\($0.0)=\($0.1)" }.joined(separator: ",")
            runs.append(
                PlannedRun(
                    name: point.values.isEmpty ? study : "\(study)[\(label)]", gridValues: point.values, config: config)
            )
        }
        self.runs = runs
        if !anatomyNotes.isEmpty {
            report.notes = ([report.notes.trimmingCharacters(in: .whitespacesAndNewlines)] + anatomyNotes)
                .filter { !$0.isEmpty }.joined(separator: "\n\n")
        }
    }

    /// What a study's blocks are: the composition knows only trees.
    static let rules = StudyComposition.Rules(
        blocks: RunConfig.blocks,
        studyKeys: ["study", "description", "presets", "kernel", "slurm", "grid", "variants", "report"],
        presetKeys: ["description"], list: "evaluation.sets", inherited: "simulation",
        notInherited: [
            "seed":
                "a test set's seed is its own `seed:` key, next to `samples:` (the training data's simulation.seed "
                + "is never a test set's)"
        ], maximumRuns: maximumRuns,
        checkBlocks: { _ = try $0.decode(FileBlocks.self) })

    /// The most runs one study may expand to.
    package static let maximumRuns = 1_000

    /// Why `name` cannot be a study name, or nil. Names become folder names (`reports/<study>/`),
    /// so only a safe file-name alphabet is allowed: a name like `..` or `../x` would write outside
    /// `reports/` or over the working directory.
    package static func unsafeStudyName(_ name: String) -> String? {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        guard !name.isEmpty, name.count <= 100 else { return "a study name has 1 to 100 characters, got \(name.count)" }
        guard name.allSatisfy(allowed.contains), name.first!.isLetter || name.first!.isNumber else {
            return
                "study name '\(name)' may use only letters, digits, '.', '_' and '-', starting with a letter or digit"
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
                    throw DecodingError.dataCorruptedError(
                        forKey: .kernel, in: c,
                        debugDescription:
                            "unknown kernel mode '\(text)'; expected one of "
                            + "\(KernelMode.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
                }
                kernel = mode
            }
        }
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

    /// Why some simulated test set would redraw another's samples or the training data's, or nil.
    /// Sample i of any simulated set is the generator stream (seed, i), so one seed means the same
    /// scenes: a test set on the training seed is training images 0, 1, ... again. Only points of
    /// `paired` sweeps may share a seed (within a sweep, or across sweeps that both say so: the
    /// same slices with and without air); nothing lets a test set share the training data's.
    package static func sharedStreams(_ c: RunConfig) -> (set: String, problem: String)? {
        let simulated = c.evaluation.sets.filter { $0.files.isEmpty && !$0.isTrainingImages }
        if let s = simulated.first(where: { $0.seed == c.simulation.seed }) {
            return (
                s.name,
                "test set '\(s.name)' draws seed \(s.seed), the training data's simulation.seed: its images "
                    + "would be training images 0-\(min(s.samples, c.data.samples) - 1) again; give it another seed"
            )
        }
        for (i, a) in simulated.enumerated() {
            for b in simulated[(i + 1)...] where a.seed == b.seed && !(a.paired && b.paired) {
                return (
                    b.name,
                    "test sets '\(a.name)' and '\(b.name)' both draw seed \(a.seed), so they share their scenes; "
                        + "give them distinct seeds (a sweep's points draw seed + 0, 1, ...), or write `paired: true` "
                        + "on the sweeps whose points are meant to share them"
                )
            }
        }
        return nil
    }

    /// Cross-block checks beyond types.
    static func check(
        _ c: RunConfig, file: String, study: ConfigTree? = nil, overridden: Set<String> = []
    ) throws {
        func fail(_ path: String, _ message: String) -> ConfigError {
            // Where the value came from: a --set override, or the study file's line (a preset's or a
            // default's has none).
            if overridden.contains(path) {
                return ConfigError(file: "--set", line: nil, column: nil, keyPath: path, message: message)
            }
            let at = study?.position(of: path)
            return ConfigError(file: file, line: at?.line, column: at?.column, keyPath: path, message: message)
        }
        /// A problem of the test set named `set`, at its `key` (or the set) where the study file wrote it.
        func failAt(_ set: String, _ key: String, _ message: String) -> ConfigError {
            let at = study?.position(ofEntry: set, in: "evaluation.sets", key: key)
            return ConfigError(
                file: file, line: at?.line, column: at?.column, keyPath: "evaluation.sets", message: message)
        }
        func failSet(_ s: TestSetConfig, _ key: String, _ message: String) -> ConfigError {
            failAt(s.name, key, "test set '\(s.name)'\(message)")
        }
        do { try c.simulation.validate() } catch { throw fail("simulation", "\(error)") }
        if let p = c.model.problem { throw fail("model", p) }
        if let p = c.training.problem { throw fail("training", p) }
        if let p = c.training.lossProblem(for: c.model) { throw fail("training", p) }
        let held = Trainer.heldOut(count: c.data.samples, validationFraction: c.training.validationFraction)
        if c.data.samples - held < 2 {
            throw fail(
                "training.validationFraction",
                "\(c.data.samples) images with \(held) held out for validation leave fewer than 2 to train on; lower it "
                    + "or raise data.samples")
        }
        // Sizes the machine cannot hold are refused now, with the way out, not hours in.
        let n = c.simulation.imageSize
        if c.data.shardSamples == nil,
            let p = DatasetFootprint.problem(imageSize: n, count: c.data.samples, copies: 1, doing: "simulating")
        {
            throw fail("data.samples", p + "; set data.shardSamples to simulate in shards that fit, or lower it")
        }
        if c.training.backend == .swift,
            let p = DatasetFootprint.problem(imageSize: n, count: c.data.samples, copies: 2, doing: "training on")
        {
            throw fail(
                "data.samples",
                p + " (the engine reads the whole set, and copies it once to split off validation); lower it, or train "
                    + "with training.backend: torch, which maps the set from disk")
        }
        if let inversion = c.model.inversion {
            if c.training.backend != .swift {
                throw fail(
                    "training.backend",
                    "the classical baseline (dipole-inversion) is tuned by this process, not trained")
            }
            let fieldInput = c.simulation.input == .field
            if (inversion.field == .input) != fieldInput {
                throw fail(
                    "model.inversion.field",
                    fieldInput
                        ? "simulation.input is field, so the field is the input: write inversion.field: input"
                        : "inversion.field: input reads the true field map, which only simulation.input: field gives")
            }
            if let s = c.evaluation.sets.first(where: { $0.interpretability != nil }) {
                throw failSet(s, "interpretability", ": the classical baseline has no network to explain")
            }
        }
        if c.simulation.imageSize != c.model.inputSize {
            throw fail(
                "model.inputSize",
                "the model takes \(c.model.inputSize) x \(c.model.inputSize) images but simulation.imageSize is "
                    + "\(c.simulation.imageSize)"
            )
        }
        for s in c.evaluation.sets where s.simulation.imageSize != c.model.inputSize {
            throw failSet(
                s, "simulation", " has imageSize \(s.simulation.imageSize); the model takes \(c.model.inputSize)")
        }
        if let (name, problem) = sharedStreams(c) { throw failAt(name, "seed", problem) }
        for s in c.evaluation.sets where s.isTrainingImages {
            if study?.entry(s.name, in: "evaluation.sets", writes: "seed") == true {
                throw failAt(
                    s.name, "seed", "test set '\(s.name)' is training images: it draws the training data's seed")
            }
            if study?.entry(s.name, in: "evaluation.sets", writes: "simulation") == true {
                throw failAt(
                    s.name, "simulation",
                    "test set '\(s.name)' is training images: it takes the training data's simulation as it is")
            }
            let fraction = c.training.validationFraction
            let trained = c.data.samples - Trainer.heldOut(count: c.data.samples, validationFraction: fraction)
            if s.samples > trained {
                throw failAt(
                    s.name, "samples",
                    "test set '\(s.name)' is training images, but only the first \(trained) of the "
                        + "\(c.data.samples) training images are trained on (the rest validate); lower samples")
            }
        }
        // Test-set mistakes are found now, not after hours of training.
        for s in c.evaluation.sets {
            do { try s.simulation.validate() } catch { throw failSet(s, "simulation", ": \(error)") }
            if s.files.isEmpty,
                let p = DatasetFootprint.problem(
                    imageSize: s.simulation.imageSize, count: s.samples, copies: 2, doing: "evaluating")
            {
                throw failSet(s, "samples", ": \(p); lower samples, or split the set into several")
            }
            for f in s.files {
                guard FileManager.default.fileExists(atPath: f) else {
                    throw failSet(s, "files", ": no file '\(f)' (file paths are relative to the working directory)")
                }
                // Read now, as the evaluation will: a folder, a YAML file or an image of the wrong
                // size fails here, not after hours of training.
                do {
                    _ = try Predictor.readFiniteInput(f, channels: c.model.inputChannels, size: c.model.inputSize)
                } catch { throw failSet(s, "files", ": \(error)") }
            }
            guard let interp = s.interpretability else { continue }
            if s.files.isEmpty && interp.images > s.samples {
                throw failSet(
                    s, "interpretability",
                    ": interpretability.images is \(interp.images) but the set has \(s.samples) images")
            }
            let bands = c.model.predictsWaveletBands ? 4 : 1
            if interp.band >= bands {
                throw failSet(
                    s, "interpretability",
                    ": interpretability.band is \(interp.band); this model has \(bands) output channel(s)")
            }
            let layers = interp.gradCAM + (interp.features.map { [$0] } ?? [])
            if !layers.isEmpty {
                let net = EncoderDecoderNet(c.model)
                for name in layers {
                    do { _ = try LayerProbe.locate(name, in: net) } catch {
                        throw failSet(s, "interpretability", ": \(error)")
                    }
                }
            }
        }
    }
}
