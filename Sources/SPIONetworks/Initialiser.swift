import SPIOTensor

/// He (Kaiming) normal initialisation, drawn from the project's `SeededGenerator` in parameter order.
///
/// Conv weights get N(0, 2 / fanIn) with fanIn = Cin * k * k. A transposed convolution's output
/// pixel sums Cin * k * k / stride^2 taps on average, which is the fan-in used for it. Biases are 0;
/// BatchNorm keeps gamma 1, beta 0 from construction.
public enum HeInitialiser {
    /// Initialises every convolution of `module`, in construction order, from `seed`.
    public static func initialise(_ module: Module, seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        func fill(_ w: Parameter, _ b: Parameter?, fanIn: Int) {
            let std = (2.0 / Double(Swift.max(1, fanIn))).squareRoot()
            for i in 0..<w.value.count { w.value.data[i] = Float(rng.normal() * std) }
            b?.value.fill(0)
        }
        module.visit { _, m in
            if let c = m as? Conv2D {
                fill(c.weight, c.bias, fanIn: c.inChannels * c.kernelSize * c.kernelSize)
            } else if let t = m as? ConvTranspose2D {
                fill(t.weight, t.bias, fanIn: t.inChannels * t.kernelSize * t.kernelSize / (t.stride * t.stride))
            }
        }
    }
}
