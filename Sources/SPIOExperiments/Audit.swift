import SPIOCoding
import Foundation
import SPIOKernels
import SPIOTensor

/// Re-runs a finished training run (and its evaluations) from its stored configuration in a
/// scratch workspace and compares every metric with the stored ones. Training here is
/// deterministic, so the expectation is bitwise equality; timing metrics are not compared.
package struct Audit {
    package struct Line { package var run: String, key: String, values: Int, maxDifference: Double, equal: Bool }

    package let lines: [Line]
    /// Files of the audited run (and its evaluations) that differ from their recorded SHA-256.
    package let artifactProblems: [String]
    package var passed: Bool { lines.allSatisfy(\.equal) && artifactProblems.isEmpty }

    /// The relative tolerance an audit falls back to when the re-run cannot use the kernels the run
    /// was trained with: another summation order changes the last bits of every product, and over
    /// hundreds of training steps those grow into differences of a few per cent in the headline
    /// metrics, and far more in per-step losses and per-image errors (docs/kernels.md has the
    /// measurement behind this figure).
    package static let crossKernelTolerance = 0.1

    /// What a cross-kernel audit compares (at the last step): the final training loss, the final
    /// validation NMAE and every test set's mean NMAE.
    package static let headlineKeys: Set<MetricKey> = [.epochTrainLoss, .validationNMAE, MetricKey.nmae.mean]

    /// The kernel mode and OpenBLAS kernel recorded for a run (or its training run), read from its
    /// environment; stores before v4 recorded only the `blas` text, whose `(core X` names it.
    package static func recordedKernel(store: RunStore, runID: Int64) throws -> (mode: KernelMode?, core: String?) {
        guard var run = try store.run(runID) else { throw AuditError.noSuchRun(runID) }
        if run.kind == .evaluate, let parent = run.parentID, let p = try store.run(parent) { run = p }
        let env = try store.environment(run.id!)
        var core = env?.blasCore.flatMap { $0.isEmpty ? nil : $0 }
        if core == nil, let blas = env?.blas, let r = blas.range(of: "(core ") {
            core = String(blas[r.upperBound...].prefix { $0.isLetter || $0.isNumber })
        }
        let mode =
            env?.kernelMode.flatMap { text in KernelMode.allCases.first { text.hasPrefix($0.rawValue) } }
            ?? core.map { $0.lowercased() == KernelPolicy.portableCore.lowercased() ? .portable : .native }
        return (mode, core)
    }

    /// The tolerance to audit with, and a note when the re-run's kernels differ from the recorded
    /// ones (bitwise equality is then not expected).
    package static func tolerance(recordedCore: String?, currentCore: String, requested: Double) -> (Double, String?) {
        guard let recordedCore, recordedCore.lowercased() != currentCore.lowercased() else { return (requested, nil) }
        let tolerance = requested == 0 ? crossKernelTolerance : requested
        return (
            tolerance,
            "the run was trained with OpenBLAS \(recordedCore) kernels and this re-run uses \(currentCore): "
                + "bitwise equality is not expected, so only the headline metrics "
                + "(\(headlineKeys.sorted().map(\.rawValue).joined(separator: ", ")), "
                + "last step) are compared, within a relative tolerance of \(tolerance)"
        )
    }

    /// With `headlineOnly` (a re-run on other kernels than the run's) only the headline metrics are
    /// compared, each at its last step: per-step losses and per-image errors of two kernels differ
    /// by far more than their summaries do.
    package init(
        store: RunStore, runID: Int64, scratch: String, tolerance: Double = 0, headlineOnly: Bool = false,
        log: @escaping (String) -> Void = { _ in },
        progress: @escaping (String, Double) -> Void = { _, _ in }
    ) throws {
        guard var original = try store.run(runID) else { throw AuditError.noSuchRun(runID) }
        if original.kind == .evaluate, let parent = original.parentID, let p = try store.run(parent) { original = p }
        guard original.kind == .train, original.status == .finished else {
            throw AuditError.notAuditable(runID, original.kind, original.status)
        }
        let config: RunConfig
        do { config = try decodeCanonicalJSON(RunConfig.self, from: original.configJSON) } catch {
            throw AuditError.damagedConfiguration(original.id!, AuditError.reason(error))
        }
        let originalEvaluations = try store.runs(study: original.study, kind: .evaluate).filter {
            $0.parentID == original.id && $0.status == .finished
        }
        artifactProblems = try ([original] + originalEvaluations).flatMap { try store.verifyArtifacts($0.id!) }
        let runner = try Runner(workspace: scratch)
        runner.force = true
        runner.log = log; runner.progress = progress
        let outcome = try runner.run(
            StudyPlan.PlannedRun(name: original.name, gridValues: [], config: config),
            study: original.study + " (audit)")
        var pairs: [(String, Int64, Int64)] = [("train \(original.id!)", original.id!, outcome.training.id!)]
        for e in outcome.evaluations {
            let set = try runner.store.params(e.id!)[ParamKey.set]
            if let o = try originalEvaluations.last(where: { try store.params($0.id!)[ParamKey.set] == set }) {
                pairs.append(("evaluate \(o.id!) (\(set ?? "?"))", o.id!, e.id!))
            }
        }
        var lines: [Line] = []
        for (label, old, new) in pairs {
            var a = try store.metrics(old).filter { !$0.key.isTiming }
            var b = try runner.store.metrics(new).filter { !$0.key.isTiming }
            if headlineOnly {
                func lastHeadlines(_ ms: [RunStore.Metric]) -> [RunStore.Metric] {
                    Dictionary(grouping: ms.filter { Self.headlineKeys.contains($0.key) }, by: \.key).values.compactMap
                    { $0.max { $0.step < $1.step } }
                }
                a = lastHeadlines(a); b = lastHeadlines(b)
            }
            let byKey = Dictionary(grouping: b, by: \.key)
            for (key, olds) in Dictionary(grouping: a, by: \.key).sorted(by: { $0.key < $1.key }) {
                let news = Dictionary(uniqueKeysWithValues: (byKey[key] ?? []).map { ($0.step, $0.value) })
                var worst = 0.0, equal = news.count == olds.count
                for m in olds {
                    guard let v = news[m.step] else { equal = false; worst = .infinity; continue }
                    let d = abs(v - m.value)
                    worst = max(worst, d.isNaN ? .infinity : d)
                    if tolerance == 0 ? v.bitPattern != m.value.bitPattern : !(d <= tolerance * max(1, abs(m.value))) {
                        equal = false
                    }
                }
                lines.append(
                    Line(run: label, key: key.rawValue, values: olds.count, maxDifference: worst, equal: equal))
            }
        }
        self.lines = lines
    }
}

