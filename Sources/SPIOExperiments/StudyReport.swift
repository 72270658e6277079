import Foundation
import SPIOImageIO

/// Renders a study's report from the run store and the runs' artifacts alone: `report.md`,
/// `runs.csv` (RFC 4180), `loss.png` (training loss against step), `validation.png` (validation
/// NMAE against epoch, error bars one standard deviation) and each evaluation's example panels.
public struct StudyReport {
    public let store: RunStore
    public let study: String

    public init(store: RunStore, study: String) { self.store = store; self.study = study }

    /// One finished training run with its evaluations.
    public struct Row {
        public var training: RunStore.Run
        public var grid: [(String, String)]
        public var parameters: Int
        public var epochs: Int
        public var validationNMAE: Double
        public var tests: [(set: String, mean: Double, sd: Double, images: Int, evaluation: RunStore.Run)]
    }

    public func rows() throws -> [Row] {
        let all = try store.runs(study: study)
        let evaluations = all.filter { $0.kind == "evaluate" && $0.status == "finished" }
        // The newest finished training per name (a forced re-run supersedes older ones).
        var latest: [String: RunStore.Run] = [:]
        for r in all where r.kind == "train" && r.status == "finished" { latest[r.name] = r }
        return try latest.values.sorted { $0.id! < $1.id! }.map { t in
            let params = try store.params(t.id!)
            let grid = params.filter { $0.key.hasPrefix("grid.") }.map { (String($0.key.dropFirst(5)), $0.value) }.sorted { $0.0 < $1.0 }
            let val = try store.metrics(t.id!, key: "validation.nmae")
            let tests = try evaluations.filter { $0.parentID == t.id }.map { e -> (String, Double, Double, Int, RunStore.Run) in
                let p = try store.params(e.id!)
                func one(_ k: String) throws -> Double { try store.metrics(e.id!, key: k).first?.value ?? .nan }
                return (p["set"] ?? "?", try one("nmae.mean"), try one("nmae.sd"), Int(try one("images")), e)
            }
            return Row(training: t, grid: grid, parameters: Int(try store.metrics(t.id!, key: "parameters").first?.value ?? 0),
                       epochs: val.count, validationNMAE: val.last?.value ?? .nan,
                       tests: tests.map { (set: $0.0, mean: $0.1, sd: $0.2, images: $0.3, evaluation: $0.4) })
        }
    }

