import Foundation
import SPIOImageIO
import SPIOProcess
import SPIOKernels

/// Computes a study's runs as Slurm job arrays: one array of datasets, one of trainings that
/// starts when the datasets have ended, one of evaluations after the trainings; each array task
/// runs `spio task` on exactly one run (`SlurmTask`). This process is the only one that writes the
/// workspace's store: it records every task's result store, in the order a local run would, so run
/// ids, the store's contents and the report equal a local run's (docs/cluster.md).
///
/// Re-running the same study submits only the units that no store or result holds: a failed or
/// killed task costs its own unit (and what depends on it), not the study.
package struct SlurmExecutor: StudyExecutor {
    package let name = "slurm"
    package var options: SlurmOptions
    /// The `spio` that tasks run unless `options.program` names another; it must be reachable at
    /// this path on the compute nodes.
    package var program: String
    /// Engine threads per task when `options.cpusPerTask` is unset.
    package var threads: Int
    package var kernel: KernelMode
    /// Wait for the jobs and record them (the default), or return once they are submitted.
    package var wait = true
    package var pollSeconds = 2.0

    package init(options: SlurmOptions, program: String, threads: Int, kernel: KernelMode) {
        self.options = options; self.program = program; self.threads = threads; self.kernel = kernel
    }

    /// Thrown, after submitting, by an executor that does not wait: not a failure.
    package struct Submitted: Error, CustomStringConvertible {
        package let description: String
    }

    /// The executor's folder in a workspace: submissions (`<study>-<time>/` with the task list,
    /// the store snapshot, scripts and logs), `results/`, and `<study>.submission.json`.
    package static func folder(workspace: String) -> String {
        (workspace as NSString).appendingPathComponent("cluster")
    }

    package func execute(_ plan: StudyPlan, runner: Runner, finished: (Int, Runner.Outcome) throws -> Void) throws {
        try runner.begin(plan)
        let folder = Self.folder(workspace: runner.store.workspace)
        let results = (folder as NSString).appendingPathComponent("results")
        let record = (folder as NSString).appendingPathComponent("\(plan.study).submission.json")
        if let pending = try Submission.load(record), !(try Slurm.activeTasks(of: pending.jobs)).isEmpty {
            guard wait else {
                throw Submitted(
                    description: "study \(plan.study): Slurm jobs \(pending.jobs.joined(separator: ", ")) still run; "
                        + "run again to wait for them and record their results")
            }
            try waitFor(pending, runner: runner, results: results)
        }
        var seen = Set<Runner.WorkUnit>()
        var todo: [SlurmTask.Spec.Item] = []
        for (i, planned) in plan.runs.enumerated() {
            for unit in try Runner.units(of: planned) where seen.insert(Self.key(unit)).inserted {
                let result = SlurmTask.resultPath(unit, in: results)
                if runner.force {
                    // Recomputed whatever exists; an older result must not stand in for the new one.
                    try? FileManager.default.removeItem(atPath: result)
                } else {
                    if try runner.store.finished(kind: unit.kind, hash: unit.hash) != nil { continue }
                    if FileManager.default.fileExists(atPath: result) { continue }
                }
                todo.append(SlurmTask.Spec.Item(run: i, unit: unit))
            }
        }
        if !todo.isEmpty {
            let submission = try submit(todo, plan: plan, runner: runner, results: results)
            try submission.save(record)
            guard wait else {
                throw Submitted(
                    description: "study \(plan.study): submitted \(todo.count) runs as Slurm jobs "
                        + "\(submission.jobs.joined(separator: ", ")); run the same command again to record them")
            }
            try waitFor(submission, runner: runner, results: results)
        }
        try collect(plan, runner: runner, results: results, record: record, finished: finished)
    }

    /// A unit without its test-set index: two planned runs may share a dataset under other indices.
    static func key(_ u: Runner.WorkUnit) -> Runner.WorkUnit { Runner.WorkUnit(kind: u.kind, hash: u.hash) }

    // MARK: submitting

    private func submit(
        _ todo: [SlurmTask.Spec.Item], plan: StudyPlan, runner: Runner, results: String
    ) throws -> Submission {
        let stamp = RunStore.now().replacingOccurrences(of: ":", with: "").replacingOccurrences(of: ".", with: "")
        let dir = (Self.folder(workspace: runner.store.workspace) as NSString).appendingPathComponent(
            "\(plan.study)-\(stamp)")
        let logs = (dir as NSString).appendingPathComponent("logs")
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: results, withIntermediateDirectories: true)
        let stages: [RunKind] = [.dataset, .train, .evaluate]
        let cwd = FileManager.default.currentDirectoryPath
        let spec = SlurmTask.Spec(
            study: plan.study, file: RunStore.absolute(plan.file), overrides: plan.overrides, directory: cwd,
            workspace: runner.store.workspace, base: (dir as NSString).appendingPathComponent("base.sqlite"),
            results: results, threads: options.cpusPerTask ?? threads, kernel: kernel,
            stages: Dictionary(
                uniqueKeysWithValues: stages.map { k in (k.rawValue, todo.filter { $0.unit.kind == k }) }))
        try runner.store.writeSnapshot(to: spec.base)
        let specPath = (dir as NSString).appendingPathComponent("tasks.json")
        try FileBytes.writeAtomically(try JSONEncoder().encode(spec), to: specPath)
        let script = (dir as NSString).appendingPathComponent("task.sh")
        let text = """
            #!/bin/sh
            # Written by `spio run --executor slurm`: array task i of stage $1 computes unit $2 + i.
            exec \(Self.quoted(options.program ?? program)) task \(Self.quoted(specPath)) --stage "$1" --index $(( $2 + SLURM_ARRAY_TASK_ID ))

            """
        try FileBytes.writeAtomically(Array(text.utf8), to: script)
        chmod(script, 0o755)
        let limit = min(options.maxArraySize ?? Int.max, try Slurm.maxArraySize())
        var submission = Submission(directory: dir, jobs: [], units: [])
        var previous: [String] = []
        do {
            for stage in stages {
                let items = spec.stages[stage.rawValue]!
                guard !items.isEmpty else { continue }
                var ids: [String] = []
                for offset in stride(from: 0, to: items.count, by: limit) {
                    let n = min(limit, items.count - offset)
                    let log = (logs as NSString).appendingPathComponent("\(stage.rawValue)-\(offset)-%a.log")
                    var args = [
                        "--parsable", "--job-name=spio-\(plan.study)-\(stage.rawValue)",
                        "--array=0-\(n - 1)" + (options.maxRunning.map { "%\($0)" } ?? ""), "--output=\(log)",
                        "--chdir=\(cwd)", "--cpus-per-task=\(spec.threads)"
                    ]
                    if let p = options.partition { args.append("--partition=\(p)") }
                    if let t = options.time { args.append("--time=\(t)") }
                    if let m = options.memory { args.append("--mem=\(m)") }
                    if !previous.isEmpty { args.append("--dependency=afterany:" + previous.joined(separator: ":")) }
                    args += options.sbatch + [script, stage.rawValue, String(offset)]
                    let id = try Slurm.submit(args)
                    ids.append(id)
                    for k in 0..<n {
                        submission.units.append(
                            Submission.Unit(
                                kind: stage, hash: items[offset + k].unit.hash, task: "\(id)_\(k)",
                                log: log.replacingOccurrences(of: "%a", with: String(k))))
                    }
                    runner.log(
                        "slurm: \(stage.rawValue) tasks \(offset)-\(offset + n - 1) of \(items.count) submitted as job \(id)"
                            + (previous.isEmpty ? "" : " (after \(previous.joined(separator: ", ")))"))
                    submission.jobs.append(id)
                }
                previous = ids
            }
        } catch {
            // Half a submission would run trainings without their datasets: none of it stays.
            if !submission.jobs.isEmpty { _ = try? Subprocess.run("scancel", submission.jobs) }
            throw error
        }
        return submission
    }

    private func waitFor(_ submission: Submission, runner: Runner, results: String) throws {
        var last = ""
        while true {
            let active = try Slurm.activeTasks(of: submission.jobs)
            let done = submission.units.filter {
                FileManager.default.fileExists(
                    atPath: SlurmTask.resultPath(Runner.WorkUnit(kind: $0.kind, hash: $0.hash), in: results))
            }.count
            let running = active.filter { $0 == "R" }.count
            let line =
                "slurm: \(done)/\(submission.units.count) runs done, \(running) running, "
                + "\(active.count - running) waiting"
            if line != last { runner.progress(line, Double(done) / Double(max(1, submission.units.count))) }
            last = line
            if active.isEmpty { return }
            if runner.shouldStop() {
                throw SlurmError.leftRunning(submission.jobs)
            }
            usleep(UInt32(pollSeconds * 1e6))
        }
    }

    // MARK: recording

    /// Records every planned run from the store or the tasks' results, in the local order; a run
    /// found nowhere is recorded as failed with its task's log, and the others go on.
    private func collect(
        _ plan: StudyPlan, runner: Runner, results: String, record: String,
        finished: (Int, Runner.Outcome) throws -> Void
    ) throws {
        let submission = try Submission.load(record)
        runner.results = RunResults(
            origin: "slurm task", stores: try RunResults.stores(in: results, workspace: runner.store.workspace)
        ) { kind, hash, name in
            let unit = submission?.units.first { $0.kind == kind && $0.hash == hash }
            return SlurmError.taskFailed(kind.rawValue, name, task: unit?.task, log: unit?.log)
        }
        defer { runner.results = nil }
        var failed = 0
        for (i, planned) in plan.runs.enumerated() {
            runner.log("[\(i + 1)/\(plan.runs.count)] \(planned.name)")
            do {
                try finished(i, try runner.run(planned, study: plan.study, description: plan.description))
            } catch let error as SlurmError {
                guard case .taskFailed = error else { throw error }
                runner.log("\(error)")
                failed += 1
            }
        }
        runner.results = nil
        // What the store now holds needs no result file; a failure keeps its submission's logs.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: results)) ?? []
        where name.hasSuffix(".sqlite") {
            let parts = name.dropLast(".sqlite".count).split(separator: "-", maxSplits: 1).map(String.init)
            guard parts.count == 2, let kind = RunKind(rawValue: parts[0]),
                try runner.store.finished(kind: kind, hash: parts[1]) != nil
            else { continue }
            try? FileManager.default.removeItem(atPath: (results as NSString).appendingPathComponent(name))
        }
        if failed > 0 { throw SlurmError.failedRuns(failed, plan.runs.count) }
        if let submission {
            try? FileManager.default.removeItem(atPath: submission.directory)
            try? FileManager.default.removeItem(atPath: record)
        }
        // Nothing pending: the executor's folders go too (rmdir keeps them when anything is left).
        rmdir(results)
        rmdir((results as NSString).deletingLastPathComponent)
    }

    static func quoted(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}

