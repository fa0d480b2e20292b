import Foundation
import Training

// The typed pipeline file. Every section's keys, defaults, constraints and descriptions are
// declared once, in `Schema+Sections.swift`; decoding, validation, the resolved YAML, Codable and
// the JSON Schema are all derived from those declarations. The stored-property defaults below are
// the same values (they are the declarations' source: a field's default is read from `init()`).

// MARK: - Top level

/// A whole pipeline file after `extends`, `--set` overrides, defaults and validation.
///
/// Load one with ``PipelineLoader/load(_:overrides:)``. Codable encodes the YAML keys with every
/// default written out, deterministically; `file` and `sources` are not encoded and take no part
/// in `==` (two specs are equal when they describe the same pipeline).
public struct PipelineSpec: Codable, Equatable, Sendable {
    /// Format version of the pipeline file; must be 1.
    public var version: Int
    /// The pipeline's name (`[A-Za-z0-9._-]+`, ≤ 64 characters); defaults to the file's stem.
    public var name: String
    /// Seed of every random choice (splits, initialisation, dropout, shuffling).
    public var seed: UInt64
    /// Where the data comes from and how its columns are read.
    public var data: DataSpec
    /// The problem type, or `.auto` to infer it from the label column.
    public var problem: ProblemChoice
    /// The evaluation metric; `nil` means `auto` (chosen from the problem type).
    public var metric: Metric?
    /// Per-modality column processors.
    public var processors: ProcessorsSpec
    /// The backbone per modality.
    public var backbones: BackbonesSpec
    /// How the backbones' outputs are fused into the prediction head.
    public var fusion: FusionSpec
    /// Optimisation: optimizer, schedule, epochs, callbacks.
    public var trainer: TrainerSpec
    /// Parameter-efficient fine-tuning of the pretrained backbones that train.
    public var peft: PEFTSpec
    /// The preset whose values sit under the file's own (nil: none).
    public var preset: PresetName?
    /// What `runpipe sweep` varies (nil: no `sweep:` section; `runpipe train` ignores it).
    public var sweep: SweepSpec?

    /// What the preset chose and could not find (not encoded; nil without a preset).
    public var presetReport: PresetReport?

    /// The pipeline file the user gave (not encoded).
    public var file: URL
    /// Where every key came from (not encoded).
    public var sources: SourceMap

    /// A spec from its parts; unspecified sections take their defaults.
    public init(version: Int = 1, name: String, seed: UInt64 = 0, data: DataSpec,
                problem: ProblemChoice = .auto, metric: Metric? = nil,
                processors: ProcessorsSpec = ProcessorsSpec(), backbones: BackbonesSpec = BackbonesSpec(),
                fusion: FusionSpec = FusionSpec(), trainer: TrainerSpec = TrainerSpec(),
                peft: PEFTSpec = PEFTSpec(), preset: PresetName? = nil, sweep: SweepSpec? = nil,
                file: URL = URL(fileURLWithPath: "pipeline.yaml"), sources: SourceMap = SourceMap()) {
        self.version = version
        self.name = name
        self.seed = seed
        self.data = data
        self.problem = problem
        self.metric = metric
        self.processors = processors
        self.backbones = backbones
        self.fusion = fusion
        self.trainer = trainer
        self.peft = peft
        self.preset = preset
        self.sweep = sweep
        self.file = file
        self.sources = sources
    }

    /// Equal when every encoded key is equal; `file` and `sources` are ignored.
    public static func == (a: PipelineSpec, b: PipelineSpec) -> Bool {
        a.version == b.version && a.name == b.name && a.seed == b.seed && a.data == b.data
            && a.problem == b.problem && a.metric == b.metric && a.processors == b.processors
            && a.backbones == b.backbones && a.fusion == b.fusion && a.trainer == b.trainer
            && a.peft == b.peft && a.preset == b.preset && a.sweep == b.sweep
    }
}

/// The `problem:` key: inferred from the label column, or fixed by the file.
public enum ProblemChoice: Codable, Equatable, Hashable, Sendable {
    /// Infer from the label column (`problem: auto`).
    case auto
    /// A problem type chosen in the file. With several label columns it applies to each of
    /// them, except `multilabel`, which makes the columns (all binary) one multi-label task.
    case fixed(ProblemType)
    /// One problem type per label column (`problem: {species: multiclass}`); columns not
    /// named are inferred. `multilabel` here means a column of label sets.
    case perTask([String: ProblemType])

    /// The fixed problem type, or nil for `auto` and per-task choices.
    public var fixed: ProblemType? {
        if case .fixed(let p) = self { return p }
        return nil
    }

    /// The problem type the file sets for label column `task`, or nil to infer it.
    public func problem(for task: String) -> ProblemType? {
        switch self {
        case .auto: return nil
        case .fixed(let p): return p
        case .perTask(let map): return map[task]
        }
    }
}

// MARK: - Data

