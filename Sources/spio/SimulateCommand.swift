import SPIOConfig
import ArgumentParser
import Foundation
import SPIOBench
import SPIOKernels
import SPIONetworks
import SPIOTensor
import SPIOPhysics
import SPIOExperiments

/// `spio simulate`: a dataset from the `simulation` block of a YAML file, as NPY + PNG previews.
struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Simulate View Line images from the `simulation` block of a YAML file.",
        discussion: """
            Writes images.npy (N x 2 x H x W; channel 0 the even stripes, 1 the odd ones), concentration.npy \
            (N x H x W, ug Fe/mm^3 in the image plane), field.npy (N x H x W, Hz, with --save-field), manifest.json \
            (configuration, content hash, counts) and PNG previews of the first samples. Sample i depends only on \
            the configuration and i, so any thread count gives the same arrays. See docs/simulation.md for every key.
            """)
    @Argument(help: "YAML file with a `simulation:` block.") var config: String
    @Option(help: "Number of samples.") var count = 16
    @Option(help: "Output folder.") var out: String
    @Flag(help: "Also write the in-plane field map (field.npy).") var saveField = false
    @Option(help: "PNG previews of the first samples.") var previews = 4
    @Option(help: "Threads.") var threads = 2
    @Option(help: "Override the seed of the configuration.") var seed: UInt64?

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive") }
        guard threads > 0 else { throw ValidationError("--threads must be positive") }
    }

    func run() throws {
        var sim = try ConfigFile.load(SimulationConfig.self, from: config, key: "simulation")
        if let seed { sim.seed = seed }
        do { try sim.validate() } catch { throw ValidationError("\(config): \(error)") }
        Engine.setThreadCount(threads)
        let start = Date()
        var last = Date()
        let dataset = try SimulatedDataset.generate(config: sim, count: count, keepField: saveField) { done in
            if Date().timeIntervalSince(last) > 2 || done == count {
                last = Date()
                let rate = Double(done) / max(1e-9, Date().timeIntervalSince(start))
                progress("simulated \(done)/\(count) (\(String(format: "%.1f", rate)) samples/s)")
            }
        }
        try dataset.write(to: out, previews: previews)
        print(
            "wrote \(count) samples (\(sim.imageSize) x \(sim.imageSize)) to \(out); content hash "
                + "\(SimulatedDataset.contentHash(config: sim, count: count).prefix(16))"
        )
    }
}
