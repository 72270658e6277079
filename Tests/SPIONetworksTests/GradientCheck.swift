import XCTest
@testable import SPIONetworks
@testable import SPIOTensor

/// Central finite differences of L = sum(f(x) * R) for a fixed random R, against the analytic
/// gradients of `backward(R)`.
///
/// Relative error of an entry: |a - n| / max(|a|, |n|, 1e-2 * G), G the largest analytic gradient
/// entry over all checked variables. The floor keeps entries whose true gradient is ~0 (a conv bias
/// before BatchNorm) from reporting float32 rounding noise as a huge relative error; a wrong gradient
/// of any size above 1 % of the largest one still fails.
struct GradientCheck {
    /// A tensor to perturb and the analytic gradient to compare against (copied after backward).
    struct Variable { let name: String; let value: Tensor; let analytic: () -> Tensor }

    let forward: () -> Tensor
    let backward: (Tensor) -> Void
    let variables: [Variable]
    var step: Float = 1e-2
    var seed: UInt64 = 99
    /// Which internal ReLUs are active after the last forward. An entry whose +-step perturbation
    /// changes this pattern straddles a kink, where a finite difference is not a derivative; such
    /// entries are skipped and counted (Caffe's gradient checker does the same).
    var activationPattern: (() -> [Bool])? = nil

    /// The largest relative error over every entry of every variable, and where it was.
    func maxRelativeError() -> (Double, String) {
        let (err, where_, _) = check()
        return (err, where_)
    }

    /// The worst relative error, where, and the fraction of entries skipped at kinks.
    func check() -> (Double, String, Double) {
        let y = forward()
        var rng = SeededGenerator(seed: seed)
        let r = Tensor(shape: y.shape, values: (0..<y.count).map { _ in Float(rng.normal()) })
        func loss() -> Double {
            let out = forward()
            var s = 0.0
            for i in 0..<out.count { s += Double(out.data[i]) * Double(r.data[i]) }
            return s
        }
        _ = forward()
        let basePattern = activationPattern?()
        backward(r)
        let analytic = variables.map { $0.analytic().copy() }
        var worst = (0.0, "")
        var skipped = 0, total = 0
        let scale = analytic.reduce(0.0) { m, a in (0..<a.count).reduce(m) { max($0, Double(abs(a.data[$1]))) } }
        for (v, a) in zip(variables, analytic) {
            XCTAssertEqual(a.shape, v.value.shape, "gradient shape of \(v.name)")
            for i in 0..<v.value.count {
                let saved = v.value.data[i]
                total += 1
                v.value.data[i] = saved + step; let up = Double(v.value.data[i]); let lp = loss()
                let upPattern = activationPattern?()
                v.value.data[i] = saved - step; let down = Double(v.value.data[i]); let lm = loss()
                let downPattern = activationPattern?()
                v.value.data[i] = saved
                if let base = basePattern, upPattern! != base || downPattern! != base { skipped += 1; continue }
                let numeric = (lp - lm) / (up - down)
                let ai = Double(a.data[i])
                let rel = abs(ai - numeric) / max(abs(ai), abs(numeric), 1e-2 * scale, 1e-12)
                if rel > worst.0 { worst = (rel, "\(v.name)[\(i)]: analytic \(ai), numeric \(numeric)") }
            }
        }
        return (worst.0, worst.1, Double(skipped) / Double(max(total, 1)))
    }
}

/// A tensor of normal values, optionally pushed away from 0 by `margin` (so ReLU kinks are not hit).
func randomTensor(_ shape: [Int], seed: UInt64, margin: Float = 0) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    let t = Tensor(shape: shape)
    for i in 0..<t.count {
        let z = Float(rng.normal())
        t.data[i] = z >= 0 ? z + margin : z - margin
    }
    return t
}

/// Checks a one-input layer's input gradient and every parameter gradient.
func checkLayer(
    _ layer: Layer, input x: Tensor, step: Float = 1e-2, tolerance: Double = 1e-3,
    activationPattern: (() -> [Bool])? = nil, maxSkipped: Double = 0.05,
    file: StaticString = #filePath, line: UInt = #line
) {
    var inputGrad: Tensor?
    var variables = [GradientCheck.Variable(name: "input", value: x, analytic: { inputGrad! })]
    for (name, p) in layer.namedParameters() {
        variables.append(.init(name: name, value: p.value, analytic: { p.grad }))
    }
    let check = GradientCheck(
        forward: { layer.forward(x) },
        backward: {
            layer.zeroGrad(); inputGrad = layer.backward($0)
        },
        variables: variables, step: step, activationPattern: activationPattern)
    let (err, where_, skipped) = check.check()
    print(
        "gradient check \(type(of: layer)): max relative error \(String(format: "%.2e", err)), "
            + "\(String(format: "%.1f", skipped * 100)) % skipped at kinks"
    )
    XCTAssertLessThan(err, tolerance, "\(type(of: layer)): worst at \(where_)", file: file, line: line)
    XCTAssertLessThanOrEqual(
        skipped, maxSkipped, "\(type(of: layer)): \(skipped * 100) % of entries straddle a kink", file: file, line: line
    )
}
