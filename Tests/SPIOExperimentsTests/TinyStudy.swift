import Foundation
import SPIOTestSupport

extension ScratchDirectoryTestCase {
    /// Writes a study small enough for the debug build (tiny DeepSPIO, 24 images of 32 x 32, one
    /// test set) to `dir/<name>.yaml` and returns its path.
    func tinyStudy(_ name: String, seed: Int, epochs: Int = 1, testSamples: Int, testSeed: Int) throws -> String {
        let path = "\(dir)/\(name).yaml"
        try """
        study: \(name)
        simulation: {imageSize: 32, seed: \(seed)}
        data: {samples: 24}
        model: {preset: tiny}
        training: {epochs: \(epochs), batchSize: 8, learningRate: 0.003}
        evaluation: {sets: [{name: test, samples: \(testSamples), seed: \(testSeed)}]}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }
}
