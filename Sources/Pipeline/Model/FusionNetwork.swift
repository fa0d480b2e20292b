import Foundation
import Images
import Layers
import Models
import Spec
import TensorEngine
import Training

/// Everything needed to rebuild a trained network before loading its weights; saved as
/// `model/model.json` in a run.
struct NetworkConfig: Codable, Equatable {
    enum Backbone: Codable, Equatable {
        case mlp(TabularMLPConfig)
        case ftTransformer(FTTransformerConfig)
    }

    /// The tabular backbone; nil when no numeric or categorical column is used.
    var backbone: Backbone?
    /// The text branch; nil when there is no text column.
    var text: TextBranchConfig?
    /// The image branch; nil when there is no image column.
    var image: ImageBranchConfig? = nil
    /// Hidden widths of the fusion MLP over the backbone features (empty: head reads them directly).
    var fusionHidden: [Int]
    var fusionDropout: Float
    var schema: TabularSchema
    var problem: ProblemType
    /// Logits (classes) or 1 for regression.
    var outputs: Int
    /// Seeds initialisation and dropout.
    var seed: UInt64
    /// The tasks' blocks of logits and their losses (several label columns or multi-label);
    /// nil for one binary, multiclass or regression label.
    var targets: TargetLayout? = nil
}

/// Which encoder weights train, and so what the pipeline caches in front of the network.
enum TextTrainMode: Codable, Equatable {
    /// Every weight trains; the network reads token ids.
    case full
    /// Nothing trains; the network reads cached pooled features.
    case frozen
    /// The top `n` layers train; the network reads cached hidden states entering them.
    case topLayers(Int)

    var summary: String {
        switch self {
        case .full: return "fine-tuned"
        case .frozen: return "frozen, features cached"
        case .topLayers(let n): return "top \(n) layer\(n == 1 ? "" : "s") fine-tuned, hidden states below cached"
        }
    }
}

/// The text branch: a pretrained encoder over one or more token sequences per row, pooled and
/// concatenated.
struct TextBranchConfig: Codable, Equatable {
    var checkpoint: TextCheckpoint
    var mode: TextTrainMode
    /// Text columns in order.
    var columns: [String]
    /// Token sequences per row: 1 when joined, one per column when separate.
    var segments: Int

    /// The first layer that trains (and so the layer whose input is cached).
    var firstTrainableLayer: Int {
        switch mode {
        case .full: return 0
        case .frozen: return checkpoint.layers
        case .topLayers(let n): return max(0, checkpoint.layers - n)
        }
    }

    var featureWidth: Int { checkpoint.hidden * segments }
}

/// Which image backbone weights train.
enum ImageTrainMode: Codable, Equatable {
    /// Every weight trains; the network reads (augmented) pixels.
    case full
    /// Nothing trains; the network reads cached pooled features.
    case frozen
    /// The top `n` blocks train; the network reads (augmented) pixels.
    case topBlocks(Int)

    init(_ t: ImageTrainable) {
        switch t {
        case .full: self = .full
        case .frozen: self = .frozen
        case .topBlocks(let n): self = .topBlocks(n)
        }
    }

    var summary: String {
        switch self {
        case .full: return "fine-tuned with augmentation"
        case .frozen: return "frozen, features cached"
        case .topBlocks(let n): return "top \(n) block\(n == 1 ? "" : "s") fine-tuned with augmentation"
        }
    }
}

/// The image branch: one pretrained backbone shared by every image column; a cell's images are
/// averaged, the columns' features concatenated.
struct ImageBranchConfig: Codable, Equatable {
    var checkpoint: ImageCheckpoint
    var reading: ImageReading
    var mode: ImageTrainMode
    /// Image columns in order.
    var columns: [String]
    var shape: ImageEncoderShape
    /// What rebuilds the backbone without its checkpoint (a fine-tuned run's weights are its own).
    var description: StoredImageDescription

    var featureWidth: Int { shape.features * columns.count }
}

/// `ImageCheckpointDescription` in a form model.json can hold.
struct StoredImageDescription: Codable, Equatable {
    var architecture: String?
    var configJSON: String?
    var tensorShapes: [String: [Int]]

    enum CodingKeys: String, CodingKey {
        case architecture
        case configJSON = "config_json"
        case tensorShapes = "tensor_shapes"
    }

    init(_ d: ImageCheckpointDescription) {
        architecture = d.architecture
        configJSON = d.configJSON.map { String(decoding: $0, as: UTF8.self) }
        tensorShapes = d.tensorShapes
    }

