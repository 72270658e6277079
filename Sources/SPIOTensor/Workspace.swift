/// Scratch memory shared by the layers of one model: the im2col matrix and transposes live here
/// only for the duration of one layer's forward or backward call, so a network needs one buffer
/// the size of its largest layer instead of one per layer.
///
/// Not thread-safe: one workspace per model per thread.
public final class Workspace {
    private var slots: [UnsafeMutablePointer<Float>] = []
    private var sizes: [Int] = []

    public init() {}

    deinit { for p in slots { p.deallocate() } }

    /// Scratch slot `slot` with room for at least `count` floats; contents are unspecified.
    /// Grows (reallocates) only when a larger size is asked for.
    public func buffer(_ slot: Int, count: Int) -> UnsafeMutablePointer<Float> {
        while slots.count <= slot { slots.append(.allocate(capacity: 1)); sizes.append(1) }
        if sizes[slot] < count {
            slots[slot].deallocate()
            slots[slot] = .allocate(capacity: count)
            sizes[slot] = count
        }
        return slots[slot]
    }

    /// Total floats currently allocated in scratch slots.
    public var allocatedFloats: Int { sizes.reduce(0, +) }

    /// Floats that layers may keep between forward and backward (im2col matrices reused by the
    /// weight gradient instead of being rebuilt). 256 Mi floats = 1 GiB by default; 0 disables.
    public var retainBudgetFloats = 1 << 28
    /// Floats currently kept by layers.
    public private(set) var retainedFloats = 0

    /// Reserves `count` floats of the retain budget; false when the budget would be exceeded.
    public func reserve(_ count: Int) -> Bool {
        guard retainedFloats + count <= retainBudgetFloats else { return false }
        retainedFloats += count
        return true
    }

    /// Returns `count` floats to the retain budget.
    public func release(_ count: Int) { retainedFloats -= count }
}
