import ArgumentParser
import Dispatch
import Foundation
import SPIOImageIO
import SPIOExperiments
import SPIOKernels
import SPIOTensor

/// Options shared by the commands that use the run store.
struct WorkspaceOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Workspace folder with runs.sqlite, datasets/, models/, evaluations/ (default $SPIO_WORKSPACE or "
                + "./spio-runs).")
    )
    var workspace: String?

    var path: String { Self.folder(workspace) }

    /// The workspace folder: the option, else $SPIO_WORKSPACE, else ./spio-runs.
    static func folder(_ option: String?) -> String {
        option ?? ProcessInfo.processInfo.environment["SPIO_WORKSPACE"] ?? "spio-runs"
    }

    /// An empty name is refused rather than read as the current folder or as "".
    static func check(_ option: String?) throws {
        if option?.isEmpty == true { throw ValidationError("--workspace is empty; name a folder") }
        if option == nil, ProcessInfo.processInfo.environment["SPIO_WORKSPACE"]?.isEmpty == true {
            throw ValidationError("SPIO_WORKSPACE is set but empty; unset it (for ./spio-runs) or name a folder")
        }
    }

    func validate() throws { try Self.check(workspace) }
    var storePath: String { (path as NSString).appendingPathComponent("runs.sqlite") }
    /// The store for commands that write (run, audit).
    func store() throws -> RunStore { try RunStore(path: storePath) }
    /// The store for commands that only read: works on a read-only workspace and creates nothing.
    func readingStore() throws -> RunStore { try RunStore(path: storePath, access: .readOnly) }
}

/// Ctrl-C: the first asks the run to stop at the next batch (training, evaluation) or sample
/// (simulation); the store marks it interrupted and the next `spio run` resumes it. A second one
/// exits at once.
enum Interrupt {
    nonisolated(unsafe) static var requested = false
    nonisolated(unsafe) static var source: DispatchSourceSignal?
    static func install() {
        signal(SIGINT, SIG_IGN)
        let s = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        s.setEventHandler {
            if requested { _exit(130) }
            requested = true
            progress("\ninterrupt: stopping at the next batch or sample (Ctrl-C again to quit at once)")
        }
        s.resume()
        source = s
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a study file (and its presets) and list the runs it expands to.")
    @Argument(help: "Study YAML file.") var file: String
    @Option(name: .customLong("set"), help: "Override: key.path=value (repeatable).") var overrides: [String] = []
    // A training on other than the portable kernels is another run with another key.
    @OptionGroup var kernelOptions: KernelOptions

    func run() throws {
        let plan = try StudyPlan(path: file, overrides: overrides)
        _ = try kernelOptions.apply(study: plan.kernel)
        print("\(file): study '\(plan.study)', \(plan.runs.count) run\(plan.runs.count == 1 ? "" : "s")")
        for r in plan.runs {
            let sets = r.config.evaluation.sets
            let images = sets.reduce(0) { $0 + ($1.files.isEmpty ? $1.samples : $1.files.count) }
            // The hashes the store keys on (`spio runs` shows them in its config column).
            let units = try Runner.units(of: r)
            func keys(_ kind: RunKind) -> String {
                units.filter { $0.kind == kind && ($0.set == nil || kind == .evaluate) }.map {
                    String($0.hash.prefix(12))
                }
                .joined(separator: ",")
            }
            print(
                "  \(r.name)  model \(r.config.model.architecture.rawValue)  \(r.config.data.samples) images  "
                    + "\(r.config.training.epochs) epochs  \(sets.count) test set\(sets.count == 1 ? "" : "s") "
                    + "(\(images) images)\n    keys: data \(keys(.dataset))  train \(keys(.train))  "
                    + "evaluate \(keys(.evaluate))"
            )
        }
    }
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract:
            "Run a study: simulate, train and evaluate every grid point (reusing finished runs), then write its "
            + "report.",
        discussion: """
            Finished datasets, models and evaluations with the same effective configuration are reused unless --force.
            A run interrupted by Ctrl-C, a crash or a kill resumes from its last epoch checkpoint on the next \
            `spio run`.

            --executor slurm computes the runs as Slurm job arrays (datasets, then trainings, then evaluations) \
            and records them here; settings come from the study's `slurm:` block and the options below \
            (docs/cluster.md). Running the same command again resubmits only what is missing.
            """)
    @Argument(help: "Study YAML file.") var file: String
    @Option(name: .customLong("set"), help: "Override: key.path=value (repeatable), e.g. training.epochs=2.")
    var overrides: [String] = []
    @Flag(help: "Recompute even when a finished run with the same configuration exists.") var force = false
    @OptionGroup var workspace: WorkspaceOptions
    @Option(help: "Write the report here (default reports/<study>); 'none' skips it.") var report: String?
    @Option(help: "Threads.") var threads = 2
    @OptionGroup var kernelOptions: KernelOptions
    @OptionGroup(title: "Slurm") var slurm: SlurmCommandOptions

