import CBLAS
import Foundation
import SPIONetworks
import SPIOTensor

/// `spio bench engine`: forward+backward time and GFLOP/s of every distinct convolution shape of a
/// DeepSPIO preset and of the whole network, against the sgemm rate measured in the same run.
public struct EngineBench {
    public var preset: String
    public var batch: Int
    public var threads: Int
    public var repeats: Int
    /// Prints progress lines while measuring.
    public var log: (String) -> Void

    /// Only layers whose description contains this text (profiling one shape; the whole network
    /// is then timed once); nil: all.
    public var only: String?

    public init(preset: String = "small", batch: Int = 32, threads: Int = 2, repeats: Int = 5, log: @escaping (String) -> Void = { _ in }) {
        self.preset = preset; self.batch = batch; self.threads = threads; self.repeats = repeats; self.log = log
    }

    /// One row of the layer table.
    public struct Row {
        public let layer: String, inputShape: [Int], count: Int
        public let medianSeconds: Double, gflop: Double
        public var gflops: Double { gflop / medianSeconds }
    }

    /// The whole measurement.
    public struct Result {
        public let sgemmGFLOPS: Double, sgemmOpenBLASThreadedGFLOPS: Double, sgemmSize: Int
        public let rows: [Row]
        public let networkSeconds: Double, networkGFLOP: Double
        public let threads: Int, batch: Int, preset: String
        /// The reference rate: the faster of the two sgemm measurements.
        public var referenceGFLOPS: Double { max(sgemmGFLOPS, sgemmOpenBLASThreadedGFLOPS) }
    }

    /// Median wall time of `body` over `repeats` runs after one warm-up.
    static func median(_ repeats: Int, _ body: () -> Void) -> Double {
        body()
        var times: [Double] = []
        for _ in 0..<max(1, repeats) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
        }
        return medianOf(times)
    }

    /// sgemm GFLOP/s on an n x n x n product: through `Gemm` (deterministic blocks) and through
    /// OpenBLAS's own threading.
    func measureSgemm(n: Int) -> (Double, Double) {
        var rng = SeededGenerator(seed: 1)
        let a = (0..<(n * n)).map { _ in Float(rng.normal()) }, b = (0..<(n * n)).map { _ in Float(rng.normal()) }
        var c = [Float](repeating: 0, count: n * n)
        let flop = 2 * Double(n) * Double(n) * Double(n)
        let ours = Self.median(repeats) { Gemm.sgemm(m: n, n: n, k: n, a: a, b: b, c: &c) }
        openblas_set_num_threads(Int32(threads))
        let native = Self.median(repeats) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), b, Int32(n), 0, &c, Int32(n))
        }
        openblas_set_num_threads(1)
        return (flop / ours * 1e-9, flop / native * 1e-9)
    }

    /// Forward FLOPs of a convolution layer for an input shape (multiply-adds count 2).
    static func forwardFLOP(_ layer: Module, _ input: [Int]) -> Double {
        if let c = layer as? Conv2D {
            let g = ConvGeometry(channels: c.inChannels, inH: input[2], inW: input[3], kernelH: c.kernelSize, kernelW: c.kernelSize, stride: c.stride, padding: c.padding)
            return 2 * Double(input[0] * c.outChannels * g.outPlane * g.rows)
        }
        if let t = layer as? ConvTranspose2D {
            return 2 * Double(input[0] * t.inChannels * input[2] * input[3] * t.outChannels * t.kernelSize * t.kernelSize)
        }
        return 0
    }

    /// Forward+backward FLOPs (the input gradient only where the layer computes it).
    static func trainingFLOP(_ layer: Module, _ input: [Int]) -> Double {
        let f = forwardFLOP(layer, input)
        if let c = layer as? Conv2D, !c.computesInputGradient { return 2 * f }
        return 3 * f
    }

    static func describe(_ m: Module) -> String {
        if let c = m as? Conv2D { return "Conv\(c.kernelSize)x\(c.kernelSize)/\(c.stride) \(c.inChannels)->\(c.outChannels)" + (c.computesInputGradient ? "" : " (no dx)") }
        if let t = m as? ConvTranspose2D { return "ConvT\(t.kernelSize)x\(t.kernelSize)/\(t.stride) \(t.inChannels)->\(t.outChannels)" }
        return "\(type(of: m))"
    }

    public func run() -> Result {
        guard let config = ModelConfig.preset(preset) else { preconditionFailure("unknown preset \(preset)") }
        Engine.setThreadCount(threads)
        let size = 1024
        log("sgemm \(size)^3 ...")
        let (ours, native) = measureSgemm(n: size)
        log(String(format: "sgemm: %.1f GFLOP/s (deterministic blocks), %.1f GFLOP/s (OpenBLAS threads)", ours, native))

        let net = EncoderDecoderNet(config, seed: 1)
        let x = Tensor(shape: [batch, config.inputChannels, config.inputSize, config.inputSize])
        var rng = SeededGenerator(seed: 2)
        for i in 0..<x.count { x.data[i] = Float(rng.normal()) }
        _ = net(x)
        // Distinct convolution shapes, in network order, with how often each occurs.
        var order: [String] = []
        var layers: [String: (Module, [Int], Int)] = [:]
        var networkFLOP = 0.0
        net.visit { _, m in
            guard m is Conv2D || m is ConvTranspose2D else { return }
            let shape = (m as? Conv2D)?.inputShape ?? (m as! ConvTranspose2D).inputShape
            networkFLOP += Self.trainingFLOP(m, shape)
            let key = Self.describe(m) + " \(shape)"
            if let e = layers[key] { layers[key] = (e.0, e.1, e.2 + 1) } else { layers[key] = (m, shape, 1); order.append(key) }
        }
        var rows: [Row] = []
        for key in order where only.map({ key.contains($0) }) ?? true {
            let (m, shape, count) = layers[key]!
            let ws = Workspace()
            let layer: Layer
            if let c = m as? Conv2D {
                let l = Conv2D(c.inChannels, c.outChannels, kernelSize: c.kernelSize, stride: c.stride, padding: c.padding, workspace: ws)
                l.computesInputGradient = c.computesInputGradient
                layer = l
            } else {
                let t = m as! ConvTranspose2D
                layer = ConvTranspose2D(t.inChannels, t.outChannels, kernelSize: t.kernelSize, stride: t.stride, padding: t.padding, outputPadding: t.outputPadding, workspace: ws)
            }
            HeInitialiser.initialise(layer, seed: 3)
            let input = Tensor(shape: shape)
            for i in 0..<input.count { input.data[i] = Float(rng.normal()) }
            let dy = layer(input).copy()
            let t = Self.median(repeats) { _ = layer(input); _ = layer.backward(dy) }
            let row = Row(layer: Self.describe(m), inputShape: shape, count: count, medianSeconds: t, gflop: Self.trainingFLOP(m, shape) * 1e-9)
            log(String(format: "%@ %@: %.2f ms, %.1f GFLOP/s", row.layer, "\(shape)", t * 1e3, row.gflops))
            rows.append(row)
        }
        let dy = net(x).copy()
        // With `only`, the whole network is timed once (the run is for profiling one shape).
        let whole = Self.median(only == nil ? repeats : 0) { net.zeroGrad(); _ = net(x); _ = net.backward(dy) }
        log(String(format: "whole network: %.1f ms per batch of %d", whole * 1e3, batch))
        return Result(sgemmGFLOPS: ours, sgemmOpenBLASThreadedGFLOPS: native, sgemmSize: size, rows: rows,
                      networkSeconds: whole, networkGFLOP: networkFLOP * 1e-9, threads: threads, batch: batch, preset: preset)
    }
}

