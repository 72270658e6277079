import CBLAS
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

/// Which OpenBLAS kernels compute the engine's products.
///
/// OpenBLAS built with `DYNAMIC_ARCH` picks its kernels from the CPU when the library loads, and
/// falls back to slow generic ones (Prescott, SSE3) on CPUs it does not know (0.3.21 on recent
/// Xeons). Different kernels sum in different orders, so the same configuration gives different
/// numbers on different machines. The project therefore chooses:
/// - `portable`: the AVX2+FMA Haswell kernels on every x86-64 CPU that has them, so results are
///   bitwise the same on any such machine (the default; committed reports are made this way).
/// - `native`: the fastest kernels for this CPU (SkylakeX or Cooperlake with AVX-512, Zen on AMD,
///   Haswell otherwise); numbers may differ from `portable`.
package enum KernelMode: String, CaseIterable, Sendable, Codable {
    case portable, native
}

/// Applies a `KernelMode` to OpenBLAS by re-executing the process with `OPENBLAS_CORETYPE` set
/// (OpenBLAS reads it only when it loads), and describes the kernel in use.
///
/// A `OPENBLAS_CORETYPE` that the user set in the environment wins over the mode and is recorded as
/// such; the variable that `spio` set itself is marked by `SPIO_KERNEL_CORE`, so a re-executed
/// process (or a child `spio`) can tell the two apart.
package enum KernelPolicy {
    /// The kernel in use and why.
    package struct State: Equatable, Sendable, CustomStringConvertible {
        /// The mode asked for.
        package var mode: KernelMode
        /// OpenBLAS's name of the kernel it runs (`openblas_get_corename`), e.g. `Haswell`.
        package var core: String
        /// The user's own `OPENBLAS_CORETYPE`, when it overrode the mode.
        package var userOverride: String?

        /// `portable (Haswell)`, `native (SkylakeX)`, `portable overridden by OPENBLAS_CORETYPE=X (core X)`,
        /// or, for an exact kernel asked for by an audit, `portable, kernel Prescott as requested`.
        package var description: String {
            if let userOverride {
                return "\(mode.rawValue) overridden by OPENBLAS_CORETYPE=\(userOverride) (core \(core))"
            }
            if let wanted = KernelPolicy.wantedCore(mode), wanted.lowercased() != core.lowercased() {
                return "\(mode.rawValue), kernel \(core) as requested (core \(core))"
            }
            return "\(mode.rawValue) (\(core))"
        }

        /// Whether numbers computed in this state are the portable ones: the Haswell kernels.
        package var isPortable: Bool { core.lowercased() == portableCore.lowercased() }
    }

    /// OpenBLAS's name of the portable kernels.
    package static let portableCore = "Haswell"
    static let marker = "SPIO_KERNEL_CORE"

    nonisolated(unsafe) private static var chosen: KernelMode = .portable

    /// The kernel in use now.
    package static var state: State {
        let user = userCoreType
        let core = loadedCore
        let matchesMode = core.lowercased() == wantedCore(chosen)?.lowercased()
        let override = user.flatMap { $0.lowercased() == core.lowercased() && matchesMode ? nil : $0 }
        return State(mode: chosen, core: core, userOverride: override)
    }

    /// OpenBLAS's name of the kernels it loaded.
    package static var loadedCore: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }

    /// The CPU's instruction-set extensions that decide the kernels (from /proc/cpuinfo).
    package struct CPUFeatures: Sendable {
        package var avx2 = false, fma = false, avx512 = false, avx512bf16 = false, amd = false
        package var known = false

        /// This CPU's features, read once per process (every `KernelPolicy.state` asks for them).
        package static let current = read()

        /// Reads /proc/cpuinfo's first `flags` and `vendor_id` lines (Linux); unknown elsewhere.
        static func read() -> CPUFeatures {
            var f = CPUFeatures()
            guard let fp = fopen("/proc/cpuinfo", "r") else { return f }
            defer { fclose(fp) }
            var line: UnsafeMutablePointer<CChar>?
            var capacity = 0
            var sawFlags = false
            while !sawFlags, getline(&line, &capacity, fp) > 0, let line {
                let text = String(cString: line)
                if text.hasPrefix("vendor_id") { f.amd = text.contains("AuthenticAMD") }
                if text.hasPrefix("flags") {
                    sawFlags = true
                    let words = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == ":" })
                    let flags = Set(words.map(String.init))
                    f.known = true
                    f.avx2 = flags.contains("avx2")
                    f.fma = flags.contains("fma")
                    f.avx512 = ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(flags.contains)
                    f.avx512bf16 = flags.contains("avx512_bf16")
                }
            }
            free(line)
            return f
        }
    }

    /// The OpenBLAS kernel a mode wants on this CPU, or nil to let OpenBLAS choose (native on a CPU
    /// whose features are unknown).
    package static func wantedCore(_ mode: KernelMode, cpu: CPUFeatures = .current) -> String? {
        switch mode {
        case .portable: return portableCore
        case .native:
            guard cpu.known else { return nil }
            if cpu.avx512 { return cpu.avx512bf16 ? "Cooperlake" : "SkylakeX" }
            if cpu.avx2 && cpu.fma { return cpu.amd ? "Zen" : "Haswell" }
            return nil
        }
    }

    /// OpenBLAS's x86-64 kernels older than Haswell, which every x86-64 CPU runs.
    static let olderCores: Set<String> = [
        "prescott", "core2", "penryn", "dunnington", "nehalem", "sandybridge", "atom",
        "opteron", "opteron_sse3", "barcelona", "bobcat", "bulldozer", "piledriver",
        "steamroller", "excavator", "nano"
    ]

    /// Whether this CPU can run an OpenBLAS kernel by name (AVX-512 kernels need AVX-512, the
    /// Haswell and Zen kernels AVX2 and FMA; older kernels run on any x86-64 CPU).
    package static func canRun(core: String, cpu: CPUFeatures = .current) -> Bool {
        #if arch(x86_64)
        guard cpu.known else { return false }
        switch core.lowercased() {
        case "cooperlake": return cpu.avx512 && cpu.avx512bf16
        case "skylakex", "sapphirerapids": return cpu.avx512
        case "haswell", "zen": return cpu.avx2 && cpu.fma
        default: return olderCores.contains(core.lowercased())
        }
        #else
        return false
        #endif
    }

    /// Why a mode cannot run on this CPU, or nil.
    package static func unsupported(_ mode: KernelMode, cpu: CPUFeatures = .current) -> String? {
        #if arch(x86_64)
        if mode == .portable && cpu.known && !(cpu.avx2 && cpu.fma) {
            return "this CPU has no AVX2/FMA, which the portable kernels (OpenBLAS Haswell) and the release "
                + "build need; "
                + "DeepSPIO-Lab runs on x86-64 CPUs from 2013 on (Intel Haswell, AMD Zen or later)"
        }
        return nil
        #else
        return mode == .portable
            ? "the portable kernels are x86-64 (AVX2) kernels; use --kernel native on this CPU" : nil
        #endif
    }

    /// The user's own `OPENBLAS_CORETYPE` (not one set by `spio` itself), if any.
    static var userCoreType: String? {
        guard let value = getenv("OPENBLAS_CORETYPE").map({ String(cString: $0) }), !value.isEmpty else { return nil }
        if let mine = getenv(marker).map({ String(cString: $0) }), mine == value { return nil }
        return value
    }

    /// Makes `mode` the kernel policy of this process. When the loaded kernels are not the mode's,
    /// re-executes the process (same arguments) with `OPENBLAS_CORETYPE` set, unless the user set
    /// that variable: then the user's kernels stay and `state` says so. Returns when nothing needs
    /// to change. Throws when the mode cannot run on this CPU or the re-execution fails.
    ///
    /// `core` asks for one kernel by name instead of the mode's (an audit re-running a run on the
    /// kernels it was trained with); it is ignored when this CPU cannot run it.
    package static func activate(_ mode: KernelMode, core: String? = nil) throws {
        let exact = core.flatMap { canRun(core: $0) ? $0 : nil }
        if exact == nil, let why = unsupported(mode) { throw KernelPolicyError.unsupported(why) }
        chosen = mode
        guard userCoreType == nil, let wanted = exact ?? wantedCore(mode) else { return }
        if loadedCore.lowercased() == wanted.lowercased() { return }
        // A re-executed process that still does not run the wanted kernels stops trying.
        if let mine = getenv(marker).map({ String(cString: $0) }), mine == wanted { return }
        setenv("OPENBLAS_CORETYPE", wanted, 1)
        setenv(marker, wanted, 1)
        fflush(stdout); fflush(stderr)
        #if os(Linux)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        #else
        execv(CommandLine.arguments[0], CommandLine.unsafeArgv)
        #endif
        throw KernelPolicyError.reexecFailed(String(cString: strerror(errno)))
    }

    /// The mode named by `SPIO_KERNEL` in the environment, if any; throws for an unknown name.
    package static func environmentMode() throws -> KernelMode? {
        guard let text = getenv("SPIO_KERNEL").map({ String(cString: $0) }), !text.isEmpty else { return nil }
        guard let mode = KernelMode(rawValue: text) else { throw KernelPolicyError.badMode("SPIO_KERNEL=\(text)") }
        return mode
    }
}

/// Why a kernel mode could not be applied.
package enum KernelPolicyError: Error, CustomStringConvertible {
    case unsupported(String), reexecFailed(String), badMode(String)
    package var description: String {
        switch self {
        case let .unsupported(why): return why
        case let .reexecFailed(why): return "could not re-execute spio with the chosen OpenBLAS kernels: \(why)"
        case let .badMode(text):
            let modes = KernelMode.allCases.map(\.rawValue).joined(separator: ", ")
            return "unknown kernel mode '\(text)'; expected one of \(modes)"
        }
    }
}
