import Foundation
import SPIOPhysics
import SPIOTensor

/// `spio bench simulate`: simulated samples per second (paper scene generator, procedural brain,
/// noise at 11 dB) at each image size, on the engine's threads. Medians of timed repetitions.
package struct SimulateBench {
    package let sizes: [Int]
    package let samples: Int
    package let threads: Int
    package let repeats: Int
    package let log: (String) -> Void

    package init(
        sizes: [Int] = [64, 256], samples: Int = 64, threads: Int = 2, repeats: Int = 3,
        log: @escaping (String) -> Void = { _ in }
    ) {
        self.sizes = sizes; self.samples = samples; self.threads = threads; self.repeats = repeats; self.log = log
    }

    package struct Row {
        package let size: Int; package let fieldMatrix: Int; package let samples: Int; package let secondsMedian: Double
        /// The simulator's set-up (the dipole kernel table, once per process and field grid), cold.
        package let setupSeconds: Double
        package var samplesPerSecond: Double { Double(samples) / secondsMedian }
    }

    package func run() throws -> [Row] {
        Engine.setThreadCount(threads)
        return try sizes.map { size in
            var config = SimulationConfig()
            config.imageSize = size
            config.noise = NoiseConfig(snrDB: 11)
            let count = size >= 256 ? Swift.max(threads, samples / 8) : samples
            let s0 = DispatchTime.now().uptimeNanoseconds
            _ = try ViewLineSimulator(config: config)
            let setup = Double(DispatchTime.now().uptimeNanoseconds - s0) / 1e9
            _ = try SimulatedDataset.generate(config: config, count: threads)  // warm-up: plans, caches
            var times: [Double] = []
            for r in 0..<repeats {
                config.seed = UInt64(100 + r)
                let t0 = DispatchTime.now().uptimeNanoseconds
                _ = try SimulatedDataset.generate(config: config, count: count)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                log("\(size) x \(size): \(count) samples in \(String(format: "%.2f", times.last!)) s")
            }
            return Row(
                size: size, fieldMatrix: Swift.min(size, config.field.maxMatrix), samples: count,
                secondsMedian: medianOf(times), setupSeconds: setup)
        }
    }

    package static func markdown(_ rows: [Row], threads: Int) -> String {
        var s = "## spio bench simulate (\(threads) threads)\n\n"
        s +=
            "Random paper scenes (1-5 metaballs and tori), procedural brain, 11 dB noise; field grid = image matrix "
            + "capped at 128, padded 2x (one 2D FFT per occupied slab). Set-up: the simulator's dipole kernel "
            + "table, made once per process and field grid (0 where an earlier row made the same grid); the "
            + "timed datasets come after it, as a study's sets do after its first.\n\n"
        s += "| image | field grid | set-up s | samples | median s | samples/s |\n|---|---|---|---|---|---|\n"
        for r in rows {
            s +=
                "| \(r.size) x \(r.size) | \(r.fieldMatrix)^3 (slabs of \(2 * r.fieldMatrix)^2) | "
                + "\(String(format: "%.2f", r.setupSeconds)) | \(r.samples) | "
                + "\(String(format: "%.3f", r.secondsMedian)) | \(String(format: "%.1f", r.samplesPerSecond)) |\n"
        }
        return s
    }
}
