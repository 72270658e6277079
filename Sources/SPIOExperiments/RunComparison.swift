import SPIOCoding
import Foundation
import SPIOPhysics

/// The statistics of `spio compare`: runs evaluated on the same test images, compared image by
/// image (`DifferenceInterval.paired`), and groups of training seeds compared by their means
/// (`DifferenceInterval.overReplicates`).
package struct RunComparison {
    /// The per-image metrics compared, in this order.
    package static let metrics: [MetricKey] = [.nmae] + MetricKey.quality

    /// One evaluation: its run, the test set's name and what identifies its images.
    package struct Evaluation {
        package let id: Int64
        package let set: String
        /// The images' identity: the evaluation key's `dataset` (a simulated set's content hash, or
        /// the files' SHA-256), so two evaluations with one source saw the same images.
        package let source: String
        /// The scenes behind the images: a simulated set's content hash with the input kind left out,
        /// so View Line images and the true field maps of the same slices (the information control,
        /// the classical oracle) pair image by image; the source otherwise.
        package let scenes: String
    }

    /// One metric of a comparison: each side's mean and the difference B - A.
    package struct Row {
        package let metric: MetricKey
        package let meanA: Double, meanB: Double
        package let interval: DifferenceInterval
    }

    let store: RunStore
    /// The store's finished evaluations by the training they were made from, read once: a report
    /// asks for every cell's runs.
    private let evaluationsByTraining: [Int64: [RunStore.Run]]

    package init(store: RunStore) throws {
        self.store = store
        evaluationsByTraining = Dictionary(
            grouping: try store.runs(status: .finished, kind: .evaluate).filter { $0.parentID != nil },
            by: { $0.parentID! })
    }

    /// A run's finished evaluations: the run itself if it is one, else those made from it.
    package func evaluations(of id: Int64) throws -> [Evaluation] {
        guard let run = try store.run(id) else { throw RunStoreError.missing("run \(id)") }
        let runs = run.kind == .evaluate ? [run] : evaluationsByTraining[id] ?? []
        // The set is read where it decodes (an older store's may not); the source always is.
        struct Key: Decodable {
            var dataset: String
            var set: TestSetConfig?
            enum CodingKeys: String, CodingKey { case dataset, set }
            init(from decoder: Decoder) throws {
                let c = try decoder.container(keyedBy: CodingKeys.self)
                dataset = try c.decode(String.self, forKey: .dataset)
                set = try? c.decode(TestSetConfig.self, forKey: .set)
            }
        }
        return try runs.compactMap { r in
            guard r.status == .finished, let key = try? decodeCanonicalJSON(Key.self, from: r.configJSON)
            else { return nil }
            return Evaluation(
                id: r.id!, set: try store.params(r.id!)[ParamKey.set] ?? r.name, source: key.dataset,
                scenes: RunIdentity.scenes(dataset: key.dataset, set: key.set))
        }
    }

    /// Each metric's per-image values, by image index.
    func perImage(_ id: Int64) throws -> [MetricKey: [Int: Double]] {
        var out: [MetricKey: [Int: Double]] = [:]
        for m in try store.metrics(id) where Self.metrics.contains(m.key) { out[m.key, default: [:]][m.step] = m.value }
        return out
    }

    /// B - A image by image for every metric both evaluations measured on the same images, or nil
    /// when they saw different images.
    package func paired(_ a: Evaluation, _ b: Evaluation) throws -> [Row]? {
        guard a.scenes == b.scenes else { return nil }
        let va = try perImage(a.id), vb = try perImage(b.id)
        return Self.metrics.compactMap { key in
            guard let x = va[key], let y = vb[key] else { return nil }
            let images = Set(x.keys).intersection(y.keys).sorted()
            let xs = images.map { x[$0]! }, ys = images.map { y[$0]! }
            guard let interval = DifferenceInterval.paired(xs, ys) else { return nil }
            return Row(
                metric: key, meanA: xs.reduce(0, +) / Double(xs.count), meanB: ys.reduce(0, +) / Double(ys.count),
                interval: interval)
        }
    }

    /// Group B's mean of the runs' mean metric minus group A's, over replicates (training seeds),
    /// on the images of one source; nil where a side has fewer than two runs with that metric.
    package func overSeeds(_ a: [Evaluation], _ b: [Evaluation]) throws -> [Row] {
        func means(_ group: [Evaluation], _ key: MetricKey) throws -> [Double] {
            try group.compactMap { e in try store.metrics(e.id, key: key.mean).first?.value }
        }
        return try Self.metrics.compactMap { key in
            let ma = try means(a, key), mb = try means(b, key)
            guard let interval = DifferenceInterval.overReplicates(ma, mb) else { return nil }
            return Row(
                metric: key, meanA: ma.reduce(0, +) / Double(ma.count), meanB: mb.reduce(0, +) / Double(mb.count),
                interval: interval)
        }
    }
}
