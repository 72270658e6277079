import SPIOConfig
import ArgumentParser
import Foundation
import SPIOImageIO
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

            A set too large for memory is written as shard folders OUT/shard-IIII-of-NNNN/, each a dataset folder of \
            its own: --shards N writes all of them, one after another, skipping those already complete (run it again \
            after a stop); --shard I/N writes only shard I (0-based), so threads, machines or cluster tasks can make \
            the shards in parallel (docs/gpu.md). Training reads a complete set of shards like one folder.
            Example: spio simulate configs/simulate-brain.yaml --count 4000000 --shard 7/200 --out data/paper
            """)
    @Argument(help: "YAML file with a `simulation:` block.") var config: String
    @Option(help: "Number of samples.") var count = 16
    @Option(help: "Output folder.") var out: String
    @Flag(help: "Also write the in-plane field map (field.npy).") var saveField = false
    @Option(help: "PNG previews of the first samples.") var previews = 4
    @Option(help: "Threads.") var threads = 2
    @Option(help: "Override the seed of the configuration.") var seed: UInt64?
    @Option(help: "Write the set as N shard folders (resumable).") var shards: Int?
    @Option(help: "Write only shard I of N, as I/N (0-based).") var shard: String?

    /// (index, of) of --shard.
    private var oneShard: (Int, Int)? {
        guard let shard else { return nil }
        let parts = shard.split(separator: "/").map { Int($0) }
        guard parts.count == 2, let i = parts[0], let n = parts[1] else { return nil }
        return (i, n)
    }

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive") }
        guard threads > 0 else { throw ValidationError("--threads must be positive") }
        if shard != nil && shards != nil { throw ValidationError("give --shard I/N or --shards N, not both") }
        if shard != nil {
            guard let (i, n) = oneShard, n >= 1, (0..<n).contains(i) else {
                throw ValidationError("--shard takes I/N with 0 <= I < N (for example 3/16), got '\(shard!)'")
            }
            guard n <= count else { throw ValidationError("--shard \(shard!): more shards than --count \(count)") }
        }
        if let shards, !(1...count).contains(shards) {
            throw ValidationError("--shards must be 1 to --count (\(count)), got \(shards)")
        }
    }

    func run() throws {
        var sim = try ConfigFile.load(SimulationConfig.self, from: config, key: "simulation")
        if let seed { sim.seed = seed }
        do { try sim.validate() } catch { throw ValidationError("\(config): \(error)") }
        Engine.setThreadCount(threads)
        let shards = try plannedShards(imageSize: sim.imageSize)
        if let (n, indices) = oneShard.map({ ($0.1, [$0.0]) }) ?? shards.map({ ($0, Array(0..<$0)) }) {
            let start = Date()
            var last = Date.distantPast
            let made = try DatasetShards.write(
                config: sim, count: count, shards: n, indices: indices, to: out, previews: previews,
                progress: { text, _ in
                    if Date().timeIntervalSince(last) > 2 { last = Date(); progress(text) }
                })
            print(
                "wrote \(made) of shards \(indices.map(String.init).joined(separator: ",")) of \(n) (\(count) samples, "
                    + "\(sim.imageSize) x \(sim.imageSize), \(indices.count - made) already complete) to \(out) in "
                    + String(format: "%.1f s", Date().timeIntervalSince(start)) + "; content hash "
                    + "\(SimulatedDataset.contentHash(config: sim, count: count).prefix(16))")
            return
        }
        try checkOutputFolder()
        let start = Date()
        var last = Date()
        let dataset = try SimulatedDataset.generate(
            config: sim, count: count, keepField: saveField,
            progress: { done in
                if Date().timeIntervalSince(last) > 2 || done == count {
                    last = Date()
                    let rate = Double(done) / max(1e-9, Date().timeIntervalSince(start))
                    progress("simulated \(done)/\(count) (\(String(format: "%.1f", rate)) samples/s)")
                }
            })
        try dataset.write(to: out, previews: previews)
        print(
            "wrote \(count) samples (\(sim.imageSize) x \(sim.imageSize)) to \(out); content hash "
                + "\(SimulatedDataset.contentHash(config: sim, count: count).prefix(16))"
        )
    }

    /// Before any work: what the set takes on disk and in memory. A set too large to hold is
    /// written as shards (as with --shards) rather than allocated; too little disk, shards still too
    /// large, or a count whose size overflows are refused.
    func plannedShards(imageSize n: Int) throws -> Int? {
        let budget = DatasetFootprint.budgetBytes
        guard let total = DatasetFootprint.bytes(imageSize: n, count: count, keepField: saveField) else {
            throw FileError(out, "--count \(count) at \(n) x \(n) is more bytes than a 64-bit size can count")
        }
        let parts = oneShard?.1 ?? shards ?? 1
        var folder = (out as NSString).standardizingPath
        while !FileManager.default.fileExists(atPath: folder), folder != "/", !folder.isEmpty {
            folder = (folder as NSString).deletingLastPathComponent
        }
        let written = oneShard == nil ? total : total / parts
        if let free = (try? FileManager.default.attributesOfFileSystem(forPath: folder.isEmpty ? "." : folder))?[
            .systemFreeSize] as? Int, written > free
        {
            throw FileError(
                out,
                "--count \(count) at \(n) x \(n) writes \(DatasetFootprint.text(written)); the file system has "
                    + "\(DatasetFootprint.text(free)) free")
        }
        let fewest = Int((Double(total) / Double(budget)).rounded(.up))
        if oneShard != nil || shards != nil {
            guard total / parts <= budget else {
                throw FileError(
                    out,
                    "\(parts) shards of \(count) images at \(n) x \(n) hold \(DatasetFootprint.text(total / parts)) "
                        + "each in memory; this machine has \(DatasetFootprint.text(DatasetFootprint.memoryBytes)): use "
                        + "at least \(fewest) shards")
            }
            return shards
        }
        guard let planned = DatasetFootprint.automaticShards(bytes: total, count: count, budget: budget) else {
            return nil
        }
        progress(
            "\(count) images hold \(DatasetFootprint.text(total)) and this machine has "
                + "\(DatasetFootprint.text(DatasetFootprint.memoryBytes)): writing them as \(planned) shards (as "
                + "--shards \(planned))")
        return planned
    }

    /// Before any work: `--out` may be new, empty, or a dataset folder `spio simulate` wrote (its
    /// manifest.json a dataset manifest); a folder of the user's files with the names a dataset
    /// writes is refused, so nothing of the user's is replaced.
    func checkOutputFolder() throws {
        let fm = FileManager.default
        func path(_ name: String) -> String { (out as NSString).appendingPathComponent(name) }
        guard let names = try? fm.contentsOfDirectory(atPath: out), !names.isEmpty else { return }
        if DatasetManifest.read(out) != nil { return }
        let ours = ["images.npy", "concentration.npy", "field.npy", "manifest.json"]
        let clashes = names.filter { ours.contains($0) || ($0.hasPrefix("preview-") && $0.hasSuffix(".png")) }.sorted()
        guard clashes.isEmpty else {
            throw FileError(
                out,
                "holds \(clashes.prefix(3).joined(separator: ", "))\(clashes.count > 3 ? ", ..." : ""), and is not a "
                    + "dataset folder spio simulate wrote (no dataset manifest.json); choose another --out (nothing was "
                    + "written)")
        }
    }
}
