/// Bilinear interpolation in a width x height image (x fastest) at fractional pixel indices
/// (x, y), clamped to the image: the one resampling rule of the simulator (field maps onto fine
/// samples, real images onto the image matrix).
func bilinearSample(_ image: [Float], width: Int, height: Int, x: Double, y: Double) -> Double {
    let cx = Swift.min(Swift.max(x, 0), Double(width - 1)), cy = Swift.min(Swift.max(y, 0), Double(height - 1))
    let x0 = Swift.min(Int(cx), Swift.max(width - 2, 0)), y0 = Swift.min(Int(cy), Swift.max(height - 2, 0))
    let x1 = Swift.min(x0 + 1, width - 1), y1 = Swift.min(y0 + 1, height - 1)
    let tx = cx - Double(x0), ty = cy - Double(y0)
    let a = Double(image[y0 * width + x0]), b = Double(image[y0 * width + x1])
    let c = Double(image[y1 * width + x0]), d = Double(image[y1 * width + x1])
    return (a * (1 - tx) + b * tx) * (1 - ty) + (c * (1 - tx) + d * tx) * ty
}
