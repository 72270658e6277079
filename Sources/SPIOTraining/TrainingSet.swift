import Foundation
import SPIOImageIO
import SPIOPhysics
import SPIONetworks
import SPIOTensor

/// Images and their true concentration maps, ready for a network: N x C x H x W inputs, each
/// sample divided by its own 99th percentile (networks.md), and N x H x W concentrations in
/// ug/mm^3 (never scaled).
package struct TrainingSet {
    package let inputs: Tensor
    package let concentration: Tensor
    package var count: Int { inputs.shape[0] }
    package var imageSize: Int { inputs.shape[3] }

    /// Takes unscaled images and scales them as `scaling` says.
    package init(images: Tensor, concentration: Tensor, scaling: ModelConfig.InputScaling = .percentile99) {
        precondition(
            images.shape.count == 4 && concentration.shape.count == 3 && images.shape[0] == concentration.shape[0]
                && images.shape[2] == concentration.shape[1] && images.shape[3] == concentration.shape[2],
            "TrainingSet needs N x C x H x W images and N x H x W concentrations, got \(images.shape) and "
                + "\(concentration.shape)"
        )
        inputs = images.copy()
        InputScaling.apply(inputs, scaling)
        self.concentration = concentration
    }

    /// Reads `images.npy` (N x 2 x H x W) and `concentration.npy` (N x H x W) of a dataset folder
    /// written by `spio simulate`, or of every shard of a sharded one (`DatasetShards`), in order.
    package init(directory: String, scaling: ModelConfig.InputScaling = .percentile99) throws {
        var images: [Float] = [], maps: [Float] = [], shape: [Int]?, count = 0
        for folder in try DatasetShards.folders(directory) {
            func read(_ name: String) throws -> NPYArray {
                try NPYArray.read((folder as NSString).appendingPathComponent(name))
            }
            let (img, conc) = (try read("images.npy"), try read("concentration.npy"))
            guard img.shape.count == 4, conc.shape.count == 3, img.shape[0] == conc.shape[0],
                img.shape[2] == conc.shape[1], img.shape[3] == conc.shape[2],
                shape == nil || shape! == Array(img.shape.dropFirst())
            else {
                throw FileError(
                    folder,
                    "images.npy \(img.shape) and concentration.npy \(conc.shape) do not pair as N x C x H x W and "
                        + "N x H x W\(shape.map { " of \($0) like the shards before" } ?? "")"
                )
            }
            shape = Array(img.shape.dropFirst())
            count += img.shape[0]
            // One folder (the usual case) is taken as it is read, without a copy.
            if images.isEmpty {
                images = img.values; maps = conc.values
            } else {
                images += img.values; maps += conc.values
            }
        }
        let s = shape!
        self.init(
            images: Tensor(shape: [count] + s, values: images),
            concentration: Tensor(shape: [count, s[1], s[2]], values: maps), scaling: scaling)
    }

    /// Samples `range` as a new set (already scaled inputs are copied as they are).
    package func subset(_ range: Range<Int>) -> TrainingSet {
        TrainingSet(scaledInputs: gather(inputs, Array(range)), concentration: gather(concentration, Array(range)))
    }

    /// The set without samples whose concentration map is all zero (no SPIO in view): the paper's
    /// normalised loss divides by the target's norm, so such a sample would weigh 1/eps.
    package func droppingEmptyTargets() -> (set: TrainingSet, dropped: Int) {
        let plane = concentration.count / max(count, 1)
        let keep = (0..<count).filter { s in (0..<plane).contains { concentration.data[s * plane + $0] != 0 } }
        return keep.count == count
            ? (self, 0)
            : (
                TrainingSet(scaledInputs: gather(inputs, keep), concentration: gather(concentration, keep)),
                count - keep.count
            )
    }

    /// Inputs already scaled (tests build learnable targets this way).
    init(scaledInputs: Tensor, concentration: Tensor) { inputs = scaledInputs; self.concentration = concentration }
}

/// Copies rows `indices` (along the first dimension) of `source` into a new or given tensor.
@discardableResult
func gather(_ source: Tensor, _ indices: [Int], into out: Tensor? = nil) -> Tensor {
    let row = source.count / max(source.shape[0], 1)
    let result = out ?? Tensor(shape: [0])
    result.reshape(to: [indices.count] + source.shape.dropFirst())
    for (k, i) in indices.enumerated() { (result.data + k * row).update(from: source.data + i * row, count: row) }
    return result
}

/// Per-sample input normalisation: divide all channels by the sample's 99th percentile (nearest
/// rank), or leave the sample as it is when that is 0.
package enum InputScaling {
    /// Scales `images` in place as `mode` says (`none`: leaves them).
    package static func apply(_ images: Tensor, _ mode: ModelConfig.InputScaling) {
        if mode == .percentile99 { apply(images) }
    }

    package static func apply(_ images: Tensor) {
        let n = images.shape[0], volume = images.count / max(n, 1)
        Engine.parallelFor(n) { r in
            var buffer = [Float](repeating: 0, count: volume)
            for s in r {
                let p = images.data + s * volume
                for i in 0..<volume { buffer[i] = p[i] }
                let scale = percentile99(&buffer)
                if scale > 0 && scale.isFinite { for i in 0..<volume { p[i] /= scale } }
            }
        }
    }

    /// The 99th percentile (nearest rank) of `values`; reorders them.
    package static func percentile99(_ values: inout [Float]) -> Float {
        guard !values.isEmpty else { return 0 }
        values.sort()
        let rank = Int((0.99 * Double(values.count)).rounded(.up)) - 1
        return values[max(0, min(values.count - 1, rank))]
    }
}