    var description: ImageCheckpointDescription {
        ImageCheckpointDescription(architecture: architecture, configJSON: configJSON.map { Data($0.utf8) },
                                   tensorShapes: tensorShapes, source: "model.json")
    }
}

/// One image column of a batch (or all of them, pooled), in the form the branch's mode reads.
enum ImageInput {
    /// Normalised images [n, 3, size, size] and the batch row each belongs to.
    case pixels(Tensor, owners: [Int], rows: Int)
    /// Cached pooled features of every image column, [B, columns × features].
    case pooled(Tensor)
}

/// One text input of a batch, in the form the branch's mode reads.
enum TextInput {
    /// Token ids: the whole encoder runs.
    case tokens(TokenBatch)
    /// Hidden states entering the first trainable layer, with the tokens they belong to.
    case hidden(Tensor, TokenBatch)
    /// Pooled features `[B, hidden]`.
    case pooled(Tensor)
}

/// A batch of network inputs.
struct NetworkBatch {
    var numeric: Tensor?
    var categorical: [Int32]
    var text: [TextInput]
    var images: [ImageInput] = []
}

/// Tabular backbone and text encoder → concatenation → fusion MLP → task head.
/// Parameter keys: `backbone.*`, `text.encoder.*` (when any encoder weight trains), `fusion.<i>.*`,
/// `head.*`.
final class FusionNetwork: Module {
    let config: NetworkConfig
    let backbone: (any TabularBackbone)?
    /// The text encoder; registered (and saved) only when some of it trains. A frozen encoder
    /// is attached for prediction from token ids without becoming part of the weights.
    private(set) var encoder: (any TextEncoder)?
    /// The image backbone; registered (and saved) unless frozen, like the text encoder.
    private(set) var imageEncoder: (any ImageEncoder)?
    let fusion: [Linear]
    let fusionActivation: Layers.Activation = .relu
    let fusionDropout: Dropout?
    let head: TaskHead

    /// Builds the network. `encoder` is the text encoder when the config has a text branch whose
    /// weights train (pretrained weights already loaded, or to be overwritten by a run's weights).
    init(_ config: NetworkConfig, encoder: (any TextEncoder)? = nil, imageEncoder: (any ImageEncoder)? = nil) throws {
        self.config = config
        let rng = RandomSource(seed: config.seed)
        switch config.backbone {
        case .mlp(let c)?: backbone = try TabularMLP(c, schema: config.schema, rng: rng)
        case .ftTransformer(let c)?: backbone = try FTTransformer(c, schema: config.schema, rng: rng)
        case nil: backbone = nil
        }
        if let text = config.text, text.mode != .frozen, encoder == nil {
            throw PipelineError.internalInconsistency("a \(text.mode.summary) text branch needs its encoder")
        }
        if let image = config.image, image.mode != .frozen, imageEncoder == nil {
            throw PipelineError.internalInconsistency("a \(image.mode.summary) image branch needs its backbone")
        }
        self.encoder = encoder
        self.imageEncoder = imageEncoder
        var width = (backbone?.outputDim ?? 0) + (config.text?.featureWidth ?? 0) + (config.image?.featureWidth ?? 0)
        guard width > 0 else { throw PipelineError.internalInconsistency("network without inputs") }
        var layers: [Linear] = []
        for h in config.fusionHidden {
            layers.append(Linear(width, h, rng: rng))
            width = h
        }
        fusion = layers
        fusionDropout = config.fusionDropout > 0 && !layers.isEmpty ? Dropout(config.fusionDropout, rng: rng) : nil
        head = try TaskHead(inputDim: width,
                            kind: config.problem == .regression || config.outputs == 1 ? .regression : .classification(classes: config.outputs),
                            rng: rng)
        super.init()
        if let backbone { register(child: "backbone", backbone) }
        if let encoder, config.text?.mode != .frozen { register(child: "text.encoder", encoder) }
        if let imageEncoder, let image = config.image, image.mode != .frozen {
            register(child: "image.encoder", imageEncoder)
            if case .topBlocks(let n) = image.mode { try freezeImageBelowTop(n, imageEncoder) }
        }
        for (i, l) in fusion.enumerated() { register(child: "fusion.\(i)", l) }
        register(child: "head", head)
        if let text = config.text, let encoder { try freezeBelow(text.firstTrainableLayer, encoder) }
    }

