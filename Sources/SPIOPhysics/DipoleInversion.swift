import Foundation

/// The field measured from a View Line image: each stripe's displacement against the SPIO-free
/// pattern, column by column (forward-model.md section 4: in a field offset b, the stripe excited
/// at z0 - b / G_ex appears shifted by b (1/G_ro - 1/G_ex)).
///
/// Per column and stripe, the intensity centroid of the stripe's channel within half a channel
/// pitch of the stripe's centre is compared with the same centroid of the pattern a uniform
/// proton density gives without any field (so the pixel grid and slice profile cancel). A stripe
/// whose signal is below `minimumSignalFraction` of that pattern's (a void, or air), or that
/// moved more than `largestShiftMM` (it wrapped into a neighbour's window, or left it), gives no
/// sample: those are the blind zones where the field passes a few kHz.
package struct StripeFieldEstimator: Sendable {
    /// One field sample: at the (fractional) pixel row of the tissue the stripe excited, in a column.
    package struct Sample: Equatable, Sendable {
        package var row: Double
        package var column: Int
        package var fieldHz: Double
    }

    package let n: Int
    package let fovMM: Double
    package var minimumSignalFraction = 0.15
    package var largestShiftMM = 1.5
    /// A sample is kept only where it agrees within this many Hz with the median of the same
    /// stripe's samples in the two columns on either side (at least two of them): the far field
    /// varies smoothly across columns, a stripe that slid into its neighbour's place (a field past
    /// about 4 kHz reads 8 kHz too low or high) or a pile-up does not. 0: no check.
    package var consistencyHz = 300.0
    /// Hz per mm of apparent shift: 1 / (1/G_ro - 1/G_ex).
    package let hzPerMMShift: Double
    let excitationHzPerMM: Double
    /// Half the extent of one stripe in the image: half its profile's reach, plus the pixel the
    /// splat shares it with. A centroid window of this radius (plus a pixel) holds the whole stripe
    /// and none of the channel's next one.
    let windowMM: Double
    /// Per stripe: its channel, and per column the reference centroid (mm) and signal.
    let stripes: [(channel: Int, centroidMM: [Double], signal: [Double])]

    package init(simulation: SimulationConfig) {
        let seq = simulation.sequence
        n = simulation.imageSize; fovMM = simulation.fovMM
        let d = fovMM / Double(n)
        excitationHzPerMM = seq.excitationHzPerMM
        hzPerMMShift = 1 / (1 / seq.readoutHzPerMM(fovMM: fovMM) - 1 / seq.excitationHzPerMM)
        windowMM = (0.5 + seq.sliceEdgeFraction / 2) * seq.stripeWidthMM + 2 * d
        let imager = ViewLineImager(sequence: seq, pixels: n, fovMM: fovMM)
        let reference = imager.image(
            protonDensity: [Float](repeating: 1, count: n * n), fineConcentration: nil, fieldHz: nil,
            dFieldDyHzPerMM: nil)
        let (n, fov, window) = (n, fovMM, windowMM)
        stripes = seq.stripeCentresMM(fovMM: fovMM).enumerated().map { k, z0 in
            var centroids: [Double] = [], signals: [Double] = []
            for x in 0..<n {
                let (c, s) = Self.centroid(
                    reference, channel: k % 2, around: z0, radiusMM: window, column: x, n: n, fovMM: fov)
                centroids.append(c); signals.append(s)
            }
            return (k % 2, centroids, signals)
        }
    }

    /// The intensity centroid (mm) and summed signal of a channel's pixels in one column within
    /// `radiusMM` of `around`, re-centred on the centroid until it settles (a few passes).
    static func centroid(
        _ image: [Float], channel: Int, around start: Double, radiusMM: Double, column: Int, n: Int, fovMM: Double
    ) -> (Double, Double) {
        let d = fovMM / Double(n)
        var centre = start, sum = 0.0
        for _ in 0..<4 {
            let first = max(0, Int(((centre - radiusMM + fovMM / 2) / d - 0.5).rounded(.up)))
            let last = min(n - 1, Int(((centre + radiusMM + fovMM / 2) / d - 0.5).rounded(.down)))
            guard first <= last else { return (.nan, 0) }
            var moment = 0.0
            sum = 0
            for r in first...last {
                let v = Double(max(0, image[(channel * n + r) * n + column]))
                sum += v; moment += v * (-fovMM / 2 + (Double(r) + 0.5) * d)
            }
            guard sum > 0 else { return (.nan, 0) }
            let next = moment / sum
            if abs(next - centre) < 1e-6 { break }
            centre = next
        }
        return (centre, sum)
    }

    /// The field samples of one 2 x n x n View Line image.
    package func samples(_ image: [Float]) -> [Sample] {
        precondition(image.count == 2 * n * n, "StripeFieldEstimator: the image must be 2 x \(n) x \(n)")
        let d = fovMM / Double(n)
        var out: [Sample] = []
        for s in stripes {
            var found = [Sample?](repeating: nil, count: n)
            for x in 0..<n where s.signal[x] > 0 {
                let (c, signal) = Self.centroid(
                    image, channel: s.channel, around: s.centroidMM[x], radiusMM: windowMM, column: x, n: n,
                    fovMM: fovMM)
                let shift = c - s.centroidMM[x]
                guard signal >= minimumSignalFraction * s.signal[x], shift.isFinite, abs(shift) <= largestShiftMM
                else { continue }
                let b = shift * hzPerMMShift
                // The tissue excited: where z + b / G_ex is the reference stripe. A stripe that reaches
                // past the view, as excited or as imaged, is cut (or folded by the readout).
                let tissueMM = s.centroidMM[x] - b / excitationHzPerMM
                guard abs(c) + windowMM < fovMM / 2, abs(tissueMM) + windowMM < fovMM / 2 else { continue }
                found[x] = Sample(row: (tissueMM + fovMM / 2) / d - 0.5, column: x, fieldHz: b)
            }
            for x in 0..<n {
                guard let sample = found[x] else { continue }
                if consistencyHz > 0 {
                    let near = [-2, -1, 1, 2].compactMap { x + $0 >= 0 && x + $0 < n ? found[x + $0]?.fieldHz : nil }
                    guard near.count >= 2, abs(sample.fieldHz - near.sorted()[near.count / 2]) <= consistencyHz else {
                        continue
                    }
                }
                out.append(sample)
            }
        }
        return out
    }

    /// A whole n x n field map from samples and where it is measured (1) or not (0): per column,
    /// linear between neighbouring samples at most `largestGapRows` apart (two stripes of the two
    /// channels are 2 mm apart; a wider gap is a void or a wrap), and unmeasured elsewhere.
    package func map(_ samples: [Sample], largestGapRows: Double? = nil) -> (fieldHz: [Float], measured: [Float]) {
        let gap = largestGapRows ?? 1.3 * (fovMM / Double(stripes.count)) / (fovMM / Double(n))
        var field = [Float](repeating: 0, count: n * n), measured = field
        var byColumn = [[Sample]](repeating: [], count: n)
        for s in samples { byColumn[s.column].append(s) }
        for (x, column) in byColumn.enumerated() where column.count >= 2 {
            let sorted = column.sorted { $0.row < $1.row }
            for (a, b) in zip(sorted, sorted.dropFirst()) where b.row - a.row <= gap && b.row > a.row {
                let first = max(0, Int(a.row.rounded(.up))), last = min(n - 1, Int(b.row.rounded(.down)))
                guard first <= last else { continue }
                for r in first...last {
                    let t = (Double(r) - a.row) / (b.row - a.row)
                    field[r * n + x] = Float(a.fieldHz + t * (b.fieldHz - a.fieldHz))
                    measured[r * n + x] = 1
                }
            }
        }
        return (field, measured)
    }
}

