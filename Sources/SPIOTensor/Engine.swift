import CBLAS
import SPIOKernels
import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Thread settings shared by OpenBLAS and the engine's own parallel loops.
///
/// Every parallel loop here splits work so that each output element is computed by one thread with
/// the same sequential arithmetic whatever the thread count; reductions never cross threads.
/// OpenBLAS itself always runs on one thread: `Gemm` parallelises over fixed blocks instead,
/// because OpenBLAS's threaded results change with the thread count.
public enum Engine {
    nonisolated(unsafe) private static var threads: Int = {
        openblas_set_num_threads(1)
        return 1
    }()

    /// Threads used by the engine and by OpenBLAS.
    public static var threadCount: Int { threads }

    /// Sets the thread count of the engine's parallel loops (at least 1); OpenBLAS stays at 1.
    public static func setThreadCount(_ n: Int) {
        openblas_set_num_threads(1)
        threads = Swift.max(1, n)
        pool.ensureWorkers(threads - 1)
    }

    /// The threads besides the caller's that run the parts of parallel loops.
    private static var pool: WorkerPool { WorkerPool.shared }

    /// The OpenBLAS build configuration string, its core name and the kernel mode (for run
    /// environments and benchmark tables).
    public static var blasDescription: String {
        let config = openblas_get_config().map { String(cString: $0) } ?? "OpenBLAS"
        let state = KernelPolicy.state
        return "\(config) (core \(state.core); kernel mode \(state))"
    }

    /// Runs `body(range)` over `0..<count` split into contiguous ranges, one per thread.
    /// `body` must write disjoint memory for disjoint ranges. Inside `parallelParts` it runs serially.
    public static func parallelFor(_ count: Int, minimumPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let parts = Swift.min(threads, Swift.max(1, count / Swift.max(1, minimumPerThread)))
        if parts == 1 || insideParts { body(0..<count); return }
        pool.run(parts: parts) { p in
            let lo = count * p / parts, hi = count * (p + 1) / parts
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Runs `body(i)` for every i in `0..<count`, each thread taking the next index when it is
    /// done with its last: for independent items of uneven cost (simulated samples), whose results
    /// must not depend on which thread computes them. `body` must write disjoint memory for
    /// different indices. Inside `parallelParts` it runs serially.
    public static func parallelEach(_ count: Int, _ body: (Int) -> Void) {
        guard count > 0 else { return }
        let parts = Swift.min(threads, count)
        if parts == 1 || insideParts { for i in 0..<count { body(i) }; return }
        let next = Atomic<Int>(0)
        pool.run(parts: parts) { _ in
            while true {
                let i = next.add(1, ordering: .relaxed).oldValue
                if i >= count { return }
                body(i)
            }
        }
    }

    /// Runs `body(part, range)` for `parts` contiguous ranges of `0..<count`, one per thread
    /// (`part` < `threadCount` indexes per-thread scratch). Engine loops and `Gemm` calls inside
    /// `body` run serially on the calling thread, so the parts never oversubscribe the cores; with
    /// a single part they run in parallel as anywhere else.
    public static func parallelParts(_ count: Int, _ body: (_ part: Int, _ range: Range<Int>) -> Void) {
        guard count > 0 else { return }
        let parts = Swift.min(threads, count)
        withoutActuallyEscaping(body) { body in
            let run = { (p: Int) in
                let lo = count * p / parts, hi = count * (p + 1) / parts
                guard lo < hi else { return }
                let outer = insideParts
                pthread_setspecific(partsKey, UnsafeRawPointer(bitPattern: 1))
                body(p, lo..<hi)
                if !outer { pthread_setspecific(partsKey, nil) }
            }
            // One part (one sample of a per-sample layer, say) leaves the threads free, so the
            // loops and `Gemm` calls inside it may use them: they compute the same bits either way.
            if parts == 1 { body(0, 0..<count) } else { pool.run(parts: parts, run) }
        }
    }

    private static let partsKey: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    private static var insideParts: Bool { pthread_getspecific(partsKey) != nil }
}

/// Work that stopped because its caller asked it to (Ctrl-C) before it finished: a simulation or
/// an evaluation between two samples or batches. Nothing partial is kept; the run that was doing
/// it is marked interrupted and the next `spio run` does it again.
package struct StopRequested: Error, CustomStringConvertible {
    /// What stopped, e.g. "simulation after 1,200 of 2,000 samples".
    package let what: String
    package init(_ what: String) { self.what = what }
    package var description: String { "\(what) stopped on request; run again to resume" }
}
