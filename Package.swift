// swift-tools-version:6.0
//
// Kiln: train neural networks on any OpenCL device, or on the CPU through
// OpenBLAS, with the same model code.
//
// Dependencies point one way:
//   kiln (CLI) → Kiln (Frontend) → KilnBackend → KilnKernels → C modules.
// KilnPlot (SVG line charts) depends on nothing; Kiln uses it for loss and diagnostic plots.
// The benchmarks live in their own package under bench/.
import PackageDescription

let package = Package(
    name: "Kiln",
    products: [
        .library(name: "Kiln", targets: ["Kiln"]),
        .library(name: "KilnBackend", targets: ["KilnBackend"]),
        .library(name: "KilnKernels", targets: ["KilnKernels"]),
        .library(name: "KilnPlot", targets: ["KilnPlot"]),
        .library(name: "KilnFormats", targets: ["KilnFormats"]),
        .executable(name: "kiln", targets: ["KilnCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // C libraries, found through pkg-config; the Makefile installs the apt packages.
        .systemLibrary(
            name: "COpenCL",
            path: "Sources/COpenCL",
            pkgConfig: "OpenCL",
            providers: [.apt(["ocl-icd-opencl-dev", "opencl-headers"])]
        ),
        .systemLibrary(
            name: "COpenBLAS",
            path: "Sources/COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),

        // The CPU backend's inner loops in C, one file per op family: AVX2 + FMA or AVX-512 chosen at run time, portable C elsewhere.
        // dlsym: OpenBLAS's kernel-set functions are looked up at run time (Sources/CKilnCPU/blas_core.c).
        .target(name: "CKilnCPU", path: "Sources/CKilnCPU", linkerSettings: [.linkedLibrary("dl")]),

        // Open MPI (libmpi.so.40), opened with dlopen only under mpirun: no link-time MPI dependency (Sources/CKilnMPI/include/kiln_mpi.h).
        .target(name: "CKilnMPI", path: "Sources/CKilnMPI", linkerSettings: [.linkedLibrary("dl")]),

        // Finds Kernels/*.cl, builds OpenCL programs and caches their binaries on disk.
        .target(name: "KilnKernels", dependencies: ["COpenCL", "COpenSSL"], path: "Sources/Kernels"),
        // The Backend protocol and its op families, CPUBackend (OpenBLAS + C loops), OpenCLBackend, devices, the float64 Reference,
        // and the communicator between the processes of a data-parallel job (Distributed/: one process, or Open MPI).
        .target(name: "KilnBackend", dependencies: ["KilnKernels", "COpenCL", "COpenBLAS", "CKilnCPU", "CKilnMPI"], path: "Sources/Backend"),
        // Line charts and grids of them as SVG documents.
        .target(name: "KilnPlot", path: "Sources/Plot"),
        // File formats: safetensors, .npy, CSV (and gzip through zlib), JSON through Foundation, atomic writes.
        .target(name: "KilnFormats", dependencies: ["KilnPlot", "CZlib"], path: "Sources/Formats"),
        // Tensors, autograd, layers, optimizers, data and the training loop.
        .target(name: "Kiln", dependencies: ["KilnBackend", "KilnKernels", "KilnPlot", "KilnFormats"], path: "Sources/Frontend"),
        // The `kiln` command-line tool.
        .executableTarget(
            name: "KilnCLI",
            dependencies: ["Kiln", "KilnPlot", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Sources/CLI"
        ),

        // Shared test helpers: float64 references, tolerances, the list of backends to test.
        .target(name: "KilnTestSupport", dependencies: ["KilnBackend"], path: "Tests/Support"),
        .testTarget(name: "KilnKernelsTests", dependencies: ["KilnKernels", "KilnTestSupport", "COpenCL"], path: "Tests/KilnKernelsTests"),
        .testTarget(name: "KilnBackendTests", dependencies: ["KilnBackend", "KilnTestSupport"], path: "Tests/KilnBackendTests"),
        .testTarget(name: "KilnPlotTests", dependencies: ["KilnPlot"], path: "Tests/KilnPlotTests"),
        .testTarget(name: "KilnTests", dependencies: ["Kiln", "KilnPlot", "KilnTestSupport"], path: "Tests/KilnTests"),
        .testTarget(name: "KilnCLITests", dependencies: ["KilnCLI", "KilnTestSupport"], path: "Tests/KilnCLITests"),
    ],
    swiftLanguageModes: [.v6]
)