/// Classical dipole inversion of an in-plane field to an in-plane concentration map through
/// `SlabDipoleKernel`: the comparison learned QSM papers (QSMnet, xQSM) make against physics
/// alone.
///
/// - Thresholded k-space division (TKD): C = F^-1[F(b) / K] where |K| exceeds a fraction of its
///   largest value, else 0; then negative concentrations set to 0.
/// - A non-negative, sparsity-regularised least-squares solve: minimise
///   1/2 ||W (K C - b)||^2 + lambda sum(C) over C >= 0, W the measured pixels, by FISTA (Beck and
///   Teboulle 2009) with step 1 / max|K|^2; the proximal step of lambda sum(C) + [C >= 0] is
///   max(0, C - lambda step).
package enum DipoleInversion {
    /// The TKD estimate of an n x n field map (Hz).
    package static func thresholdedDivision(
        fieldHz: [Float], kernel: SlabDipoleKernel, threshold: Double, scratch: SlabDipoleKernel.Scratch
    ) -> [Float] {
        kernel.apply(fieldHz, .thresholdedDivision(threshold: threshold), scratch: scratch).map { max(0, $0) }
    }

    /// The non-negative L1-regularised estimate from a field map measured where `weight` is 1 (a
    /// full map: all ones).
    package static func nonNegativeSparse(
        fieldHz: [Float], weight: [Float], kernel: SlabDipoleKernel, lambda: Double, iterations: Int,
        scratch: SlabDipoleKernel.Scratch
    ) -> [Float] {
        let count = fieldHz.count
        let step = 1 / Double(kernel.largestGainSquared)
        let shrink = Float(lambda * step), stepF = Float(step)
        var x = [Float](repeating: 0, count: count), y = x, next = x
        var t = 1.0
        for _ in 0..<iterations {
            var residual = kernel.apply(y, .field, scratch: scratch)
            for i in 0..<count { residual[i] = weight[i] * (residual[i] - fieldHz[i]) }
            let gradient = kernel.apply(residual, .adjoint, scratch: scratch)
            for i in 0..<count { next[i] = max(0, y[i] - stepF * gradient[i] - shrink) }
            let tNext = (1 + (1 + 4 * t * t).squareRoot()) / 2
            let momentum = Float((t - 1) / tNext)
            for i in 0..<count { y[i] = next[i] + momentum * (next[i] - x[i]) }
            swap(&x, &next); t = tNext
        }
        return x
    }
}
