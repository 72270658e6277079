import Foundation
import SPIOTestSupport
import XCTest
@testable import SPIOExperiments

/// The statistics of comparisons against SciPy 1.17.1 (values printed by the calls quoted) and
/// hand-worked cases, and `RunComparison` on a store.
final class DifferenceIntervalTests: ScratchDirectoryTestCase {
    /// scipy.stats.t.ppf(0.975, df) and scipy.stats.t.cdf(-1.3, df).
    func testStudentTMatchesSciPy() {
        let cases: [(df: Double, ppf: Double, cdf: Double)] = [
            (1, 12.706204736174694, 0.20871440016015272),
            (2, 4.302652729749462, 0.16162351590802015),
            (3.7, 2.8675207071911895, 0.13433336208631375),
            (10, 2.228138851986274, 0.1113829086034223),
            (100, 1.9839715185235518, 0.09829473171118308)
        ]
        for c in cases {
            XCTAssertEqual(
                StudentT.quantile(0.975, degreesOfFreedom: c.df), c.ppf, accuracy: 1e-9 * c.ppf, "df \(c.df)")
            XCTAssertEqual(StudentT.cdf(-1.3, degreesOfFreedom: c.df), c.cdf, accuracy: 1e-12, "df \(c.df)")
            XCTAssertEqual(StudentT.cdf(1.3, degreesOfFreedom: c.df), 1 - c.cdf, accuracy: 1e-12, "df \(c.df)")
        }
        XCTAssertEqual(StudentT.cdf(0, degreesOfFreedom: 3), 0.5, accuracy: 1e-15)
    }

    /// r = scipy.stats.ttest_ind(b, a, equal_var=False); r.confidence_interval(0.95), r.df.
    func testWelchIntervalMatchesSciPy() throws {
        let a = [0.725, 0.776, 0.768], b = [0.611, 0.590, 0.632]
        let w = try XCTUnwrap(DifferenceInterval.overReplicates(a, b))
        XCTAssertEqual(w.difference, -0.14533333333333331, accuracy: 1e-15)
        XCTAssertEqual(w.low, -0.2022263782852039, accuracy: 1e-9)
        XCTAssertEqual(w.high, -0.08844028838146273, accuracy: 1e-9)
        XCTAssertTrue(w.excludesZero)
        XCTAssertEqual(w.counts, [3, 3])
        XCTAssertNil(DifferenceInterval.overReplicates([1], [2, 3]), "one seed has no spread to test")
        XCTAssertNil(DifferenceInterval.overReplicates([1, 1], [2, 2]), "no spread on either side")
    }

    /// Hand-worked: with differences {0, 1} the bootstrap means are 0, 0.5 and 1 with chances 1/4,
    /// 1/2, 1/4, so the 2.5 % and 97.5 % points are 0 and 1; with one value repeated the interval
    /// is that value.
    func testPairedBootstrapHandWorked() throws {
        let two = try XCTUnwrap(DifferenceInterval.paired([0, 0], [0, 1]))
        XCTAssertEqual(two.difference, 0.5)
        XCTAssertEqual(two.low, 0)
        XCTAssertEqual(two.high, 1)
        XCTAssertFalse(two.excludesZero)
        let constant = try XCTUnwrap(DifferenceInterval.paired([1, 2, 3], [1.25, 2.25, 3.25]))
        XCTAssertEqual([constant.difference, constant.low, constant.high], [0.25, 0.25, 0.25])
        XCTAssertTrue(constant.excludesZero)
        XCTAssertNil(DifferenceInterval.paired([1, 2], [1]))
        XCTAssertEqual(
            DifferenceInterval.paired([1, 5, 2], [2, 3, 9]), DifferenceInterval.paired([1, 5, 2], [2, 3, 9]),
            "seeded: the same numbers give the same interval")
    }

