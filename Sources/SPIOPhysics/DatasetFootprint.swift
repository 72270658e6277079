import Foundation

/// The bytes a simulated dataset occupies, so that a size the machine cannot hold is refused
/// before any work starts rather than aborting on an allocation hours in (or overflowing first).
package enum DatasetFootprint {
    /// Bytes of `count` samples' arrays: the two-channel images (2 n^2 floats), the concentration
    /// (n^2) and, when kept, the field (n^2). nil when the product overflows `Int`.
    package static func bytes(imageSize n: Int, count: Int, keepField: Bool = false) -> Int? {
        let floats = (keepField ? 4 : 3)
        var total = MemoryLayout<Float>.size
        for factor in [floats, n, n, count] {
            let (p, overflow) = total.multipliedReportingOverflow(by: factor)
            if overflow || factor < 0 { return nil }
            total = p
        }
        return total
    }

    /// The machine's memory, and the share of it one process may plan to hold (the rest is the
    /// system's, the network's and the allocator's).
    package static var memoryBytes: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory) }
    package static var budgetBytes: Int { memoryBytes / 4 * 3 }

    /// How many shards a set of `bytes` in `count` samples is written as when it is too large to
    /// hold in `budget` (nil: it fits, write it whole): shards of at most a quarter of the budget,
    /// so the writer's copies fit beside one, and never more shards than samples.
    package static func automaticShards(bytes: Int, count: Int, budget: Int) -> Int? {
        guard bytes > budget, budget > 0 else { return nil }
        return min(count, Int((4 * Double(bytes) / Double(budget)).rounded(.up)))
    }

    /// Bytes as a person reads them: "82.0 GB", "512 MB".
    package static func text(_ bytes: Int) -> String {
        let b = Double(bytes)
        if b >= 1e12 { return String(format: "%.1f TB", b / 1e12) }
        if b >= 1e9 { return String(format: "%.1f GB", b / 1e9) }
        return String(format: "%.0f MB", b / 1e6)
    }

    /// Why holding `factor` copies of `count` samples in memory at once is too much for this
    /// machine, or nil when it fits.
    package static func problem(imageSize n: Int, count: Int, copies factor: Int, doing what: String) -> String? {
        guard let one = bytes(imageSize: n, count: count),
            case let (need, false) = one.multipliedReportingOverflow(
                by: factor)
        else { return "\(what) \(count) images of \(n) x \(n) would take more bytes than a 64-bit size can count" }
        guard need > budgetBytes else { return nil }
        return "\(what) \(count) images of \(n) x \(n) holds \(text(need)) in memory; this machine has "
            + "\(text(memoryBytes))"
    }
}
