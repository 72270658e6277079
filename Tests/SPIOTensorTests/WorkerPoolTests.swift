import Foundation
import Synchronization
import XCTest

@testable import SPIOTensor

final class WorkerPoolTests: XCTestCase {
    override func tearDown() { Engine.setThreadCount(1) }

    /// Every part of every loop runs exactly once, across many back-to-back loops of different
    /// sizes (the case where a late worker could otherwise claim a part of the next loop).
    func testEveryPartRunsOnceInBackToBackLoops() {
        Engine.setThreadCount(3)
        let runs = UnsafeMutablePointer<Int>.allocate(capacity: 64)
        defer { runs.deallocate() }
        for round in 0..<20_000 {
            let parts = 2 + round % 7
            runs.update(repeating: 0, count: parts)
            WorkerPool.shared.run(parts: parts) { p in
                var x = 0
                for i in 0..<(p * 40) { x &+= i &* i }
                runs[p] += 1 + (x == -1 ? 1 : 0)
            }
            for p in 0..<parts where runs[p] != 1 {
                XCTFail("round \(round): part \(p) of \(parts) ran \(runs[p]) times")
                return
            }
        }
    }

    /// The parts of one loop run on more than one thread when the work is long enough to wait for
    /// (the workers are never stopped, so an earlier test's third worker may join in).
    func testPartsRunOnSeveralThreads() {
        Engine.setThreadCount(2)
        let threads = Mutex<Set<UInt>>([])
        for _ in 0..<50 {
            Engine.parallelParts(2) { _, _ in
                let id = UInt(pthread_self())
                threads.withLock { _ = $0.insert(id) }
                usleep(2_000)
            }
        }
        XCTAssertGreaterThanOrEqual(threads.withLock { $0.count }, 2)
    }

    /// A loop started from inside a part, and loops started from two threads at once, run (serially
    /// where the pool is taken) and finish with every index covered once.
    func testNestedAndConcurrentLoopsFinish() {
        Engine.setThreadCount(2)
        let total = Atomic<Int>(0)
        Engine.parallelParts(4) { _, range in
            for _ in range { Engine.parallelFor(10) { inner in total.add(inner.count, ordering: .relaxed) } }
        }
        XCTAssertEqual(total.load(ordering: .relaxed), 40)

        let done = DispatchGroup()
        let sums = Mutex<[Int]>([])
        for _ in 0..<2 {
            DispatchQueue.global().async(group: done) {
                let local = Atomic<Int>(0)
                for _ in 0..<500 { Engine.parallelEach(9) { i in local.add(i, ordering: .relaxed) } }
                sums.withLock { $0.append(local.load(ordering: .relaxed)) }
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 60), .success)
        XCTAssertEqual(sums.withLock { $0 }, [18_000, 18_000])
    }
}
