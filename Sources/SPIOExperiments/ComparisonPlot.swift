import Foundation
import SPIOPlots

/// Test NMAE (mean +- sd over a set's images) of several runs as grouped bars: one group per run,
/// one bar per test set. The report draws it per test set of a grid or ablation; `spio compare
/// --plot` draws it for any runs.
package enum ComparisonPlot {
    /// One group: a run's label and its evaluations as (test set, summary).
    package struct Entry {
        package var label: String
        package var evaluations: [(set: String, summary: EvaluationRecord)]
        package init(label: String, evaluations: [(set: String, summary: EvaluationRecord)]) {
            self.label = label; self.evaluations = evaluations
        }
    }

    package static func chart(_ entries: [Entry]) -> BarChart {
        var sets: [String] = []
        for e in entries { for (s, _) in e.evaluations where !sets.contains(s) { sets.append(s) } }
        var chart = BarChart(
            yLabel: sets.count == 1 ? "NMAE on \(sets[0]) (mean ± sd over images)" : "NMAE (mean ± sd over images)",
            categories: entries.map(\.label))
        chart.members = sets.map { s in
            let found = entries.map { e in e.evaluations.first { $0.set == s }?.summary }
            return (s, found.map { $0?.nmaeMean ?? .nan }, found.map { $0?.nmaeSD ?? .nan })
        }
        return chart
    }

    /// The entries for runs of a store: a training run brings its finished evaluations, an
    /// evaluation run itself.
    package static func entries(_ ids: [Int64], store: RunStore) throws -> [Entry] {
        let evaluations = try store.runs(status: .finished, kind: .evaluate)
        return try ids.map { id in
            guard let run = try store.run(id) else { throw RunStoreError.missing("run \(id)") }
            let mine = run.kind == .evaluate ? [run] : evaluations.filter { $0.parentID == id }
            return Entry(
                label: "run \(id) \(run.name)",
                evaluations: try mine.map { e in
                    (try store.params(e.id!)[ParamKey.set] ?? e.name, try EvaluationRecord(store: store, id: e.id!))
                }.filter { $0.1.nmaeMean.isFinite })
        }
    }
}