/// What was submitted for a study, kept in `cluster/<study>.submission.json` until recorded.
struct Submission: Codable {
    struct Unit: Codable {
        var kind: RunKind, hash: String
        /// `<job>_<array index>`.
        var task: String
        var log: String
    }
    var directory: String
    var jobs: [String]
    var units: [Unit]

    static func load(_ path: String) throws -> Submission? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do { return try JSONDecoder().decode(Submission.self, from: data) } catch {
            throw SlurmError.unreadable(path, "\(error)")
        }
    }

    func save(_ path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileBytes.writeAtomically(try encoder.encode(self), to: path)
    }
}

/// Slurm's commands, as the executor uses them.
enum Slurm {
    /// Submits with `sbatch --parsable`; the job id.
    static func submit(_ arguments: [String]) throws -> String {
        let r = try run("sbatch", arguments)
        guard r.status == 0,
            let id = r.output.split(separator: ";").first?.trimmingCharacters(in: .whitespacesAndNewlines),
            !id.isEmpty
        else { throw SlurmError.command("sbatch", r.errors.isEmpty ? r.output : r.errors) }
        return id
    }

    /// The state (`PD`, `R`, `CG`, ...) of every task of these array jobs still in the queue.
    static func activeTasks(of jobs: [String]) throws -> [String] {
        guard !jobs.isEmpty else { return [] }
        let r = try run("squeue", ["-h", "-r", "-o", "%F %t"])
        guard r.status == 0 else { throw SlurmError.command("squeue", r.errors) }
        let ours = Set(jobs)
        return r.output.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            return f.count == 2 && ours.contains(String(f[0])) ? String(f[1]) : nil
        }
    }

    /// The cluster's `MaxArraySize`: array indices must stay below it.
    static func maxArraySize() throws -> Int {
        let r = try run("scontrol", ["show", "config"])
        guard r.status == 0 else { throw SlurmError.command("scontrol", r.errors) }
        for line in r.output.split(separator: "\n") where line.hasPrefix("MaxArraySize") {
            if let v = line.split(separator: "=").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }) {
                return v
            }
        }
        return 1001
    }

    private static func run(_ program: String, _ arguments: [String]) throws -> Subprocess {
        do { return try Subprocess.run(program, arguments) } catch is Subprocess.NotFound {
            throw SlurmError.notInstalled(program)
        }
    }
}