/// The `data:` section.
public struct DataSpec: Codable, Equatable, Sendable {
    /// The training table (path relative to the file that declared it).
    public var train: String
    /// An optional test table, evaluated after training.
    public var test: String?
    /// How the validation set is made: a file, or a holdout split of `train`.
    public var validation: ValidationSpec
    /// The label columns, at least one: each is a task, or with `problem: multilabel` the
    /// binary columns of one multi-label task.
    public var labels: [String]
    /// What separates the labels in a cell of a label-set column (`problem: multilabel` on one column).
    public var labelSeparator: String
    /// With several label columns: each task's weight in the summed loss (unnamed tasks: 1).
    public var labelWeights: [String: Double]
    /// Per-column modality overrides (column name → modality or `ignore`).
    public var columns: [String: ColumnOverride]
    /// Cell values read as missing.
    public var missingValues: [String]
    /// The table format, or `auto` to go by the file extension.
    public var format: DataFormat

    /// The default missing-value markers.
    public static let defaultMissingValues = ["", "NA", "N/A", "NaN", "nan", "null", "NULL", "None"]

    /// The first label column (the only one of a single-task pipeline); setting it makes it the only one.
    public var label: String {
        get { labels.first ?? "" }
        set { labels = [newValue] }
    }

    /// A data section; everything but `train` and `label` defaults.
    public init(train: String, test: String? = nil, validation: ValidationSpec = .holdout(fraction: 0.2, stratify: true),
                label: String, columns: [String: ColumnOverride] = [:],
                missingValues: [String] = DataSpec.defaultMissingValues, format: DataFormat = .auto) {
        self.train = train
        self.test = test
        self.validation = validation
        self.labels = [label]
        self.labelSeparator = ";"
        self.labelWeights = [:]
        self.columns = columns
        self.missingValues = missingValues
        self.format = format
    }
}

/// `data.validation`: a path (YAML string) or a holdout split (`{fraction, stratify}`).
public enum ValidationSpec: Codable, Equatable, Sendable {
    /// A separate validation table.
    case file(String)
    /// Hold out `fraction` (in (0, 0.9]) of the training rows, stratified by label for
    /// classification when `stratify` is true.
    case holdout(fraction: Double, stratify: Bool)
}

/// `data.columns.<name>`: forces a column's modality, or drops it.
public enum ColumnOverride: String, Codable, CaseIterable, Sendable {
    case numeric, categorical, text, image, ignore
}

/// `data.format`.
public enum DataFormat: String, Codable, CaseIterable, Sendable {
    /// By file extension (`.csv`, `.tsv` → CSV; `.jsonl`, `.ndjson` → JSON Lines).
    case auto
    case csv
    case jsonl
}

// MARK: - Processors

/// The `processors:` section.
public struct ProcessorsSpec: Codable, Equatable, Sendable {
    /// Numeric columns.
    public var numeric: NumericProcessorSpec
    /// Categorical columns.
    public var categorical: CategoricalProcessorSpec
    /// Image columns.
    public var image: ImageProcessorSpec

    /// Every key at its default.
    public init() {
        self.init(numeric: NumericProcessorSpec(), categorical: CategoricalProcessorSpec(), image: ImageProcessorSpec())
    }

    /// Every key given.
    public init(numeric: NumericProcessorSpec, categorical: CategoricalProcessorSpec, image: ImageProcessorSpec = ImageProcessorSpec()) {
        self.numeric = numeric
        self.categorical = categorical
        self.image = image
    }
}

/// `processors.image`: reading image cells and the transforms applied before the backbone.
public struct ImageProcessorSpec: Codable, Equatable, Sendable {
    /// What a missing, unreadable or broken image does.
    public var missing: ImageMissing
    /// Images with more pixels than this are refused before decoding (decompression bombs).
    public var maxPixels: Int
    /// Whether cells may name files outside the data file's folder (absolute paths, `..`).
    public var allowOutside: Bool
    /// Transforms applied to training images, in order (AutoMM's names).
    public var trainTransforms: [String]
    /// Transforms applied to validation, test and prediction images.
    public var valTransforms: [String]
    /// At most this many images of a cell are read (AutoMM's `max_img_num_per_col`); their
    /// features are averaged.
    public var maxImagesPerCell: Int

    /// Every key at its default.
    public init() {
        self.init(missing: .zero, maxPixels: 89_478_485, allowOutside: false,
                  trainTransforms: ["resize_shorter_side", "center_crop", "trivial_augment"],
                  valTransforms: ["resize_shorter_side", "center_crop"], maxImagesPerCell: 2)
    }

    /// Every key given.
    public init(missing: ImageMissing, maxPixels: Int, allowOutside: Bool, trainTransforms: [String],
                valTransforms: [String], maxImagesPerCell: Int) {
        self.missing = missing
        self.maxPixels = maxPixels
        self.allowOutside = allowOutside
        self.trainTransforms = trainTransforms
        self.valTransforms = valTransforms
        self.maxImagesPerCell = maxImagesPerCell
    }
}

/// `processors.image.missing`.
public enum ImageMissing: String, Codable, CaseIterable, Sendable {
    /// Stop with an error naming the row and the file.
    case error
    /// Leave the row out of training and scoring, with no prediction (counted in the log).
    case skipRow = "skip_row"
    /// Use an all-zero image, as AutoMM does.
    case zero
}

