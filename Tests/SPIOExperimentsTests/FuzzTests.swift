import Foundation
import XCTest
@testable import SPIOConfig
@testable import SPIOExperiments
@testable import SPIOImageIO
@testable import SPIONetworks
@testable import SPIOTensor

/// Seeded, generated bad inputs of every kind the tool reads: study files, NPY, NIfTI, PNG and
/// safetensors. Each case must end in an error that names its file, or in a valid result; a crash
/// or a trap stops the test process, and a case past its time limit fails. Every input file is
/// checked unchanged afterwards. `SPIO_FUZZ_CASES` raises the count (`make fuzz`).
final class FuzzTests: ScratchDirectoryTestCase {
    var cases: Int { Int(ProcessInfo.processInfo.environment["SPIO_FUZZ_CASES"] ?? "") ?? 150 }

    /// Values that broke earlier versions, or that a careless decoder takes for a default.
    static let hostileScalars = [".nan", ".inf", "-.inf", "1e308", "1e-320", "-1", "0", "9223372036854775807", "-9223372036854775808",
                                 "''", "~", "[]", "{}", "x", "\"..\"", "../../x", "1.5", "[1, .nan]", "*undefined", "&a [*a]",
                                 "\"\\xff\"", "0x7fffffff", "1e400", "-0", "true"]

    /// A study file with one mutation: a value replaced, a line duplicated, a line dropped, the
    /// text cut short, a byte flipped, or a bomb (deep nesting, aliases) appended.
    func mutate(_ text: String, _ rng: inout SeededGenerator) -> String {
        var lines = text.components(separatedBy: "\n")
        let i = rng.int(in: 0...(lines.count - 1))
        switch rng.int(in: 0...6) {
        case 0, 1:
            // Replace one value after a colon (inside flow mappings too).
            let line = lines[i]
            let colons = line.indices.filter { line[$0] == ":" }
            guard let c = colons.randomElement(using: &rng) else { return text }
            let after = line[line.index(after: c)...]
            let end = after.firstIndex(where: { $0 == "," || $0 == "}" }) ?? after.endIndex
            lines[i] = String(line[...c]) + " " + Self.hostileScalars[rng.int(in: 0...(Self.hostileScalars.count - 1))] + String(line[end...])
        case 2: lines.insert(lines[i], at: i)
        case 3: lines.remove(at: i)
        case 4:
            var bytes = Array(text.utf8)
            if !bytes.isEmpty { bytes[rng.int(in: 0...(bytes.count - 1))] ^= UInt8(1 << rng.int(in: 0...7)) }
            return String(decoding: bytes, as: UTF8.self)
        case 5: return String(text.prefix(rng.int(in: 0...text.count)))
        default:
            let depth = rng.int(in: 50...5000)
            lines.append("report: {x: " + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}")
        }
        return lines.joined(separator: "\n")
    }

    func testGeneratedStudyFilesNeverCrashHangOrWriteOutside() throws {
        let quickstart = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../experiments/quickstart.yaml")
        let base = try String(contentsOf: quickstart.standardized, encoding: .utf8)
        var rng = SeededGenerator(seed: 20261129)
        var refused = 0, accepted = 0
        for n in 0..<cases {
            var text = base
            for _ in 0..<rng.int(in: 1...3) { text = mutate(text, &rng) }
            let path = dir + "/case-\(n).yaml"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let start = Date()
            do {
                let plan = try StudyPlan(path: path)
                accepted += 1
                XCTAssertNil(StudyPlan.unsafeStudyName(plan.study), "case \(n): accepted unsafe name \(plan.study)")
                XCTAssertLessThanOrEqual(plan.runs.count, StudyPlan.maximumRuns)
                for r in plan.runs {
                    let c = r.config
                    XCTAssertTrue(c.training.learningRate.isFinite && c.simulation.fovMM.isFinite && !c.simulation.noise.snrDB.isNaN,
                                  "case \(n): accepted a non-finite number:\n\(text)")
                    XCTAssertNil(c.training.problem, "case \(n)")
                    XCTAssertNoThrow(try c.simulation.validate(), "case \(n)")
                    XCTAssertFalse(c.canonicalJSON.isEmpty)
                }
            } catch {
                refused += 1
                XCTAssertTrue("\(error)".contains(path) || "\(error)".hasPrefix("--set"), "case \(n): the error does not name the file: \(error)")
            }
            XCTAssertLessThan(Date().timeIntervalSince(start), 5, "case \(n) took too long:\n\(text.prefix(500))")
        }
        print("fuzzed \(cases) study files: \(refused) refused with a message, \(accepted) accepted and valid")
        XCTAssertGreaterThan(refused, 0)
    }

