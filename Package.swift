// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "DeepSPIO-Lab",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "spio", targets: ["spio"]),
        .library(name: "SPIOTensor", targets: ["SPIOTensor"]),
        .library(name: "SPIONetworks", targets: ["SPIONetworks"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.0.0")
    ],
    targets: [
        // C headers of OpenBLAS (cblas + openblas_set_num_threads) and FFTW3 single precision.
        .systemLibrary(
            name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CFFTW", path: "Sources/CFFTW", pkgConfig: "fftw3f",
            providers: [.apt(["libfftw3-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        // Which OpenBLAS kernels run (portable or native), applied by re-executing spio. Built without
        // the AVX2 target flags so that its CPU check runs on any x86-64 CPU.
        .target(name: "SPIOKernels", dependencies: ["CBLAS"]),
        // Tensor, sgemm, im2col/col2im, deterministic parallel loops, the seeded generator.
        // The direct convolution kernel's SIMD code is hundreds of times slower unoptimised, and its
        // fused multiply-adds are the same instructions in debug and release builds only on the same CPU level.
        .target(
            name: "SPIOTensor", dependencies: ["CBLAS", "SPIOKernels"], swiftSettings: debugOptimisedAVX2 + optimise),
        // Layers with explicit forward/backward, Adam, initialisers, safetensors checkpoints, models.
        .target(name: "SPIONetworks", dependencies: ["SPIOTensor", "SPIOCoding"], swiftSettings: optimise),
        // SHA-256 content hashes.
        // Optimised in debug builds too: tests hash every dataset and model they record.
        .target(name: "SPIODigest", swiftSettings: debugOptimised + optimise),
        // NPY read/write, NIfTI-1 reader (.nii, .nii.gz), PNG read/write, whole-file reads and atomic writes.
        .target(name: "SPIOImageIO", dependencies: ["CZlib", "CPNG"], swiftSettings: optimise),
        // Running other programs (gnuplot, git, Slurm's commands) and collecting what they print.
        .target(name: "SPIOProcess"),
        // Figures drawn by gnuplot: line, band, error-bar, scatter and bar charts (SVG and PNG), image
        // grids with colour bars (PNG).
        .target(name: "SPIOPlots", dependencies: ["SPIOImageIO", "SPIOProcess"], swiftSettings: optimise),
        // Strict Codable decoding (unknown keys are errors) and canonical JSON: what every configuration
        // type needs, without YAML.
        .target(name: "SPIOCoding", swiftSettings: optimise),
        // YAML configuration files and study composition (presets, variants, grids, sweeps, --set),
        // errors as file:line:column: key.path: message. The only module that imports Yams.
        .target(
            name: "SPIOConfig", dependencies: ["SPIOCoding", .product(name: "Yams", package: "Yams")],
            swiftSettings: optimise),
        // The View Line forward model: shapes, dipole field (FFTW), imaging, noise, anatomy, datasets.
        .target(
            name: "SPIOPhysics",
            dependencies: ["SPIOTensor", "SPIOImageIO", "SPIOPlots", "SPIODigest", "SPIOCoding", "CFFTW"],
            // Optimised in debug builds too (bounds checks stay): tests simulate thousands of images,
            // and the field kernel's tables take seconds unoptimised.
            swiftSettings: debugOptimised + optimise),
        // Training (the paper's loss, Adam, checkpointed epochs with exact resume), evaluation, prediction.
        .target(
            name: "SPIOTraining",
            dependencies: [
                "SPIONetworks", "SPIOTensor", "SPIOImageIO", "SPIOPlots", "SPIOCoding", "SPIOProcess", "SPIOPhysics"
            ],
            swiftSettings: optimise),
        // Studies: YAML plans with presets and grids, the SQLite run store (GRDB), the cached runner, reports.
        .target(
            name: "SPIOExperiments",
            dependencies: [
                "SPIOConfig", "SPIOCoding", "SPIOPhysics", "SPIONetworks", "SPIOTraining", "SPIOImageIO",
                "SPIOPlots", "SPIOProcess", "SPIODigest", "SPIOTensor", "SPIOKernels",
                .product(name: "GRDB", package: "GRDB.swift")
            ],
            swiftSettings: optimise),
        // `spio bench` measurements, kept out of the executable so tests can drive them.
        .target(
            name: "SPIOBench",
            dependencies: ["SPIOTensor", "SPIOKernels", "SPIONetworks", "SPIOPhysics", "CBLAS"],
            swiftSettings: optimise),
        .executableTarget(
            name: "spio",
            dependencies: [
                "SPIOTensor", "SPIOKernels", "SPIONetworks", "SPIOBench", "SPIOPhysics", "SPIOImageIO", "SPIOPlots",
                "SPIOConfig", "SPIOTraining",
                "SPIOExperiments",
                .product(name: "ArgumentParser", package: "swift-argument-parser")
            ]),
        // Linked into the test executable: re-executes it on the portable OpenBLAS kernels, as spio does.
        .target(name: "PortableTestKernels", path: "Tests/PortableTestKernels"),
        // What test targets share: a scratch folder per test (`ScratchDirectoryTestCase`).
        .target(name: "SPIOTestSupport", path: "Tests/SPIOTestSupport"),
        .testTarget(
            name: "SPIOTensorTests", dependencies: ["SPIOTensor", "CFFTW", "PortableTestKernels", "SPIODigest"]),
        .testTarget(name: "SPIOKernelsTests", dependencies: ["SPIOKernels", "PortableTestKernels"]),
        .testTarget(name: "SPIOBenchTests", dependencies: ["SPIOBench"]),
        .testTarget(name: "SPIOPlotsTests", dependencies: ["SPIOPlots", "SPIOImageIO", "SPIOTestSupport"]),
        .testTarget(
            name: "SPIONetworksTests", dependencies: ["SPIONetworks", "SPIOTensor"], resources: [.copy("Fixtures")]),
        .testTarget(
            name: "SPIOImageIOTests", dependencies: ["SPIOImageIO", "SPIOPlots", "SPIODigest", "SPIOTestSupport"],
            resources: [.copy("Fixtures")]),
        .testTarget(
            name: "SPIOExperimentsTests",
            dependencies: [
                "SPIOExperiments", "SPIOKernels", "SPIOConfig", "SPIOCoding", "SPIOTraining", "SPIONetworks",
                "SPIOProcess",
                "SPIOPhysics", "SPIOTensor", "SPIOTestSupport",
                .product(name: "GRDB", package: "GRDB.swift")
            ]),
        .testTarget(
            name: "SPIOTrainingTests", dependencies: ["SPIOTraining", "SPIONetworks", "SPIOTensor", "SPIOPhysics"]),
        .testTarget(name: "SPIOConfigTests", dependencies: ["SPIOConfig", "SPIOTestSupport"]),
        .testTarget(
            name: "SPIOPhysicsTests",
            dependencies: ["SPIOPhysics", "SPIOImageIO", "SPIOTensor", "SPIOConfig", "SPIOCoding", "SPIODigest"])
    ],
    swiftLanguageModes: [.v5]
)

/// -O (with bounds checks) in debug builds, for modules whose work the tests do at scale.
var debugOptimised: [SwiftSetting] { [.unsafeFlags(["-O"], .when(configuration: .debug))] }

/// -O and, on x86-64, the release builds' CPU level (AVX2/FMA) in debug builds: for SIMD kernels that
/// must compute the same bits in the tests as in release builds.
var debugOptimisedAVX2: [SwiftSetting] {
    #if arch(x86_64)
    [.unsafeFlags(["-O", "-target-cpu", "haswell"], .when(configuration: .debug))]
    #else
    debugOptimised
    #endif
}

/// Hot loops are written against unsafe pointers; bounds checks stay on in debug builds. On x86-64
/// release builds target AVX2/FMA (Haswell, 2013+, the same kernel level OpenBLAS picks here) so the
/// copy and element-wise loops vectorise 8 wide.
var optimise: [SwiftSetting] {
    #if arch(x86_64)
    [.unsafeFlags(["-Ounchecked", "-target-cpu", "haswell"], .when(configuration: .release))]
    #else
    [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
    #endif
}
