import Foundation
import SPIOImageIO
import SPIONetworks
import SPIOPhysics
import SPIOTensor
import SPIOTraining

/// One evaluation's record in the store, the one type that knows its rows: written from what the
/// predictor measured (`write`), read back for reports, audit, export and the CLI: the NMAE mean
/// and standard deviation over its images, the metrics beside it, and for phantom and real-scan
/// sets the bottle estimate.
package struct EvaluationRecord {
    package var nmaeMean = Double.nan, nmaeSD = Double.nan
    package var images = 0
    /// The bottle estimate: mean and standard deviation over the set's images.
    package var estimate: (mean: Double, sd: Double)?
    /// The true bottle concentration (mean over the set's images).
    package var truth: Double?
    /// The metrics beside NMAE (`ImageMetrics`), mean and sd over the images, by store key
    /// (`rmse`, `hfen`, `ssim`, `iron_error`); empty for evaluations made before they existed.
    package var quality: [MetricKey: (mean: Double, sd: Double)] = [:]
    /// Per image with SPIO: the mean true and estimated concentration over it (ug/mm^3); empty for
    /// evaluations made before they were stored.
    package var spioMeans: [(truth: Double, estimate: Double)] = []

    package init(store: RunStore, id: Int64) throws {
        self.init(rows: try store.metrics(id).map { ($0.key, $0.step, $0.value) })
    }

    package init(rows metrics: [(key: MetricKey, step: Int, value: Double)]) {
        func values(_ key: MetricKey) -> [Double] { metrics.filter { $0.key == key }.map(\.value) }
        nmaeMean = values(MetricKey.nmae.mean).first ?? .nan
        nmaeSD = values(MetricKey.nmae.sd).first ?? .nan
        images = values(.images).first.map { Int($0) } ?? 0
        let estimates = values(.phantomEstimate), truths = values(.phantomTruth)
        if !estimates.isEmpty { estimate = Evaluation.meanAndSD(estimates) }
        if !truths.isEmpty { truth = truths.reduce(0, +) / Double(truths.count) }
        let truthByImage = Dictionary(
            metrics.filter { $0.key == .spioTruth }.map { ($0.step, $0.value) }, uniquingKeysWith: { a, _ in a })
        spioMeans = metrics.filter { $0.key == .spioEstimate }.sorted { $0.step < $1.step }
            .compactMap { m in truthByImage[m.step].map { ($0, m.value) } }
        for k in MetricKey.quality {
            if let m = values(k.mean).first, let s = values(k.sd).first { quality[k] = (m, s) }
        }
    }

    /// One line for the terminal, e.g. "NMAE 0.6528 +- 0.2266 over 200 images".
    package var text: String {
        var parts: [String] = []
        if nmaeMean.isFinite {
            parts.append(String(format: "NMAE %.4f +- %.4f over %d images", nmaeMean, nmaeSD, images))
        }
        if let estimate {
            parts.append(String(format: "bottle estimate %.3f +- %.3f ug/mm^3", estimate.mean, estimate.sd))
        }
        return parts.isEmpty ? "\(images) images predicted" : parts.joined(separator: "; ")
    }
}

extension EvaluationRecord {
    /// The rows of what `test` measured on `set`: each image's NMAE, the metrics a reviewer of
    /// susceptibility maps expects beside it (`MetricKey.quality`) and its mean true and estimated
    /// concentration over its SPIO, with the means and standard deviations over the images; for
    /// bottle phantoms (`phantomRegion`, or a scan with a known truth) the bottle read-out.
    package static func rows(
        _ test: EvaluationResult, set: TestSetConfig
    ) -> [(
        key: MetricKey, step: Int, value: Double
    )] {
        var values: [(key: MetricKey, step: Int, value: Double)] = []
        if test.truth != nil {
            let nmae = test.nmae()
            for (i, v) in nmae.enumerated() { if let v { values.append((.nmae, i, v)) } }
            let (mean, sd) = Evaluation.meanAndSD(nmae.compactMap { $0 })
            values += [
                (MetricKey.nmae.mean, 0, mean), (MetricKey.nmae.sd, 0, sd),
                (.images, 0, Double(nmae.compactMap { $0 }.count))
            ]
            var perKey: [MetricKey: [Double]] = [:]
            for s in 0..<test.count {
                if let c = test.spioMeans(s) { values += [(.spioTruth, s, c.truth), (.spioEstimate, s, c.estimate)] }
                guard let m = test.imageMetrics(s) else { continue }
                for (k, v) in [
                    (MetricKey.rmse, m.rmse), (.hfen, m.hfen), (.ssim, m.ssim), (.ironError, m.ironErrorFraction)
                ] {
                    guard let v, v.isFinite else { continue }
                    values.append((k, s, v)); perKey[k, default: []].append(v)
                }
            }
            for (k, v) in perKey.sorted(by: { $0.key < $1.key }) {
                let (m, d) = Evaluation.meanAndSD(v)
                values += [(k.mean, 0, m), (k.sd, 0, d)]
            }
        } else {
            values.append((.images, 0, Double(test.count)))
        }
        if set.phantomRegion || set.truthUgPerMM3 != nil {
            let disk = set.simulation.bottleReadoutDisk(imageSize: test.imageSize)
            func mean(_ s: Int, ofTruth: Bool) -> Double? {
                test.regionMean(
                    s, ofTruth: ofTruth, centreRow: disk.centreRow, centreColumn: disk.centreColumn,
                    radiusPixels: disk.radiusPixels)
            }
            for s in 0..<test.count {
                guard let estimate = mean(s, ofTruth: false), let truth = set.truthUgPerMM3 ?? mean(s, ofTruth: true)
                else { continue }
                values += [(.phantomEstimate, s, estimate), (.phantomTruth, s, truth)]
            }
        }
        return values
    }

    /// Records what `test` measured on `set` as run `id`: its rows, then its files in `directory`
    /// (every prediction, the first image's input channel 0, truth and prediction for the report's
    /// strips, a preview of the first four, and the set's interpretability maps where it asks and
    /// the model is a network).
    @discardableResult
    package static func write(
        _ test: EvaluationResult, set: TestSetConfig, model: EncoderDecoderNet?, store: RunStore, id: Int64,
        directory: String
    ) throws -> EvaluationRecord {
        let rows = rows(test, set: set)
        try store.log(id, rows)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func save(_ name: String, _ t: Tensor) throws {
            let path = (directory as NSString).appendingPathComponent(name)
            try NPYArray(shape: t.shape, values: t.array).write(to: path)
            try store.addArtifact(id, name: name, path: path)
        }
        try save("predictions.npy", test.maps)
        let n = test.imageSize
        let first = [test.input(0), test.truth(0), test.map(0)].compactMap { $0 }
        try save("example.npy", Tensor(shape: [first.count, n, n], values: first.flatMap { $0 }))
        let png = (directory as NSString).appendingPathComponent("examples.png")
        try ExamplePanels.grid(test, count: min(4, test.count)).writePNG(to: png)
        try store.addArtifact(id, name: "examples.png", path: png)
        // (`StudyPlan` refuses interpretability for the classical baseline, which has no network.)
        if let interp = set.interpretability, let model {
            for (file, maps) in try InterpretabilityMaps.compute(interp, model: model, result: test) {
                try save(file, maps)
            }
        }
        return EvaluationRecord(rows: rows)
    }
}