public extension EngineBench.Result {
    /// The result as a Markdown report.
    var markdown: String {
        var s = "## spio bench engine: DeepSPIO `\(preset)`, batch \(batch), \(threads) threads\n\n"
        s += "Machine: \(cpuModel), \(ProcessInfo.processInfo.activeProcessorCount) cores; BLAS: \(Engine.blasDescription). Times are medians of the timed repetitions after one warm-up.\n\n"
        s += String(format: "sgemm %d^3: %.1f GFLOP/s through Gemm (deterministic blocks), %.1f GFLOP/s with OpenBLAS's own threads. ", sgemmSize, sgemmGFLOPS, sgemmOpenBLASThreadedGFLOPS)
        s += String(format: "Reference for %% below: %.1f GFLOP/s (the faster).\n\n", referenceGFLOPS)
        s += "| layer | input N x C x H x W | in net | fwd+bwd ms (median) | GFLOP | GFLOP/s | % of sgemm |\n|---|---|---|---|---|---|---|\n"
        for r in rows {
            s += String(format: "| %@ | %@ | %d | %.2f | %.3f | %.1f | %.0f %% |\n", r.layer, r.inputShape.map(String.init).joined(separator: " x "),
                        r.count, r.medianSeconds * 1e3, r.gflop, r.gflops, 100 * r.gflops / referenceGFLOPS)
        }
        let rate = networkGFLOP / networkSeconds
        s += String(format: "| **whole network** (fwd+bwd, all layers) | %d x 2 x H x W | 1 | %.1f | %.2f | %.1f | %.0f %% |\n",
                    batch, networkSeconds * 1e3, networkGFLOP, rate, 100 * rate / referenceGFLOPS)
        s += String(format: "\nWhole network: %.1f training images/s (forward+backward only; FLOPs count convolutions only).\n", Double(batch) / networkSeconds)
        return s
    }
}

/// The CPU model from /proc/cpuinfo (Linux), or "unknown CPU".
var cpuModel: String {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
          let value = line.split(separator: ":", maxSplits: 1).last else { return "unknown CPU" }
    return value.trimmingCharacters(in: .whitespaces)
}

/// The middle value (the upper one of an even count), as every `spio bench` table reports.
func medianOf(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}
