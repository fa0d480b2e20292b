// swift-tools-version:6.0
import PackageDescription

let linuxOnly: [Platform] = [.linux]

let package = Package(
    name: "runpipe",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "runpipe", targets: ["runpipe"]),
        .library(name: "TensorEngine", targets: ["TensorEngine"]),
        .library(name: "Layers", targets: ["Layers"]),
        .library(name: "Checkpoints", targets: ["Checkpoints"]),
        .library(name: "Tokenizers", targets: ["Tokenizers"]),
        .library(name: "Images", targets: ["Images"]),
        .library(name: "Training", targets: ["Training"]),
        .library(name: "Models", targets: ["Models"]),
        .library(name: "Tables", targets: ["Tables"]),
        .library(name: "Cache", targets: ["Cache"]),
        .library(name: "Spec", targets: ["Spec"]),
        .library(name: "Pipeline", targets: ["Pipeline"]),
        .library(name: "Registry", targets: ["Registry"]),
        .library(name: "Reports", targets: ["Reports"]),
        .library(name: "Sweeps", targets: ["Sweeps"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/yaslab/CSV.swift", from: "2.5.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        // System libraries (module maps only; headers come from the Debian -dev packages).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG",
                       providers: [.apt(["libjpeg-dev"])]),

        // Tensor engine: storage, kernels, autograd, RNG, parallel-for.
        .target(name: "TensorEngine", dependencies: ["CBLAS"],
                swiftSettings: optimized),
        // Module tree, parameters, standard layers.
        .target(name: "Layers", dependencies: ["TensorEngine"], swiftSettings: optimized),
        // Backbones, one per file, with parameter keys equal to their checkpoints' names.
        .target(name: "Models", dependencies: ["TensorEngine", "Layers", "Checkpoints"], swiftSettings: optimized),
        // Checkpoint files and folders: safetensors (single and sharded), PyTorch zip and legacy
        // pickles through a restricted unpickler.
        .target(name: "Checkpoints", dependencies: ["TensorEngine", "ZIPFoundation"], swiftSettings: optimized),
        // Hugging Face tokenizers (tokenizer.json, vocab.txt): normalizers, pre-tokenizers,
        // WordPiece/BPE/Unigram, post-processors, decoders.
        .target(name: "Tokenizers", swiftSettings: optimized),
        // Image decoding (PNG through libpng, JPEG through libjpeg-turbo), image cells (paths,
        // bytes, base64) and the transforms backbones expect, deterministic and seeded.
        .target(name: "Images", dependencies: ["CPNG", "CJPEG", "CImageSupport", "TensorEngine"], swiftSettings: optimized),
        // setjmp-protected libpng/libjpeg calls (Swift cannot survive their longjmp), -O2 even in debug.
        .target(name: "CImageSupport", dependencies: ["CPNG", "CJPEG"], cSettings: [.unsafeFlags(["-O2"])],
                linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("jpeg")]),
        // Optimizers, schedules, (later) trainer, callbacks, metrics.
        .target(name: "Training", dependencies: ["TensorEngine"], swiftSettings: optimized),
        // CSV / JSON Lines reading, column modality detection, fitted column processors.
        .target(name: "Tables", dependencies: ["Training", "Images", .product(name: "CSV", package: "CSV.swift")],
                swiftSettings: optimized),
        // Content-addressed artifact store: hashing, canonical JSON, atomic entries, key locks.
        .target(name: "Cache", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        // The pipeline file: typed spec, YAML with source locations, overrides, JSON Schema.
        .target(name: "Spec", dependencies: ["Training", "Yams"]),
        // Compiler, stage graph, executor and run directories: spec → stages → artifacts.
        .target(name: "Pipeline",
                dependencies: ["Spec", "Tables", "Cache", "TensorEngine", "Layers", "Models",
                               "Checkpoints", "Tokenizers", "Images", "Training"],
                swiftSettings: optimized),
        // The run registry: every run and sweep in an embedded SQLite database beside the cache.
        .target(name: "Registry", dependencies: ["Cache", "Yams", .product(name: "GRDB", package: "GRDB.swift")]),
        // Self-contained HTML reports with inline SVG plots, from run and sweep folders.
        .target(name: "Reports", dependencies: ["Cache", "Yams"]),
        // Sweeps: trials from a `sweep:` section or flags, run as processes sharing the cache.
        .target(name: "Sweeps", dependencies: ["Spec", "Cache", "Pipeline", "Registry"]),

        .executableTarget(
            name: "runpipe",
            dependencies: [
                "TensorEngine", "Layers", "Models", "Checkpoints", "Tokenizers", "Images", "Training",
                "Tables", "Cache", "Spec", "Pipeline", "Registry", "Reports", "Sweeps",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: optimized),
        .executableTarget(
            name: "runpipe-bench",
            dependencies: ["TensorEngine", "Layers", "Models", "Checkpoints", "Tokenizers", "Images", "Training"],
            path: "benchmarks/RunpipeBench",
            swiftSettings: optimized),

        .testTarget(name: "TensorEngineTests", dependencies: ["TensorEngine", "Checkpoints"]),
        .testTarget(name: "LayersTests", dependencies: ["Layers", "TensorEngine", "Checkpoints"]),
        .testTarget(name: "CheckpointsTests", dependencies: ["Checkpoints", "TensorEngine"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"]),
        .testTarget(name: "ImagesTests", dependencies: ["Images", "TensorEngine"]),
        .testTarget(name: "ModelsTests", dependencies: ["Models", "Layers", "TensorEngine", "Checkpoints", "Tokenizers", "Images", "Training"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "Layers", "TensorEngine"]),
        .testTarget(name: "TablesTests", dependencies: ["Tables", "Training"]),
        .testTarget(name: "CacheTests", dependencies: ["Cache"]),
        .testTarget(name: "SpecTests", dependencies: ["Spec", "Training"], exclude: ["Fixtures"]),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "Spec", "Tables", "Cache", "Images"]),
        .testTarget(name: "RegistryTests", dependencies: ["Registry", "Cache"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Images"]),
        .testTarget(name: "SweepsTests", dependencies: ["Sweeps", "Spec", "Registry", "Pipeline"]),
        // Runs the built `runpipe` binary: exit statuses, standard error, files left behind.
        .testTarget(name: "RunpipeCLITests", dependencies: ["runpipe"]),
    ],
    swiftLanguageModes: [.v5]
)

// Kernels are written with SIMD8<Float> and fused multiply-add; AVX2 + FMA (every x86-64 machine
// runpipe targets has them) lets the compiler emit 256-bit instructions for them.
var optimized: [SwiftSetting] {
    [.unsafeFlags(["-target-cpu", "haswell"], .when(platforms: linuxOnly))]
}