    /// scipy.stats.bootstrap((d,), np.mean, method='percentile', n_resamples=100000,
    /// random_state=1) for d_i = 0.1 sin(i) + 0.02, i = 0..<200: [0.010639563631983569,
    /// 0.03030333927714525]. Another generator and 10,000 resamples: the ends agree to a few
    /// percent of the width.
    func testPairedBootstrapAgreesWithSciPy() throws {
        let d = (0..<200).map { 0.1 * sin(Double($0)) + 0.02 }
        let i = try XCTUnwrap(DifferenceInterval.paired([Double](repeating: 0, count: 200), d))
        XCTAssertEqual(i.difference, 0.020452998490414123, accuracy: 1e-15)
        let width = 0.03030333927714525 - 0.010639563631983569
        XCTAssertEqual(i.low, 0.010639563631983569, accuracy: 0.03 * width)
        XCTAssertEqual(i.high, 0.03030333927714525, accuracy: 0.03 * width)
        XCTAssertEqual(i.text, "+0.020 [+0.011, +0.030] (paired bootstrap, n = 200)")
    }

    /// Evaluations pair only on the same images; training runs reach theirs; groups of seeds give
    /// Welch's interval over the runs' means.
    func testRunComparisonPairsEvaluationsOfTheSameImages() throws {
        let store = try RunStore(path: dir + "/runs.sqlite")
        func evaluation(_ parent: Int64?, source: String, nmae: [Double]) throws -> Int64 {
            let r = try store.start(
                study: "s", name: "e", kind: .evaluate, hash: UUID().uuidString,
                configJSON: "{\"training\":\"t\",\"dataset\":\"\(source)\",\"metrics\":3}", directory: dir,
                parentID: parent)
            try store.setParams(r.id!, ["set": "brain"])
            let mean = nmae.reduce(0, +) / Double(nmae.count)
            try store.log(
                r.id!,
                nmae.enumerated().map { (MetricKey.nmae, $0.offset, $0.element) } + [(MetricKey.nmae.mean, 0, mean)])
            try store.finish(r.id!)
            return r.id!
        }
        func training() throws -> Int64 {
            let r = try store.start(
                study: "s", name: "t", kind: .train, hash: UUID().uuidString, configJSON: "{}", directory: dir,
                parentID: nil)
            try store.finish(r.id!)
            return r.id!
        }
        let (t1, t2) = (try training(), try training())
        let a = try evaluation(t1, source: "same", nmae: [0.5, 0.75, 1.0])
        let b = try evaluation(t2, source: "same", nmae: [0.5, 0.5, 0.5])
        let other = try evaluation(nil, source: "other", nmae: [0.1, 0.1, 0.1])
        let c = try RunComparison(store: store)
        let ea = try XCTUnwrap(c.evaluations(of: t1).first), eb = try XCTUnwrap(c.evaluations(of: t2).first)
        XCTAssertEqual([ea.id, eb.id], [a, b])
        let rows = try XCTUnwrap(c.paired(ea, eb))
        XCTAssertEqual(rows.map(\.metric), [.nmae])
        XCTAssertEqual(rows[0].meanA, 0.75)
        XCTAssertEqual(rows[0].meanB, 0.5)
        XCTAssertEqual(rows[0].interval.difference, -0.25)
        XCTAssertEqual(rows[0].interval.low, -0.5, "all three images at 1.0: 1 in 27 resamples")
        XCTAssertEqual(rows[0].interval.high, 0)
        XCTAssertNil(try c.paired(ea, try XCTUnwrap(c.evaluations(of: other).first)), "other images: no pairing")
        let a2 = try evaluation(nil, source: "same", nmae: [0.7, 0.7, 0.7])
        let b2 = try evaluation(nil, source: "same", nmae: [0.4, 0.4, 0.4])
        let groups = try c.overSeeds(
            [ea, try XCTUnwrap(c.evaluations(of: a2).first)], [eb, try XCTUnwrap(c.evaluations(of: b2).first)])
        let w = try XCTUnwrap(DifferenceInterval.overReplicates([0.75, 0.7], [0.5, 0.4]))
        let g = try XCTUnwrap(groups.first?.interval)
        XCTAssertEqual(g.method, "Welch t")
        XCTAssertEqual(g.counts, [2, 2])
        for (x, y) in zip([g.difference, g.low, g.high], [w.difference, w.low, w.high]) {
            XCTAssertEqual(x, y, accuracy: 1e-12)
        }
        XCTAssertEqual(groups.first?.meanB ?? 0, 0.45, accuracy: 1e-15)
    }
}