/// `processors.numeric`.
public struct NumericProcessorSpec: Codable, Equatable, Sendable {
    /// How missing numbers are filled.
    public var impute: NumericImpute
    /// How numbers are scaled.
    public var scale: NumericScale

    /// Every key at its default.

    public init() {
        self.init(impute: .median, scale: .standard)

    }


    /// Every key given.

    public init(impute: NumericImpute, scale: NumericScale) {
        self.impute = impute
        self.scale = scale
    }
}

/// `processors.numeric.impute`.
public enum NumericImpute: String, Codable, CaseIterable, Sendable { case median, mean }

/// `processors.numeric.scale`.
public enum NumericScale: String, Codable, CaseIterable, Sendable { case standard, quantile, none }

/// `processors.categorical`.
public struct CategoricalProcessorSpec: Codable, Equatable, Sendable {
    /// Categories seen fewer times than this in training map to the unknown category.
    public var minCount: Int
    /// At most this many categories (the most frequent) get their own embedding.
    public var maxCategories: Int

    /// Every key at its default.

    public init() {
        self.init(minCount: 1, maxCategories: 1000)

    }


    /// Every key given.

    public init(minCount: Int, maxCategories: Int) {
        self.minCount = minCount
        self.maxCategories = maxCategories
    }
}

// MARK: - Backbones

/// The `backbones:` section (image backbones arrive later).
public struct BackbonesSpec: Codable, Equatable, Sendable {
    /// The backbone over numeric and categorical columns.
    public var tabular: TabularBackboneSpec
    /// The pretrained encoder of text columns; nil when the pipeline has none.
    public var text: TextBackboneSpec?
    /// The pretrained encoder of image columns; nil when the pipeline has none.
    public var image: ImageBackboneSpec?

    /// Every key at its default.
    public init() {
        self.init(tabular: .mlp(MLPBackboneSpec()), text: nil, image: nil)
    }

    /// Every key given.
    public init(tabular: TabularBackboneSpec, text: TextBackboneSpec? = nil, image: ImageBackboneSpec? = nil) {
        self.tabular = tabular
        self.text = text
        self.image = image
    }
}

/// `backbones.image`: a pretrained CNN or ViT (a checkpoint folder or weights file).
public struct ImageBackboneSpec: Codable, Equatable, Sendable {
    /// A Hugging Face or timm folder, a folder holding one weights file, or the file itself.
    public var checkpoint: String
    /// The architecture, when the files do not say (a torchvision `.pth` does not).
    public var architecture: String?
    /// Square side, in pixels, of the images the backbone reads.
    public var size: Int
    /// Which backbone weights train: all, none (features cached), or the top N blocks.
    public var trainable: ImageTrainable

    /// Every key at its default (`checkpoint` has none; it is required).
    public init() {
        self.init(checkpoint: "", architecture: nil, size: 224, trainable: .full)
    }

    /// Every key given.
    public init(checkpoint: String, architecture: String?, size: Int, trainable: ImageTrainable) {
        self.checkpoint = checkpoint
        self.architecture = architecture
        self.size = size
        self.trainable = trainable
    }
}

/// `backbones.image.trainable`: `full`, `frozen`, or `{top_blocks: N}`.
public enum ImageTrainable: Codable, Equatable, Sendable {
    /// Every backbone weight trains, with train-time augmentation.
    case full
    /// No backbone weight trains; pooled features are computed once and cached.
    case frozen
    /// Only the top N blocks train (with augmentation); the rest stay as pretrained.
    case topBlocks(Int)
}

/// `backbones.text`: a pretrained transformer encoder (a Hugging Face checkpoint folder).
public struct TextBackboneSpec: Codable, Equatable, Sendable {
    /// The checkpoint folder (config.json, weights, tokenizer), relative to the declaring file.
    public var checkpoint: String
    /// How token states become one vector per text input.
    public var pooling: TextPoolingSpec
    /// Tokens per text input, special tokens included; capped at the checkpoint's positions.
    public var maxLength: Int
    /// Which encoder weights train: all, none (features cached), or the top N layers.
    public var trainable: TextTrainable
    /// Several text columns: joined into one sequence with the separator token, or each
    /// encoded on its own and the pooled vectors concatenated.
    public var combine: TextCombine

    /// Every key at its default (`checkpoint` has none; it is required).
    public init() {
        self.init(checkpoint: "", pooling: .auto, maxLength: 512, trainable: .full, combine: .join)
    }

    /// Every key given.
    public init(checkpoint: String, pooling: TextPoolingSpec, maxLength: Int, trainable: TextTrainable, combine: TextCombine) {
        self.checkpoint = checkpoint
        self.pooling = pooling
        self.maxLength = maxLength
        self.trainable = trainable
        self.combine = combine
    }
}

/// `backbones.text.pooling`.
public enum TextPoolingSpec: String, Codable, CaseIterable, Sendable {
    /// The checkpoint's own choice (a sentence-transformers `1_Pooling/config.json`), else `cls`
    /// as AutoGluon-Multimodal does.
    case auto
    /// The first token's state.
    case cls
    /// The mean over real tokens.
    case mean
    /// The element-wise maximum over real tokens.
    case max
}