    /// Freezes the embeddings and every layer below `first` (nothing when `first` is 0).
    private func freezeBelow(_ first: Int, _ encoder: any TextEncoder) throws {
        guard first > 0 else { return }
        try encoder.freeze()
        for layer in first..<encoder.shape.layers {
            for prefix in encoder.parameterPrefixes(ofLayer: layer) {
                try encoder.unfreeze(matching: "^" + NSRegularExpression.escapedPattern(for: prefix))
            }
        }
    }

    /// How batches feed the image branch (no augmentation: scoring); nil without images.
    var imageBatchSource: ImageBatchSource? {
        config.image.map { ImageBatchSource(mode: $0.mode, batcher: ImageBatcher(size: $0.reading.size, mean: $0.shape.mean, std: $0.shape.std)) }
    }

    /// Freezes the stem and every block but the top `n` of the image backbone.
    private func freezeImageBelowTop(_ n: Int, _ encoder: any ImageEncoder) throws {
        try encoder.freeze()
        for block in max(0, encoder.shape.blocks - n)..<encoder.shape.blocks {
            for prefix in encoder.parameterPrefixes(ofBlock: block) {
                try encoder.unfreeze(matching: "^" + NSRegularExpression.escapedPattern(for: prefix))
            }
        }
    }

    /// Attaches a frozen image backbone so the network can read pixels (prediction on new rows).
    func attachFrozenImageEncoder(_ e: any ImageEncoder) {
        e.eval()
        imageEncoder = e
    }

    /// Attaches a frozen encoder so the network can read token ids (prediction on new rows).
    func attachFrozenEncoder(_ e: any TextEncoder) {
        e.eval()
        encoder = e
    }

    /// Logits `[B, outputs]`.
    func logits(_ batch: NetworkBatch) throws -> Tensor {
        var features: [Tensor] = []
        if let backbone {
            features.append(try backbone.forward(numeric: batch.numeric, categorical: batch.categorical))
        }
        if let text = config.text {
            for input in batch.text { features.append(try textFeatures(input, text)) }
        }
        if let image = config.image {
            for input in batch.images { features.append(try imageFeatures(input, image)) }
        }
        var h = features.count == 1 ? features[0] : try concat(features, axis: 1)
        for l in fusion {
            h = try fusionActivation.apply(try l(h))
            if let fusionDropout { h = try fusionDropout(h) }
        }
        return try head(h)
    }

    private func imageFeatures(_ input: ImageInput, _ image: ImageBranchConfig) throws -> Tensor {
        switch input {
        case .pooled(let f):
            return f
        case .pixels(let pixels, let owners, let rows):
            guard let imageEncoder else { throw PipelineError.internalInconsistency("pixels without an image backbone") }
            let average = try ImageBatcher.averaging(owners: owners, rows: rows)
            if image.mode == .frozen {
                return try withNoGrad { try matmul(average, try imageEncoder.features(pixels)) }
            }
            return try matmul(average, try imageEncoder.features(pixels))
        }
    }

    private func textFeatures(_ input: TextInput, _ text: TextBranchConfig) throws -> Tensor {
        switch input {
        case .pooled(let f):
            return f
        case .hidden(let h, let tokens):
            guard let encoder else { throw PipelineError.internalInconsistency("hidden states without an encoder") }
            let out = try encoder.encode(h, batch: tokens, layers: text.firstTrainableLayer..<encoder.shape.layers)
            return try pool(out, batch: tokens, text.checkpoint.pooling)
        case .tokens(let tokens):
            guard let encoder else { throw PipelineError.internalInconsistency("token ids without an encoder") }
            if text.mode == .frozen {
                return try withNoGrad { try pool(try encoder(tokens), batch: tokens, text.checkpoint.pooling) }
            }
            return try pool(try encoder(tokens), batch: tokens, text.checkpoint.pooling)
        }
    }

    /// The training loss of a batch: cross-entropy over class indices, or MSE on standardised targets.
    func loss(_ logits: Tensor, targets: [Float]) throws -> Tensor {
        if let layout = config.targets { return try layout.loss(logits, targets: targets) }
        switch config.problem {
        case .multilabel: throw PipelineError.internalInconsistency("a multi-label network without its target layout")
        case .binary, .multiclass: return try head.loss(logits, classes: targets.map { Int($0) })
        case .regression: return try head.loss(logits, values: targets)
        }
    }
}
