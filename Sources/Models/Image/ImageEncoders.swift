// The registry of image backbone families and strict weight loading. A checkpoint is described
// by what its files say (config.json when there is one, the tensor names and shapes) plus the
// `architecture` the pipeline file names; each family recognises its own checkpoints and builds
// a module whose parameter keys equal that checkpoint's names (the key layout — torchvision,
// timm, Hugging Face — is chosen at construction, so loading needs no rename table).
import Checkpoints
import Foundation
import Layers
import TensorEngine

/// Everything known about an image checkpoint before a model is built.
public struct ImageCheckpointDescription: Sendable {
    /// The architecture the pipeline file names (`resnet18`, `mobilenet_v2`, …), or nil.
    public var architecture: String?
    /// config.json's bytes when the checkpoint has one (Hugging Face and timm folders do).
    public var configJSON: Data?
    /// Every tensor's key and shape.
    public var tensorShapes: [String: [Int]]
    /// Where the checkpoint lives, for messages.
    public var source: String

    public init(architecture: String?, configJSON: Data?, tensorShapes: [String: [Int]], source: String) {
        self.architecture = architecture
        self.configJSON = configJSON
        self.tensorShapes = tensorShapes
        self.source = source
    }
}

/// An image backbone family: which architecture names it answers to, how it recognises its
/// checkpoints and how it builds a model for one.
struct ImageEncoderFamily {
    /// Family name for messages (`resnet`, `vit`, …).
    let name: String
    /// Architecture names this family builds (`resnet18`, `resnet50`, …).
    let architectures: [String]
    /// Whether `description` is a checkpoint of this family (by architecture name, config.json
    /// or key names). Must not throw for other families' checkpoints.
    let recognises: (ImageCheckpointDescription) -> Bool
    /// Builds the model for a recognised checkpoint with fresh weights, with parameter keys equal
    /// to the checkpoint's (classifier included when the checkpoint has one). Throws
    /// `ImageEncoderError` naming what does not fit.
    let build: (ImageCheckpointDescription, RandomSource) throws -> any ImageEncoder
}

/// An encoder together with what loading it did.
public struct LoadedImageEncoder {
    public let encoder: any ImageEncoder
    /// The family that built it (`resnet`, `mobilenet_v2`, …).
    public let family: String
    /// Checkpoint keys deliberately not loaded (e.g. `num_batches_tracked`), sorted.
    public let ignoredKeys: [String]
    /// What the encoder was built from: with it, `build` makes the same module again without
    /// reading the weights (a fine-tuned run rebuilds its backbone from this).
    public let description: ImageCheckpointDescription
}

/// The image backbone families runpipe implements.
public enum ImageEncoders {
    /// Families in the order they are asked to recognise a checkpoint.
    static var families: [ImageEncoderFamily] {
        [
            .resnet,
            .mobileNetV2,
            .efficientNetLite,
            .vit,
            .convNeXt,
        ]
    }

    /// Tensor names no family loads: BatchNorm's step counters.
    static func isAlwaysIgnored(_ key: String) -> Bool { key.hasSuffix("num_batches_tracked") }

    /// Every architecture name `backbones.image.architecture` accepts, sorted.
    public static var supportedArchitectures: [String] { families.flatMap(\.architectures).sorted() }

    /// The family that recognises `description`; throws `unsupportedArchitecture` listing the
    /// supported names, or `unrecognisedCheckpoint` when nothing names or matches one.
    static func family(for description: ImageCheckpointDescription) throws -> ImageEncoderFamily {
        if let name = description.architecture {
            guard let family = families.first(where: { $0.architectures.contains(name) }) else {
                throw ImageEncoderError.unsupportedArchitecture(name, supported: supportedArchitectures)
            }
            return family
        }
        guard let family = families.first(where: { $0.recognises(description) }) else {
            throw ImageEncoderError.unrecognisedCheckpoint(source: description.source, supported: supportedArchitectures)
        }
        return family
    }

    /// Builds the model `description` calls for, with fresh weights.
    public static func build(_ description: ImageCheckpointDescription, rng: RandomSource) throws -> any ImageEncoder {
        try family(for: description).build(description, rng)
    }