/// `backbones.text.trainable`: `full`, `frozen`, or `{top_layers: N}`.
public enum TextTrainable: Codable, Equatable, Sendable {
    /// Every encoder weight trains.
    case full
    /// No encoder weight trains; pooled features are computed once and cached.
    case frozen
    /// Only the top N layers train; the hidden states entering them are cached.
    case topLayers(Int)
}

/// `backbones.text.combine`.
public enum TextCombine: String, Codable, CaseIterable, Sendable {
    /// One sequence: the columns' tokens in column order, separated by the separator token.
    case join
    /// One sequence per column through the same encoder; pooled vectors concatenated.
    case separate
}

/// `backbones.tabular`, tagged by `kind:`.
public enum TabularBackboneSpec: Codable, Equatable, Sendable {
    /// `kind: mlp`.
    case mlp(MLPBackboneSpec)
    /// `kind: ft_transformer`.
    case ftTransformer(FTTransformerSpec)

    /// The YAML `kind` value.
    public var kind: String {
        switch self {
        case .mlp: return "mlp"
        case .ftTransformer: return "ft_transformer"
        }
    }
    /// Whether the backbone's weights are updated.
    public var trainable: Bool {
        switch self {
        case .mlp(let s): return s.trainable
        case .ftTransformer(let s): return s.trainable
        }
    }
    /// A safetensors file to initialise the backbone from.
    public var checkpoint: String? {
        switch self {
        case .mlp(let s): return s.checkpoint
        case .ftTransformer(let s): return s.checkpoint
        }
    }
}

/// Activation functions of MLP layers.
public enum Activation: String, Codable, CaseIterable, Sendable { case relu, gelu, silu, tanh, leaky_relu }

/// `backbones.tabular` with `kind: mlp`.
public struct MLPBackboneSpec: Codable, Equatable, Sendable {
    /// Widths of the hidden layers.
    public var hidden: [Int]
    /// Dropout after each hidden layer, in [0, 1).
    public var dropout: Double
    /// Activation after each hidden layer.
    public var activation: Activation
    /// Width of every categorical embedding; nil = a rule of thumb from the category count.
    public var embeddingDim: Int?
    /// Whether the weights are updated.
    public var trainable: Bool
    /// A safetensors file to initialise from.
    public var checkpoint: String?

    /// Every key at its default.

    public init() {
        self.init(hidden: [128, 128], dropout: 0.1, activation: .relu, embeddingDim: nil, trainable: true, checkpoint: nil)

    }


    /// Every key given.

    public init(hidden: [Int], dropout: Double, activation: Activation, embeddingDim: Int?, trainable: Bool, checkpoint: String?) {
        self.hidden = hidden
        self.dropout = dropout
        self.activation = activation
        self.embeddingDim = embeddingDim
        self.trainable = trainable
        self.checkpoint = checkpoint
    }
}

/// `backbones.tabular` with `kind: ft_transformer` (Gorishniy et al. 2021).
public struct FTTransformerSpec: Codable, Equatable, Sendable {
    /// Token width; a multiple of `heads`.
    public var dToken: Int
    /// Transformer layers.
    public var layers: Int
    /// Attention heads.
    public var heads: Int
    /// Dropout on attention probabilities.
    public var attentionDropout: Double
    /// Dropout inside the feed-forward block.
    public var ffnDropout: Double
    /// Dropout on the residual branches.
    public var residualDropout: Double
    /// Feed-forward width as a multiple of `d_token`.
    public var ffnFactor: Double
    /// Whether the weights are updated.
    public var trainable: Bool
    /// A safetensors file to initialise from.
    public var checkpoint: String?

    /// Every key at its default.

    public init() {
        self.init(dToken: 192, layers: 3, heads: 8, attentionDropout: 0.2, ffnDropout: 0.1, residualDropout: 0.0, ffnFactor: 4.0 / 3.0, trainable: true, checkpoint: nil)

    }


    /// Every key given.

    public init(dToken: Int, layers: Int, heads: Int, attentionDropout: Double, ffnDropout: Double, residualDropout: Double, ffnFactor: Double, trainable: Bool, checkpoint: String?) {
        self.dToken = dToken
        self.layers = layers
        self.heads = heads
        self.attentionDropout = attentionDropout
        self.ffnDropout = ffnDropout
        self.residualDropout = residualDropout
        self.ffnFactor = ffnFactor
        self.trainable = trainable
        self.checkpoint = checkpoint
    }
}

// MARK: - Fusion

/// The `fusion:` section, tagged by `kind:`. With a single backbone there is nothing to fuse and
/// the task head reads the backbone's features directly (as AutoMM does); the section then only
/// matters for `aux_loss_weight` and `modality_dropout`, which need two or more backbones.
public enum FusionSpec: Codable, Equatable, Sendable {
    /// `kind: mlp` — AutoMM's late-fusion MLP (its default).
    case mlp(FusionMLPSpec)
    /// `kind: transformer` — FT-Transformer blocks over one token per backbone.
    case transformer(FusionTransformerSpec)

    /// AutoMM's default: the fusion MLP with its defaults.
    public init() { self = .mlp(FusionMLPSpec()) }

