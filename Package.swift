// swift-tools-version: 6.0
// ClipLab: fast CLIP training on CPUs, and the FastCLIP / CLIPA / CLIP-UP experiments as code.
import PackageDescription

/// Flags for the numerical targets (see README, "Build flags").
///
/// Release builds:
/// - `-Ounchecked`: drops arithmetic-overflow and precondition checks inside the hot loops. The
///   kernels check shapes with `precondition` at entry; those checks are active in debug builds
///   (`swift test`). Checks that must survive release builds use `fatalError` or thrown errors.
/// - `-enforce-exclusivity=unchecked`: removes the run-time exclusivity checks on class
///   properties that kernels touch in their loops.
///
/// Debug builds (`swift run study …`, `swift run clip …`, `swift test`) optimise these targets too,
/// with every check a debug build has kept in force:
/// - `-O`: optimised code (it comes after SwiftPM's own `-Onone`, and the last level wins). `-O`
///   keeps `precondition`, arithmetic-overflow traps and exclusivity checks.
/// - `-assert-config Debug`: keeps `assert` as well, which `-O` alone would remove (the
///   bounds-checked `AlignedBuffer` subscript uses it).
/// `DEBUG` stays defined and `-g` stays on, so `#if DEBUG` code and debuggers work as before.
let hotSwiftSettings: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-enforce-exclusivity=unchecked"], .when(configuration: .release)),
    .unsafeFlags(["-O", "-assert-config", "Debug"], .when(configuration: .debug)),
]

/// The C kernels: optimised in debug builds too (SwiftPM's debug default is `-O0`).
let hotCSettings: [CSetting] = [.unsafeFlags(["-O2"], .when(configuration: .debug))]

let package = Package(
    name: "ClipLab",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Compute", targets: ["Compute"]),
        .library(name: "Layers", targets: ["Layers"]),
        .library(name: "CLIP", targets: ["CLIP"]),
        .executable(name: "clip", targets: ["clip"]),
        .executable(name: "study", targets: ["study"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
    ],
    targets: [
        // MARK: - C interop
        .systemLibrary(
            name: "CBLAS", pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(
            name: "CMPI", pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg62-turbo-dev"])]),

        // The few element-wise loops built for AVX2+FMA and AVX-512 (chosen at run time).
        .target(name: "CKernels", cSettings: hotCSettings),

        // MARK: - Library modules
        .target(
            name: "Compute",
            dependencies: ["CBLAS", "CKernels", .product(name: "RealModule", package: "swift-numerics")],
            swiftSettings: hotSwiftSettings),
        .target(
            name: "Layers",
            dependencies: ["Compute"],
            swiftSettings: hotSwiftSettings),
        .target(
            name: "Data",
            dependencies: ["Compute", "CZlib", "CPNG", "CJPEG"],
            exclude: ["Tokenizer/README.md"],
            swiftSettings: hotSwiftSettings),
        .target(
            name: "CLIP",
            dependencies: ["Compute", "Layers", "CZlib"],
            swiftSettings: hotSwiftSettings),
        .target(
            name: "Objectives",
            dependencies: ["Compute", "Layers", "Collective", .product(name: "RealModule", package: "swift-numerics")],
            swiftSettings: hotSwiftSettings),
        // CLIPA's image and text token reduction strategies (which tokens a training stage keeps).
        .target(
            name: "TokenReduction",
            dependencies: ["Compute", "Data"],
            swiftSettings: hotSwiftSettings),
        // Compute for its atomic file writer (`writeAtomically`) only.
        .target(name: "Workbench", dependencies: ["Compute"]),
        .target(
            name: "Collective",
            dependencies: ["CMPI"],
            swiftSettings: hotSwiftSettings),
        .target(
            name: "Training",
            dependencies: ["Compute", "Layers", "CLIP", "Objectives", "Data", "TokenReduction"],
            swiftSettings: hotSwiftSettings),
        .target(
            name: "Benchmarks",
            dependencies: ["Compute", "Layers", "CLIP", "Objectives", "Collective", "Training", "TokenReduction"],
            swiftSettings: hotSwiftSettings),

        // MARK: - Executables
        .executableTarget(
            name: "clip",
            dependencies: [
                "Compute", "Layers", "CLIP", "Objectives", "Collective", "Data", "Training", "Benchmarks", "CMPI", "Workbench", "TokenReduction",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),
        .executableTarget(
            name: "study",
            dependencies: [
                "Workbench", "Training", "Objectives", "Collective", "Compute", "Layers", "CLIP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "studies"),

        // MARK: - Tests
        .target(name: "TestSupport", dependencies: ["Compute"], path: "Tests/TestSupport"),
        .testTarget(name: "ComputeTests", dependencies: ["Compute", "CKernels", "TestSupport", "CMPI"]),
        .testTarget(name: "LayersTests", dependencies: ["Layers", "Compute", "TestSupport"]),
        .testTarget(name: "BenchmarksTests", dependencies: ["Benchmarks", "Compute"]),
        .testTarget(name: "DataTests", dependencies: ["Data", "Compute", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CLIPTests", dependencies: ["CLIP", "Objectives", "Layers", "Compute", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CLITests", dependencies: ["clip", "study", "Data", "Collective", "CLIP", "Compute", "Workbench"]),
        .testTarget(name: "TokenReductionTests", dependencies: ["TokenReduction", "Data", "Compute"]),
        .testTarget(name: "WorkbenchTests", dependencies: ["Workbench", "Data"]),
        .testTarget(name: "ObjectivesTests", dependencies: ["Objectives", "Collective", "Layers", "Compute", "TestSupport"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "CLIP", "Data", "Layers", "Compute", "Objectives", "TokenReduction", "TestSupport"]),
    ]
)

// MARK: - Fuzz targets
//
// libFuzzer executables over the parsers of untrusted input (README, "Fuzzing"). They exist only
// when CLIPLAB_FUZZ is set, so `swift build` and `swift test` never see them: `just fuzz`
// (scripts/fuzz.sh) sets it and builds them with libFuzzer and AddressSanitizer.
if Context.environment["CLIPLAB_FUZZ"] != nil {
    /// Each target's sources are in Fuzz/<name>/; `-parse-as-library` because libFuzzer supplies `main`.
    let fuzzTargets: [(name: String, dependencies: [Target.Dependency])] = [
        ("FuzzSafetensors", ["CLIP"]),
        ("FuzzTokenizer", ["Data"]),
        ("FuzzImages", ["Data"]),
        ("FuzzCSV", ["Data", "FuzzSupport"]),
        ("FuzzTar", ["Data", "FuzzSupport"]),
        ("FuzzZip", ["Data"]),
        ("FuzzConfig", ["CLIP", "Training", "FuzzSupport"]),
    ]
    package.targets.append(.target(name: "FuzzSupport", path: "Fuzz/FuzzSupport"))
    for t in fuzzTargets {
        package.targets.append(
            .executableTarget(
                name: t.name, dependencies: t.dependencies, path: "Fuzz/\(t.name)",
                swiftSettings: [.unsafeFlags(["-parse-as-library"])]))
        package.products.append(.executable(name: t.name, targets: [t.name]))
    }
}
