import PortableTestKernels
import XCTest
@testable import SPIOKernels

/// The kernel a mode asks for on each kind of CPU, and which CPUs can run which kernels. The
/// re-execution itself is tested through the `spio` executable (SPIOExperimentsTests.KernelModeTests).
final class KernelPolicyTests: XCTestCase {
    func cpu(avx2: Bool = true, avx512: Bool = false, bf16: Bool = false, amd: Bool = false) -> KernelPolicy.CPUFeatures
    {
        var f = KernelPolicy.CPUFeatures()
        f.known = true; f.avx2 = avx2; f.fma = avx2; f.avx512 = avx512; f.avx512bf16 = bf16; f.amd = amd
        return f
    }

    func testPortableIsHaswellOnEveryAVX2CPU() {
        for c in [cpu(), cpu(amd: true), cpu(avx512: true), cpu(avx512: true, bf16: true)] {
            XCTAssertEqual(KernelPolicy.wantedCore(.portable, cpu: c), "Haswell")
            XCTAssertNil(KernelPolicy.unsupported(.portable, cpu: c))
        }
    }

    func testNativeIsTheFastestKernelTheCPUCanRun() {
        XCTAssertEqual(KernelPolicy.wantedCore(.native, cpu: cpu(avx512: true)), "SkylakeX")
        XCTAssertEqual(KernelPolicy.wantedCore(.native, cpu: cpu(avx512: true, bf16: true)), "Cooperlake")
        XCTAssertEqual(KernelPolicy.wantedCore(.native, cpu: cpu(amd: true)), "Zen")
        XCTAssertEqual(KernelPolicy.wantedCore(.native, cpu: cpu()), "Haswell")
        XCTAssertNil(KernelPolicy.wantedCore(.native, cpu: KernelPolicy.CPUFeatures()), "unknown CPU: OpenBLAS chooses")
        XCTAssertNil(KernelPolicy.wantedCore(.native, cpu: cpu(avx2: false)), "no AVX2: OpenBLAS chooses")
    }

    func testACPUWithoutAVX2GetsAClearMessage() {
        let why = KernelPolicy.unsupported(.portable, cpu: cpu(avx2: false))
        XCTAssertNotNil(why)
        XCTAssertTrue(why?.contains("AVX2") ?? false, why ?? "")
        XCTAssertNil(KernelPolicy.unsupported(.native, cpu: cpu(avx2: false)))
    }

    func testWhichKernelsACPUCanRun() {
        XCTAssertFalse(KernelPolicy.canRun(core: "SkylakeX", cpu: cpu(amd: true)))
        XCTAssertTrue(KernelPolicy.canRun(core: "SkylakeX", cpu: cpu(avx512: true)))
        XCTAssertFalse(KernelPolicy.canRun(core: "Cooperlake", cpu: cpu(avx512: true)))
        XCTAssertTrue(KernelPolicy.canRun(core: "Haswell", cpu: cpu(amd: true)))
        XCTAssertFalse(KernelPolicy.canRun(core: "Haswell", cpu: cpu(avx2: false)))
        XCTAssertTrue(KernelPolicy.canRun(core: "Prescott", cpu: cpu(avx2: false)))
        XCTAssertFalse(
            KernelPolicy.canRun(core: "Imaginary", cpu: cpu(avx512: true)), "an unknown kernel is never assumed")
    }

    /// This process's state names a kernel OpenBLAS really loaded.
    func testStateNamesTheLoadedKernel() {
        let state = KernelPolicy.state
        XCTAssertFalse(state.core.isEmpty)
        XCTAssertEqual(state.core, KernelPolicy.loadedCore)
        XCTAssertTrue(state.description.contains(state.core), state.description)
    }

    /// The test executable itself runs on the portable kernels (PortableTestKernels re-executes it),
    /// so in-process results match `spio` children and the bounds measured on those kernels.
    func testTheTestProcessRunsOnThePortableKernels() throws {
        let requested = String(cString: portable_test_kernels_requested())
        #if arch(x86_64)
        let cpu = KernelPolicy.CPUFeatures.current
        guard cpu.avx2 && cpu.fma else { throw XCTSkip("no AVX2/FMA: OpenBLAS chooses the kernels") }
        if requested.isEmpty, KernelPolicy.userCoreType != nil {
            throw XCTSkip("OPENBLAS_CORETYPE set by the user; the tests run on the user's kernels")
        }
        XCTAssertEqual(requested, KernelPolicy.portableCore)
        XCTAssertEqual(KernelPolicy.loadedCore.lowercased(), KernelPolicy.portableCore.lowercased())
        XCTAssertTrue(KernelPolicy.state.isPortable)
        XCTAssertNil(KernelPolicy.state.userOverride, "the test process's own choice is not a user's override")
        #else
        XCTAssertTrue(requested.isEmpty)
        #endif
    }
}