    /// The YAML `kind` value.
    public var kind: String {
        switch self {
        case .mlp: return "mlp"
        case .transformer: return "transformer"
        }
    }
    /// Weight of the per-backbone auxiliary heads' losses; nil: no auxiliary heads.
    public var auxLossWeight: Double? {
        switch self {
        case .mlp(let s): return s.auxLossWeight
        case .transformer(let s): return s.auxLossWeight
        }
    }
    /// Probability of dropping one backbone's features for a training row.
    public var modalityDropout: Double {
        switch self {
        case .mlp(let s): return s.modalityDropout
        case .transformer(let s): return s.modalityDropout
        }
    }
}

/// How per-backbone adapters size their outputs before concatenation.
public enum AdaptWidth: String, Codable, CaseIterable, Sendable {
    /// Every backbone's features are projected to the widest backbone's width.
    case max
    /// … to the narrowest backbone's width.
    case min
}

/// `fusion: {kind: mlp}`: AutoMM's `fusion_mlp`.
public struct FusionMLPSpec: Codable, Equatable, Sendable {
    /// Hidden widths after the adapted features are concatenated.
    public var hidden: [Int]
    /// Activation of the hidden units.
    public var activation: Activation
    /// Dropout of the hidden units, in [0, 1).
    public var dropout: Double
    /// Width every backbone's adapter projects to.
    public var adaptWidth: AdaptWidth
    /// Weight of the per-backbone auxiliary heads' losses; nil: none.
    public var auxLossWeight: Double?
    /// Probability of dropping one backbone's features for a training row, in [0, 1).
    public var modalityDropout: Double

    /// Every key at its default (AutoMM's).
    public init() {
        self.init(hidden: [128], activation: .leaky_relu, dropout: 0.1, adaptWidth: .max, auxLossWeight: nil, modalityDropout: 0)
    }

    /// Every key given.
    public init(hidden: [Int], activation: Activation, dropout: Double, adaptWidth: AdaptWidth, auxLossWeight: Double?,
                modalityDropout: Double) {
        self.hidden = hidden
        self.activation = activation
        self.dropout = dropout
        self.adaptWidth = adaptWidth
        self.auxLossWeight = auxLossWeight
        self.modalityDropout = modalityDropout
    }
}

/// `fusion: {kind: transformer}`: AutoMM's `fusion_transformer`. The token width is the adapted
/// width (AutoMM's `adapt_in_features`: the widest backbone's by default); AutoMM's
/// `hidden_size: 192` feeds a projection its fusion model switches off, so it is not a setting.
public struct FusionTransformerSpec: Codable, Equatable, Sendable {
    /// Width every backbone's adapter projects to: the token width; a multiple of `heads`.
    public var adaptWidth: AdaptWidth
    /// Transformer blocks.
    public var blocks: Int
    /// Attention heads.
    public var heads: Int
    /// Hidden width of each block's feed-forward network.
    public var ffnWidth: Int
    /// Dropout on attention probabilities, in [0, 1).
    public var attentionDropout: Double
    /// Dropout on residual branches, in [0, 1).
    public var residualDropout: Double
    /// Dropout inside the feed-forward network, in [0, 1).
    public var ffnDropout: Double
    /// Weight of the per-backbone auxiliary heads' losses; nil: none.
    public var auxLossWeight: Double?
    /// Probability of dropping one backbone's features for a training row, in [0, 1).
    public var modalityDropout: Double

    /// Every key at its default (AutoMM's).
    public init() {
        self.init(adaptWidth: .max, blocks: 3, heads: 8, ffnWidth: 192, attentionDropout: 0.2, residualDropout: 0.0,
                  ffnDropout: 0.1, auxLossWeight: nil, modalityDropout: 0)
    }

    /// Every key given.
    public init(adaptWidth: AdaptWidth, blocks: Int, heads: Int, ffnWidth: Int, attentionDropout: Double, residualDropout: Double,
                ffnDropout: Double, auxLossWeight: Double?, modalityDropout: Double) {
        self.adaptWidth = adaptWidth
        self.blocks = blocks
        self.heads = heads
        self.ffnWidth = ffnWidth
        self.attentionDropout = attentionDropout
        self.residualDropout = residualDropout
        self.ffnDropout = ffnDropout
        self.auxLossWeight = auxLossWeight
        self.modalityDropout = modalityDropout
    }
}

// MARK: - Trainer

/// `trainer.grad_clip_algorithm`.
public enum GradClipAlgorithm: String, Codable, CaseIterable, Sendable {
    /// Scale all gradients so their global L2 norm is at most `grad_clip`.
    case norm
    /// Clamp every gradient element to [-grad_clip, grad_clip].
    case value
}