    /// Copies `tensors` into `encoder` strictly: every parameter and buffer set with its exact
    /// shape, every tensor used except BatchNorm step counters. Throws `shapeMismatch`,
    /// `missingWeights` or `unexpectedWeights` before changing anything.
    @discardableResult
    public static func load(tensors: [String: Tensor], into encoder: any ImageEncoder) throws -> [String] {
        let state = encoder.stateDict()
        let shapes = Dictionary(state.map { ($0.key, $0.tensor.shape) }, uniquingKeysWith: { a, _ in a })
        var ignored: [String] = [], unexpected: [String] = []
        for key in tensors.keys.sorted() where shapes[key] == nil {
            if isAlwaysIgnored(key) { ignored.append(key) } else { unexpected.append(key) }
        }
        for (key, shape) in shapes.sorted(by: { $0.key < $1.key }) {
            if let t = tensors[key], t.shape != shape {
                throw ImageEncoderError.shapeMismatch(key: key, model: shape, checkpoint: t.shape)
            }
        }
        let missing = shapes.keys.filter { tensors[$0] == nil }.sorted()
        if !missing.isEmpty { throw ImageEncoderError.missingWeights(keys: missing) }
        if !unexpected.isEmpty { throw ImageEncoderError.unexpectedWeights(keys: unexpected) }
        for (key, target) in state {
            guard let source = tensors[key] else { continue }
            let contiguous = source.isContiguous ? source : source.clone()
            withExtendedLifetime(contiguous) { target.data.update(from: contiguous.data, count: target.count) }
        }
        return ignored
    }

    /// Reads the checkpoint at `url` (a Hugging Face or timm folder, a folder holding one weights
    /// file, or the file itself), builds the model it holds and loads it strictly, in evaluation
    /// mode. `architecture` names the model when the files do not (a torchvision `.pth`).
    public static func load(checkpoint url: URL, architecture: String?, rng: RandomSource) throws -> LoadedImageEncoder {
        let folder = try CheckpointFolder(url)
        let tensors = try folder.loadTensors()
        let description = ImageCheckpointDescription(
            architecture: architecture, configJSON: try folder.configData(),
            tensorShapes: tensors.mapValues(\.shape), source: url.path)
        let family = try family(for: description)
        let encoder = try family.build(description, rng)
        let ignored = try load(tensors: tensors, into: encoder)
        encoder.eval()
        return LoadedImageEncoder(encoder: encoder, family: family.name, ignoredKeys: ignored, description: description)
    }
}

/// A typed error from building or loading an image backbone; messages name the architecture,
/// configuration key or dotted checkpoint key and say what would be accepted.
public enum ImageEncoderError: Error, CustomStringConvertible, Equatable {
    case unsupportedArchitecture(String, supported: [String])
    /// No architecture was named and nothing in the checkpoint identifies one.
    case unrecognisedCheckpoint(source: String, supported: [String])
    /// A configuration value (config.json key or one inferred from tensor shapes) that does not fit.
    case invalidConfiguration(architecture: String, key: String, reason: String)
    case missingWeights(keys: [String])
    case unexpectedWeights(keys: [String])
    case shapeMismatch(key: String, model: [Int], checkpoint: [Int])
    /// Images the backbone cannot read (wrong rank, channels, or a size below its minimum).
    case invalidInput(String)

    public var description: String {
        switch self {
        case .unsupportedArchitecture(let name, let supported):
            return "image architecture '\(name)' is not supported; supported: \(supported.joined(separator: ", "))"
        case .unrecognisedCheckpoint(let source, let supported):
            return "'\(source)': cannot tell which image architecture these weights are; name it with `architecture:` (one of \(supported.joined(separator: ", ")))"
        case .invalidConfiguration(let arch, let key, let reason):
            return "\(arch): '\(key)' \(reason)"
        case .missingWeights(let keys):
            return WeightMismatch.missing(keys)
        case .unexpectedWeights(let keys):
            return WeightMismatch.unexpected(keys)
        case .shapeMismatch(let key, let model, let checkpoint):
            return WeightMismatch.shape(key: key, model: model, checkpoint: checkpoint)
        case .invalidInput(let detail):
            return "image backbone input: \(detail)"
        }
    }
}
