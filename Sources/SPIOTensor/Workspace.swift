/// Scratch memory shared by the layers of one model: the im2col matrix and transposes live here
/// only for the duration of one layer's forward or backward call, so a network needs one buffer
/// the size of its largest layer instead of one per layer.
///
/// Not thread-safe: one workspace per model per thread. A slot's contents live only within one
/// layer call, so different layers (and different kernels) use the same slots for their own ends.
public final class Workspace {
    /// A named scratch slot. Within one forward or backward call each name holds one thing; a
    /// kernel that needs two buffers at once takes two names.
    public struct Slot: Hashable, Sendable {
        public let index: Int
        init(_ index: Int) { self.index = index }
        /// The unrolled (im2col) input, or another input-sized transform of it (Winograd's V, the
        /// tap planes of a one-filter convolution).
        public static let columns = Slot(0)
        /// A GEMM product before it is laid out as the output, or the output gradient in the GEMM's
        /// layout (channels first).
        public static let product = Slot(1)
        /// The input gradient's columns before col2im (or Winograd's filter gradient).
        public static let inputGradient = Slot(2)
        /// The input gradient in the GEMM's layout before it is laid out as the input.
        public static let inputGradientLayout = Slot(3)
        /// Winograd's filter taps and their half-transformed middle.
        public static let filterTaps = Slot(4)
        public static let filterMiddle = Slot(5)
        /// Per-chunk partial sums of a weight gradient, summed in a fixed order.
        public static let partialSums = Slot(6)
        /// The zero-padded input of the direct 3x3 kernel.
        public static let paddedInput = Slot(7)
        /// A row of zeros (Winograd's tiles past the image edge).
        public static let zeros = Slot(8)
        /// Thread `thread`'s own scratch: part `part` of `parts` per thread.
        public static func perThread(_ thread: Int, part: Int = 0, of parts: Int = 1) -> Slot {
            Slot(9 + parts * thread + part)
        }
    }

    private var slots: [UnsafeMutablePointer<Float>] = []
    private var sizes: [Int] = []

    public init() {}

    deinit { for p in slots { p.deallocate() } }

    /// Scratch slot `slot` with room for at least `count` floats; contents are unspecified.
    /// Grows (reallocates) only when a larger size is asked for.
    public func buffer(_ named: Slot, count: Int) -> UnsafeMutablePointer<Float> {
        let slot = named.index
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
    /// weight gradient instead of being rebuilt). 32 Mi floats = 128 MiB by default: the studies'
    /// models keep every matrix they would (`tiny` at 128 x 128 retains 36 MiB, the scaling study's
    /// wider one 71 MiB), while the paper preset's first layers, 270 MiB at batch 8, are rebuilt
    /// in backward instead of lifting its peak memory above PyTorch's; 0 disables.
    public var retainBudgetFloats = 1 << 25
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
