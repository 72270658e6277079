import CBLAS
import Foundation
import SPIONetworks
import SPIOTensor

/// `spio bench engine`: forward+backward time (or, for inference, forward time in evaluation mode)
/// and GFLOP/s of every distinct convolution shape of a DeepSPIO preset and of the whole network,
/// against the sgemm rate measured in the same run.
///
/// The machine's speed drifts (shared hosts, turbo), so the whole table is measured in `rounds`
/// passes, each with its own sgemm reference: a slow spell then shows up as one round's column
/// instead of biasing one layer, and every figure reported is a median over rounds.
package struct EngineBench {
    package var preset: String
    package var batch: Int
    package var threads: Int
    package var repeats: Int
    /// Passes over the whole table (sgemm, every layer, the network).
    package var rounds: Int
    /// Prints progress lines while measuring.
    package var log: (String) -> Void

    /// Only layers whose description contains this text (profiling one shape; the whole network
    /// is then timed once); nil: all.
    package var only: String?
    /// Image size instead of the preset's (nil: the preset's).
    package var inputSize: Int?
    /// Times the forward pass in evaluation mode (what inference costs) instead of a training
    /// step's forward+backward.
    package var inference = false

    package init(
        preset: String = "small", batch: Int = 32, threads: Int = 2, repeats: Int = 5, rounds: Int = 3,
        log: @escaping (String) -> Void = { _ in }
    ) {
        self.preset = preset; self.batch = batch; self.threads = threads; self.repeats = repeats; self.rounds = rounds
        self.log = log
    }

    /// One row of the layer table.
    package struct Row {
        package let layer: String, inputShape: [Int], count: Int, gflop: Double
        /// How the layer computed (`Conv2D.lastPath`; transposed convolutions: `col2im`).
        package var path = ""
        /// Median seconds of each round (forward+backward; forward alone for inference).
        package var seconds: [Double]
        package var medianSeconds: Double { medianOf(seconds) }
        package var gflops: Double { gflop / medianSeconds }
    }

    /// The whole measurement.
    package struct Result {
        /// sgemm GFLOP/s of each round through `Gemm` and through OpenBLAS's own threads.
        package let sgemmGFLOPS: [Double], sgemmOpenBLASThreadedGFLOPS: [Double], sgemmSize: Int
        package let rows: [Row]
        /// Whole-network seconds of each round.
        package let networkSeconds: [Double], networkGFLOP: Double
        package let threads: Int, batch: Int, preset: String
        /// Forward passes in evaluation mode instead of training steps.
        package var inference = false
        /// Whether the table holds every convolution of the network (no `only` filter).
        package var everyLayer = true
        /// Each round's reference rate: the faster of its two sgemm measurements.
        package var referenceGFLOPS: [Double] { zip(sgemmGFLOPS, sgemmOpenBLASThreadedGFLOPS).map { max($0, $1) } }
        /// Percent of the same round's reference, per round.
        package func percents(gflop: Double, seconds: [Double]) -> [Double] {
            zip(seconds, referenceGFLOPS).map { 100 * gflop / $0 / $1 }
        }
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
    static func measureSgemm(n: Int, repeats: Int, threads: Int) -> (Double, Double) {
        var rng = SeededGenerator(seed: 1)
        let a = (0..<(n * n)).map { _ in Float(rng.normal()) }, b = (0..<(n * n)).map { _ in Float(rng.normal()) }
        var c = [Float](repeating: 0, count: n * n)
        let flop = 2 * Double(n) * Double(n) * Double(n)
        let ours = Self.median(repeats) { Gemm.sgemm(m: n, n: n, k: n, a: a, b: b, c: &c) }
        openblas_set_num_threads(Int32(threads))
        let native = Self.median(repeats) {
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(n), Int32(n), 1, a, Int32(n), b, Int32(n), 0,
                &c, Int32(n))
        }
        openblas_set_num_threads(1)
        return (flop / ours * 1e-9, flop / native * 1e-9)
    }

    /// Forward FLOPs of a convolution layer for an input shape (multiply-adds count 2).
    static func forwardFLOP(_ layer: Module, _ input: [Int]) -> Double {
        if let c = layer as? Conv2D {
            let g = ConvGeometry(
                channels: c.inChannels, inH: input[2], inW: input[3], kernelH: c.kernelSize, kernelW: c.kernelSize,
                stride: c.stride, padding: c.padding)
            return 2 * Double(input[0] * c.outChannels * g.outPlane * g.rows)
        }
        if let t = layer as? ConvTranspose2D {
            return 2
                * Double(input[0] * t.inChannels * input[2] * input[3] * t.outChannels * t.kernelSize * t.kernelSize)
        }
        return 0
    }

    /// Forward+backward FLOPs (the input gradient only where the layer computes it).
    static func trainingFLOP(_ layer: Module, _ input: [Int]) -> Double {
        let f = forwardFLOP(layer, input)
        if let c = layer as? Conv2D, !c.computesInputGradient { return 2 * f }
        return 3 * f
    }

    /// The last forward input shape of a convolution layer; nil for any other module.
    static func convolutionInputShape(_ m: Module) -> [Int]? {
        (m as? Conv2D)?.inputShape ?? (m as? ConvTranspose2D)?.inputShape
    }

    /// The FLOPs a bench pass times: forward+backward, or forward alone for inference.
    static func passFLOP(_ layer: Module, _ input: [Int], inference: Bool) -> Double {
        inference ? forwardFLOP(layer, input) : trainingFLOP(layer, input)
    }

    /// Convolution FLOPs of a network per batch at the shapes of its last forward (`passFLOP`).
    static func convolutionFLOP(_ net: Module, inference: Bool) -> Double {
        var total = 0.0
        net.visit { _, m in
            if let shape = convolutionInputShape(m) { total += passFLOP(m, shape, inference: inference) }
        }
        return total
    }

    static func describe(_ m: Module) -> String {
        if let c = m as? Conv2D {
            return "Conv\(c.kernelSize)x\(c.kernelSize)/\(c.stride) \(c.inChannels)->\(c.outChannels)"
                + (c.computesInputGradient ? "" : " (no dx)")
        }
        if let t = m as? ConvTranspose2D {
            return "ConvT\(t.kernelSize)x\(t.kernelSize)/\(t.stride) \(t.inChannels)->\(t.outChannels)"
        }
        return "\(type(of: m))"
    }

    /// A fresh, He-initialised copy of a network layer with its own workspace, and a random input.
    private static func standalone(_ m: Module, _ shape: [Int], _ rng: inout SeededGenerator) -> (Layer, Tensor, Tensor)
    {
        let ws = Workspace()
        let layer: Layer
        if let c = m as? Conv2D {
            let l = Conv2D(
                c.inChannels, c.outChannels, kernelSize: c.kernelSize, stride: c.stride, padding: c.padding,
                workspace: ws)
            l.computesInputGradient = c.computesInputGradient
            layer = l
        } else {
            let t = m as! ConvTranspose2D
            layer = ConvTranspose2D(
                t.inChannels, t.outChannels, kernelSize: t.kernelSize, stride: t.stride, padding: t.padding,
                outputPadding: t.outputPadding, workspace: ws)
        }
        HeInitialiser.initialise(layer, seed: 3)
        let input = Tensor(shape: shape)
        for i in 0..<input.count { input.data[i] = Float(rng.normal()) }
        let dy = layer(input).copy()
        return (layer, input, dy)
    }

    package func run() -> Result {
        guard var config = ModelConfig.preset(preset) else { preconditionFailure("unknown preset \(preset)") }
        if let inputSize { config.inputSize = inputSize }
        Engine.setThreadCount(threads)
        let net = EncoderDecoderNet(config, seed: 1)
        let x = Tensor(shape: [batch, config.inputChannels, config.inputSize, config.inputSize])
        var rng = SeededGenerator(seed: 2)
        for i in 0..<x.count { x.data[i] = Float(rng.normal()) }
        _ = net(x)
        // Distinct convolution shapes, in network order, with how often each occurs.
        var order: [String] = []
        var layers: [String: (Module, [Int], Int)] = [:]
        let networkFLOP = Self.convolutionFLOP(net, inference: inference)
        net.visit { _, m in
            guard let shape = Self.convolutionInputShape(m) else { return }
            let key = Self.describe(m) + " \(shape)"
            if let e = layers[key] {
                layers[key] = (e.0, e.1, e.2 + 1)
            } else {
                layers[key] = (m, shape, 1); order.append(key)
            }
        }
        let selected = order.filter { key in only.map { key.contains($0) } ?? true }
        let standalone = selected.map { key in Self.standalone(layers[key]!.0, layers[key]!.1, &rng) }
        var rows = selected.map { key in
            let (m, shape, count) = layers[key]!
            return Row(
                layer: Self.describe(m), inputShape: shape, count: count,
                gflop: Self.passFLOP(m, shape, inference: inference) * 1e-9, seconds: [])
        }
        let dy = net(x).copy()
        if inference {
            net.setTraining(false)
            for (layer, _, _) in standalone { layer.setTraining(false) }
        }
        let size = 1024
        var oursRounds: [Double] = [], nativeRounds: [Double] = [], networkRounds: [Double] = []
        for round in 1...max(1, rounds) {
            log("round \(round) of \(rounds): sgemm \(size)^3 ...")
            let (ours, native) = Self.measureSgemm(n: size, repeats: repeats, threads: threads)
            oursRounds.append(ours); nativeRounds.append(native)
            log(
                String(
                    format: "sgemm: %.1f GFLOP/s (deterministic blocks), %.1f GFLOP/s (OpenBLAS threads)", ours, native)
            )
            for (i, (layer, input, dyLayer)) in standalone.enumerated() {
                let t = Self.median(repeats) {
                    _ = layer(input)
                    if !inference { _ = layer.backward(dyLayer) }
                }
                rows[i].seconds.append(t)
                rows[i].path = (layer as? Conv2D)?.lastPath ?? "col2im"
                log(
                    String(
                        format: "%@ %@: %.2f ms, %.1f GFLOP/s", rows[i].layer, "\(rows[i].inputShape)", t * 1e3,
                        rows[i].gflop / t))
            }
            // With `only`, the whole network is timed once (the run is for profiling one shape).
            let whole = Self.median(only == nil ? repeats : 0) {
                if inference {
                    _ = net(x)
                } else {
                    net.zeroGrad(); _ = net(x); _ = net.backward(dy)
                }
            }
            networkRounds.append(whole)
            log(String(format: "whole network: %.1f ms per batch of %d", whole * 1e3, batch))
        }
        return Result(
            sgemmGFLOPS: oursRounds, sgemmOpenBLASThreadedGFLOPS: nativeRounds, sgemmSize: size, rows: rows,
            networkSeconds: networkRounds, networkGFLOP: networkFLOP * 1e-9, threads: threads, batch: batch,
            preset: inputSize.map { "\(preset)` at `\($0) x \($0)" } ?? preset, inference: inference,
            everyLayer: only == nil)
    }
}

