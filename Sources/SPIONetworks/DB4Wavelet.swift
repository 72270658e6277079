import SPIOTensor

/// The one-level 2D Daubechies-4 wavelet transform as PyWavelets computes it with
/// `pywt.dwt2(x, 'db4', mode='periodization')`: 8-tap filters, periodic extension, so an H x W
/// image gives four H/2 x W/2 bands in the order LL, LH, HL, HH (PyWavelets' cA, cH, cV, cD:
/// cH is the detail along rows, i.e. high-pass down the columns).
///
/// The filter bank is orthogonal, so the inverse is the adjoint: the same filters scattered back.
/// Sums run in Double; the transform is a fixed linear map (no parameters, no gradients needed:
/// the loss compares bands, and the adjoint of the inverse is the forward transform).
public enum DB4Wavelet {
    /// PyWavelets' `Wavelet('db4').dec_lo`.
    public static let lowPass: [Double] = [
        -0.010597401785069032, 0.0328830116668852, 0.030841381835560764, -0.18703481171909309,
        -0.027983769416859854, 0.6308807679298589, 0.7148465705529157, 0.2303778133088965
    ]
    /// PyWavelets' `dec_hi`: hi[j] = (-1)^(j+1) lo[7-j].
    public static let highPass: [Double] = (0..<8).map { j in (j % 2 == 0 ? -1.0 : 1.0) * lowPass[7 - j] }

    /// Coefficient k of a length-n signal reads x[(2k + 4 - j) mod n] with tap j (PyWavelets'
    /// periodization alignment, found by comparison with pywt.dwt).
    @inline(__always) static func index(_ k: Int, _ j: Int, _ n: Int) -> Int { ((2 * k + 4 - j) % n + n) % n }

    /// Analysis of one strided 1D signal into low and high halves.
    private static func analyse(_ x: (Int) -> Double, n: Int, low: (Int, Double) -> Void, high: (Int, Double) -> Void) {
        for k in 0..<(n / 2) {
            var a = 0.0, d = 0.0
            for j in 0..<8 { let v = x(index(k, j, n)); a += lowPass[j] * v; d += highPass[j] * v }
            low(k, a); high(k, d)
        }
    }

    /// Forward transform of one H x W plane into four H/2 x W/2 planes written to `bands`
    /// (LL, LH, HL, HH, contiguous). H and W must be even.
    public static func forward(
        _ image: UnsafePointer<Float>, height: Int, width: Int, bands: UnsafeMutablePointer<Float>
    ) {
        precondition(
            height % 2 == 0 && width % 2 == 0 && height > 0 && width > 0,
            "DB4Wavelet needs even H and W, got \(height) x \(width)")
        let (h2, w2) = (height / 2, width / 2)
        // Along the width first: L and H are H x W/2.
        var l = [Double](repeating: 0, count: height * w2), hh = l
        for r in 0..<height {
            analyse(
                { Double(image[r * width + $0]) }, n: width, low: { l[r * w2 + $0] = $1 },
                high: { hh[r * w2 + $0] = $1 })
        }
        let plane = h2 * w2
        for c in 0..<w2 {
            analyse(
                { l[$0 * w2 + c] }, n: height,
                low: { bands[$0 * w2 + c] = Float($1) }, high: { bands[plane + $0 * w2 + c] = Float($1) })
            analyse(
                { hh[$0 * w2 + c] }, n: height,
                low: { bands[2 * plane + $0 * w2 + c] = Float($1) },
                high: { bands[3 * plane + $0 * w2 + c] = Float($1) })
        }
    }

    /// Inverse transform: four H/2 x W/2 bands (LL, LH, HL, HH) back to one H x W plane.
    public static func inverse(
        _ bands: UnsafePointer<Float>, height: Int, width: Int, image: UnsafeMutablePointer<Float>
    ) {
        precondition(
            height % 2 == 0 && width % 2 == 0 && height > 0 && width > 0,
            "DB4Wavelet needs even H and W, got \(height) x \(width)")
        let (h2, w2) = (height / 2, width / 2), plane = h2 * w2
        var l = [Double](repeating: 0, count: height * w2), hh = l
        for c in 0..<w2 {
            for k in 0..<h2 {
                let (ll, lh, hl, d) = (
                    Double(bands[k * w2 + c]), Double(bands[plane + k * w2 + c]),
                    Double(bands[2 * plane + k * w2 + c]), Double(bands[3 * plane + k * w2 + c])
                )
                for j in 0..<8 {
                    let r = index(k, j, height) * w2 + c
                    l[r] += lowPass[j] * ll + highPass[j] * lh
                    hh[r] += lowPass[j] * hl + highPass[j] * d
                }
            }
        }
        var row = [Double](repeating: 0, count: width)
        for r in 0..<height {
            for i in 0..<width { row[i] = 0 }
            for k in 0..<w2 {
                let (a, d) = (l[r * w2 + k], hh[r * w2 + k])
                for j in 0..<8 { row[index(k, j, width)] += lowPass[j] * a + highPass[j] * d }
            }
            for i in 0..<width { image[r * width + i] = Float(row[i]) }
        }
    }

    /// Forward transform of every plane of an N x 1 x H x W (or N x H x W) tensor into N x 4 x H/2 x W/2.
    public static func forward(_ images: Tensor, into bands: Tensor) {
        let (n, h, w) = (images.shape[0], images.dim(-2), images.dim(-1))
        precondition(images.count == n * h * w, "DB4Wavelet.forward takes one channel per image, got \(images.shape)")
        bands.reshape(to: [n, 4, h / 2, w / 2])
        Engine.parallelFor(n) { r in
            for s in r { forward(images.data + s * h * w, height: h, width: w, bands: bands.data + s * h * w) }
        }
    }

    /// Inverse transform of N x 4 x h x w bands into N x 1 x 2h x 2w images.
    public static func inverse(_ bands: Tensor, into images: Tensor) {
        precondition(
            bands.shape.count == 4 && bands.shape[1] == 4,
            "DB4Wavelet.inverse needs N x 4 x h x w bands, got \(bands.shape)")
        let (n, h, w) = (bands.shape[0], 2 * bands.shape[2], 2 * bands.shape[3])
        images.reshape(to: [n, 1, h, w])
        Engine.parallelFor(n) { r in
            for s in r { inverse(bands.data + s * h * w, height: h, width: w, image: images.data + s * h * w) }
        }
    }
}