    func run() throws {
        let plan = try StudyPlan(path: file, overrides: overrides)
        if report != "none" {
            // The report folder is checked before hours of work, not only when the report is written:
            // another study's report, or the user's files under a report's usual names.
            try StudyReport.checkFolder(report ?? "reports/\(plan.study)", study: plan.study)
        }
        let kernel = try kernelOptions.apply(study: plan.kernel)
        let executor = try slurm.executor(plan: plan, threads: threads, kernel: kernel.mode)
        progress("kernels: \(kernel)")
        Engine.setThreadCount(threads)
        let runner = try Runner(workspace: workspace.path)
        runner.force = force
        runner.log = progress
        let meter = ProgressLine()
        runner.progress = { meter.update($0, fraction: $1) }
        Interrupt.install()
        runner.shouldStop = { Interrupt.requested }
        let start = Date()
        do {
            try executor.execute(plan, runner: runner) { _, outcome in
                meter.finish()
                for e in outcome.evaluations {
                    print(
                        "\(outcome.planned.name)  \((try runner.store.params(e.id!)[ParamKey.set]) ?? "?"): "
                            + "\(try EvaluationRecord(store: runner.store, id: e.id!).text)  (train run "
                            + "\(outcome.training.id!), evaluation run \(e.id!))"
                    )
                }
            }
        } catch let submitted as SlurmExecutor.Submitted {
            meter.finish()
            print(submitted.description)
            return
        } catch {
            meter.finish()
            if Interrupt.requested {
                progress("Error: \(error)")
                throw ExitCode(130)
            }
            throw error
        }
        progress(String(format: "study %@ done in %.1f s", plan.study, Date().timeIntervalSince(start)))
        if report != "none" {
            let dir = report ?? "reports/\(plan.study)"
            let files = try StudyReport(store: runner.store, study: plan.study).write(to: dir)
            print("report: \(files[0])")
        }
    }
}

/// `spio run`'s options for `--executor slurm`; each one overrides the study's `slurm:` block.
struct SlurmCommandOptions: ParsableArguments {
    @Option(help: "Where the runs are computed: local (this process) or slurm (job arrays).")
    var executor = "local"
    @Option(help: "Slurm partition.") var partition: String?
    @Option(help: "Slurm time limit per task (e.g. 2:00:00).") var time: String?
    @Option(help: "Slurm memory per task (e.g. 8G).") var memory: String?
    @Option(help: "CPUs per task, also the engine's threads in it (default --threads).") var cpusPerTask: Int?
    @Option(help: "Most tasks per job array (default and maximum: the cluster's MaxArraySize).")
    var maxArraySize: Int?
    @Option(help: "Most tasks of one array running at once.") var maxRunning: Int?
    @Option(name: .customLong("sbatch"), help: "A further sbatch option, e.g. --sbatch=--account=abc (repeatable).")
    var sbatchOptions: [String] = []
    @Option(help: "The program the tasks run instead of this spio (its path on the compute nodes, or a wrapper).")
    var taskProgram: String?
    @Flag(help: "Submit and return; the same command run later waits for the jobs and records them.")
    var noWait = false

