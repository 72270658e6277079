/// A float32 array in NCHW (or any row-major) layout with contiguous storage.
///
/// `Tensor` is a reference type on purpose: layers own their output tensors and overwrite them on
/// the next call, so a training step allocates nothing once shapes are known (llm.c's
/// activations, in Swift). Call `copy()` to keep a value past the next forward pass.
public final class Tensor: CustomStringConvertible {
    /// Sizes per dimension, outermost first (N, C, H, W for images).
    public private(set) var shape: [Int]
    /// Number of elements, the product of `shape`.
    public private(set) var count: Int
    /// Elements allocated; grows, never shrinks, so reshaping to a smaller size is free.
    public private(set) var capacity: Int
    /// Start of the contiguous element storage (row-major, innermost dimension last).
    public private(set) var data: UnsafeMutablePointer<Float>
    /// Whether the storage is mapped pages of `TensorStoragePool` (large tensors grown by
    /// `reshape`) rather than the allocator's.
    private var mapped = false

    /// A zero-filled tensor of the given shape.
    public init(shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor shape \(shape) has a negative dimension")
        self.shape = shape
        count = shape.reduce(1, *)
        capacity = Swift.max(count, 1)
        data = .allocate(capacity: capacity)
        data.initialize(repeating: 0, count: capacity)
    }

    /// A tensor holding `values` in row-major order; `values.count` must match the shape.
    public convenience init(shape: [Int], values: [Float]) {
        self.init(shape: shape)
        precondition(
            values.count == count,
            "Tensor(shape: \(shape)) needs \(count) values, got \(values.count)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    deinit { release() }

    private func release() {
        if mapped {
            TensorStoragePool.unmap(data, capacity: capacity)
        } else if data != TensorStoragePool.noStorage {
            data.deallocate()
        }
        mapped = false
    }

    /// Changes the shape, reallocating only when the new shape needs more room than allocated.
    /// Contents are unspecified afterwards (kept when the count does not grow).
    public func reshape(to newShape: [Int]) {
        precondition(newShape.allSatisfy { $0 >= 0 }, "Tensor shape \(newShape) has a negative dimension")
        let n = newShape.reduce(1, *)
        if n > capacity {
            // Large storage comes from the pool: a block another tensor reclaimed, or fresh pages.
            release()
            if n >= TensorStoragePool.smallest {
                (data, capacity) = TensorStoragePool.shared.take(n)
                mapped = true
            } else {
                capacity = n
                data = .allocate(capacity: n)
                data.initialize(repeating: 0, count: n)
            }
        }
        shape = newShape
        count = n
    }

    /// Hands this tensor's storage to the pool that `reshape` draws from, leaving it empty (shape
    /// [0]; the next `reshape` takes storage again). For a gradient consumed within a backward pass:
    /// the next layer's gradient reuses the memory, so a network's backward pass holds a few
    /// gradients at a time instead of one per layer. Tensors below `TensorStoragePool.smallest`
    /// keep their storage.
    public func reclaim() {
        guard mapped else { return }
        TensorStoragePool.shared.give(data, capacity: capacity)
        mapped = false
        data = TensorStoragePool.noStorage  // no allocation per reclaim in the backward loop
        capacity = 0
        shape = [0]
        count = 0
    }

    /// Size of dimension `i`; negative `i` counts from the end.
    public func dim(_ i: Int) -> Int { shape[i < 0 ? shape.count + i : i] }

    /// Element access by flat row-major index (checked).
    public subscript(i: Int) -> Float {
        get { precondition(i >= 0 && i < count, "index \(i) out of range 0..<\(count)"); return data[i] }
        set { precondition(i >= 0 && i < count, "index \(i) out of range 0..<\(count)"); data[i] = newValue }
    }

    /// Element access for a rank-4 NCHW tensor (checked).
    public subscript(n: Int, c: Int, h: Int, w: Int) -> Float {
        get { data[offset(n, c, h, w)] }
        set { data[offset(n, c, h, w)] = newValue }
    }

    private func offset(_ n: Int, _ c: Int, _ h: Int, _ w: Int) -> Int {
        precondition(shape.count == 4, "4-index access needs a rank-4 tensor, shape is \(shape)")
        precondition(
            n >= 0 && n < shape[0] && c >= 0 && c < shape[1] && h >= 0 && h < shape[2] && w >= 0 && w < shape[3],
            "index (\(n), \(c), \(h), \(w)) outside shape \(shape)")
        return ((n * shape[1] + c) * shape[2] + h) * shape[3] + w
    }

    /// The elements as an array (a copy).
    public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// The elements in `range` (flat, row-major) as an array, copying only those.
    public func values(_ range: Range<Int>) -> [Float] {
        precondition(range.lowerBound >= 0 && range.upperBound <= count, "range \(range) outside 0..<\(count)")
        return Array(UnsafeBufferPointer(start: data + range.lowerBound, count: range.count))
    }

    /// A deep copy with its own storage.
    public func copy() -> Tensor {
        let t = Tensor(shape: shape)
        t.data.update(from: data, count: count)
        return t
    }

    /// Tensors of equal trailing shape stacked along the first axis (N1 + N2 + ... x ...).
    public static func concatenate(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty, "Tensor.concatenate needs at least one tensor")
        let tail = Array(parts[0].shape.dropFirst())
        precondition(
            parts.allSatisfy { Array($0.shape.dropFirst()) == tail },
            "Tensor.concatenate needs equal shapes after the first axis, got \(parts.map(\.shape))")
        let out = Tensor(shape: [parts.reduce(0) { $0 + $1.shape[0] }] + tail)
        var offset = 0
        for p in parts { (out.data + offset).update(from: p.data, count: p.count); offset += p.count }
        return out
    }

    /// Overwrites every element with `value`.
    public func fill(_ value: Float) { data.update(repeating: value, count: count) }

    /// Copies the shape and contents of `other` into this tensor (reusing storage).
    public func assign(_ other: Tensor) {
        reshape(to: other.shape)
        data.update(from: other.data, count: count)
    }

    /// self += factor * other, element by element (equal shapes; gradient sums at branch points).
    public func add(_ other: Tensor, times factor: Float = 1) {
        precondition(shape == other.shape, "Tensor.add needs equal shapes, got \(shape) and \(other.shape)")
        let (a, o) = (other.data, data)
        if factor == 1 {
            Engine.parallelFor(count, minimumPerThread: 1 << 14) { r in for i in r { o[i] += a[i] } }
        } else {
            Engine.parallelFor(count, minimumPerThread: 1 << 14) { r in for i in r { o[i] += factor * a[i] } }
        }
    }

    /// self *= factor, element by element.
    public func multiply(by factor: Float) {
        let o = data
        Engine.parallelFor(count, minimumPerThread: 1 << 14) { r in for i in r { o[i] *= factor } }
    }

    /// Elements as a buffer pointer (valid while the tensor lives and is not reshaped larger).
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }

    /// Stops with a message naming `what` unless the shape is `expected`.
    public func expectShape(_ expected: [Int], _ what: @autoclosure () -> String) {
        precondition(shape == expected, "\(what()): expected shape \(expected), got \(shape)")
    }

    /// Stops with a message naming `what` unless the tensor has rank 4.
    public func expectRank4(_ what: @autoclosure () -> String) {
        precondition(shape.count == 4, "\(what()): expected an NCHW tensor (rank 4), got shape \(shape)")
    }

    public var description: String { "Tensor\(shape)" }
}
