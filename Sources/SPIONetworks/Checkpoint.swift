import Foundation
import SPIOTensor

/// Saves and restores a module's state (PyTorch `state_dict` names and layouts) as safetensors, with
/// the model configuration in `__metadata__["config"]`, and the Adam state in a second file
/// (`<name>.optimizer.safetensors`: `<param>.exp_avg`, `<param>.exp_avg_sq`, metadata `step`).
public enum Checkpoint {
    /// A checkpoint that does not fit the model it is loaded into.
    public struct MismatchError: Error, CustomStringConvertible {
        public let path: String, problems: [String]
        public var description: String {
            "\(path) does not match the model:\n" + problems.prefix(20).map { "  - " + $0 }.joined(separator: "\n")
                + (problems.count > 20 ? "\n  ... and \(problems.count - 20) more" : "")
        }
    }

    /// The state of `module` as safetensors entries (parameters, buffers, BatchNorm batch counts).
    public static func stateDict(_ module: Module) -> [String: SafeTensors.Entry] {
        var out: [String: SafeTensors.Entry] = [:]
        for (name, p) in module.namedParameters() { out[name] = entry(p.value) }
        for (name, b) in module.namedBuffers() { out[name] = entry(b) }
        module.visit { name, m in
            if let bn = m as? BatchNorm2D {
                out[qualified(name, "num_batches_tracked")] = SafeTensors.Entry(int64: bn.batchesTracked)
            }
        }
        return out
    }

    /// Writes the model (and, if given, the optimizer) to `url` and `optimizerURL(url)`.
    public static func save(
        _ module: Module, config: String, optimizer: Adam? = nil, to url: URL,
        extraMetadata: [String: String] = [:]
    ) throws {
        var meta = extraMetadata
        meta["config"] = config
        meta["format"] = "pt"
        try SafeTensors.write(stateDict(module), metadata: meta, to: url)
        if let optimizer {
            var entries: [String: SafeTensors.Entry] = [:]
            for (k, (name, _)) in module.namedParameters().enumerated() {
                entries[name + ".exp_avg"] = entry(optimizer.firstMoments[k])
                entries[name + ".exp_avg_sq"] = entry(optimizer.secondMoments[k])
            }
            try SafeTensors.write(entries, metadata: ["step": String(optimizer.step)], to: optimizerURL(url))
        }
    }

    /// Where the optimizer state of checkpoint `url` lives.
    public static func optimizerURL(_ url: URL) -> URL {
        url.deletingPathExtension().appendingPathExtension("optimizer.safetensors")
    }

    /// Reads the stored configuration string of a checkpoint without loading weights.
    public static func config(at url: URL) throws -> String? { try SafeTensors.read(url).metadata["config"] }

    /// Loads `url` into `module`, checking that names, shapes and dtypes match exactly;
    /// nothing is changed unless everything matches. Returns the metadata.
    @discardableResult
    public static func load(_ module: Module, from url: URL, optimizer: Adam? = nil) throws -> [String: String] {
        let (tensors, metadata) = try SafeTensors.read(url)
        var problems: [String] = []
        var targets: [(Tensor, SafeTensors.Entry)] = []
        var expected = Set<String>()
        func check(_ name: String, _ t: Tensor, in file: [String: SafeTensors.Entry]) {
            expected.insert(name)
            guard let e = file[name] else { problems.append("missing tensor \(name) (shape \(t.shape))"); return }
            if e.dtype != .f32 { problems.append("\(name) has dtype \(e.dtype.rawValue), expected F32"); return }
            if e.shape != t.shape {
                problems.append("\(name) has shape \(e.shape), the model expects \(t.shape)"); return
            }
            targets.append((t, e))
        }
        for (name, p) in module.namedParameters() { check(name, p.value, in: tensors) }
        for (name, b) in module.namedBuffers() { check(name, b, in: tensors) }
        var counts: [(BatchNorm2D, Int64)] = []
        module.visit { name, m in
            guard let bn = m as? BatchNorm2D else { return }
            let key = qualified(name, "num_batches_tracked")
            expected.insert(key)
            if let v = tensors[key]?.int64Value {
                counts.append((bn, v))
            } else {
                problems.append("missing or non-I64 scalar \(key)")
            }
        }
        for name in tensors.keys.sorted() where !expected.contains(name) {
            problems.append("unexpected tensor \(name)")
        }
        var optimizerStep = 0
        if let optimizer {
            let oURL = optimizerURL(url)
            let (state, meta) = try SafeTensors.read(oURL)
            guard let step = meta["step"].flatMap(Int.init) else {
                throw SafeTensors.FormatError(path: oURL.path, reason: "no integer step in __metadata__")
            }
            optimizerStep = step
            for (k, (name, _)) in module.namedParameters().enumerated() {
                check(name + ".exp_avg", optimizer.firstMoments[k], in: state)
                check(name + ".exp_avg_sq", optimizer.secondMoments[k], in: state)
            }
        }
        guard problems.isEmpty else { throw MismatchError(path: url.path, problems: problems) }
        for (t, e) in targets {
            e.bytes.withUnsafeBytes { raw in
                _ = raw.copyBytes(to: UnsafeMutableRawBufferPointer(start: t.data, count: t.count * 4))
            }
        }
        for (bn, v) in counts { bn.setBatchesTracked(v) }
        optimizer?.setStep(optimizerStep)
        return metadata
    }

    private static func entry(_ t: Tensor) -> SafeTensors.Entry {
        SafeTensors.Entry(shape: t.shape, floats: UnsafeBufferPointer(start: t.data, count: t.count))
    }
}
