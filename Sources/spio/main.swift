import SPIOConfig
import ArgumentParser
import Foundation
import SPIOBench
import SPIOKernels
import SPIONetworks
import SPIOTensor
import SPIOPhysics
import SPIOExperiments

/// The `spio` command line.
struct Spio: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spio",
        abstract: "DeepSPIO-Lab: simulate View Line MRI, train DeepSPIO, measure the engine.",
        subcommands: [
            RunCommand.self, Validate.self, Runs.self, Show.self, Compare.self, Report.self, Audit.self, Verify.self,
            Export.self, Store.self, TaskCommand.self,
            Simulate.self, Train.self, Predict.self, Models.self, ModelCommand.self, Bench.self, Demo.self
        ])
}

/// Writes a line to standard error (progress), keeping standard output for results.
func progress(_ line: String) {
    FileHandle.standardError.write((line + "\n").data(using: .utf8)!)
}

// The release build is compiled for Haswell (AVX2 + FMA): say so on an older CPU instead of
// stopping on an illegal instruction. SPIOKernels is built without those flags.
#if !DEBUG
if let why = KernelPolicy.unsupported(.portable) {
    FileHandle.standardError.write("error: \(why)\n".data(using: .utf8)!)
    exit(1)
}
#endif

// Argument errors, help and exit codes go through ArgumentParser; a full disk, a read-only
// workspace or a damaged store get their cause in words instead of SQLite's or Foundation's codes.
do {
    var command = try Spio.parseAsRoot()
    try command.run()
} catch {
    if let text = WorkspaceFault.translated(error) {
        progress("Error: " + text)
        Spio.exit(withError: ExitCode(1))
    }
    Spio.exit(withError: error)
}
