import CBLAS
import Foundation

/// Which OpenBLAS kernels this process uses, and the wider ones it should use.
///
/// OpenBLAS 0.3.21 (Debian 12) does not know AMD Zen 4 and falls back to its Haswell (AVX2) kernels
/// although the CPU runs the SkylakeX (AVX-512) ones, which double sgemm throughput here
/// (bench/engine.md). The choice is made once, when the library loads, from the environment
/// variable OPENBLAS_CORETYPE; `spio` therefore re-executes itself with it set when that helps.
/// A value the user set is never changed.
public enum BLASKernels {
    /// The core OpenBLAS chose ("Haswell", "SkylakeX", ...).
    public static var current: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// The core type to ask for, or nil when the current one is already the widest this CPU runs.
    public static func preferred(cpuFlags: Set<String> = cpuFlags(), current: String = current) -> String? {
        let avx512 = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]
        guard ["Haswell", "Zen"].contains(current), avx512.allSatisfy(cpuFlags.contains) else { return nil }
        return "SkylakeX"
    }

    /// The `flags` line of /proc/cpuinfo (empty where there is none).
    public static func cpuFlags() -> Set<String> {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// Re-executes the current program with OPENBLAS_CORETYPE set to the preferred core, unless the
    /// variable is already set (by the user, or by this function: no loop) or nothing is preferred.
    /// Returns only when no re-execution happened.
    public static func reexecWithPreferredKernels() {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil, let core = preferred() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        let args = CommandLine.arguments
        var argv: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &argv)
        // execv returned: keep going with the current kernels.
        unsetenv("OPENBLAS_CORETYPE")
    }
}
