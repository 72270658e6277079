import SPIOCoding
import Foundation

/// The View Line sequence parameters (forward-model.md section 4). Units are in the names.
package struct ViewLineSequence: Codable, Equatable, Sendable {
    package var lineCount = 25
    package var stripeWidthMM = 1.0
    /// Excitation bandwidth; with the stripe width it sets G_ex.
    package var rfBandwidthHz = 2000.0
    /// Readout bandwidth over the FOV; sets G_ro.
    package var readoutBandwidthHz = 50000.0
    /// +1: readout gradient with the polarity of the excitation gradient; -1 flips it.
    package var readoutPolarity = 1.0
    package var echoTimeMS = 8.7
    /// Transverse relaxivity of the particles, per second per mM Fe.
    package var r2PerSecondPerMM = 150.0
    /// Width of the slice profile's raised-cosine edges as a fraction of the stripe width
    /// (0 = sharp rectangle).
    package var sliceEdgeFraction = 0.1
    /// Fine samples per pixel along the readout (z).
    package var samplesPerPixel = 4
    package var throughPlaneDephasing = true

    package init() {}

    /// Excitation gradient in Hz/mm: an offset of b Hz moves the excited stripe by -b / G_ex.
    package var excitationHzPerMM: Double { rfBandwidthHz / stripeWidthMM }

    /// Readout gradient in Hz/mm (signed by `readoutPolarity`).
    package func readoutHzPerMM(fovMM: Double) -> Double { readoutPolarity * readoutBandwidthHz / fovMM }

    /// Stripe centres in mm: evenly spaced across the FOV with pitch fov / lineCount.
    package func stripeCentresMM(fovMM: Double) -> [Double] {
        let pitch = fovMM / Double(lineCount)
        return (0..<lineCount).map { -fovMM / 2 + (Double($0) + 0.5) * pitch }
    }

    /// The unit-width slice profile: 1 in the flat middle, raised-cosine edges, integral 1.
    package func profile(_ u: Double) -> Double {
        let a = abs(u), e = sliceEdgeFraction
        if e <= 0 { return a < 0.5 ? 1 : (a == 0.5 ? 0.5 : 0) }
        if a <= 0.5 - e / 2 { return 1 }
        if a >= 0.5 + e / 2 { return 0 }
        return 0.5 * (1 + cos(Double.pi * (a - (0.5 - e / 2)) / e))
    }

    func validate() throws {
        func check(_ ok: Bool, _ what: String) throws { if !ok { throw SimulationError.invalid("sequence.\(what)") } }
        try check(lineCount >= 1 && lineCount <= 1000, "lineCount must be 1 to 1000")
        try check(stripeWidthMM > 0 && stripeWidthMM <= 100, "stripeWidthMM must lie in (0, 100]")
        try check(rfBandwidthHz > 0 && rfBandwidthHz <= 1e7, "rfBandwidthHz must lie in (0, 1e7]")
        try check(readoutBandwidthHz > 0 && readoutBandwidthHz <= 1e7, "readoutBandwidthHz must lie in (0, 1e7]")
        try check(echoTimeMS <= 1000, "echoTimeMS must be at most 1000")
        try check(readoutPolarity == 1 || readoutPolarity == -1, "readoutPolarity must be 1 or -1")
        try check(echoTimeMS >= 0 && r2PerSecondPerMM >= 0, "echoTimeMS and r2PerSecondPerMM must not be negative")
        try check((0...1).contains(sliceEdgeFraction), "sliceEdgeFraction must be in [0, 1]")
        try check(samplesPerPixel >= 1 && samplesPerPixel <= 64, "samplesPerPixel must be in 1...64")
    }
}

/// A configuration value the simulator cannot use.
package enum SimulationError: Error, CustomStringConvertible, Equatable {
    case invalid(String)
    package var description: String {
        switch self {
        case .invalid(let s): return "invalid simulation setting: \(s)"
        }
    }
}

extension ViewLineSequence {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case lineCount, stripeWidthMM, rfBandwidthHz, readoutBandwidthHz, readoutPolarity, echoTimeMS, r2PerSecondPerMM,
            sliceEdgeFraction, samplesPerPixel, throughPlaneDephasing
    }
    package init(from decoder: Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init()
        try c.update(&lineCount, .lineCount); try c.update(&stripeWidthMM, .stripeWidthMM)
        try c.update(&rfBandwidthHz, .rfBandwidthHz)
        try c.update(&readoutBandwidthHz, .readoutBandwidthHz)
        try c.update(&readoutPolarity, .readoutPolarity); try c.update(&echoTimeMS, .echoTimeMS)
        try c.update(&r2PerSecondPerMM, .r2PerSecondPerMM)
        try c.update(&sliceEdgeFraction, .sliceEdgeFraction)
        try c.update(&samplesPerPixel, .samplesPerPixel)
        try c.update(&throughPlaneDephasing, .throughPlaneDephasing)
    }
}
