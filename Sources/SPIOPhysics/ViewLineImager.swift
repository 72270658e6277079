import Foundation

/// Forms the two-channel View Line image (forward-model.md section 4) from the anatomy, the
/// in-plane concentration and the in-plane field: for every column and every fine sample along z,
/// the excitation weight of each nearby stripe, relaxation and dephasing, then a linear splat at
/// the displaced readout position (wrapping around the FOV as readout aliasing does).
package struct ViewLineImager: Sendable {
    package let sequence: ViewLineSequence
    package let pixels: Int
    package let fovMM: Double

    package init(sequence: ViewLineSequence, pixels: Int, fovMM: Double) {
        self.sequence = sequence; self.pixels = pixels; self.fovMM = fovMM
    }

    /// - Parameters:
    ///   - protonDensity: the anatomy, pixels x pixels, [z][x].
    ///   - fineConcentration: concentration in ug/mm^3 at the fine samples, (pixels * s) x pixels,
    ///     [fine z][x] (s = samplesPerPixel), or nil for none.
    ///   - fieldHz, dFieldDy: per-sample field offset (Hz) and |dB/dy| (Hz/mm) at (x column, fine z),
    ///     same layout, or nil for no field.
    /// - Returns: 2 x pixels x pixels, channel 0 the even stripes, channel 1 the odd ones.
    package func image(
        protonDensity rho: [Float], fineConcentration: [Float]?, fieldHz: [Float]?, dFieldDyHzPerMM: [Float]?
    ) -> [Float] {
        let n = pixels, s = sequence.samplesPerPixel, d = fovMM / Double(n), fine = n * s
        precondition(rho.count == n * n, "ViewLineImager: anatomy must be \(n) x \(n)")
        var out = [Float](repeating: 0, count: 2 * n * n)
        let centres = sequence.stripeCentresMM(fovMM: fovMM)
        let gEx = sequence.excitationHzPerMM, gRo = sequence.readoutHzPerMM(fovMM: fovMM)
        let w = sequence.stripeWidthMM, reach = 0.5 + sequence.sliceEdgeFraction / 2
        let pitch = fovMM / Double(sequence.lineCount)
        let relax = sequence.echoTimeMS * 1e-3 * sequence.r2PerSecondPerMM * PhysicalConstants.millimolarPerUgPerMM3
        let readoutS = Double(n) / sequence.readoutBandwidthHz
        let sampleWeight = 1 / Double(s)
        for x in 0..<n {
            for f in 0..<fine {
                let idx = f * n + x
                let z = -fovMM / 2 + (Double(f) + 0.5) * d / Double(s)
                // rho along z: linear between pixel centres.
                let q = (z + fovMM / 2) / d - 0.5
                let r0 = Swift.max(0, Swift.min(n - 1, Int(q.rounded(.down)))), r1 = Swift.min(n - 1, r0 + 1)
                let t = Swift.min(1, Swift.max(0, q - Double(r0)))
                var m = Double(rho[r0 * n + x]) * (1 - t) + Double(rho[r1 * n + x]) * t
                if m == 0 { continue }
                if let c = fineConcentration { m *= exp(-relax * Double(c[idx])) }
                let b = fieldHz.map { Double($0[idx]) } ?? 0
                if sequence.throughPlaneDephasing, let g = dFieldDyHzPerMM {
                    m *= abs(sinc(abs(Double(g[idx])) * w * readoutS / 2))
                }
                m *= sampleWeight
                let u = z + b / gEx
                // Stripes whose profile can reach u.
                let kLo = Swift.max(0, Int(((u - reach * w + fovMM / 2) / pitch - 0.5).rounded(.up)))
                let kHi = Swift.min(
                    sequence.lineCount - 1, Int(((u + reach * w + fovMM / 2) / pitch - 0.5).rounded(.down)))
                if kLo > kHi { continue }
                let zApp = z + b / gRo
                var p = (zApp + fovMM / 2) / d - 0.5
                p -= Double(n) * (p / Double(n)).rounded(.down)  // wrap into [0, n)
                let i0 = Int(p) % n, frac = p - Double(Int(p)), i1 = (i0 + 1) % n
                for k in kLo...kHi {
                    let e = sequence.profile((u - centres[k]) / w)
                    if e == 0 { continue }
                    let v = m * e, ch = (k & 1) * n * n
                    out[ch + i0 * n + x] += Float(v * (1 - frac))
                    out[ch + i1 * n + x] += Float(v * frac)
                }
            }
        }
        return out
    }
}

/// sin(pi x) / (pi x), 1 at 0.
@inline(__always) func sinc(_ x: Double) -> Double { x == 0 ? 1 : sin(Double.pi * x) / (Double.pi * x) }