package extension EngineBench.Result {
    /// The result as a Markdown report.
    var markdown: String {
        let rounds = referenceGFLOPS.count
        func list(_ values: [Double], _ format: String) -> String {
            values.map { String(format: format, $0) }.joined(separator: ", ")
        }
        let timed = inference ? "fwd" : "fwd+bwd"
        var s =
            "## spio bench engine: DeepSPIO `\(preset)`, batch \(batch), \(threads) threads"
            + (inference ? ", inference (forward in evaluation mode)" : "") + "\n\n"
        s +=
            "Machine: \(cpuModel), \(ProcessInfo.processInfo.activeProcessorCount) cores; BLAS: "
            + "\(Engine.blasDescription). "
        s +=
            "\(rounds) round\(rounds == 1 ? "" : "s"), each timing sgemm, every layer and the whole network in turn; "
            + "a time is the median of the timed repetitions after one warm-up, "
        s +=
            "a percentage is of the same round's sgemm rate, and the table gives medians over rounds with every "
            + "round's percentage beside them.\n\n"
        s +=
            "sgemm \(sgemmSize)^3 per round: " + list(sgemmGFLOPS, "%.1f")
            + " GFLOP/s through Gemm (deterministic blocks), "
        s += list(sgemmOpenBLASThreadedGFLOPS, "%.1f") + " GFLOP/s with OpenBLAS's own threads. "
        s += String(
            format: "Reference: the faster of the two in each round (median %.1f GFLOP/s).\n\n",
            medianOf(referenceGFLOPS))
        s +=
            "GFLOP are those of the direct convolution (im2col), so a Winograd layer, which multiplies less, can "
            + "pass 100 % of sgemm.\n\n"
        s +=
            "| layer | path | input N x C x H x W | in net | \(timed) ms | GFLOP | GFLOP/s | % of sgemm | % per round "
            + "|\n|---|---|---|---|---|---|---|---|---|\n"
        for r in rows {
            let p = percents(gflop: r.gflop, seconds: r.seconds)
            s += String(
                format: "| %@ | %@ | %@ | %d | %.2f | %.3f | %.1f | %.0f %% | %@ |\n", r.layer, r.path,
                r.inputShape.map(String.init).joined(separator: " x "),
                r.count, r.medianSeconds * 1e3, r.gflop, r.gflops, medianOf(p), list(p, "%.0f"))
        }
        let wholeSeconds = medianOf(networkSeconds), p = percents(gflop: networkGFLOP, seconds: networkSeconds)
        s += String(
            format:
                "| **whole network** (%@, all layers) | | %d x 2 x H x W | 1 | %.1f | %.2f | %.1f | %.0f %% | %@ "
                + "|\n",
            timed, batch, wholeSeconds * 1e3, networkGFLOP, networkGFLOP / wholeSeconds, medianOf(p), list(p, "%.0f"))
        if inference {
            s += String(
                format: "\nWhole network: %.1f ms per batch of %d in evaluation mode (FLOPs count convolutions only)",
                wholeSeconds * 1e3, batch)
            // What the convolutions take, each timed alone, beside the whole network (the rest is
            // BatchNorm, activations, skips and wavelets); only with every layer in the table.
            let convolutionSeconds = rows.reduce(0.0) { $0 + Double($1.count) * $1.medianSeconds }
            s +=
                everyLayer
                ? String(
                    format:
                        "; its convolutions, each timed alone and counted as often as it occurs, add up to %.1f ms.\n",
                    convolutionSeconds * 1e3) : ".\n"
        } else {
            s += String(
                format:
                    "\nWhole network: %.1f training images/s (forward+backward only; FLOPs count convolutions only).\n",
                Double(batch) / wholeSeconds)
        }
        return s
    }
}

/// The CPU model from /proc/cpuinfo (Linux), or "unknown CPU".
var cpuModel: String {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
        let line = text.split(separator: "\n").first(where: { $0.hasPrefix("model name") }),
        let value = line.split(separator: ":", maxSplits: 1).last
    else { return "unknown CPU" }
    return value.trimmingCharacters(in: .whitespaces)
}

/// The middle value (the upper one of an even count), as every `spio bench` table reports.
func medianOf(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}