/// Why the Slurm executor or a task stopped.
package enum SlurmError: Error, CustomStringConvertible {
    case notInstalled(String), command(String, String), unreadable(String, String), noSuchTask(String, Int, Int)
    case studyChanged(String, String), dependencyMissing(String, String), leftRunning([String]), failedRuns(Int, Int)
    case taskFailed(String, String, task: String?, log: String?)

    package var description: String {
        switch self {
        case let .notInstalled(p):
            return "\(p) not found: --executor slurm needs Slurm's client commands (sbatch, squeue, scontrol) on PATH"
        case let .command(p, text): return "\(p) failed: \(text.trimmingCharacters(in: .whitespacesAndNewlines))"
        case let .unreadable(path, why): return "\(path): \(why)"
        case let .noSuchTask(stage, i, n): return "no \(stage) task \(i): the submission has \(n)"
        case let .studyChanged(file, core):
            return "\(file): this task's runs are not the submitted ones: the study file or a preset changed since "
                + "it was submitted, or this node's OpenBLAS kernels (\(core)) differ from the submitting node's; run "
                + "`spio run` again to submit the study as it is now"
        case let .dependencyMissing(kind, name):
            return "the \(kind) run \(name) that this task needs did not finish (see its own task's log)"
        case let .leftRunning(jobs):
            return "stopped waiting; Slurm jobs \(jobs.joined(separator: ", ")) go on. Run the same command again "
                + "to record them, or `scancel \(jobs.joined(separator: " "))` to stop them"
        case let .failedRuns(n, total):
            return "\(n) of \(total) planned runs did not finish on Slurm (their logs are above); run the same "
                + "command again to resubmit only what is missing"
        case let .taskFailed(kind, name, task, log):
            guard let task, let log else { return "\(kind) run \(name): no result from Slurm; run again to submit it" }
            let tail =
                (try? String(contentsOfFile: log, encoding: .utf8))?.split(
                    separator: "\n", omittingEmptySubsequences: false
                ).suffix(12).joined(separator: "\n    ") ?? "(no log written: the task never started)"
            return "\(kind) run \(name): Slurm task \(task) left no result; the end of \(log):\n    \(tail)"
        }
    }
}
