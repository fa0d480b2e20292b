import Cache
import Foundation
import Images
import Models
import Spec
import TensorEngine

/// The image backbone's checkpoint as the compiler sees it, before any data is read: where it
/// is, the content hash that keys the feature and training stages, and the settings that decide
/// how image cells become pixels.
struct ImageCheckpoint: Codable, Equatable, Sendable {
    /// The folder or weights file, absolute.
    var path: String
    /// The `architecture` the pipeline names, or nil (the files say).
    var architecture: String?
    /// SHA-256 over config.json (when there is one) and the weight files (names and contents).
    var weightsHash: String

    enum CodingKeys: String, CodingKey {
        case path, architecture
        case weightsHash = "weights_sha256"
    }

    var url: URL { URL(fileURLWithPath: path) }

    /// The pretrained backbone, loaded strictly, in evaluation mode, with the description it was
    /// built from.
    func load(seed: UInt64) throws -> LoadedImageEncoder {
        try ImageEncoders.load(checkpoint: url, architecture: architecture, rng: RandomSource(seed: seed))
    }

    /// Reads and hashes the checkpoint named by `backbones.image.checkpoint`.
    static func resolve(_ image: ImageBackboneSpec, spec: PipelineSpec, hasher: FileHasher) throws -> ImageCheckpoint {
        let key = "backbones.image.checkpoint"
        let location = spec.sources[key] ?? spec.sources["backbones.image"]
        let url = spec.resolve(image.checkpoint, declaredAt: key)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw PipelineError("image checkpoint '\(image.checkpoint)' does not exist (looked for \(url.path))", at: location,
                                hint: "scripts/fetch-models fetches mobilenet_v2 and efficientnet_lite0 into models/; paths are relative to the file that declares them")
        }
        if let name = image.architecture, !ImageEncoders.supportedArchitectures.contains(name) {
            throw PipelineError("backbones.image.architecture '\(name)' is not supported", at: spec.sources["backbones.image.architecture"] ?? location,
                                hint: "supported: \(ImageEncoders.supportedArchitectures.joined(separator: ", "))")
        }
        return ImageCheckpoint(path: url.standardizedFileURL.path, architecture: image.architecture,
                               weightsHash: try located(location) { try weightsHash(of: url, hasher: hasher) })
    }

    /// SHA-256 over the names and contents of config.json (if any) and the weight files of a
    /// checkpoint folder, or of the weights file itself.
    static func weightsHash(of url: URL, hasher: FileHasher) throws -> String {
        var isDir: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir)
        let files: [URL]
        if isDir.boolValue {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).sorted()
            let weights = TextCheckpoint.weightFiles(in: names)
            guard !weights.isEmpty else {
                throw PipelineError("image checkpoint folder \(url.path) holds no weights (.safetensors, .bin, .pth or .pt; it holds: \(names.prefix(12).joined(separator: ", ")))",
                                    hint: "point `checkpoint` at a folder with one weights file, or at the file itself")
            }
            files = (names.contains("config.json") ? ["config.json"] : []).map { url.appendingPathComponent($0) }
                + weights.map { url.appendingPathComponent($0) }
        } else {
            files = [url]
        }
        var parts: [JSONValue] = []
        for file in files {
            parts.append(.array([.string(file.lastPathComponent), .string(try hasher.hash(of: file))]))
        }
        return try JSONValue.array(parts).digest()
    }

}

/// How image cells become the pixels a backbone reads: the settings of `processors.image` and
/// `backbones.image.size` that every part (and prediction on new files) applies the same way.
struct ImageReading: Codable, Equatable, Sendable {
    var size: Int
    var missing: ImageMissing
    var maxPixels: Int
    var allowOutside: Bool
    var maxImagesPerCell: Int
    var trainTransforms: [String]
    var valTransforms: [String]

    enum CodingKeys: String, CodingKey {
        case size, missing
        case maxPixels = "max_pixels"
        case allowOutside = "allow_outside"
        case maxImagesPerCell = "max_images_per_cell"
        case trainTransforms = "train_transforms"
        case valTransforms = "val_transforms"
    }

    init(_ spec: PipelineSpec, backbone: ImageBackboneSpec) {
        let p = spec.processors.image
        size = backbone.size
        missing = p.missing
        maxPixels = p.maxPixels
        allowOutside = p.allowOutside
        maxImagesPerCell = p.maxImagesPerCell
        trainTransforms = p.trainTransforms
        valTransforms = p.valTransforms
    }

    var limits: ImageDecodeLimits { ImageDecodeLimits(maxPixels: maxPixels) }

    /// The evaluation transforms (every part but training, and training with a frozen backbone).
    func evaluationPipeline() throws -> ImageTransformPipeline {
        try ImageTransformPipeline.named(valTransforms, size: size)
    }

    /// The training transforms split into the deterministic steps before the first random one
    /// (applied once and cached) and the rest (applied to every row in every epoch).
    func trainingPipelines() throws -> (fixed: ImageTransformPipeline, random: ImageTransformPipeline) {
        let all = try ImageTransformPipeline.named(trainTransforms, size: size)
        let cut = all.steps.firstIndex { $0.isRandom } ?? all.steps.count
        return (ImageTransformPipeline(Array(all.steps[..<cut])), ImageTransformPipeline(Array(all.steps[cut...])))
    }

    /// Checks the transform names (before any data is read), pointing at the offending key.
    func validate(_ spec: PipelineSpec) throws {
        let evaluation: ImageTransformPipeline
        do { evaluation = try evaluationPipeline() } catch {
            throw PipelineError("processors.image.val_transforms: \(error)", at: spec.sources["processors.image.val_transforms"])
        }
        if evaluation.isRandom {
            throw PipelineError("processors.image.val_transforms contains a random transform; validation and prediction must see the same pixels every time",
                                at: spec.sources["processors.image.val_transforms"],
                                hint: "use resize_shorter_side, resize and center_crop there; put augmentation in train_transforms")
        }
        do { _ = try trainingPipelines() } catch {
            throw PipelineError("processors.image.train_transforms: \(error)", at: spec.sources["processors.image.train_transforms"])
        }
    }
}
