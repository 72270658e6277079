import Foundation
import SPIOTestSupport
import XCTest
@testable import SPIOExperiments

/// A workspace on a full disk and on a read-only file system, through the `spio` executable. Both
/// need a file system of their own: a small tmpfs and a read-only bind mount, which root may make
/// (CI runs as root). Elsewhere a read-only folder (chmod) stands in, and the full disk is skipped.
final class WorkspaceFaultTests: ScratchDirectoryTestCase {
    var mounts: [String] = []

    override func tearDown() {
        for m in mounts.reversed() { _ = Self.shell("/bin/umount", [m]) }
        _ = Self.shell("/bin/chmod", ["-R", "u+w", dir])
        super.tearDown()
    }

    static func shell(_ tool: String, _ args: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice; p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    func study(epochs: Int = 1) throws -> String {
        try tinyStudy("faults", seed: 4, epochs: epochs, testSamples: 4, testSeed: 6)
    }

    /// Every reading command works on a read-only workspace, creates nothing there, and gives the
    /// same answers as on the writable one; `spio run` says the workspace is read-only.
    func testAReadOnlyWorkspaceCanBeReadAndSaysWhyItCannotRun() throws {
        let file = try study()
        let ws = dir + "/ws"
        let r0 = try WorkspaceFuzzTests.spio(["run", file, "--workspace", ws, "--report", dir + "/report"])
        XCTAssertEqual(r0.status, 0, r0.text)
        let readOnly: String
        if geteuid() == 0 {
            readOnly = dir + "/ro"
            try FileManager.default.createDirectory(atPath: readOnly, withIntermediateDirectories: true)
            guard Self.shell("/bin/mount", ["--bind", ws, readOnly]) == 0 else {
                throw XCTSkip("mount --bind is not permitted here")
            }
            mounts.append(readOnly)
            guard Self.shell("/bin/mount", ["-o", "remount,ro,bind", readOnly]) == 0 else {
                throw XCTSkip("remounting a bind mount read-only is not permitted here")
            }
        } else {
            readOnly = ws
            XCTAssertEqual(Self.shell("/bin/chmod", ["-R", "a-w", ws]), 0)
        }
        let before = try FileManager.default.contentsOfDirectory(atPath: readOnly).sorted()
        let runs = try WorkspaceFuzzTests.spio(["runs", "--workspace", readOnly])
        XCTAssertEqual(runs.status, 0, runs.text)
        XCTAssertEqual(runs.text.components(separatedBy: "\n").filter { $0.contains("finished") }.count, 4, runs.text)
        for args in [["show", "2"], ["compare", "2", "4"], ["verify"]] {
            let r = try WorkspaceFuzzTests.spio(args + ["--workspace", readOnly])
            XCTAssertEqual(r.status, 0, "spio \(args[0]): \(r.text)")
        }
        let report = try WorkspaceFuzzTests.spio(["report", "faults", "--workspace", readOnly, "--out", dir + "/again"])
        XCTAssertEqual(report.status, 0, report.text)
        XCTAssertEqual(
            try String(contentsOfFile: dir + "/again/report.md", encoding: .utf8),
            try String(contentsOfFile: dir + "/report/report.md", encoding: .utf8))
        let run = try WorkspaceFuzzTests.spio(["run", file, "--workspace", readOnly, "--report", "none"])
        XCTAssertEqual(run.status, 1, run.text)
        XCTAssertTrue(run.text.contains("the workspace is read-only"), run.text)
        XCTAssertEqual(
            try FileManager.default.contentsOfDirectory(atPath: readOnly).sorted(), before, "nothing created")
    }

    /// A full disk stops the run with the cause in words; after space is freed the next run
    /// finishes, with one finished run per hash and the same report as a run that had room.
    func testAFullDiskStopsWithAMessageAndTheNextRunFinishes() throws {
        guard geteuid() == 0 else { throw XCTSkip("a small tmpfs needs root") }
        let file = try study()
        let roomy = try WorkspaceFuzzTests.spio([
            "run", file, "--workspace", dir + "/roomy", "--report", dir + "/roomy-report"
        ])
        XCTAssertEqual(roomy.status, 0, roomy.text)
        let disk = dir + "/disk"
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        // 24 images of 2 x 32 x 32 floats are 196 KB: the store fits, the dataset does not.
        guard Self.shell("/bin/mount", ["-t", "tmpfs", "-o", "size=160k", "tmpfs", disk]) == 0 else {
            throw XCTSkip("mount -t tmpfs is not permitted here")
        }
        mounts.append(disk)
        let full = try WorkspaceFuzzTests.spio(["run", file, "--workspace", disk + "/ws", "--report", "none"])
        XCTAssertEqual(full.status, 1, full.text)
        XCTAssertTrue(
            full.text.contains("No space left on device") || full.text.contains("the disk is full"), full.text)
        for raw in ["NSCocoaErrorDomain", "SQLite error", "Fatal error"] {
            XCTAssertFalse(full.text.contains(raw), full.text)
        }

        guard Self.shell("/bin/mount", ["-o", "remount,size=64m", disk]) == 0 else {
            throw XCTSkip("resizing a tmpfs is not permitted here")
        }
        let again = try WorkspaceFuzzTests.spio([
            "run", file, "--workspace", disk + "/ws", "--report", dir + "/disk-report"
        ])
        XCTAssertEqual(again.status, 0, again.text)
        let store = try RunStore(path: disk + "/ws/runs.sqlite", access: .readOnly)
        let finished = try store.runs(status: .finished)
        XCTAssertEqual(finished.count, 4)
        XCTAssertEqual(try store.runs().count, 4, "the failed dataset run was resumed, not repeated")
        XCTAssertEqual(
            try String(contentsOfFile: dir + "/disk-report/runs.csv", encoding: .utf8),
            try String(contentsOfFile: dir + "/roomy-report/runs.csv", encoding: .utf8))
        XCTAssertTrue(
            try FileManager.default.subpathsOfDirectory(atPath: disk + "/ws").allSatisfy { !$0.contains(".partial") })
    }

    /// Reading a store that does not exist creates nothing and says so.
    func testReadingAMissingStoreCreatesNothing() throws {
        XCTAssertThrowsError(try RunStore(path: dir + "/none/runs.sqlite", access: .readOnly)) {
            XCTAssertTrue("\($0)".contains("no run store here"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/none"))
    }
}
