import Foundation

/// Runs a program found on `PATH` and collects what it printed: git for the run environment,
/// gnuplot for figures, Slurm's `sbatch`, `squeue` and `scontrol` for the cluster executor.
package struct Subprocess: Sendable {
    package let status: Int32
    package let output: String
    package let errors: String

    /// A program that is not on `PATH`: callers say which package installs it.
    package struct NotFound: Error, CustomStringConvertible {
        package let program: String
        package var description: String { "\(program) not found on PATH" }
    }

    /// The executable `program` resolves to on `PATH`, or nil.
    package static func locate(_ program: String) -> String? {
        if program.contains("/") { return FileManager.default.isExecutableFile(atPath: program) ? program : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(program)" }.first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }

    /// Runs `program` with `arguments` and waits; throws `NotFound` when it is not on `PATH`.
    package static func run(_ program: String, _ arguments: [String]) throws -> Subprocess {
        let (p, out, err) = try launch(program, arguments)
        // Both pipes are drained at once, so a program that fills one of them cannot block.
        nonisolated(unsafe) var errorBytes = Data()
        let drained = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            errorBytes = err.fileHandleForReading.readDataToEndOfFile()
            drained.signal()
        }
        let outputBytes = out.fileHandleForReading.readDataToEndOfFile()
        drained.wait()
        p.waitUntilExit()
        return Subprocess(
            status: p.terminationStatus, output: String(decoding: outputBytes, as: UTF8.self),
            errors: String(decoding: errorBytes, as: UTF8.self))
    }

    /// Starts `program` (found on `PATH`, else `NotFound`) with standard input empty and both
    /// outputs on pipes; `environment` adds to this process's.
    static func launch(
        _ program: String, _ arguments: [String], environment: [String: String] = [:]
    ) throws -> (Process, out: Pipe, err: Pipe) {
        guard let executable = locate(program) else { throw NotFound(program: program) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        return (p, out, err)
    }

    /// Standard output without surrounding white space, or nil when the program failed or is absent.
    package static func text(_ program: String, _ arguments: [String]) -> String? {
        guard let r = try? run(program, arguments), r.status == 0 else { return nil }
        return r.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
