import Foundation
import SPIOImageIO

/// A simulated set too large for one array, written as shard folders `shard-IIII-of-NNNN/` (each a
/// dataset folder of its own, `images.npy`, `concentration.npy`, `manifest.json`) under one folder.
/// Sample i is the same whichever shard holds it, so shards can be made by threads, machines or
/// cluster tasks in any order (`spio simulate --shard i/n`), and a set stopped part-way keeps
/// every finished shard. Readers (`TrainingSet(directory:)`, python/spio_torch) take a plain
/// dataset folder or a complete set of shards.
package enum DatasetShards {
    /// Where a shard's samples sit in the whole set.
    package struct Shard: Codable, Equatable, Sendable {
        package var index: Int
        package var of: Int
        package var firstSample: Int
        package var totalCount: Int
    }

    /// The samples of shard `index` of `of` over `count` samples: an even split, the first shards
    /// one sample shorter where it does not divide.
    package static func shard(_ index: Int, of: Int, count: Int) -> Shard {
        precondition(of >= 1 && (0..<of).contains(index) && count >= of, "shard \(index) of \(of) over \(count)")
        let lo = index * count / of
        return Shard(index: index, of: of, firstSample: lo, totalCount: count)
    }

    package static func samples(of s: Shard) -> Range<Int> {
        s.firstSample..<((s.index + 1) * s.totalCount / s.of)
    }

    package static func folderName(_ s: Shard) -> String { String(format: "shard-%04d-of-%04d", s.index, s.of) }

    /// Whether `folder` already holds shard `s` of the set with `contentHash` (its manifest, written
    /// last, says so).
    package static func isComplete(_ folder: String, _ s: Shard, contentHash: String) -> Bool {
        guard let m = DatasetManifest.read(folder) else { return false }
        return m.shard == s && m.contentHash == contentHash
    }

    /// Simulates and writes the shards `indices` of `of` of the set (`config`, `count`) under
    /// `directory`, skipping those already complete; each goes through a temporary folder renamed
    /// into place, so a stopped run leaves whole shards only. Returns how many it simulated.
    @discardableResult
    package static func write(
        config: SimulationConfig, count: Int, shards of: Int, indices: [Int], to directory: String,
        previews: Int = 2, shouldStop: (() -> Bool)? = nil, progress: ((String, Double) -> Void)? = nil
    ) throws -> Int {
        let hash = SimulatedDataset.contentHash(config: config, count: count)
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var made = 0
        for (k, i) in indices.enumerated() {
            let s = shard(i, of: of, count: count)
            let folder = (directory as NSString).appendingPathComponent(folderName(s))
            if isComplete(folder, s, contentHash: hash) { continue }
            let range = samples(of: s)
            let data = try SimulatedDataset.generate(config: config, samples: range, shouldStop: shouldStop) { done in
                progress?(
                    "simulating shard \(i + 1)/\(of): \(done)/\(range.count)",
                    (Double(k) + Double(done) / Double(range.count)) / Double(indices.count))
            }
            try PartialPath.write(folder) { try data.write(to: $0, previews: i == 0 ? previews : 0, shard: s) }
            made += 1
        }
        return made
    }

    /// The dataset folders that `directory` stands for: itself when it holds `images.npy`, else
    /// its complete set of shard folders in order.
    package static func folders(_ directory: String) throws -> [String] {
        let fm = FileManager.default
        if fm.fileExists(atPath: (directory as NSString).appendingPathComponent("images.npy")) { return [directory] }
        let names = ((try? fm.contentsOfDirectory(atPath: directory)) ?? []).filter {
            $0.hasPrefix("shard-") && !PartialPath.isPartial($0)
        }.sorted()
        guard let first = names.first else {
            throw FileError(directory, "holds neither images.npy nor shard-IIII-of-NNNN folders")
        }
        let of = Int(first.suffix(4)) ?? 0
        let expected = (0..<of).map { String(format: "shard-%04d-of-%04d", $0, of) }
        let present = expected.filter {
            fm.fileExists(atPath: (directory as NSString).appendingPathComponent("\($0)/manifest.json"))
        }
        guard of > 0, present.count == of, names == expected else {
            throw FileError(
                directory,
                "holds \(present.count) of \(of) complete shards; make the missing ones with spio simulate --shard i/\(of)"
            )
        }
        return expected.map { (directory as NSString).appendingPathComponent($0) }
    }
}
