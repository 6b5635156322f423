// swift-tools-version: 6.2
import PackageDescription

// C kernels are always optimised (even in debug test builds) so the test suite stays fast;
// AVX-512 code paths are selected at run time by CPU feature checks, never assumed at build time.
let kernelFlags: [CSetting] = [.unsafeFlags(["-O2", "-fno-math-errno"])]

let package = Package(
    name: "streamdiffusion-swift",
    products: [
        .library(name: "Tensors", targets: ["Tensors"]),
        .library(name: "VulkanBackend", targets: ["VulkanBackend"]),
        .library(name: "ModelFiles", targets: ["ModelFiles"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "StreamDiffusion", targets: ["StreamDiffusion"]),
        .library(name: "Media", targets: ["Media"]),
        .library(name: "StreamDiffusionKit", targets: ["StreamDiffusionKit"]),
        .executable(name: "streamdiffusion", targets: ["streamdiffusion"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // The live server (DESIGN.md §2): HTTP and WebSocket. Traits off: no swift-configuration.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
    ],
    targets: [
        // oneDNN 2.6 from Debian's libdnnl-dev; see DESIGN.md §9.
        .systemLibrary(name: "CDNNL", path: "Sources/CDNNL"),
        // The only C that touches oneDNN's API (dnnl_glue.c), plus the vectorised kernels.
        .target(
            name: "CKernels",
            dependencies: ["CDNNL"],
            cSettings: kernelFlags,
            linkerSettings: [.linkedLibrary("gomp"), .linkedLibrary("m")]
        ),
        .target(name: "Tensors", dependencies: ["CDNNL", "CKernels"]),
        // Vulkan's headers only (Debian libvulkan-dev); the loader is opened at run time, so nothing
        // links libvulkan and programs start on machines without it (DESIGN.md §9).
        .systemLibrary(name: "CVulkan", path: "Sources/CVulkan"),
        // The GPU backend: GLSL compute shaders in Shaders/ (compiled to SPIR-V by
        // tools/compile_shaders.sh into ShaderBinaries.swift, checked by VulkanBackendTests).
        .target(name: "VulkanBackend", dependencies: ["CVulkan", "Tensors"], exclude: ["Shaders"]),
        .target(name: "ModelFiles", dependencies: ["Tensors"]),
        .target(name: "Models", dependencies: ["Tensors", "ModelFiles"]),
        .target(name: "StreamDiffusion", dependencies: ["Tensors", "ModelFiles", "Models"]),
        // Image I/O: libpng (Debian libpng-dev) through a C shim that owns every setjmp, and
        // libjpeg-turbo's TurboJPEG API (Debian libturbojpeg0-dev), called from Swift directly.
        .systemLibrary(name: "CPNG", path: "Sources/CPNG"),
        .target(name: "CPNGShim", dependencies: ["CPNG"], linkerSettings: [.linkedLibrary("png")]),
        .systemLibrary(name: "CTurboJPEG", path: "Sources/CTurboJPEG"),
        .target(name: "Media", dependencies: ["CPNGShim", "CTurboJPEG"]),
        // What a demo-model picture shows (background, colour, shape) and the 21-prompt grid it is
        // judged on: shared by DemoModelTests and `bench guidance`.
        .target(name: "DemoEvaluation", dependencies: ["Media"]),
        // `serve`: the WebSocket stream server and its browser page (embedded in the binary).
        .target(name: "StreamDiffusionKit", dependencies: ["StreamDiffusion", "Models", "ModelFiles", "Tensors", "Media", "VulkanBackend"]),
        .executableTarget(
            name: "quickstart",
            dependencies: ["StreamDiffusionKit", "Media", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Examples/QuickStart"
        ),
        .target(
            name: "LiveServer",
            dependencies: ["StreamDiffusion", "Media", "Tensors",
                           .product(name: "Hummingbird", package: "hummingbird"),
                           .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")],
            resources: [.embedInCode("Resources/index.html")]
        ),
        .executableTarget(
            name: "streamdiffusion",
            dependencies: ["Tensors", "VulkanBackend", "ModelFiles", "Models", "StreamDiffusion", "Media", "LiveServer", "DemoEvaluation",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Load client for `serve`: concurrent synthetic camera clients, latency and drop report (tools/soak).
        .executableTarget(
            name: "live-soak",
            dependencies: ["Media",
                           .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                           .product(name: "Logging", package: "swift-log"),
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Replays files through the ModelFiles parsers; `make fuzz` builds it with libFuzzer.
        .executableTarget(name: "safetensors-fuzz", dependencies: ["ModelFiles"], path: "Fuzz/SafeTensorsFuzz"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors"]),
        .testTarget(name: "VulkanBackendTests",
                    dependencies: ["VulkanBackend", "Tensors", "ModelFiles", "Models", "StreamDiffusion"]),
        .testTarget(name: "ModelFilesTests", dependencies: ["ModelFiles", "Tensors"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "ModelFiles", "Tensors"]),
        .testTarget(name: "MediaTests", dependencies: ["Media"]),
        .testTarget(name: "CLITests", dependencies: ["Media", "streamdiffusion", "quickstart"]),
        .testTarget(
            name: "LiveServerTests",
            dependencies: ["LiveServer", "StreamDiffusion", "Models", "Media", "Tensors",
                           .product(name: "HummingbirdWSClient", package: "hummingbird-websocket")]
        ),
        .testTarget(name: "StreamDiffusionTests", dependencies: ["StreamDiffusion", "Models", "ModelFiles", "Tensors"]),
        .testTarget(name: "DemoModelTests", dependencies: ["StreamDiffusion", "StreamDiffusionKit", "Models", "ModelFiles", "Tensors", "Media",
                                                        "DemoEvaluation", "VulkanBackend"]),
    ]
)