/// The `trainer:` section.
public struct TrainerSpec: Codable, Equatable, Sendable {
    /// The optimizer.
    public var optimizer: OptimizerSpec
    /// The learning-rate schedule.
    public var schedule: ScheduleSpec
    /// Passes over the training set (1...100000).
    public var epochs: Int
    /// Rows per step (1...65536).
    public var batchSize: Int
    /// Gradient clipping threshold; nil disables clipping.
    public var gradClip: Double?
    /// Whether `gradClip` bounds the global norm or each element.
    public var gradClipAlgorithm: GradClipAlgorithm
    /// Batches whose gradients are accumulated into one optimizer step (≥ 1).
    public var accumulate: Int
    /// Validate after this fraction of an epoch, in (0, 1] (AutoMM's `val_check_interval`).
    public var valCheckInterval: Double
    /// Stop training after this many seconds (the best weights so far are kept); nil: no limit.
    public var timeLimit: Double?
    /// Label smoothing of the classification loss, in [0, 1).
    public var labelSmoothing: Double
    /// The training loss.
    public var loss: LossSpec
    /// Mixup/CutMix of training images; nil: off.
    public var mixup: MixupSpec?
    /// Callbacks, in order.
    public var callbacks: [CallbackSpec]

    /// `early_stopping {monitor: auto, patience: 10}`, `checkpoint {monitor: auto, top_k: 3, average: greedy_soup}`.
    public static let defaultCallbacks: [CallbackSpec] = [.earlyStopping(EarlyStoppingSpec()), .checkpoint(CheckpointSpec())]

    /// Every key at its default.
    public init() {
        self.init(optimizer: OptimizerSpec(), schedule: ScheduleSpec(), epochs: 30, batchSize: 64, gradClip: 1.0,
                  callbacks: TrainerSpec.defaultCallbacks)
    }

    /// Every key given (the newer ones default).
    public init(optimizer: OptimizerSpec, schedule: ScheduleSpec, epochs: Int, batchSize: Int, gradClip: Double?,
                gradClipAlgorithm: GradClipAlgorithm = .norm, accumulate: Int = 1, valCheckInterval: Double = 1.0,
                timeLimit: Double? = nil, labelSmoothing: Double = 0, loss: LossSpec = LossSpec(), mixup: MixupSpec? = nil,
                callbacks: [CallbackSpec]) {
        self.optimizer = optimizer
        self.schedule = schedule
        self.epochs = epochs
        self.batchSize = batchSize
        self.gradClip = gradClip
        self.gradClipAlgorithm = gradClipAlgorithm
        self.accumulate = accumulate
        self.valCheckInterval = valCheckInterval
        self.timeLimit = timeLimit
        self.labelSmoothing = labelSmoothing
        self.loss = loss
        self.mixup = mixup
        self.callbacks = callbacks
    }
}

/// `trainer.loss.kind`.
public enum LossKind: String, Codable, CaseIterable, Sendable {
    /// Cross-entropy for classes, mean squared error for regression.
    case auto
    case cross_entropy
    /// Focal loss (classification): down-weights easy examples.
    case focal
    case mse
    case huber
}

/// `trainer.loss`.
public struct LossSpec: Codable, Equatable, Sendable {
    /// The loss function.
    public var kind: LossKind
    /// Focal loss γ (≥ 0).
    public var gamma: Double
    /// Focal loss per-class weights α (one per class, in label order); nil: equal weights.
    public var alpha: [Double]?
    /// Huber loss δ (> 0).
    public var delta: Double

    /// Every key at its default.
    public init() { self.init(kind: .auto, gamma: 2.0, alpha: nil, delta: 1.0) }

    /// Every key given.
    public init(kind: LossKind, gamma: Double, alpha: [Double]?, delta: Double) {
        self.kind = kind
        self.gamma = gamma
        self.alpha = alpha
        self.delta = delta
    }
}

/// `trainer.mixup`: timm's Mixup/CutMix over image batches (AutoMM's `data.mixup`).
public struct MixupSpec: Codable, Equatable, Sendable {
    /// Beta(α, α) for mixup; 0 turns mixup off.
    public var mixupAlpha: Double
    /// Beta(α, α) for CutMix; 0 turns CutMix off.
    public var cutmixAlpha: Double
    /// Probability that a batch is mixed at all.
    public var prob: Double
    /// Probability of CutMix rather than mixup when both are on.
    public var switchProb: Double
    /// Label smoothing of the mixed targets.
    public var labelSmoothing: Double
    /// The first epoch without mixing (AutoMM turns it off for the last epochs); nil: never off.
    public var turnOffEpoch: Int?

    /// Every key at its default (AutoMM's).
    public init() {
        self.init(mixupAlpha: 0.8, cutmixAlpha: 1.0, prob: 1.0, switchProb: 0.5, labelSmoothing: 0.1, turnOffEpoch: 5)
    }

    /// Every key given.
    public init(mixupAlpha: Double, cutmixAlpha: Double, prob: Double, switchProb: Double, labelSmoothing: Double, turnOffEpoch: Int?) {
        self.mixupAlpha = mixupAlpha
        self.cutmixAlpha = cutmixAlpha
        self.prob = prob
        self.switchProb = switchProb
        self.labelSmoothing = labelSmoothing
        self.turnOffEpoch = turnOffEpoch
    }
}

/// `trainer.optimizer.lr_choice`: how learning rates differ across the network (AutoMM's).
public enum LRChoice: String, Codable, CaseIterable, Sendable {
    /// Lower layers of pretrained backbones learn more slowly: lr × lr_decay^(depth below the top).
    case layerwise_decay
    /// Pretrained backbones at lr, fusion and heads at lr × lr_mult.
    case two_stages
    /// One learning rate everywhere.
    case single
}