    func executor(plan: StudyPlan, threads: Int, kernel: KernelMode) throws -> StudyExecutor {
        switch executor {
        case "local":
            let given =
                [partition, time, memory, taskProgram].contains { $0 != nil }
                || [cpusPerTask, maxArraySize, maxRunning].contains {
                    $0 != nil
                } || !sbatchOptions.isEmpty || noWait
            if given { throw ValidationError("the Slurm options need --executor slurm") }
            return LocalExecutor()
        case "slurm":
            var cli = SlurmOptions()
            (cli.partition, cli.time, cli.memory) = (partition, time, memory)
            (cli.cpusPerTask, cli.maxArraySize, cli.maxRunning) = (cpusPerTask, maxArraySize, maxRunning)
            cli.sbatch = sbatchOptions
            cli.program = taskProgram
            for (name, v) in [
                ("cpus-per-task", cpusPerTask), ("max-array-size", maxArraySize), ("max-running", maxRunning)
            ]
            where (v ?? 1) < 1 {
                throw ValidationError("--\(name) must be 1 or more")
            }
            var e = SlurmExecutor(
                options: plan.slurm.overridden(by: cli), program: Self.program, threads: threads, kernel: kernel)
            e.wait = !noWait
            return e
        default:
            throw ValidationError("unknown executor '\(executor)'; expected local or slurm")
        }
    }

    /// This `spio`'s own executable, for the tasks (the path the kernel resolved, not argv[0]).
    static var program: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

/// One Slurm array task of `spio run --executor slurm`.
struct TaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task",
        abstract: "Compute one run of a study submitted with --executor slurm (what each Slurm array task runs).",
        discussion: """
            Reads the submission's tasks.json, computes unit INDEX of the stage in a private store on the node's \
            local disk ($TMPDIR), and writes that store to the workspace's cluster/results/ for the submitting \
            `spio run` to record (docs/cluster.md). Not needed by hand, except to debug a task.
            """)
    @Argument(help: "The submission's tasks.json.") var spec: String
    @Option(help: "dataset, train or evaluate.") var stage: RunKind
    @Option(help: "Index of the unit within its stage.") var index: Int

    func run() throws {
        let spec = try SlurmTask.Spec.load(spec)
        do { try KernelPolicy.activate(spec.kernel) } catch { throw ValidationError("\(error)") }
        progress("kernels: \(KernelPolicy.state)")
        Engine.setThreadCount(spec.threads)
        try SlurmTask.run(spec, stage: stage, index: index, log: progress)
    }
}

struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List runs in the store.")
    @Option(help: "Only this study.") var study: String?
    @Option(help: "Only this status: running, finished, failed, interrupted.") var status: RunStatus?
    @Option(help: "Only this kind: dataset, train, evaluate.") var kind: RunKind?
    @OptionGroup var workspace: WorkspaceOptions

    func run() throws {
        let runs = try workspace.readingStore().runs(study: study, status: status, kind: kind)
        let rows = runs.map { r -> [String] in
            [
                String(r.id!), r.kind.rawValue, r.status.rawValue, r.study, r.name, String(r.configHash.prefix(12)),
                r.seconds.map { String(format: "%.1f", $0) } ?? "", r.error.map { String($0.prefix(60)) } ?? ""
            ]
        }
        print(
            TextTable(header: ["id", "kind", "status", "study", "name", "config", "seconds", "error"], rows: rows).text)
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A run's configuration, environment, metrics (last value of each) and artifacts.")
    @Argument(help: "Run id.") var id: Int64
    @OptionGroup var workspace: WorkspaceOptions

    func run() throws {
        let store = try workspace.readingStore()
        guard let r = try store.run(id) else { throw ValidationError("no run \(id) in \(store.path)") }
        print("run \(id): \(r.kind) \(r.status)  study \(r.study)  name \(r.name)")
        print(
            "config hash \(r.configHash)\ndirectory \(r.directory)\nstarted \(r.startedAt ?? "-")  finished "
                + "\(r.finishedAt ?? "-")  seconds \(r.seconds.map { String(format: "%.1f", $0) } ?? "-")"
        )
        if let e = r.error { print("error: \(e)") }
        print("\nenvironment:");
        for (k, v) in try store.environment(id)?.fields.sorted(by: { $0.0 < $1.0 }) ?? [] { print("  \(k): \(v)") }
        print("\nparameters:");
        for (k, v) in try store.params(id).sorted(by: { $0.key < $1.key }) { print("  \(k) = \(v)") }
        print("\nmetrics (last step of each):")
        for (k, ms) in Dictionary(grouping: try store.metrics(id), by: \.key).sorted(by: { $0.key < $1.key }) {
            let last = ms.max { $0.step < $1.step }!
            print("  \(k): \(last.value) at step \(last.step) (\(ms.count) values)")
        }
        print("\nartifacts:");
        for a in try store.artifacts(id) {
            print("  \(a.name)  \(a.bytes) bytes  sha256 \(a.sha256.prefix(16))  \(a.path)")
        }
    }
}

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Parameters and metrics of runs side by side; rows that differ are marked with *.",
        discussion: """
            Runs evaluated on the same test images (evaluation runs, or training runs through their \
            evaluations) are also compared image by image: the mean difference of each per-image metric \
            (NMAE, RMSE, HFEN, SSIM, total-iron error) of every run against the first, with a 95 % \
            percentile-bootstrap interval (10,000 resamples, seeded). With --versus, the runs given are \
            group A and those after --versus group B (training seeds of two recipes): the difference of \
            the groups' mean metrics with Welch's 95 % t interval over the runs.
            """)
    @Argument(help: "Run ids (two or more, or one or more with --versus).") var ids: [Int64]
    @Option(
        parsing: .upToNextOption,
        help: "Compare the runs given (group A) with these (group B) over replicates: Welch's t interval.")
    var versus: [Int64] = []
    @Flag(help: "Show only the parameters and metrics whose values differ between the runs.")
    var differences = false
    @OptionGroup var workspace: WorkspaceOptions
    @Option(
        help: ArgumentHelp(
            "Also draw the runs' test NMAE as grouped bars (a training run with its evaluations) to PLOT.svg and "
                + "PLOT.png, as the reports do.", valueName: "PLOT"))
    var plot: String?

    func validate() throws {
        guard ids.count + versus.count >= 2 else { throw ValidationError("give at least two run ids") }
    }

    func run() throws {
        let store = try workspace.readingStore()
        let ids = self.ids + versus
        if let plot {
            let entries = try ComparisonPlot.entries(ids, store: store)
            guard entries.contains(where: { !$0.evaluations.isEmpty }) else {
                throw ValidationError(
                    "none of runs \(ids.map(String.init).joined(separator: ", ")) has a finished evaluation "
                        + "with NMAE to plot")
            }
            // Only a plot an earlier `spio compare --plot` wrote there may be replaced.
            let folder = (plot as NSString).deletingLastPathComponent
            let manifest = OutputManifest(
                directory: folder.isEmpty ? "." : folder, name: ".compare-plots", owner: "spio compare --plot")
            let base = (plot as NSString).lastPathComponent
            try manifest.checkWritable([base + ".svg", base + ".png"])
            try FileManager.default.createDirectory(atPath: manifest.directory, withIntermediateDirectories: true)
            try manifest.record([base + ".svg", base + ".png"], replacing: false)
            for f in try ComparisonPlot.chart(entries).write(to: plot) {
                progress(
                    "plot: " + ((plot as NSString).deletingLastPathComponent as NSString).appendingPathComponent(f))
            }
        }
        var columns: [[String: String]] = []
        for id in ids {
            guard let r = try store.run(id) else { throw ValidationError("no run \(id)") }
            var c = try store.params(id).reduce(into: [String: String]()) { $0["param " + $1.key] = $1.value }
            for (k, ms) in Dictionary(grouping: try store.metrics(id), by: \.key) {
                c["metric " + k.rawValue] = String(format: "%.6g", ms.max { $0.step < $1.step }!.value)
            }
            c["kind"] = r.kind.rawValue; c["status"] = r.status.rawValue; c["name"] = r.name
            columns.append(c)
        }
        let keys = Set(columns.flatMap(\.keys)).sorted {
            ($0.hasPrefix("metric") ? 1 : 0, $0) < ($1.hasPrefix("metric") ? 1 : 0, $1)
        }
        let bold = isatty(fileno(stdout)) != 0
        let rows = keys.compactMap { k -> [String]? in
            let values = columns.map { $0[k] ?? "" }
            let differs = Set(values).count > 1
            if differences && !differs { return nil }
            let mark = differs ? "*" : " "
            // A long value (a study's description, a file list) is cut, so the columns stay readable;
            // `spio show ID` prints it whole.
            let shown = values.map {
                $0.count > 60 ? $0.prefix(57).replacingOccurrences(of: "\n", with: " ") + "..." : $0
            }
            return [mark + " " + k] + shown.map { differs && bold ? "\u{1B}[1m\($0)\u{1B}[0m" : $0 }
        }
        print(TextTable(header: ["  key"] + ids.map { "run \($0)" }, rows: rows).text)
        try printStatistics(try RunComparison(store: store))
    }

    /// The paired differences against the first run and, with --versus, the groups' difference.
    func printStatistics(_ comparison: RunComparison) throws {
        let ids = self.ids + versus
        let evaluations = try ids.map { try comparison.evaluations(of: $0) }
        func table(_ rows: [RunComparison.Row], a: String, b: String) -> String {
            TextTable(
                header: ["  metric", a, b, "B - A [95 % interval]"],
                rows: rows.map { r in
                    [
                        (r.interval.excludesZero ? "* " : "  ") + r.metric.rawValue, String(format: "%.4f", r.meanA),
                        String(format: "%.4f", r.meanB), r.interval.text
                    ]
                }
            ).text
        }
        var pairedText: [String] = []
        for (i, id) in ids.enumerated().dropFirst() {
            for a in evaluations[0] {
                for b in evaluations[i] where b.scenes == a.scenes {
                    guard let rows = try comparison.paired(a, b), !rows.isEmpty else { continue }
                    pairedText.append(
                        "set \(a.set), \(rows[0].interval.counts[0]) images: run \(ids[0]) (A, evaluation \(a.id)) "
                            + "against run \(id) (B, evaluation \(b.id))\n" + table(rows, a: "A", b: "B"))
                }
            }
        }
        if !pairedText.isEmpty {
            print(
                "\npaired differences on the same images (B - A, mean over images; 95 % percentile bootstrap, "
                    + "10,000 resamples; * the interval excludes 0):")
            print(pairedText.joined(separator: "\n"))
        }
        guard !versus.isEmpty else { return }
        let groupA = Array(evaluations[..<self.ids.count]), groupB = Array(evaluations[self.ids.count...])
        var groupText: [String] = []
        for source in Set(groupA.flatMap { $0.map(\.source) }).sorted() {
            let a = groupA.compactMap { $0.first { $0.source == source } }
            let b = groupB.compactMap { $0.first { $0.source == source } }
            guard a.count == groupA.count, b.count == groupB.count else { continue }
            let rows = try comparison.overSeeds(a, b)
            guard !rows.isEmpty else { continue }
            groupText.append(
                "set \(a[0].set): runs \(self.ids.map(String.init).joined(separator: ", ")) (A) against "
                    + "\(versus.map(String.init).joined(separator: ", ")) (B)\n"
                    + table(rows, a: "A (mean of runs)", b: "B (mean of runs)"))
        }
        if groupText.isEmpty {
            print(
                "\n--versus: no test set that every run of both groups was evaluated on with two or more runs a side")
        } else {
            print(
                "\ngroups over replicates (B - A, difference of the runs' means; Welch's 95 % t interval; "
                    + "* the interval excludes 0):")
            print(groupText.joined(separator: "\n"))
        }
    }
}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-render a study's report (Markdown, CSV, PNG) from the run store alone.")
    @Argument(help: "Study name.") var study: String
    @Option(help: "Output folder (default reports/<study>).") var out: String?
    @OptionGroup var workspace: WorkspaceOptions

    func validate() throws {
        if out == nil, let why = StudyPlan.unsafeStudyName(study) { throw ValidationError(why) }
    }

    func run() throws {
        let start = Date()
        let files = try StudyReport(store: workspace.readingStore(), study: study).write(to: out ?? "reports/\(study)")
        for f in files { print(f) }
        progress(String(format: "rendered in %.2f s", Date().timeIntervalSince(start)))
    }
}

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Re-run a finished training run from its stored configuration and compare every metric.",
        discussion:
            "Training is deterministic, so the default demands bitwise equality; --tolerance relaxes it (relative). "
            + "Timing metrics are skipped."
    )
    @Argument(help: "Run id (a training run, or one of its evaluations).") var id: Int64
    @Option(help: "Relative tolerance; 0 means bitwise.") var tolerance = 0.0
    @OptionGroup var workspace: WorkspaceOptions
    @Option(help: "Threads.") var threads = 2
    @OptionGroup var kernelOptions: KernelOptions

    func run() throws {
        let store = try workspace.store()
        let recorded = try SPIOExperiments.Audit.recordedKernel(store: store, runID: id)
        let state = try kernelOptions.apply(study: recorded.mode, core: recorded.core)
        let (tolerance, note) = SPIOExperiments.Audit.tolerance(
            recordedCore: recorded.core, currentCore: state.core, requested: self.tolerance)
        if let note { progress("note: \(note)") }
        Engine.setThreadCount(threads)
        let scratch = (workspace.path as NSString).appendingPathComponent("audit/run-\(id)-\(getpid())")
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let meter = ProgressLine()
        let audit = try SPIOExperiments.Audit(
            store: store, runID: id, scratch: scratch, tolerance: tolerance, headlineOnly: note != nil, log: progress,
            progress: { meter.update($0, fraction: $1) })
        meter.finish()
        let rows = audit.lines.map {
            [
                $0.run, $0.key, String($0.values),
                $0.maxDifference == 0 ? "0" : String(format: "%.3g", $0.maxDifference), $0.equal ? "yes" : "NO"
            ]
        }
        print(
            TextTable(
                header: [
                    "run", "metric", "values", "max |difference|", tolerance == 0 ? "bitwise equal" : "within tolerance"
                ], rows: rows
            ).text)
        for problem in audit.artifactProblems { print("changed file: \(problem)") }
        print(audit.passed ? "audit passed" : "audit FAILED")
        if !audit.passed { throw ExitCode(1) }
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check every file of a workspace's finished runs against the SHA-256 the store recorded.",
        discussion:
            "Lists missing, truncated or changed files and exits 1 if there is any; a run whose files changed is "
            + "refused for reuse by `spio run`."
    )
    @OptionGroup var workspace: WorkspaceOptions

    func run() throws {
        let store = try workspace.readingStore()
        var files = 0, problems: [String] = []
        for r in try store.runs(status: .finished) {
            files += try store.artifacts(r.id!).count
            problems += try store.verifyArtifacts(r.id!)
        }
        for p in problems { print(p) }
        print("\(files) files checked, \(problems.count) changed or missing")
        if !problems.isEmpty { throw ExitCode(1) }
    }
}