    /// Writes the report into `directory`; returns the files written.
    @discardableResult
    public func write(to directory: String) throws -> [String] {
        let rows = try rows()
        guard !rows.isEmpty else { throw ReportError.noRuns(study) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        var written: [String] = []
        let sets = Array(Set(rows.flatMap { $0.tests.map(\.set) })).sorted()

        // CSV
        var header = ["run", "name"] + Array(Set(rows.flatMap { $0.grid.map(\.0) })).sorted() + ["parameters", "epochs", "validation_nmae"]
        let gridKeys = Array(header[2..<(header.count - 3)])
        for s in sets { header += ["\(s)_nmae_mean", "\(s)_nmae_sd", "\(s)_images"] }
        var csv = [header]
        for r in rows {
            var line = [String(r.training.id!), r.training.name] + gridKeys.map { k in r.grid.first { $0.0 == k }?.1 ?? "" }
            line += [String(r.parameters), String(r.epochs), Self.number(r.validationNMAE)]
            for s in sets {
                if let t = r.tests.first(where: { $0.set == s }) { line += [Self.number(t.mean), Self.number(t.sd), String(t.images)] } else { line += ["", "", ""] }
            }
            csv.append(line)
        }
        try Self.writeCSV(csv, to: path("runs.csv")); written.append(path("runs.csv"))

        // Plots
        var loss = LinePlot(title: "\(study): training loss", xLabel: "step", yLabel: "loss (moving mean of 20)")
        var val = LinePlot(title: "\(study): validation NMAE", xLabel: "epoch", yLabel: "NMAE")
        for r in rows {
            let label = r.grid.isEmpty ? r.training.name : r.grid.map { "\($0.0.split(separator: ".").last!)=\($0.1)" }.joined(separator: " ")
            let steps = try store.metrics(r.training.id!, key: "train.loss")
            loss.series.append(.init(label: label, points: LinePlot.movingMean(steps.map { (Double($0.step), $0.value) }, window: 20)))
            let v = try store.metrics(r.training.id!, key: "validation.nmae"), sd = try store.metrics(r.training.id!, key: "validation.nmae_sd")
            val.series.append(.init(label: label, points: v.map { (Double($0.step), $0.value) }, errors: sd.map(\.value), markers: true))
        }
        loss.logY = true
        try loss.render().writePNG(to: path("loss.png")); written.append(path("loss.png"))
        try val.render().writePNG(to: path("validation.png")); written.append(path("validation.png"))
        var examples: [(String, String)] = []
        for r in rows {
            for t in r.tests {
                guard let art = try store.artifacts(t.evaluation.id!).first(where: { $0.name == "examples.png" }),
                      FileManager.default.fileExists(atPath: art.path) else { continue }
                let name = "examples-run\(r.training.id!)-\(t.set).png"
                try? FileManager.default.removeItem(atPath: path(name))
                try FileManager.default.copyItem(atPath: art.path, toPath: path(name))
                written.append(path(name)); examples.append((name, "\(r.training.name), \(t.set)"))
            }
        }

        // Markdown
        var md = "# Study `\(study)`\n\n"
        if let desc = try store.params(rows[0].training.id!)["study.description"], !desc.isEmpty { md += desc + "\n\n" }
        md += "Rendered from the run store (`\((store.path as NSString).lastPathComponent)`) by `spio report \(study)`. "
        md += "NMAE = ||C^ - C||_1 / ||C||_1 per image, mean +- standard deviation over the test set.\n\n"
        md += "| run | " + (gridKeys.isEmpty ? "name" : gridKeys.joined(separator: " | ")) + " | parameters | epochs | validation NMAE | "
        md += sets.map { "\($0) NMAE" }.joined(separator: " | ") + " |\n"
        md += "|" + String(repeating: "---|", count: 5 + max(gridKeys.count, 1) - 1 + sets.count) + "\n"
        for r in rows {
            md += "| \(r.training.id!) | " + (gridKeys.isEmpty ? r.training.name : gridKeys.map { k in r.grid.first { $0.0 == k }?.1 ?? "" }.joined(separator: " | "))
            md += " | \(r.parameters) | \(r.epochs) | \(Self.fixed(r.validationNMAE)) | "
            md += sets.map { s in r.tests.first { $0.set == s }.map { "\(Self.fixed($0.mean)) +- \(Self.fixed($0.sd)) (n = \($0.images))" } ?? "" }
                .joined(separator: " | ") + " |\n"
        }
        md += "\n![training loss](loss.png)\n\n![validation NMAE](validation.png)\n\n"
        for (file, caption) in examples {
            let plain = caption.replacingOccurrences(of: "[", with: " (").replacingOccurrences(of: "]", with: ")")
            md += "**\(plain)** (input, truth, prediction)\n\n![\(plain)](\(file))\n\n"
        }
        md += "Data: [runs.csv](runs.csv).\n"
        try md.write(toFile: path("report.md"), atomically: true, encoding: .utf8); written.insert(path("report.md"), at: 0)
        return written
    }

    static func fixed(_ v: Double) -> String { v.isFinite ? String(format: "%.3f", v) : "" }

    static func number(_ v: Double, digits: Int = 6) -> String { v.isFinite ? String(format: "%.\(digits)g", v) : "" }

    /// RFC 4180: CRLF line ends; fields with a comma, quote or line break are quoted, quotes doubled.
    public static func writeCSV(_ rows: [[String]], to path: String) throws {
        func field(_ s: String) -> String {
            s.contains { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" } ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        let text = rows.map { $0.map(field).joined(separator: ",") }.joined(separator: "\r\n") + "\r\n"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

public enum ReportError: Error, CustomStringConvertible {
    case noRuns(String)
    public var description: String {
        switch self { case let .noRuns(s): return "no finished training runs of study '\(s)' in the store; run `spio run` first" }
    }
}