/// `trainer.optimizer.kind`.
public enum OptimizerKind: String, Codable, CaseIterable, Sendable { case adamw, adam, sgd }

/// `trainer.optimizer`.
public struct OptimizerSpec: Codable, Equatable, Sendable {
    /// The algorithm.
    public var kind: OptimizerKind
    /// Peak learning rate (> 0).
    public var lr: Double
    /// Weight decay (≥ 0): decoupled for adamw, L2 for adam and sgd.
    public var weightDecay: Double
    /// Adam's β1 and β2, each in [0, 1).
    public var betas: [Double]
    /// Adam's ε (> 0).
    public var eps: Double
    /// SGD momentum in [0, 1) (sgd only).
    public var momentum: Double
    /// Nesterov momentum (sgd only).
    public var nesterov: Bool
    /// How learning rates differ across the network.
    public var lrChoice: LRChoice
    /// Per-layer decay factor of `layerwise_decay`, in (0, 1].
    public var lrDecay: Double
    /// Learning-rate multiplier of the fusion module and heads with `two_stages` (> 0).
    public var lrMult: Double

    /// Every key at its default.
    public init() {
        self.init(kind: .adamw, lr: 1.0e-3, weightDecay: 1.0e-4, betas: [0.9, 0.999], eps: 1.0e-8, momentum: 0.9, nesterov: false)
    }

    /// Every key given (the learning-rate choice defaults to AutoMM's layer-wise decay 0.9).
    public init(kind: OptimizerKind, lr: Double, weightDecay: Double, betas: [Double], eps: Double, momentum: Double, nesterov: Bool,
                lrChoice: LRChoice = .layerwise_decay, lrDecay: Double = 0.9, lrMult: Double = 1) {
        self.kind = kind
        self.lr = lr
        self.weightDecay = weightDecay
        self.betas = betas
        self.eps = eps
        self.momentum = momentum
        self.nesterov = nesterov
        self.lrChoice = lrChoice
        self.lrDecay = lrDecay
        self.lrMult = lrMult
    }
}

/// `trainer.schedule.kind`.
public enum ScheduleKind: String, Codable, CaseIterable, Sendable { case constant, linear, cosine, polynomial }

/// `trainer.schedule`.
public struct ScheduleSpec: Codable, Equatable, Sendable {
    /// The decay shape after warmup.
    public var kind: ScheduleKind
    /// Fraction of all steps spent warming up linearly from 0, in [0, 1).
    public var warmup: Double
    /// Exponent of the polynomial decay (polynomial only, > 0).
    public var power: Double
    /// The final learning rate as a fraction of the peak, in [0, 1].
    public var minLRRatio: Double

    /// Every key at its default.

    public init() {
        self.init(kind: .cosine, warmup: 0.1, power: 1.0, minLRRatio: 0.0)

    }


    /// Every key given.

    public init(kind: ScheduleKind, warmup: Double, power: Double, minLRRatio: Double) {
        self.kind = kind
        self.warmup = warmup
        self.power = power
        self.minLRRatio = minLRRatio
    }
}

/// One item of `trainer.callbacks`, a one-key mapping (`- early_stopping: {patience: 3}`).
public enum CallbackSpec: Codable, Equatable, Sendable {
    /// Stop when the monitored value has not improved for `patience` validations.
    case earlyStopping(EarlyStoppingSpec)
    /// Keep the best validations' weights and end with the best one or an average of them.
    case checkpoint(CheckpointSpec)
    /// Record every step's learning rate per parameter group (the run's `lr.csv`).
    case lrMonitor(LRMonitorSpec)
    /// Write the validation rows to a CSV file while training runs.
    case csvLogger(CSVLoggerSpec)
    /// How progress is shown.
    case progress(ProgressSpec)

    /// The YAML key of this callback.
    public var key: String {
        switch self {
        case .earlyStopping: return "early_stopping"
        case .checkpoint: return "checkpoint"
        case .lrMonitor: return "lr_monitor"
        case .csvLogger: return "csv_logger"
        case .progress: return "progress"
        }
    }

    /// The monitored key and mode of a callback that watches one.
    public var monitored: (monitor: String, mode: MonitorModeSpec)? {
        switch self {
        case .earlyStopping(let s): return (s.monitor, s.mode)
        case .checkpoint(let s): return (s.monitor, s.mode)
        case .lrMonitor, .csvLogger, .progress: return nil
        }
    }
}

/// `lr_monitor` callback options (none yet).
public struct LRMonitorSpec: Codable, Equatable, Sendable {
    public init() {}
}

/// `csv_logger` callback options.
public struct CSVLoggerSpec: Codable, Equatable, Sendable {
    /// Where the live CSV goes, relative to the pipeline file; `{name}` is the pipeline's name.
    public var path: String

    /// Every key at its default.
    public init() { self.init(path: "logs/{name}.csv") }

    /// Every key given.
    public init(path: String) { self.path = path }
}

