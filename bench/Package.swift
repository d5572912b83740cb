// swift-tools-version:6.0
//
// Kiln's benchmarks, kept out of the library's manifest: peers (OpenBLAS, CLBlast), timing code and
// optimization flags live here. Run with `swift run -c release --package-path bench kiln-bench <bench>`.
import PackageDescription

let package = Package(
    name: "KilnBench",
    products: [.executable(name: "kiln-bench", targets: ["KilnBench"])],
    dependencies: [
        .package(name: "Kiln", path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CCLBlast", path: "Sources/CCLBlast", pkgConfig: "clblast", providers: [.apt(["libclblast-dev"])]),
        .systemLibrary(name: "CBenchBLAS", path: "Sources/CBenchBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .executableTarget(
            name: "KilnBench",
            dependencies: [
                .product(name: "Kiln", package: "Kiln"),
                .product(name: "KilnBackend", package: "Kiln"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                "CCLBlast", "CBenchBLAS",
            ],
            path: "Sources/KilnBench",
            swiftSettings: [.unsafeFlags(["-Ounchecked"])]
        ),
    ],
    swiftLanguageModes: [.v6]
)
