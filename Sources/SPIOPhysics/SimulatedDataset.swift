import Foundation
import SPIOTensor
import SPIOImageIO
import SPIOPlots
import SPIODigest
import SPIOCoding

/// A simulated dataset held in memory: images N x 2 x n x n, concentration N x n x n and,
/// when asked for, field N x n x n (Hz). Sample i depends only on (configuration, i), so the
/// arrays are the same on any thread count.
package struct SimulatedDataset {
    package let config: SimulationConfig
    package let count: Int
    /// The index of the first sample held (a shard of a larger set starts past 0).
    package var firstSample = 0
    package var images: [Float]
    package var concentration: [Float]
    package var fieldHz: [Float]?
    /// The anatomy of the first samples (those previewed), n x n each.
    package var protonDensity: [[Float]] = []
    package static let keptAnatomies = 8

    package var imageSize: Int { config.imageSize }

    /// Content hash of (generator version, configuration, count): the dataset's cache key. A
    /// volume anatomy (`file`) enters by its contents' digest, not its path, so an edited or
    /// replaced volume is simulated again (a path that is not here keys by its name).
    package static func contentHash(config: SimulationConfig, count: Int) -> String {
        var keyed = config
        if keyed.anatomy.kind == "file", let path = keyed.anatomy.path,
            let digest = try? FileAnatomy.contentDigest(path)
        {
            keyed.anatomy.path = "sha256:" + digest
        }
        let json = canonicalJSON(keyed)
        let version = config.noise.isNoisy ? "\(KeyVersion.generator), \(KeyVersion.noise)" : KeyVersion.generator
        return SHA256.hex("\(version)\n\(json)\ncount=\(count)")
    }

    /// Simulates `count` samples on the engine's threads. `progress(done)` is called from the
    /// simulating threads, serialised.
    package static func generate(
        config: SimulationConfig, count: Int, keepField: Bool = false, shouldStop: (() -> Bool)? = nil,
        progress: ((Int) -> Void)? = nil
    ) throws -> SimulatedDataset {
        try generate(
            config: config, samples: 0..<count, keepField: keepField, shouldStop: shouldStop, progress: progress)
    }

    /// Simulates samples `samples` (a shard: sample i is the same whichever range holds it).
    /// `shouldStop` is asked before each sample: once it says yes, no further sample starts and
    /// `StopRequested` is thrown when the running ones are done (well within a second).
    package static func generate(
        config: SimulationConfig, samples: Range<Int>, keepField: Bool = false, shouldStop: (() -> Bool)? = nil,
        progress: ((Int) -> Void)? = nil
    ) throws -> SimulatedDataset {
        let count = samples.count
        precondition(samples.lowerBound >= 0)
        let simulator = try ViewLineSimulator(config: config)
        let n = config.imageSize, plane = n * n
        var images = [Float](repeating: 0, count: count * 2 * plane)
        var concentration = [Float](repeating: 0, count: count * plane)
        var field = keepField ? [Float](repeating: 0, count: count * plane) : []
        let lock = NSLock()
        var failure: Error?
        var done = 0
        var anatomies = [[Float]](repeating: [], count: Swift.min(count, keptAnatomies))
        images.withUnsafeMutableBufferPointer { img in
            concentration.withUnsafeMutableBufferPointer { con in
                field.withUnsafeMutableBufferPointer { fld in
                    let (img, con, fld) = (img, con, fld)
                    // Samples differ in cost (one to five objects), so threads take them one by one.
                    Engine.parallelEach(count) { i in
                        if lock.withLock({ failure != nil }) { return }
                        if shouldStop?() == true {
                            lock.withLock {
                                if failure == nil {
                                    failure = StopRequested("simulation after \(done) of \(count) samples")
                                }
                            }
                            return
                        }
                        do {
                            let s = try simulator.sample(samples.lowerBound + i)
                            if config.input == .field {
                                let kHz = s.fieldHz.map { $0 / 1000 }
                                (img.baseAddress! + i * 2 * plane).update(from: kHz, count: plane)
                                (img.baseAddress! + (i * 2 + 1) * plane).update(from: kHz, count: plane)
                            } else {
                                (img.baseAddress! + i * 2 * plane).update(from: s.image, count: 2 * plane)
                            }
                            (con.baseAddress! + i * plane).update(from: s.concentration, count: plane)
                            if keepField { (fld.baseAddress! + i * plane).update(from: s.fieldHz, count: plane) }
                            lock.withLock {
                                done += 1; if i < anatomies.count { anatomies[i] = s.protonDensity };
                                progress?(done)
                            }
                        } catch {
                            lock.withLock { if failure == nil { failure = error } }
                        }
                    }
                }
            }
        }
        if let failure { throw failure }
        return SimulatedDataset(
            config: config, count: count, firstSample: samples.lowerBound, images: images,
            concentration: concentration, fieldHz: keepField ? field : nil, protonDensity: anatomies)
    }

    /// Writes images.npy, concentration.npy, field.npy (when kept), manifest.json and PNG previews
    /// of the first `previews` samples into `directory`. The manifest is written last, so a
    /// folder with a manifest is complete.
    package func write(to directory: String, previews: Int = 4, shard: DatasetShards.Shard? = nil) throws {
        let n = imageSize
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let manifestPath = (directory as NSString).appendingPathComponent("manifest.json")
        try? fm.removeItem(atPath: manifestPath)
        func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }
        try NPYArray(shape: [count, 2, n, n], values: images).write(to: path("images.npy"))
        try NPYArray(shape: [count, n, n], values: concentration).write(to: path("concentration.npy"))
        if let fieldHz { try NPYArray(shape: [count, n, n], values: fieldHz).write(to: path("field.npy")) }
        var previewFiles: [String] = []
        for i in 0..<Swift.min(previews, count) {
            let name = String(format: "preview-%03d.png", i)
            try preview(i).writePNG(to: path(name))
            previewFiles.append(name)
        }
        var arrays: [String: [Int]] = ["images": [count, 2, n, n], "concentration": [count, n, n]]
        if fieldHz != nil { arrays["field"] = [count, n, n] }
        let manifest = DatasetManifest(
            generator: KeyVersion.generator,
            contentHash: SimulatedDataset.contentHash(config: config, count: shard?.totalCount ?? count),
            count: count, imageSize: n, arrays: arrays,
            units: [
                "images": config.input == .field
                    ? "kHz (the true field map, both channels)" : "a.u. (proton density 1 = full stripe)",
                "concentration": "ug Fe / mm^3", "field": "Hz"
            ], previews: previewFiles, config: config, shard: shard)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileBytes.writeAtomically(Array(try encoder.encode(manifest)), to: manifestPath)
    }

    /// Stripes (even red, odd green, as the paper's Fig. 2d), the anatomy, both channels, the
    /// concentration and the field (when kept), side by side with colour bars and units.
    package func preview(_ i: Int) -> ImageGrid {
        let n = imageSize, plane = n * n
        let ch0 = Array(images[(i * 2 * plane)..<(i * 2 * plane + plane)]),
            ch1 = Array(images[(i * 2 * plane + plane)..<((i + 1) * 2 * plane)])
        let top = Swift.max(ch0.max() ?? 1, ch1.max() ?? 1, 1e-6)
        var stripes = ImageGrid.Panel(ch0, size: n, title: "stripes (even red, odd green)", range: (0, top))
        stripes.redGreen = (ch0, ch1)
        var panels = [stripes]
        if i < protonDensity.count {
            panels.append(ImageGrid.Panel(protonDensity[i], size: n, title: "anatomy", range: (0, 1), unit: "a.u."))
        }
        panels += [
            ImageGrid.Panel(ch0, size: n, title: "channel 0 (even)", range: (0, top), unit: "a.u."),
            ImageGrid.Panel(ch1, size: n, title: "channel 1 (odd)", range: (0, top), unit: "a.u."),
            ImageGrid.Panel(
                Array(concentration[(i * plane)..<((i + 1) * plane)]), size: n, title: "concentration",
                colourMap: .viridis, unit: "µg/mm^3")
        ]
        if let fieldHz {
            let f = Array(fieldHz[(i * plane)..<((i + 1) * plane)])
            let m = Swift.max(f.map(abs).max() ?? 1, 1)
            panels.append(
                ImageGrid.Panel(f, size: n, title: "field offset", colourMap: .diverging, range: (-m, m), unit: "Hz"))
        }
        return ImageGrid(row: panels)
    }
}

/// manifest.json of a simulated dataset.
package struct DatasetManifest: Codable {
    package var generator: String
    package var contentHash: String
    package var count: Int
    package var imageSize: Int
    package var arrays: [String: [Int]]
    package var units: [String: String]
    package var previews: [String]
    package var config: SimulationConfig
    /// Which part of a sharded set this folder holds (absent for a whole set); `contentHash` is
    /// then the whole set's.
    package var shard: DatasetShards.Shard? = nil

    /// The manifest of the dataset folder (or shard folder) `folder`, or nil where it has none that
    /// reads as one.
    package static func read(_ folder: String) -> DatasetManifest? {
        FileManager.default.contents(atPath: (folder as NSString).appendingPathComponent("manifest.json")).flatMap {
            try? JSONDecoder().decode(DatasetManifest.self, from: $0)
        }
    }
}
