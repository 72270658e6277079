import Foundation

/// Re-runs a finished training run (and its evaluations) from its stored configuration in a
/// scratch workspace and compares every metric with the stored ones. Training here is
/// deterministic, so the expectation is bitwise equality; timing metrics are not compared.
public struct Audit {
    public struct Line { public var run: String, key: String, values: Int, maxDifference: Double, equal: Bool }

    public let lines: [Line]
    public var passed: Bool { lines.allSatisfy(\.equal) }

    /// Metrics that measure time, not results.
    static func isTiming(_ key: String) -> Bool { key.hasSuffix("seconds") || key.hasSuffix("per_second") }

    public init(store: RunStore, runID: Int64, scratch: String, tolerance: Double = 0, log: @escaping (String) -> Void = { _ in },
                progress: @escaping (String, Double) -> Void = { _, _ in }) throws {
        guard var original = try store.run(runID) else { throw AuditError.noSuchRun(runID) }
        if original.kind == "evaluate", let parent = original.parentID, let p = try store.run(parent) { original = p }
        guard original.kind == "train", original.status == "finished" else { throw AuditError.notAuditable(runID, original.kind, original.status) }
        let config = try JSONDecoder().decode(RunConfig.self, from: Data(original.configJSON.utf8))
        let runner = try Runner(workspace: scratch)
        runner.force = true
        runner.log = log; runner.progress = progress
        let outcome = try runner.run(StudyPlan.PlannedRun(name: original.name, gridValues: [], config: config, yaml: ""), study: original.study + " (audit)")
        let originalEvaluations = try store.runs(study: original.study, kind: "evaluate").filter { $0.parentID == original.id && $0.status == "finished" }
        var pairs: [(String, Int64, Int64)] = [("train \(original.id!)", original.id!, outcome.training.id!)]
        for e in outcome.evaluations {
            let set = try runner.store.params(e.id!)["set"]
            if let o = try originalEvaluations.last(where: { try store.params($0.id!)["set"] == set }) { pairs.append(("evaluate \(o.id!) (\(set ?? "?"))", o.id!, e.id!)) }
        }
        var lines: [Line] = []
        for (label, old, new) in pairs {
            let a = try store.metrics(old).filter { !Self.isTiming($0.key) }
            let b = try runner.store.metrics(new).filter { !Self.isTiming($0.key) }
            let byKey = Dictionary(grouping: b, by: \.key)
            for (key, olds) in Dictionary(grouping: a, by: \.key).sorted(by: { $0.key < $1.key }) {
                let news = Dictionary(uniqueKeysWithValues: (byKey[key] ?? []).map { ($0.step, $0.value) })
                var worst = 0.0, equal = news.count == olds.count
                for m in olds {
                    guard let v = news[m.step] else { equal = false; worst = .infinity; continue }
                    let d = abs(v - m.value)
                    worst = max(worst, d.isNaN ? .infinity : d)
                    if tolerance == 0 ? v.bitPattern != m.value.bitPattern : !(d <= tolerance * max(1, abs(m.value))) { equal = false }
                }
                lines.append(Line(run: label, key: key, values: olds.count, maxDifference: worst, equal: equal))
            }
        }
        self.lines = lines
    }
}

public enum AuditError: Error, CustomStringConvertible {
    case noSuchRun(Int64), notAuditable(Int64, String, String)
    public var description: String {
        switch self {
        case let .noSuchRun(id): return "no run \(id) in the store"
        case let .notAuditable(id, kind, status): return "run \(id) is a \(status) \(kind) run; audit re-runs finished training runs (or their evaluations)"
        }
    }
}
