import Foundation
import GRDB
import SPIOProcess
import SPIOKernels

/// Where and with what a run was computed: one row of the store's `environments` table, written
/// by `RunStore.recordEnvironment` and read back by `RunStore.environment`.
package struct RunEnvironment: Sendable, Equatable, FetchableRecord {
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

    package init(row: Row) {
        self.init(
            gitCommit: row["git_commit"], gitDirty: (row["git_dirty"] as Int?).map { $0 != 0 }, host: row["host"] ?? "",
            os: row["os"] ?? "", swiftVersion: row["swift_version"] ?? "", blas: row["blas"] ?? "",
            threads: row["threads"] ?? 0, cpu: row["cpu"] ?? "", kernelMode: row["kernel_mode"],
            blasCore: row["blas_core"])
    }

    /// The fields by their store column names, for `spio show` (absent ones left out).
    package var fields: [(String, String)] {
        [
            ("git_commit", gitCommit), ("git_dirty", gitDirty.map { $0 ? "1" : "0" }), ("host", host), ("os", os),
            ("swift_version", swiftVersion), ("blas", blas), ("threads", String(threads)), ("cpu", cpu),
            ("kernel_mode", kernelMode), ("blas_core", blasCore)
        ].compactMap { k, v in v.map { (k, $0) } }
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
