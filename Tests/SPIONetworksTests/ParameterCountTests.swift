import Foundation
import XCTest
@testable import SPIONetworks

/// Parameter counts of every preset and ablation equal PyTorch's and Keras's for the same
/// configuration (bench/peers/parameter_counts.json, written by bench/peers/parameter_counts.py
/// from the peer models; regenerate it when the architectures change).
final class ParameterCountTests: XCTestCase {
    static let variants: [String: (inout ModelConfig) -> Void] = [
        "deepspio": { _ in },
        "deepspio-maxpool": { $0.downsampling = .maxpool },
        "deepspio-plain-bottleneck": { $0.bottleneck = .plain },
        "deepspio-no-bottleneck": { $0.bottleneck = .none },
        "deepspio-identity-shortcut": { $0.shortcut = .identity },
        "deepspio-shared-decoder": { $0.head = .shared },
        "deepspio-image-decoder": { $0.head = .image },
        "deepspio-skips": { $0.skips = true },
        "unet": { $0.architecture = .unet }
    ]

    func testCountsEqualThePeers() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("bench/peers/parameter_counts.json")
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let torch = root["torch"] as! [String: Int], keras = root["keras"] as! [String: Int]
        XCTAssertEqual(torch.count, 27)
        for (key, expected) in torch.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "/").map(String.init)
            var config = ModelConfig.preset(parts[1])!
            Self.variants[parts[0]]!(&config)
            // Counting needs no forward pass, but building `paper` allocates its weights (~80 MB): fine.
            let count = EncoderDecoderNet(config).parameterCount
            XCTAssertEqual(count, expected, "\(key): ours \(count), PyTorch \(expected)")
            if let k = keras[key] { XCTAssertEqual(count, k, "\(key): ours \(count), Keras \(k)") }
        }
    }
}