/// Left-aligned text columns.
struct TextTable {
    let header: [String], rows: [[String]]
    var text: String {
        func visible(_ s: String) -> Int {
            s.replacingOccurrences(of: "\u{1B}[1m", with: "").replacingOccurrences(of: "\u{1B}[0m", with: "").count
        }
        let widths = header.indices.map { i in ([header] + rows).map { visible($0[i]) }.max() ?? 0 }
        func line(_ r: [String]) -> String {
            // Trailing padding only: a first column may start with a mark column ("* ", "  ").
            var s = r.enumerated().map { $1 + String(repeating: " ", count: widths[$0] - visible($1)) }
                .joined(separator: "  ")
            while s.last == " " { s.removeLast() }
            return s
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
    }
}

extension KernelMode: ExpressibleByArgument {}
extension RunKind: ExpressibleByArgument {}
extension RunStatus: ExpressibleByArgument {}

/// `--kernel portable|native`: which OpenBLAS kernels compute this command's products
/// (docs/kernels.md). Precedence: this option, then `$SPIO_KERNEL`, then the study's `kernel:`,
/// then `portable`. A user's own `OPENBLAS_CORETYPE` overrides the mode and is recorded.
struct KernelOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "OpenBLAS kernels: portable (Haswell AVX2 kernels on every CPU: bitwise the same numbers everywhere; the "
                + "default) or native (the fastest for this CPU).")
    )
    var kernel: KernelMode?

    /// Applies the mode (re-executing `spio` when the loaded kernels differ) and returns the state.
    @discardableResult
    func apply(study: KernelMode? = nil, core: String? = nil) throws -> KernelPolicy.State {
        do {
            let chosen = try kernel ?? KernelPolicy.environmentMode()
            // An exact kernel (an audit's) applies only where no mode was asked for explicitly.
            try KernelPolicy.activate(chosen ?? study ?? .portable, core: chosen == nil ? core : nil)
        } catch {
            throw ValidationError("\(error)")
        }
        let state = KernelPolicy.state
        if state.userOverride != nil {
            progress(
                "note: OPENBLAS_CORETYPE=\(state.userOverride!) from the environment overrides the "
                    + "\(state.mode.rawValue) kernels; "
                    + "numbers may differ from the portable ones (unset it to get them)")
        } else if !state.isPortable {
            progress(
                "note: \(state.mode.rawValue) kernels (OpenBLAS \(state.core)); numbers may differ in their last bits "
                    + "from the portable (Haswell) ones"
            )
        }
        return state
    }
}

