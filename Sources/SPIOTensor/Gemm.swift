import CBLAS

/// Row-major single-precision matrix products through OpenBLAS, parallelised deterministically.
///
/// OpenBLAS's own threading gives results that depend on the thread count (its edge kernels differ
/// with the partition), so OpenBLAS runs single-threaded and `sgemm` splits the larger output
/// dimension into blocks whose sizes depend only on the shape. Every block is the same OpenBLAS call
/// whatever the thread count, so results are bitwise identical on 1 or 2 threads.
public enum Gemm {
    /// C[m x n] = alpha * op(A) * op(B) + beta * C, all row-major with leading dimensions given by
    /// their logical widths. `transA` means A is stored k x m, `transB` means B is stored n x k.
    public static func sgemm(
        transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        beta: Float = 0, c: UnsafeMutablePointer<Float>
    ) {
        let (lda, ldb) = (transA ? m : k, transB ? k : n)
        let splitRows = m >= n
        let blocks = blockCount(splitRows ? m : n, flops: 2 * m * n * k)
        Engine.parallelFor(blocks) { range in
            for blk in range {
                let dim = splitRows ? m : n
                let lo = dim * blk / blocks, hi = dim * (blk + 1) / blocks
                if lo == hi { continue }
                if splitRows {
                    // Rows lo..<hi of C need rows lo..<hi of op(A).
                    let aBlock = transA ? a + lo : a + lo * lda
                    call(transA, transB, hi - lo, n, k, alpha, aBlock, lda, b, ldb, beta, c + lo * n, n)
                } else {
                    // Columns lo..<hi of C need columns lo..<hi of op(B).
                    let bBlock = transB ? b + lo * ldb : b + lo
                    call(transA, transB, m, hi - lo, k, alpha, a, lda, bBlock, ldb, beta, c + lo, n)
                }
            }
        }
    }

    /// Blocks per product: a function of the shape only (up to 4, at least ~4 MFLOP and 64 rows each).
    static func blockCount(_ dim: Int, flops: Int) -> Int {
        Swift.max(1, Swift.min(4, Swift.min(dim / 64, flops / 4_000_000)))
    }

    @inline(__always)
    private static func call(
        _ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
        _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        cblas_sgemm(
            CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
            Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