    /// A valid file of each format, then mutations of its header and body.
    func testGeneratedImageAndCheckpointFilesNeverCrash() throws {
        var rng = SeededGenerator(seed: 7)
        let npy = NPYArray.encode(shape: [2, 16, 16], values: [Float](repeating: 1, count: 512).withUnsafeBufferPointer { $0 })
        var png = RGBImage(width: 16, height: 16)
        for i in png.pixels.indices { png.pixels[i] = UInt8(i % 251) }
        try png.writePNG(to: dir + "/valid.png")
        let pngBytes = try Array(Data(contentsOf: URL(fileURLWithPath: dir + "/valid.png")))
        let net = EncoderDecoderNet(.preset("tiny")!, seed: 1)
        try Checkpoint.save(net, config: net.config.json, to: URL(fileURLWithPath: dir + "/valid.safetensors"))
        let ckpt = try Array(Data(contentsOf: URL(fileURLWithPath: dir + "/valid.safetensors")))
        let nifti = Self.nifti(nx: 16, ny: 16, nz: 2)

        func mutated(_ bytes: [UInt8], headerEnd: Int) -> [UInt8] {
            var b = bytes
            switch rng.int(in: 0...4) {
            case 0: b = Array(b.prefix(rng.int(in: 0...b.count)))
            case 1: for _ in 0..<rng.int(in: 1...8) { b[rng.int(in: 0...(min(headerEnd, b.count) - 1))] = UInt8(rng.int(in: 0...255)) }
            case 2:  // a digit run in the header made huge
                let text = String(decoding: b.prefix(headerEnd), as: UTF8.self)
                if let r = text.range(of: "[0-9]+", options: .regularExpression) {
                    let big = ["99999999999", "9223372036854775807", "4294967295", "100000000000000000000"][rng.int(in: 0...3)]
                    b = Array((text.replacingCharacters(in: r, with: big)).utf8) + b.dropFirst(headerEnd)
                }
            case 3: for _ in 0..<rng.int(in: 1...4) { let k = rng.int(in: 0...(b.count - 4)); b.replaceSubrange(k..<(k + 4), with: [0xFF, 0xFF, 0x7F, 0x7F]) }
            default: b += [UInt8](repeating: 0, count: rng.int(in: 1...64))
            }
            return b
        }
        var outcomes = [String: Int]()
        for n in 0..<cases {
            for (kind, bytes, headerEnd) in [("npy", npy, 128), ("nii", nifti, 352), ("png", pngBytes, 64), ("safetensors", ckpt, 2048)] {
                let path = dir + "/case-\(n).\(kind)"
                let input = mutated(bytes, headerEnd: headerEnd)
                try Data(input).write(to: URL(fileURLWithPath: path))
                do {
                    switch kind {
                    case "npy": let a = try NPYArray.read(path); XCTAssertEqual(a.shape.reduce(1, *), a.values.count)
                    case "nii": let v = try NIfTIVolume.read(path); XCTAssertEqual(v.nx * v.ny * v.nz, v.values.count)
                    case "png": let i = try RGBImage.readPNG(path); XCTAssertEqual(i.pixels.count, 3 * i.width * i.height)
                    default: try Checkpoint.load(EncoderDecoderNet(.preset("tiny")!, seed: 1), from: URL(fileURLWithPath: path))
                    }
                    outcomes[kind + " read", default: 0] += 1
                } catch {
                    outcomes[kind + " refused", default: 0] += 1
                    XCTAssertTrue("\(error)".contains(path), "\(kind) case \(n): the error does not name the file: \(error)")
                }
                XCTAssertEqual(try Array(Data(contentsOf: URL(fileURLWithPath: path))), input, "the input is unchanged")
            }
        }
        print("fuzzed inputs:", outcomes.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
    }

    /// A minimal single-file NIfTI-1 volume of float32 zeros.
    static func nifti(nx: Int, ny: Int, nz: Int) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 352)
        func put<T>(_ v: T, _ at: Int) { withUnsafeBytes(of: v) { for (i, b) in $0.enumerated() { h[at + i] = b } } }
        put(Int32(348), 0)
        put(Int16(3), 40); put(Int16(nx), 42); put(Int16(ny), 44); put(Int16(nz), 46)
        put(Int16(16), 70); put(Int16(32), 72)
        put(Float(1), 80); put(Float(1), 84); put(Float(1), 88)
        put(Float(352), 108)
        for (i, b) in "n+1\0".utf8.enumerated() { h[344 + i] = b }
        return h + [UInt8](repeating: 0, count: nx * ny * nz * 4)
    }
}
