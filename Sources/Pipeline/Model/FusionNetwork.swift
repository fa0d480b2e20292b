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
    /// Hidden widths of runpipe's first fusion MLP (runs written before AutoMM's fusion modules;
    /// empty: the head reads the single backbone's features directly).
    var fusionHidden: [Int]
    var fusionDropout: Float
    /// AutoMM's fusion module over two or more backbone outputs; nil: no fusion module.
    var fusionModule: Models.FusionKind? = nil
    /// The training loss.
    var loss: TaskLoss = .auto
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

/// Tabular backbone, text encoder and image backbone → AutoMM's fusion module (two or more
/// backbone outputs) or the task head (one). A backbone output is the tabular backbone's vector,
/// one pooled vector per text sequence (one, or one per column with `combine: separate`) and the
/// image columns' pooled vectors, concatenated.
/// Parameter keys: `backbone.*`, `text.encoder.*` and `image.encoder.*` (when any of their
/// weights train), `fusion.*` (AutoMM's module: adapters, MLP or blocks, its head) or `head.*`;
/// runs written before #6 may hold `fusion.<i>.*` + `head.*` (the first fusion MLP).
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
    /// AutoMM's fusion module (with its own head); nil with a single backbone output.
    let fusionModule: (any FusionModule)?
    /// The task head when there is no fusion module.
    let head: TaskHead?

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
        let widths = FusionNetwork.inputWidths(config, backbone: backbone)
        guard !widths.isEmpty else { throw PipelineError.internalInconsistency("network without inputs") }
        if let kind = config.fusionModule {
            fusionModule = try kind.build(inputWidths: widths, outputs: config.outputs, rng: rng)
            fusion = []
            fusionDropout = nil
            head = nil
        } else {
            var width = widths.reduce(0, +)
            var layers: [Linear] = []
            for h in config.fusionHidden {
                layers.append(Linear(width, h, rng: rng))
                width = h
            }
            fusion = layers
            fusionDropout = config.fusionDropout > 0 && !layers.isEmpty ? Dropout(config.fusionDropout, rng: rng) : nil
            fusionModule = nil
            head = try TaskHead(inputDim: width,
                                kind: config.problem == .regression || config.outputs == 1 ? .regression : .classification(classes: config.outputs),
                                rng: rng)
        }
        super.init()
        if let backbone { register(child: "backbone", backbone) }
        if let encoder, config.text?.mode != .frozen { register(child: "text.encoder", encoder) }
        if let imageEncoder, let image = config.image, image.mode != .frozen {
            register(child: "image.encoder", imageEncoder)
            if case .topBlocks(let n) = image.mode { try freezeImageBelowTop(n, imageEncoder) }
        }
        for (i, l) in fusion.enumerated() { register(child: "fusion.\(i)", l) }
        if let fusionModule { register(child: "fusion", fusionModule) }
        if let head { register(child: "head", head) }
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

    /// The feature width of each backbone output, in the order `outputs(_:)` produces them.
    static func inputWidths(_ config: NetworkConfig, backbone: (any TabularBackbone)?) -> [Int] {
        var widths: [Int] = []
        if let backbone { widths.append(backbone.outputDim) }
        if let text = config.text { widths += Array(repeating: text.checkpoint.hidden, count: text.segments) }
        if let image = config.image { widths.append(image.featureWidth) }
        return widths
    }

    /// How many backbone outputs a configuration has (a fusion module needs two or more).
    static func backboneOutputs(_ config: NetworkConfig) -> Int {
        (config.backbone == nil ? 0 : 1) + (config.text?.segments ?? 0) + (config.image == nil ? 0 : 1)
    }

    /// Logits `[B, outputs]`.
    func logits(_ batch: NetworkBatch) throws -> Tensor { try outputs(batch).fused }

    /// The fused logits and, with auxiliary heads, each backbone output's own logits.
    func outputs(_ batch: NetworkBatch) throws -> FusionLogits {
        var features: [Tensor] = []
        if let backbone {
            features.append(try backbone.forward(numeric: batch.numeric, categorical: batch.categorical))
        }
        if let text = config.text {
            for input in batch.text { features.append(try textFeatures(input, text)) }
        }
        if let image = config.image {
            let columns = try batch.images.map { try imageFeatures($0, image) }
            if !columns.isEmpty { features.append(columns.count == 1 ? columns[0] : try concat(columns, axis: 1)) }
        }
        if let fusionModule { return try fusionModule.logits(features: features) }
        guard let head else { throw PipelineError.internalInconsistency("a network with neither a fusion module nor a head") }
        var h = features.count == 1 ? features[0] : try concat(features, axis: 1)
        for l in fusion {
            h = try fusionActivation.apply(try l(h))
            if let fusionDropout { h = try fusionDropout(h) }
        }
        return (try head(h), [])
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

    /// The training loss of a batch: `config.loss` on the fused logits, plus the auxiliary heads'
    /// losses weighted as AutoMM weights them. `soft` replaces the class targets with probability
    /// rows (mixup).
    func loss(_ output: FusionLogits, targets: [Float], soft: Tensor? = nil) throws -> Tensor {
        let task = { (logits: Tensor) throws -> Tensor in
            if let layout = self.config.targets { return try layout.loss(logits, targets: targets) }
            return try self.config.loss.loss(logits, problem: self.config.problem, targets: targets, soft: soft)
        }
        if let fusionModule { return try fusionModule.combinedLoss(output, loss: task) }
        return try task(output.fused)
    }

    /// The loss validation reports: the training loss of the fused logits alone.
    func scoringLoss(_ logits: Tensor, targets: [Float]) throws -> Tensor {
        if let layout = config.targets { return try layout.loss(logits, targets: targets) }
        return try config.loss.loss(logits, problem: config.problem, targets: targets, soft: nil)
    }
}
