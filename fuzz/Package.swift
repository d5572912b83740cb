// swift-tools-version:6.0
//
// Kiln's fuzz targets, kept out of the library's manifest: one libFuzzer executable per parser of user input.
// Build and run them with `make fuzz` (or `make fuzz-asan`, with AddressSanitizer), which runs
//
//     swift build -c release --package-path fuzz --sanitize=fuzzer [--sanitize=address]
//
// How the entry point works with this toolchain (Swift 6.3.1, SwiftPM on Linux): a plain executable is linked
// with `--defsym main=<Target>_main`, which would leave libFuzzer's `main` unused. With `--sanitize=fuzzer`
// SwiftPM instead compiles executable targets as libraries (`-parse-as-library`, no top-level code) and lets
// `swiftc -sanitize=fuzzer` link clang's libFuzzer runtime (`libclang_rt.fuzzer-x86_64.a`, shipped in
// /opt/swift/usr/lib/clang/*/lib/linux), whose `main` runs the fuzzing loop. So each target only defines the
// C symbol `LLVMFuzzerTestOneInput` with `@_cdecl`; no `LLVMFuzzerRunDriver` call is needed. The flag
// applies to every module of the build, so the library's own code is instrumented for coverage, not just
// these targets. Without `--sanitize=fuzzer` the executables have no `main` and do not link. (For AddressSanitizer
// too, run.sh adds `-Xswiftc -sanitize=fuzzer,address`: swiftc keeps only the last of several -sanitize= flags.)
import PackageDescription

/// One fuzz target: the product `fuzz-<name>`, the sources in `Sources/<target>`.
func fuzzTarget(_ name: String, _ target: String, dependencies: [Target.Dependency] = []) -> (Product, Target) {
    (
        .executable(name: "fuzz-\(name)", targets: [target]),
        .executableTarget(
            name: target,
            dependencies: [.product(name: "Kiln", package: "Kiln"), "FuzzSupport"] + dependencies,
            path: "Sources/\(target)"
        )
    )
}

let targets = [
    fuzzTarget("safetensors", "FuzzSafeTensors"),
    fuzzTarget("checkpoint", "FuzzCheckpoint"),
    fuzzTarget("npy", "FuzzNpy"),
    fuzzTarget("csv", "FuzzCSV"),
    fuzzTarget("gzip", "FuzzGzip", dependencies: ["CFuzzZlib"]),
    fuzzTarget("json", "FuzzJSONLines"),
    fuzzTarget("formula", "FuzzFormula"),
    fuzzTarget("text", "FuzzTextTask"),
]

let package = Package(
    name: "KilnFuzz",
    products: targets.map(\.0),
    dependencies: [.package(name: "Kiln", path: "..")],
    targets: targets.map(\.1) + [
        // Checks shared by the targets: a failed property stops the fuzzer like a crash, so the input is saved.
        .target(name: "FuzzSupport", dependencies: [.product(name: "Kiln", package: "Kiln")], path: "Sources/FuzzSupport"),
        // zlib's compressor, the writer for the gzip target's round trip (Kiln itself only decompresses).
        .systemLibrary(name: "CFuzzZlib", path: "Sources/CFuzzZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
    ],
    swiftLanguageModes: [.v6]
)
