import Foundation
import SPIOTestSupport
import XCTest

@testable import SPIOImageIO

final class PartialPathTests: ScratchDirectoryTestCase {
    private func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    /// A folder is replaced whole; a failing body leaves the old one and no temporary behind.
    func testWriteReplacesWholeOrNothing() throws {
        let target = dir + "/set"
        try PartialPath.write(target) { p in
            try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
            try Data("old".utf8).write(to: URL(fileURLWithPath: p + "/a"))
        }
        struct Failed: Error {}
        XCTAssertThrowsError(
            try PartialPath.write(target) { p in
                try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
                throw Failed()
            })
        XCTAssertEqual(try String(contentsOfFile: target + "/a", encoding: .utf8), "old")
        try PartialPath.write(target) { p in
            try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
            try Data("new".utf8).write(to: URL(fileURLWithPath: p + "/b"))
        }
        XCTAssertFalse(exists(target + "/a"), "the old folder is replaced, not merged")
        XCTAssertEqual(try String(contentsOfFile: target + "/b", encoding: .utf8), "new")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["set"])
    }

    /// Stale temporaries of dead processes go at every depth; a live process's and another host's stay.
    func testStaleTemporariesGoAtEveryDepth() throws {
        let host = PartialPath.hostName
        let deep = dir + "/models/abc/checkpoints"
        try FileManager.default.createDirectory(atPath: deep, withIntermediateDirectories: true)
        let dead = [
            deep + "/epoch-0003.partial-999999999@\(host)", dir + "/models/x.png.partial-999999999@\(host).gp",
            dir + "/old.partial-999999999"
        ]
        let kept = [deep + "/epoch-0004.partial-\(getpid())@\(host)", dir + "/y.partial-999999999@elsewhere"]
        for p in dead + kept { try Data().write(to: URL(fileURLWithPath: p)) }
        XCTAssertEqual(Set(PartialPath.removeStale(under: dir)), Set(dead))
        XCTAssertTrue(dead.allSatisfy { !exists($0) })
        XCTAssertTrue(kept.allSatisfy(exists))
        XCTAssertEqual(PartialPath.removeStale(under: dir + "/missing"), [])
    }
}
