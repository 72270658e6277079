import Foundation
import SPIOImageIO
import SPIOProcess

/// Draws figures with gnuplot (Debian's `gnuplot-nox`, which `make deps` installs): a script with
/// its data inline, run once per figure. The fonts are named (DejaVu Sans, Debian's
/// `fonts-dejavu-core`), so a figure is byte for byte the same on every machine with the same
/// packages.
package enum Gnuplot {
    /// The font of every figure.
    package static let font = "DejaVu Sans"

    /// An output of a script: the terminal line and the file it writes.
    package struct Output {
        package var terminal: String
        package var path: String
        /// Vector figure at `width` x `height` points.
        package static func svg(_ path: String, width: Int, height: Int) -> Output {
            Output(
                terminal: "svg size \(width),\(height) dynamic enhanced font \"\(font),11\" background rgb \"white\"",
                path: path)
        }
        /// Raster figure at `width` x `height` pixels.
        package static func png(_ path: String, width: Int, height: Int, fontSize: Int = 11) -> Output {
            Output(
                terminal: "pngcairo size \(width),\(height) enhanced font \"\(font),\(fontSize)\" "
                    + "background rgb \"white\"",
                path: path)
        }
    }

    /// Runs `body` (data blocks, settings and one plot or multiplot) once per output. Each file is
    /// written under a temporary name and renamed, so a failure leaves no half-written figure.
    package static func draw(_ body: String, data: String = "", to outputs: [Output]) throws {
        guard let first = outputs.first else { return }
        let folder = (first.path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(
            atPath: folder.isEmpty ? "." : folder, withIntermediateDirectories: true)
        let partials = outputs.map { PartialPath.of($0.path) }
        var script = "set encoding utf8\n" + data
        for (o, partial) in zip(outputs, partials) {
            script += "reset\nset terminal \(o.terminal)\nset output \(quoted(partial))\n\(body)\nunset output\n"
        }
        let scriptPath = PartialPath.of(first.path) + ".gp"
        defer { try? FileManager.default.removeItem(atPath: scriptPath) }
        try FileBytes.writeAtomically(Array(script.utf8), to: scriptPath)
        let r: Subprocess
        do { r = try Subprocess.run("gnuplot", [scriptPath]) } catch is Subprocess.NotFound {
            throw PlotError.notInstalled
        }
        guard r.status == 0 else {
            for p in partials { try? FileManager.default.removeItem(atPath: p) }
            throw PlotError.failed(first.path, r.errors.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        for (o, partial) in zip(outputs, partials) {
            guard rename(partial, o.path) == 0 else {
                throw FileError(o.path, "cannot move the figure into place: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// A chart as `<base>.svg` (`width` x `height` points) and `<base>.png` (1.5 times as many
    /// pixels); returns the two file names.
    static func figure(_ body: String, data: String, base: String, width: Int, height: Int) throws -> [String] {
        let svg = base + ".svg", png = base + ".png"
        try draw(
            body, data: data,
            to: [
                .svg(svg, width: width, height: height),
                .png(png, width: width * 3 / 2, height: height * 3 / 2, fontSize: 14)
            ])
        return [svg, png].map { ($0 as NSString).lastPathComponent }
    }

    /// A gnuplot string literal of `s` as plain text: enhanced-text markup (`_ ^ @ & ~ { }`) and
    /// quotes are escaped, so a run named `lr_1e-3` is not typeset as a subscript.
    package static func text(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "\\": out += "\\\\\\\\"
            case "\"": out += "\\\""
            case "_", "^", "@", "&", "~", "{", "}": out += "\\\\" + String(c)
            case "\n": out += " "
            default: out.append(c)
            }
        }
        return "\"" + out + "\""
    }

    /// A gnuplot string literal of `s` with its enhanced-text markup kept (axis labels with units
    /// such as `µg/mm^3`).
    package static func markup(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// A file name in a script.
    static func quoted(_ path: String) -> String { "'" + path.replacingOccurrences(of: "'", with: "''") + "'" }

    /// A number as gnuplot reads it; NaN (a gap) for non-finite values.
    static func number(_ v: Double) -> String { v.isFinite ? String(format: "%.9g", v) : "NaN" }

    /// A named data block: `$name << EOD`, rows of space-separated numbers, `EOD`.
    static func block(_ name: String, _ rows: [[Double]]) -> String {
        "$\(name) << EOD\n" + rows.map { $0.map(number).joined(separator: " ") }.joined(separator: "\n")
            + "\nEOD\n"
    }

    /// Colour-blind-safe line colours (Okabe and Ito), cycled with dash patterns past seven series.
    static let colours = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
    static func colour(_ i: Int) -> String { colours[i % colours.count] }
    static func dash(_ i: Int) -> Int { 1 + (i / colours.count) % 5 }
}

/// Why a figure could not be drawn.
package enum PlotError: Error, CustomStringConvertible {
    case notInstalled, failed(String, String)
    package var description: String {
        switch self {
        case .notInstalled:
            return "gnuplot not found: the figures are drawn with it; `make deps` installs it (Debian: apt-get install "
                + "gnuplot-nox fonts-dejavu-core)"
        case let .failed(path, text): return "\(path): gnuplot failed: \(text)"
        }
    }
}
