import CBLAS

/// Row-major single-precision matrix products through OpenBLAS.
public enum Gemm {
    /// C[m x n] = alpha * op(A) * op(B) + beta * C, all row-major with leading dimensions given by
    /// their logical widths. `transA` means A is stored k x m, `transB` means B is stored n x k.
    @inline(__always)
    public static func sgemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(transA ? m : k), b, Int32(transB ? k : n), beta, c, Int32(n))
    }
}
