import Dispatch
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Persistent worker threads that run the parts of the engine's parallel loops.
///
/// A training step issues thousands of parallel loops of tens of microseconds each. Waking a
/// sleeping thread for each (as `DispatchQueue.concurrentPerform` does) costs about as much as
/// the work: on a 2-core host two 33 us parts took 87 us through `concurrentPerform`, more than
/// running both on one thread. Here the workers spin on a generation counter for a few
/// milliseconds after each loop (yielding the core when another thread wants it), then sleep on a
/// condition variable, so back-to-back loops start in well under a microsecond.
///
/// Parts are numbered and any participant may run any part, so results never depend on which
/// thread ran what. One loop runs at a time: a loop started while another is running (from a part,
/// or from an unrelated thread) runs its parts on the calling thread, in order.
final class WorkerPool: @unchecked Sendable {
    /// (generation << 32) | (parts << 16) | next unclaimed part: one word, so a worker that saw an
    /// old generation can never claim a part of a newer loop.
    private let state = Atomic<UInt64>(0)
    private let unfinished = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let busy = Atomic<Bool>(false)
    /// Workers started so far (guarded by `lock`).
    private var workerCount = 0
    /// The running loop's body; written only while no part of any loop is claimable.
    nonisolated(unsafe) private var body: ((Int) -> Void)?
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wake = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let lock = NSLock()

    /// How long an idle worker spins before it sleeps.
    private static let spinNanoseconds: UInt64 = 2_000_000

    static let shared = WorkerPool()

    private init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
    }

    /// Starts workers until there are at least `count` (they are never stopped; idle ones sleep).
    func ensureWorkers(_ count: Int) {
        lock.lock()
        defer { lock.unlock() }
        while workerCount < count {
            workerCount += 1
            let thread = Thread { [self] in workerLoop() }
            thread.stackSize = 8 << 20
            thread.name = "spio-engine-\(workerCount)"
            thread.start()
        }
    }

    /// Runs `body(p)` for p in 0..<parts (at most 65,535), spread over the calling thread and the
    /// workers; returns when all parts are done.
    func run(parts: Int, _ body: (Int) -> Void) {
        precondition(parts > 0 && parts < 1 << 16, "WorkerPool.run: \(parts) parts")
        guard parts > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        else {
            for p in 0..<parts { body(p) }
            return
        }
        withoutActuallyEscaping(body) { body in
            self.body = body
            unfinished.store(parts, ordering: .relaxed)
            let generation = (state.load(ordering: .relaxed) >> 32) &+ 1
            state.store((generation << 32) | UInt64(parts) << 16, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(wake)
                pthread_mutex_unlock(mutex)
            }
            claimParts(generation: generation)
            while unfinished.load(ordering: .acquiring) > 0 {}
            self.body = nil
        }
        busy.store(false, ordering: .releasing)
    }

    /// Claims and runs parts of loop `generation` until none is left.
    private func claimParts(generation: UInt64) {
        var s = state.load(ordering: .acquiring)
        while s >> 32 == generation {
            let parts = (s >> 16) & 0xffff, next = s & 0xffff
            guard next < parts else { return }
            let (exchanged, now) = state.compareExchange(expected: s, desired: s + 1, ordering: .acquiringAndReleasing)
            if exchanged {
                body!(Int(next))
                unfinished.subtract(1, ordering: .releasing)
                s = state.load(ordering: .acquiring)
            } else {
                s = now
            }
        }
    }

    private func workerLoop() {
        var seen = state.load(ordering: .acquiring) >> 32
        while true {
            let generation = waitForLoop(after: seen)
            seen = generation
            claimParts(generation: generation)
        }
    }

    /// Spins, then sleeps, until a loop newer than `seen` is published; returns its generation.
    private func waitForLoop(after seen: UInt64) -> UInt64 {
        let start = DispatchTime.now().uptimeNanoseconds
        var spins = 0
        while true {
            let g = state.load(ordering: .acquiring) >> 32
            if g != seen { return g }
            spins += 1
            if spins & 255 == 0 {
                sched_yield()
                if DispatchTime.now().uptimeNanoseconds - start > Self.spinNanoseconds { break }
            }
        }
        pthread_mutex_lock(mutex)
        sleepers.add(1, ordering: .sequentiallyConsistent)
        var g = state.load(ordering: .sequentiallyConsistent) >> 32
        while g == seen {
            pthread_cond_wait(wake, mutex)
            g = state.load(ordering: .sequentiallyConsistent) >> 32
        }
        sleepers.subtract(1, ordering: .sequentiallyConsistent)
        pthread_mutex_unlock(mutex)
        return g
    }
}
