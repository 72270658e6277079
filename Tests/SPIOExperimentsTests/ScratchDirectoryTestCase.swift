import Foundation
import XCTest

/// A test case with a fresh scratch folder `dir` per test, removed afterwards.
class ScratchDirectoryTestCase: XCTestCase {
    var dir = ""

    override func setUp() {
        dir = NSTemporaryDirectory() + "spio-\(type(of: self))-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }
}
