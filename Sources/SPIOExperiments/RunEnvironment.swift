import Foundation
import SPIOProcess
import SPIOKernels

/// Where and with what a run was computed.
package struct RunEnvironment: Sendable {
    package var gitCommit: String?
    package var gitDirty: Bool?
    package var host: String, os: String, swiftVersion: String, blas: String, threads: Int, cpu: String
    /// The kernel policy as `KernelPolicy.State` describes it, e.g. `portable (Haswell)`.
    package var kernelMode: String?
    /// OpenBLAS's kernel name, e.g. `Haswell`.
    package var blasCore: String?

    package init(
        gitCommit: String?, gitDirty: Bool?, host: String, os: String, swiftVersion: String, blas: String, threads: Int,
        cpu: String,
        kernelMode: String? = nil, blasCore: String? = nil
    ) {
        self.gitCommit = gitCommit; self.gitDirty = gitDirty; self.host = host; self.os = os
        self.swiftVersion = swiftVersion; self.blas = blas; self.threads = threads; self.cpu = cpu
        self.kernelMode = kernelMode; self.blasCore = blasCore
    }

    /// The current process's environment; git state of the working directory, if it is a checkout.
    package static func current(threads: Int, blas: String, kernel: KernelPolicy.State) -> RunEnvironment {
        func git(_ args: [String]) -> String? { Subprocess.text("git", args) }
        let commit = git(["rev-parse", "HEAD"])
        let dirty = commit == nil ? nil : !(git(["status", "--porcelain", "--untracked-files=no"]) ?? "").isEmpty
        let cpu =
            (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("model name") }.map {
                String($0.split(separator: ":", maxSplits: 1)[1]).trimmingCharacters(in: .whitespaces)
            } ?? "unknown"
        #if swift(>=6.3)
        let swift = "6.3+"
        #else
        let swift = "6.x"
        #endif
        return RunEnvironment(
            gitCommit: commit, gitDirty: dirty, host: RunStore.hostName,
            os: ProcessInfo.processInfo.operatingSystemVersionString, swiftVersion: swift, blas: blas, threads: threads,
            cpu: cpu,
            kernelMode: kernel.description, blasCore: kernel.core)
    }
}