/// `progress.style`.
public enum ProgressStyle: String, Codable, CaseIterable, Sendable {
    /// A redrawn bar on a terminal, one line per validation otherwise.
    case auto
    /// One line per validation.
    case lines
    /// Nothing.
    case none
}

/// `progress` callback options.
public struct ProgressSpec: Codable, Equatable, Sendable {
    /// How progress is shown.
    public var style: ProgressStyle

    /// Every key at its default.
    public init() { self.init(style: .auto) }

    /// Every key given.
    public init(style: ProgressStyle) { self.style = style }
}

/// Whether a monitored value improves by going down or up; `auto` follows the metric.
public enum MonitorModeSpec: String, Codable, CaseIterable, Sendable { case auto, min, max }

/// What a callback watches: `auto` (`val.` + the run's metric), `val.loss`, `val.<metric>` or,
/// with several label columns, `val.<task>.<metric>`.
public enum MonitorTarget: Equatable, Hashable, Sendable {
    case auto
    case loss
    case metric(Metric)
    /// A metric of one task of a multi-task pipeline.
    case task(String, Metric)

    /// Parses a monitor string; nil when it is not one of the accepted forms.
    public init?(_ text: String) {
        if text == "auto" { self = .auto; return }
        if text == "val.loss" { self = .loss; return }
        guard text.hasPrefix("val.") else { return nil }
        let rest = text.dropFirst(4)
        if let m = Metric(rawValue: String(rest)) { self = .metric(m); return }
        guard let dot = rest.lastIndex(of: "."), dot > rest.startIndex,
              let m = Metric(rawValue: String(rest[rest.index(after: dot)...])) else { return nil }
        self = .task(String(rest[..<dot]), m)
    }
}

/// `early_stopping` callback options.
public struct EarlyStoppingSpec: Codable, Equatable, Sendable {
    /// `auto`, `val.loss` or `val.<metric>`.
    public var monitor: String
    /// Epochs without improvement before stopping (≥ 1).
    public var patience: Int
    /// Improvement direction.
    public var mode: MonitorModeSpec
    /// The smallest change that counts as an improvement (≥ 0).
    public var minDelta: Double

    /// Every key at its default.

    public init() {
        self.init(monitor: "auto", patience: 10, mode: .auto, minDelta: 0.0)

    }


    /// Every key given.

    public init(monitor: String, patience: Int, mode: MonitorModeSpec, minDelta: Double) {
        self.monitor = monitor
        self.patience = patience
        self.mode = mode
        self.minDelta = minDelta
    }
}

/// How the kept checkpoints become the final weights (AutoMM's `top_k_average_method`).
public enum CheckpointAverage: String, Codable, CaseIterable, Sendable {
    /// The single best validation's weights.
    case best
    /// The plain average of the top-k weights.
    case uniform_soup
    /// Start from the best; add each next-best to the average when the validation score does not get worse.
    case greedy_soup
}

/// `checkpoint` callback options.
public struct CheckpointSpec: Codable, Equatable, Sendable {
    /// `auto`, `val.loss` or `val.<metric>`.
    public var monitor: String
    /// Improvement direction.
    public var mode: MonitorModeSpec
    /// How many of the best validations' weights are kept (≥ 1).
    public var topK: Int
    /// How the kept weights become the final ones.
    public var average: CheckpointAverage

    /// Every key at its default (AutoMM's: the top 3, greedy soup).
    public init() {
        self.init(monitor: "auto", mode: .auto)
    }

    /// Every key given.
    public init(monitor: String, mode: MonitorModeSpec, topK: Int = 3, average: CheckpointAverage = .greedy_soup) {
        self.monitor = monitor
        self.mode = mode
        self.topK = topK
        self.average = average
    }
}

// MARK: - Sources

/// A place in a pipeline file (1-based line and column).
public struct SourceLocation: Codable, Hashable, Sendable, CustomStringConvertible {
    /// The file's path as the user would see it (as given on the command line, or as reached
    /// through `extends`).
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    /// `FILE:LINE:COL`.
    public var description: String { "\(file):\(line):\(column)" }
}

/// Where every key of a loaded spec came from: a file location, or a `--set` flag.
///
/// Paths are dotted: `trainer.optimizer.lr`, `trainer.callbacks[0].early_stopping.patience`,
/// `data.columns.age`. Keys left at their defaults have no entry.
public struct SourceMap: Equatable, Sendable {
    struct Entry: Equatable, Sendable {
        var location: SourceLocation?
        var file: URL?
        var flag: String?
    }
    var entries: [String: Entry] = [:]

    public init() {}

    /// The file location that set `path`, or nil (a default, or a `--set` flag).
    public subscript(path: String) -> SourceLocation? { entries[path]?.location }

    /// The file that declared `path` (nil for defaults and `--set` values).
    public func declaringFile(of path: String) -> URL? { entries[path]?.file }

    /// The `--set KEY=VALUE` flag that set `path`, if one did.
    public func flag(of path: String) -> String? { entries[path]?.flag }

    /// Whether the file or a flag set `path` explicitly.
    public func isSet(_ path: String) -> Bool { entries[path] != nil }

    /// Every recorded path, sorted.
    public var paths: [String] { entries.keys.sorted() }
}