package enum AuditError: Error, CustomStringConvertible {
    case noSuchRun(Int64), notAuditable(Int64, RunKind, RunStatus), damagedConfiguration(Int64, String)
    package var description: String {
        switch self {
        case let .damagedConfiguration(id, why):
            return "run \(id): its stored configuration (runs.config_json) is not a run configuration (\(why)); the "
                + "store was edited or is damaged, so the run cannot be re-run from it"
        case let .noSuchRun(id): return "no run \(id) in the store"
        case let .notAuditable(id, kind, status):
            return "run \(id) is a \(status) \(kind) run; audit re-runs finished training runs (or their evaluations)"
        }
    }

    /// A decoding failure in words: where in the JSON, and what (Foundation's own text says only
    /// that "the data isn't in the correct format").
    static func reason(_ error: Error) -> String {
        guard let e = error as? DecodingError else { return "\(error)" }
        func at(_ c: DecodingError.Context) -> String {
            let path = c.codingPath.map(\.stringValue).joined(separator: ".")
            let under =
                (c.underlyingError as NSError?).map {
                    ": " + ($0.userInfo[NSDebugDescriptionErrorKey] as? String ?? "\($0)")
                } ?? ""
            return (path.isEmpty ? "" : "at \(path): ") + c.debugDescription + under
        }
        switch e {
        case let .dataCorrupted(c): return at(c)
        case let .keyNotFound(key, c): return "no '\(key.stringValue)', " + at(c)
        case let .typeMismatch(_, c), let .valueNotFound(_, c): return at(c)
        @unknown default: return "\(e)"
        }
    }
}
