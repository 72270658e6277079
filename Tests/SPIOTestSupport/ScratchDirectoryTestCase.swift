import Foundation
import XCTest

/// A test case with a fresh scratch folder `dir` per test, removed afterwards: what every test
/// target that writes files shares.
open class ScratchDirectoryTestCase: XCTestCase {
    /// This test's own folder (absolute), created empty before it runs.
    public var dir = ""

    open override func setUp() {
        super.setUp()
        dir = NSTemporaryDirectory() + "spio-\(type(of: self))-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    open override func tearDown() {
        try? FileManager.default.removeItem(atPath: dir)
        super.tearDown()
    }
}