/// `spio export`: a study's runs in other tools' formats.
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a study's runs in another tool's format.", subcommands: [MLflow.self])

    struct MLflow: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "mlflow",
            abstract: "Write a study's runs as an MLflow file store that MLflow's client and UI read.",
            discussion: """
                One experiment named after the study; one MLflow run per dataset, training and evaluation, with \
                parameters, every metric at every step, tags and the run's workspace folder as its artifacts. \
                Exporting again rewrites the same runs. View with: mlflow ui --backend-store-uri OUT (docs/mlflow.md).
                """)
        @Argument(help: "Study name.") var study: String
        @Option(help: "MLflow file store folder (default ./mlruns).") var out = "mlruns"
        @OptionGroup var workspace: WorkspaceOptions

        func run() throws {
            let store = try workspace.readingStore()
            let export = MLflowExport(store: store, study: study)
            let (experiment, runs) = try export.write(to: out)
            print("\(out): experiment \(experiment) '\(study)', \(runs) runs")
        }
    }
}

/// `spio store`: a workspace's results packed to travel with the repository, and unpacked on the
/// next machine.
struct Store: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pack a workspace's store (and checkpoints to continue from) into a folder, or unpack one.",
        discussion: """
            `spio store pack --out reports/store --checkpoints STUDY` writes the store as runs.sqlite.gz and, \
            for each named study, the weights and newest checkpoint of each lineage's longest training run. \
            `spio store unpack reports/store --workspace DIR` restores them into an empty workspace: there, \
            every finished run is reused as recorded (spio runs, show, compare, report read it), and a longer \
            run of a packed lineage continues from its checkpoint. Datasets are recomputed from their keys \
            when a computation needs them (docs/run-store.md).
            """,
        subcommands: [Pack.self, Unpack.self])

    struct Pack: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Pack the workspace's store into a folder.")
        @Option(help: "The folder to write (its runs.sqlite.gz and models/ are replaced).") var out: String
        @Option(parsing: .upToNextOption, help: "Studies whose lineage tips to pack (weights and newest checkpoint).")
        var checkpoints: [String] = []
        @OptionGroup var workspace: WorkspaceOptions

        func run() throws {
            let files = try StorePack.pack(workspace: workspace.path, to: out, checkpointsOf: checkpoints)
            for f in files {
                let path = (out as NSString).appendingPathComponent(f)
                let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
                print("\(path)" + (bytes.map { "  \($0) bytes" } ?? ""))
            }
        }
    }

    struct Unpack: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Unpack a packed store into an empty workspace.")
        @Argument(help: "The packed folder (e.g. reports/store).") var folder: String
        @OptionGroup var workspace: WorkspaceOptions

        func run() throws {
            for f in try StorePack.unpack(folder, into: workspace.path) {
                print((workspace.path as NSString).appendingPathComponent(f))
            }
        }
    }
}
