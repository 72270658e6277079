import Foundation
import SPIOTestSupport
import XCTest
@testable import SPIOExperiments
@testable import SPIOImageIO
@testable import SPIOPhysics
@testable import SPIOPlots
@testable import SPIOTraining

/// Report sections from a real (tiny) study: sweeps with their tables and plots, the phantom
/// table, a real-scan file set, interpretability maps, and a second study reusing the model.
final class StudyReportTests: ScratchDirectoryTestCase {
    static let head = """
        simulation: {imageSize: 32, seed: 3}
        data: {samples: 40}
        model: {preset: tiny}
        training: {epochs: 1, batchSize: 8, learningRate: 0.003}
        """
    static let phantom = """
              samples: 2
              seed: 9
              phantomRegion: true
              labels: {batch: "1"}
              simulation: {anatomy: {kind: agar}, scene: {kind: bottle, bottleRadiusMM: 4}, noise: {snrDB: 19}}
              over: {simulation.scene.concentrationUgPerMM3: [27.90, 3.49]}
        """

    /// A report CSV's rows split at commas (the tests' files have no quoted fields).
    func csvRows(_ path: String) throws -> [[String]] {
        try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "\r\n").filter { !$0.isEmpty }
            .map { $0.components(separatedBy: ",") }
    }

    /// `study`'s file with `edits` applied, saved as `<name>.yaml` (the study's name too), run, and
    /// its report rendered: the run's outcomes and the report's convergence table.
    func runEdited(
        _ study: String, as name: String, _ edits: [(String, String)], runner: Runner
    ) throws -> (
        [Runner.Outcome], [[String]]
    ) {
        var text = try String(contentsOfFile: study, encoding: .utf8)
        for (from, to) in edits { text = text.replacingOccurrences(of: from, with: to) }
        let outcomes = try runner.run(try StudyPlan(path: write(name, text)))
        let report = dir + "/report-\(name)-\(UUID().uuidString)"
        try StudyReport(store: runner.store, study: name).write(to: report)
        return (outcomes, try csvRows(report + "/convergence.csv"))
    }

    func write(_ name: String, _ text: String) -> String {
        let path = "\(dir)/\(name).yaml"
        try! text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The scaling section: one row per checkpoint of a series that continues cell to cell, the
    /// training-images set beside the held-out one, the law fitted per series with its band, and the
    /// blurred-truth calibration from the set's own dataset.
    func testScalingSectionFitsEachSeries() throws {
        let study = write(
            "scaling",
            """
            study: scaling
            \(Self.head)
            evaluation:
              sets:
                - {name: test, samples: 6, seed: 5}
                - {name: training, samples: 6, trainingImages: true}
            grid:
              training.epochs: [1, 2, 3, 4]
            report: {scaling: {targets: [0.5], blurSigmaPixels: [1]}}
            """)
        let runner = try Runner(workspace: dir + "/ws")
        let outcomes = try runner.run(try StudyPlan(path: study))
        try StudyReport(store: runner.store, study: "scaling").write(to: dir + "/report")
        let csv = try csvRows(dir + "/report/scaling.csv")
        XCTAssertEqual(csv.count, 5, "\(csv)")
        // 36 training images (4 validate) in batches of 8: 5 steps an epoch (the last batch of 4).
        XCTAssertEqual(csv.dropFirst().map { $0[2] }, ["5", "10", "15", "20"])
        for (row, o) in zip(csv.dropFirst(), outcomes) {
            for (column, set) in [(5, "test"), (10, "training")] {
                let e = try XCTUnwrap(o.evaluations.first { try runner.store.params($0.id!)["set"] == set })
                XCTAssertEqual(
                    row[column], StudyReport.number(try runner.store.metrics(e.id!, key: MetricKey.nmae.mean)[0].value))
            }
        }
        let fit = try csvRows(dir + "/report/scaling-fit.csv")
        XCTAssertEqual(fit.count, 2, "one series, one held-out set: \(fit)")
        XCTAssertEqual(fit[1][1], "test")
        let (floor, low, high) = (Double(fit[1][3])!, Double(fit[1][4])!, Double(fit[1][5])!)
        XCTAssertTrue(low <= floor && floor <= high, "\(fit[1])")
        let md = try String(contentsOfFile: dir + "/report/report.md", encoding: .utf8)
        XCTAssertTrue(md.contains("## Scaling with optimizer steps"), md)
        XCTAssertTrue(md.contains("training (training images) NMAE"), md)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir + "/report/scaling-test.png"))
        let data = try XCTUnwrap(
            runner.store.finished(
                kind: .dataset,
                hash: SimulatedDataset.contentHash(
                    config: try StudyPlan(path: study).runs[0].config.evaluation.sets[0].simulation, count: 6)))
        let truth = try NPYArray.read(data.directory + "/concentration.npy")
        XCTAssertTrue(
            md.contains(String(format: "%.3f at sigma 1 px", BlurredTruth.nmae(truth, sigmaPixels: 1))), md)
    }

    /// The classical baseline runs as a study's cell: its "training" tunes one parameter on training
    /// images and logs the validation NMAE; its model file loads in `Predictor` (and so in
    /// evaluations and `spio predict`); the oracle reads the true field given as the input.
    func testDipoleInversionIsACellOfAStudy() throws {
        let study = write(
            "classical",
            """
            study: classical
            simulation: {imageSize: 32, seed: 3}
            data: {samples: 24}
            model: {preset: tiny, architecture: dipole-inversion, inversion: {tuningImages: 6, candidates: [1e5, 1e6]}}
            training: {epochs: 1}
            evaluation: {sets: [{name: test, samples: 4, seed: 5}]}
            variants:
              - {name: stripes-tkd, model.inversion.method: tkd, model.inversion.candidates: [0.05, 0.1]}
              - {name: oracle-sparse, simulation.input: field, model.inversion.field: input}
            """)
        let runner = try Runner(workspace: dir + "/ws")
        let outcomes = try runner.run(try StudyPlan(path: study))
        XCTAssertEqual(outcomes.count, 2)
        for o in outcomes {
            let params = try runner.store.params(o.training.id!)
            XCTAssertEqual(params["training.backend"], "dipole-inversion")
            let chosen = try XCTUnwrap(params["inversion.parameter"].flatMap(Double.init))
            XCTAssertTrue(o.planned.config.model.inversion!.resolvedCandidates.contains(chosen), "\(params)")
            XCTAssertEqual(try runner.store.metrics(o.training.id!, key: .validationNMAE).count, 1)
            let predictor = try Predictor(checkpoint: o.training.directory + "/model.safetensors")
            XCTAssertNil(predictor.model)
            XCTAssertEqual(predictor.inversion?.parameter, chosen)
            let nmae = try runner.store.metrics(o.evaluations[0].id!, key: MetricKey.nmae.mean)
            XCTAssertEqual(nmae.count, 1)
            XCTAssertTrue(nmae[0].value.isFinite)
        }
        // The oracle's inputs are fields: a study that mixes them up is refused before any work.
        XCTAssertThrowsError(
            try StudyPlan(
                path: write(
                    "mixed",
                    try String(contentsOfFile: study, encoding: .utf8).replacingOccurrences(
                        of: ", model.inversion.field: input", with: ""))))
    }

    /// A blurred single pixel keeps its iron (away from the border) and keeps the centre weight
    /// k0 = g(0)^2 of the normalised Gaussian g, so its NMAE is (1 - k0) + (1 - k0) exactly.
    func testBlurredTruthOfADelta() throws {
        var plane = [Float](repeating: 0, count: 33 * 33)
        plane[16 * 33 + 16] = 1
        let sigma = 1.5
        let blurred = BlurredTruth.blur(plane, size: 33, sigmaPixels: sigma)
        XCTAssertEqual(blurred.reduce(0) { $0 + Double($1) }, 1, accuracy: 1e-6)
        let g = (-6...6).map { exp(-Double($0 * $0) / (2 * sigma * sigma)) }
        let k0 = 1 / (g.reduce(0, +) * g.reduce(0, +))
        let truth = NPYArray(shape: [1, 33, 33], values: plane)
        XCTAssertEqual(BlurredTruth.nmae(truth, sigmaPixels: sigma), 2 * (1 - k0), accuracy: 1e-6)
        XCTAssertEqual(BlurredTruth.nmae(truth, sigmaPixels: 0), 0)
    }

    /// Runs that differ only in their seed are one cell of the convergence table; its epochs are
    /// where each seed's stored validation NMAE first went below the threshold, its mean and sd
    /// over the seeds are the store's; the one-seed architecture is a cell of its own.
    func testConvergenceTableGroupsSeeds() throws {
        let study = write(
            "seeds",
            """
            study: seeds
            simulation: {imageSize: 32, seed: 3}
            data: {samples: 40}
            model: {preset: tiny}
            training: {epochs: 3, batchSize: 8, learningRate: 0.003}
            evaluation: {sets: [{name: test, samples: 4, seed: 5}]}
            variants:
              - {name: a1, training.seed: 1}
              - {name: a2, training.seed: 2}
              - {name: unet, model.architecture: unet}
            report: {convergedBelow: 1.2}
            """)
        let runner = try Runner(workspace: dir + "/ws")
        let outcomes = try runner.run(try StudyPlan(path: study))
        try StudyReport(store: runner.store, study: "seeds").write(to: dir + "/report")
        let csv = try csvRows(dir + "/report/convergence.csv")
        XCTAssertEqual(csv.count, 3, "\(csv)")
        XCTAssertEqual(csv[0].count, 10, "no wall time unless asked: \(csv[0])")
        XCTAssertEqual(csv[1][0], "variant=a1 (2 seeds)")
        XCTAssertEqual(csv[1][2], "1 2")
        XCTAssertEqual(csv[2][0], "variant=unet")
        var firsts: [String] = [], finals: [Double] = []
        for o in outcomes.prefix(2) {
            let v = try runner.store.metrics(o.training.id!, key: .validationNMAE)
            XCTAssertEqual(v.count, 3)
            firsts.append(v.first { $0.value < 1.2 }.map { String($0.step) } ?? "never")
            finals.append(v.last!.value)
        }
        XCTAssertEqual(csv[1][3], firsts.joined(separator: " "))
        let (mean, sd) = Evaluation.meanAndSD(finals)
        XCTAssertEqual(csv[1][5], StudyReport.number(mean))
        XCTAssertEqual(csv[1][6], StudyReport.number(sd))
        let md = try String(contentsOfFile: dir + "/report/report.md", encoding: .utf8)
        XCTAssertTrue(md.contains("## Convergence") && md.contains("| variant=a1 (2 seeds) |"), md)
        XCTAssertFalse(md.contains("training time (s)"), md)

        // With wall times asked for, a cell's time is the sum of its epochs' own wall times (a run
        // resumed in another session does not count the time in between).
        let (_, timedCSV) = try runEdited(
            study, as: "seeds", [("report: {convergedBelow: 1.2}", "report: {convergedBelow: 1.2, wallTime: true}")],
            runner: runner)
        let unetEpochs = try runner.store.metrics(outcomes[2].training.id!, key: .epochSeconds)
        XCTAssertEqual(unetEpochs.count, 3)
        XCTAssertEqual(timedCSV[2][10], StudyReport.number(unetEpochs.reduce(0) { $0 + $1.value }))

        // A study that reuses seed 1's run (its own test set, which is not part of a training's
        // hash) and trains seed 3 groups them as one cell all the same.
        let (reused, reusedCSV) = try runEdited(
            study, as: "reusing",
            [
                ("study: seeds", "study: reusing"), ("samples: 4, seed: 5", "samples: 6, seed: 5"),
                ("a2, training.seed: 2", "a3, training.seed: 3")
            ], runner: runner)
        XCTAssertEqual(reused[0].training.id, outcomes[0].training.id, "seed 1's run is reused")
        XCTAssertEqual(reusedCSV[1][0], "variant=a1 (2 seeds)", "\(reusedCSV)")
        XCTAssertEqual(reusedCSV[1][1], "\(outcomes[0].training.id!) \(reused[1].training.id!)")

        // Declared again without the U-Net, the study's report drops it: a report shows the runs
        // of the study's last `spio run`, not every run the study ever used.
        let (_, narrowedCSV) = try runEdited(
            study, as: "seeds", [("  - {name: unet, model.architecture: unet}\n", "")], runner: runner)
        XCTAssertEqual(narrowedCSV.map { $0[0] }, ["cell", "variant=a1 (2 seeds)"])
    }

    func testSweepsPhantomTableFilesAndInterpretability() throws {
        let ws = dir + "/ws"
        let first = write(
            "first",
            "study: first\n" + Self.head + """

                evaluation:
                  sweeps:
                    - name: batch1
                \(Self.phantom)
                    - name: noise
                      samples: 2
                      interpretability: {gradCAM: [encoder.3.5], saliency: true, features: encoder.1.3, featureCount: 4}
                      over: {simulation.noise.snrDB: [5, inf]}
                    - name: dose
                      samples: 2
                      simulation: {anatomy: {kind: agar}, scene: {kind: bottle, bottleRadiusMM: 4}}
                      over: {simulation.scene.concentrationUgPerMM3: [3.49, 27.9], simulation.noise.snrDB: [19, inf]}
                report:
                  paper: {"batch1[concentrationUgPerMM3=27.90]": "27.35, 1.97 %"}
                  plots:
                    - {x: snrDB, sweeps: [noise], file: nmae-vs-snr.png}
                    - {x: concentrationUgPerMM3, metric: estimate, file: estimate.png}
                """)
        let runner = try Runner(workspace: ws)
        let outcome = try runner.run(try StudyPlan(path: first))[0]
        XCTAssertEqual(outcome.evaluations.count, 8)
        let files = try StudyReport(store: runner.store, study: "first").write(to: dir + "/report")
        let names = Set(files.map { ($0 as NSString).lastPathComponent })
        for f in [
            "report.md", "runs.csv", "sweep-noise.csv", "phantom-table.csv", "nmae-vs-snr.png", "estimate.png",
            "examples-noise-run2.png", "interpretability-noise-run2.png", "features-noise-encoder.1.3-run2.png",
            "loss.png"
        ] {
            XCTAssertTrue(names.contains(f), "\(f) missing from \(names.sorted())")
        }
        // Every chart also as SVG, well-formed; the loss figure draws the store's training loss
        // (its moving mean of 20, on a log axis).
        for f in ["loss", "validation", "nmae-vs-snr", "estimate", "linearity-dose"] {
            XCTAssertTrue(names.contains(f + ".svg") && names.contains(f + ".png"), "\(f) missing")
        }
        for f in names where f.hasSuffix(".svg") {
            XCTAssertTrue(try SVGFigure(path: dir + "/report/" + f).isWellFormedXML, f)
        }
        let loss = Chart.movingMean(
            try runner.store.metrics(outcome.training.id!, key: .trainLoss).map(\.value), window: 20)
        let drawn = try XCTUnwrap(SVGFigure(path: dir + "/report/loss.svg").paths["first"])
        XCTAssertTrue(
            SVGFigure.isAffineImage(drawn, of: loss.enumerated().map { (Double($0 + 1), log10($1)) }, tolerance: 0.01),
            "\(drawn.count) points drawn for \(loss.count) steps")
        // The phantom table: sorted by true concentration, the paper's figure beside ours, and
        // estimates equal to the stored per-image metrics.
        let table = try String(contentsOfFile: dir + "/report/phantom-table.csv", encoding: .utf8).components(
            separatedBy: "\r\n")
        XCTAssertEqual(
            table[0],
            "run,name,set,batch,true_ug_per_mm3,estimated_ug_per_mm3,estimated_sd,images,error,percent_error,paper")
        XCTAssertTrue(
            table[1].contains(",batch1[concentrationUgPerMM3=27.90],1,27.9,")
                && table[1].hasSuffix(",\"27.35, 1.97 %\""), table[1])
        XCTAssertTrue(table[2].contains(",batch1[concentrationUgPerMM3=3.49],1,3.49,"), table[2])
        let e27 = outcome.evaluations.first {
            (try? runner.store.params($0.id!)["set"]) == "batch1[concentrationUgPerMM3=27.90]"
        }!
        let estimates = try runner.store.metrics(e27.id!, key: .phantomEstimate).map(\.value)
        XCTAssertEqual(estimates.count, 2)
        XCTAssertTrue(
            table[1].contains(",\(StudyReport.number((estimates[0] + estimates[1]) / 2)),"),
            "\(table[1]) vs \(estimates)")
        let sweep = try String(contentsOfFile: dir + "/report/sweep-noise.csv", encoding: .utf8)
        XCTAssertTrue(
            sweep.hasPrefix("run,name,set,snrDB,nmae_mean,nmae_sd,images\r\n")
                && sweep.contains(",noise[snrDB=inf],inf,"), sweep)
        // Linearity over the dose sweep: one fit per SNR, from the stored per-image SPIO means.
        let linearity = try String(contentsOfFile: dir + "/report/linearity-dose.csv", encoding: .utf8)
            .components(separatedBy: "\r\n").filter { !$0.isEmpty }
        XCTAssertEqual(linearity[0], "run,name,snrDB,slope,abs_1_minus_slope,intercept_ug_per_mm3,r2,images")
        XCTAssertEqual(linearity.count, 3, "\(linearity)")
        var points: [(Double, Double)] = []
        for e in outcome.evaluations where (try runner.store.params(e.id!)["set"])?.hasSuffix("snrDB=19]") == true {
            let truth = try runner.store.metrics(e.id!, key: .spioTruth).map(\.value)
            let estimate = try runner.store.metrics(e.id!, key: .spioEstimate).map(\.value)
            XCTAssertEqual(truth.count, 2)
            points += zip(truth, estimate).map { ($0, $1) }
        }
        XCTAssertEqual(points.count, 4)
        let fit = LinearFit(points.map(\.0), points.map(\.1))
        XCTAssertTrue(
            linearity.contains { $0.hasPrefix("2,first,19,\(StudyReport.number(fit.slope)),") },
            "\(linearity) vs \(fit)")
        let md = try String(contentsOfFile: dir + "/report/report.md", encoding: .utf8)
        XCTAssertTrue(md.contains("### Linearity over `concentrationUgPerMM3`"), md)
        XCTAssertTrue(
            md.contains("## Phantom table") && md.contains("| 1 | 27.90 | ") && md.contains("27.35, 1.97 %"), md)
        XCTAssertTrue(md.contains("(Sets with snrDB = inf are in the table but not on this plot.)"), md)

        // Interpretability maps: input, prediction, one Grad-CAM, saliency per image; 4 feature maps.
        let noise = outcome.evaluations.first { (try? runner.store.params($0.id!)["set"]) == "noise[snrDB=5]" }!
        let arts = Dictionary(uniqueKeysWithValues: try runner.store.artifacts(noise.id!).map { ($0.name, $0.path) })
        for name in [
            "interp-input.npy", "interp-prediction.npy", "interp-gradcam-encoder.3.5.npy", "interp-saliency.npy"
        ] {
            XCTAssertEqual(try NPYArray.read(arts[name]!).shape, [1, 32, 32], name)
        }
        let features = try NPYArray.read(arts["interp-features-encoder.1.3.npy"]!)
        XCTAssertEqual(features.shape, [4, 16, 16])
        XCTAssertTrue(try NPYArray.read(arts["interp-saliency.npy"]!).values.contains { $0 > 0 })

        // Changing a set re-evaluates it, and the report shows only the newer evaluation.
        try String(contentsOfFile: first, encoding: .utf8).replacingOccurrences(
            of: "featureCount: 4", with: "featureCount: 2"
        )
        .write(toFile: first, atomically: true, encoding: .utf8)
        _ = try runner.run(try StudyPlan(path: first))
        let reevaluated = try StudyReport(store: runner.store, study: "first").rows()[0].evaluations
        XCTAssertEqual(reevaluated.count, 8)
        let newer = reevaluated.first { $0.set.name == "noise[snrDB=5]" }!
        XCTAssertEqual(newer.set.interpretability?.featureCount, 2)

        // A real scan: the first simulated 27.90 phantom written as an NPY file gives the simulated
        // set's first estimate, in a second study that reuses the trained model.
        let phantomData = try runner.store.runs(kind: .dataset).first {
            $0.name.hasSuffix("batch1[concentrationUgPerMM3=27.90] data")
        }!
        let images = try NPYArray.read(phantomData.directory + "/images.npy")
        let plane = 2 * 32 * 32
        try NPYArray(shape: [2, 32, 32], values: Array(images.values[0..<plane])).write(to: dir + "/scan.npy")
        let second = write(
            "second",
            "study: second\n" + Self.head + """

                evaluation:
                  sets:
                    - {name: scan, files: [\(dir)/scan.npy], truthUgPerMM3: 27.9, labels: {batch: "real"},
                       simulation: {scene: {bottleRadiusMM: 4}}}
                """)
        let before = try runner.store.runs(kind: .train).count
        let again = try runner.run(try StudyPlan(path: second))[0]
        XCTAssertEqual(try runner.store.runs(kind: .train).count, before, "the model is reused, not retrained")
        XCTAssertEqual(again.training.id, outcome.training.id)
        let scan = try runner.store.metrics(again.evaluations[0].id!, key: .phantomEstimate).map(\.value)
        // Not bitwise: the file is predicted in a batch of 1, the simulated set in a batch of 2, and
        // OpenBLAS sums a convolution's columns in an order that depends on the batch.
        XCTAssertEqual(scan.count, 1)
        XCTAssertEqual(scan[0], estimates[0], accuracy: 1e-5 * abs(estimates[0]))
        XCTAssertEqual(try runner.store.metrics(again.evaluations[0].id!, key: .phantomTruth).map(\.value), [27.9])
        // The second study's report holds the reused training and its own set only.
        let rows = try StudyReport(store: runner.store, study: "second").rows()
        XCTAssertEqual(rows.map(\.training.id), [outcome.training.id])
        XCTAssertEqual(rows[0].name, "second")
        XCTAssertEqual(rows[0].evaluations.map(\.set.name), ["scan"])
        try StudyReport(store: runner.store, study: "second").write(to: dir + "/report2")
        let md2 = try String(contentsOfFile: dir + "/report2/report.md", encoding: .utf8)
        XCTAssertTrue(md2.contains("| real | 27.90 | "), md2)
    }

    /// A file set with an image of the wrong size names the file and both shapes, and is refused
    /// when the study is planned: nothing is simulated or trained first.
    func testFileSetOfTheWrongSizeFails() throws {
        try NPYArray(shape: [2, 16, 16], values: [Float](repeating: 1, count: 512)).write(to: dir + "/small.npy")
        let study = write(
            "bad",
            "study: bad\n" + Self.head
                + "\nevaluation: {sets: [{name: scan, files: [\(dir)/small.npy], truthUgPerMM3: 1}]}\n")
        let runner = try Runner(workspace: dir + "/ws")
        XCTAssertThrowsError(try runner.run(try StudyPlan(path: study))) { error in
            XCTAssertTrue(
                "\(error)".contains("small.npy") && "\(error)".contains("2 x 16 x 16")
                    && "\(error)".contains("2 x 32 x 32"), "\(error)")
        }
        XCTAssertEqual(try runner.store.runs().count, 0)
    }
}

/// Least squares against values worked out by hand.
final class LinearFitTests: XCTestCase {
    func testExactLineAndAKnownResidual() {
        let exact = LinearFit([1, 2, 3, 4], [5, 7, 9, 11])
        XCTAssertEqual(exact.slope, 2, accuracy: 1e-12)
        XCTAssertEqual(exact.intercept, 3, accuracy: 1e-12)
        XCTAssertEqual(exact.r2, 1, accuracy: 1e-12)
        // x = 0, 1, 2 and y = 0, 2, 1: slope 1/2, intercept 1/2, residuals -1/2, 1, -1/2, R^2 = 1 - 1.5 / 2.
        let noisy = LinearFit([0, 1, 2], [0, 2, 1])
        XCTAssertEqual(noisy.slope, 0.5, accuracy: 1e-12)
        XCTAssertEqual(noisy.intercept, 0.5, accuracy: 1e-12)
        XCTAssertEqual(noisy.r2, 0.25, accuracy: 1e-12)
        XCTAssertTrue(LinearFit([1, 1], [2, 3]).slope.isNaN, "x does not vary")
    }
}
