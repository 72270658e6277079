import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Storage of large tensors, mapped from the system page by page (zeroed, and handed back the
/// moment it is unmapped), and the free blocks `Tensor.reclaim` hands back for `Tensor.reshape` to
/// take again: what lets a backward pass reuse the memory of gradients already consumed instead of
/// holding one per layer (PyTorch frees them as its backward pass goes). A request takes the
/// smallest free block that holds it (contents unspecified, as `reshape` promises). Without one,
/// the free blocks, all too small, are unmapped first and fresh pages mapped: a backward pass that
/// walks up the encoder asks for ever larger gradients, and keeping the smaller ones would hold
/// every gradient again. Only tensors of at least `smallest` floats (16 MiB: the paper preset's
/// full-resolution gradients) are mapped; smaller ones use the allocator, as before.
public final class TensorStoragePool: @unchecked Sendable {
    /// The process's pool (tensors of every model share it; a model's backward pass runs on one
    /// thread at a time).
    public static let shared = TensorStoragePool()
    /// Tensors of at least this many floats are mapped and may be reclaimed. Settable for tests,
    /// which route every tensor through the pool to show that no result depends on it.
    nonisolated(unsafe) public static var smallest = 1 << 20

    /// What an emptied (reclaimed) tensor points at: one float shared by all, never written
    /// (such a tensor has count 0) and never freed.
    static let noStorage = UnsafeMutablePointer<Float>.allocate(capacity: 1)

    private var free: [(pointer: UnsafeMutablePointer<Float>, capacity: Int)] = []
    private let lock = NSLock()

    /// Floats held in free blocks now.
    public var freeFloats: Int { lock.withLock { free.reduce(0) { $0 + $1.capacity } } }

    /// Storage for at least `count` floats: a free block if one holds it, else fresh mapped pages.
    func take(_ count: Int) -> (UnsafeMutablePointer<Float>, Int) {
        let reused: (pointer: UnsafeMutablePointer<Float>, capacity: Int)? = lock.withLock {
            if let i = free.indices.filter({ free[$0].capacity >= count })
                .min(by: { free[$0].capacity < free[$1].capacity })
            {
                return free.remove(at: i)
            }
            for block in free { Self.unmap(block.pointer, capacity: block.capacity) }
            free.removeAll()
            return nil
        }
        return reused.map { ($0.pointer, $0.capacity) } ?? Self.map(count)
    }

    func give(_ pointer: UnsafeMutablePointer<Float>, capacity: Int) {
        lock.withLock { free.append((pointer, capacity)) }
    }

    /// Fresh zeroed pages for at least `count` floats (the capacity rounds up to whole pages).
    static func map(_ count: Int) -> (UnsafeMutablePointer<Float>, Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let bytes = (count * MemoryLayout<Float>.stride + page - 1) / page * page
        guard let raw = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            raw != MAP_FAILED
        else { fatalError("cannot map \(bytes) bytes for a tensor: \(String(cString: strerror(errno)))") }
        return (raw.bindMemory(to: Float.self, capacity: bytes / 4), bytes / MemoryLayout<Float>.stride)
    }

    static func unmap(_ pointer: UnsafeMutablePointer<Float>, capacity: Int) {
        munmap(UnsafeMutableRawPointer(pointer), capacity * MemoryLayout<Float>.stride)
    }
}
