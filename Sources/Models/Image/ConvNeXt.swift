// ConvNeXt (Liu et al., 2022, "A ConvNet for the 2020s") in two key layouts:
//
// - Hugging Face `ConvNextModel` / `ConvNextForImageClassification`
//   (https://github.com/huggingface/transformers/blob/main/src/transformers/models/convnext/modeling_convnext.py):
//   `embeddings.{patch_embeddings, layernorm}`, `encoder.stages.S.downsampling_layer.{0,1}`,
//   `encoder.stages.S.layers.L.{dwconv, layernorm, pwconv1, pwconv2, layer_scale_parameter}`,
//   final `layernorm`; the classification model puts all of that under `convnext.` and adds
//   `classifier`.
// - timm `ConvNeXt` (https://github.com/huggingface/pytorch-image-models/blob/main/timm/models/convnext.py):
//   `stem.{0,1}`, `stages.S.downsample.{0,1}`, `stages.S.blocks.L.{conv_dw, norm, mlp.fc1, mlp.fc2,
//   gamma}`, `head.norm`, `head.fc`.
//
// A block is: depthwise k×k conv → LayerNorm over channels → Linear(C, 4C) → GELU → Linear(4C, C)
// → layer scale → drop path → residual add. The stem (patchify conv + channels-first LayerNorm) and
// each later stage's downsampling (channels-first LayerNorm + 2×2 stride-2 conv) normalise over C at
// every pixel. Features: global average pool, then the final LayerNorm. Any input size at least
// `patch · 2^(stages−1)` works.
import Foundation
import Layers
import TensorEngine

// MARK: - Configuration

/// Everything that shapes a ConvNeXt: stage widths and depths, key layout and which optional parts
/// the checkpoint carries. Built from a Hugging Face `ConvNextConfig`, a timm hub config.json, an
/// architecture preset or the tensor shapes alone.
public struct ConvNeXtConfiguration: Sendable, Equatable {
    public var architecture: String
    public var layout: ImageKeyLayout
    /// Prefix of the backbone's keys: `convnext.` for `ConvNextForImageClassification`, else empty.
    public var keyPrefix: String
    public var channels: Int
    /// Stem patch size (stride of the patchify convolution).
    public var patchSize: Int
    public var depths: [Int]
    public var dims: [Int]
    /// Depthwise kernel size per stage.
    public var kernelSizes: [Int]
    /// Whether blocks carry a layer-scale vector (`layer_scale_parameter` / `gamma`).
    public var layerScale: Bool
    /// Epsilon of the stem, downsampling and block norms (1e-6 in both libraries).
    public var normEps: Float
    /// Epsilon of the final norm (Hugging Face's `layer_norm_eps`, 1e-12 by default; timm: `normEps`).
    public var finalNormEps: Float
    public var activation: Activation
    /// Largest stochastic-depth rate (linear over all blocks, as both libraries do).
    public var dropPath: Float
    /// Classifier outputs when the checkpoint carries its classifier (`classifier` / `head.fc`).
    public var classes: Int?
    public var inputSize: Int
    public var mean: [Float]
    public var std: [Float]

    public init(architecture: String, layout: ImageKeyLayout, keyPrefix: String = "", channels: Int = 3,
                patchSize: Int = 4, depths: [Int] = [3, 3, 9, 3], dims: [Int] = [96, 192, 384, 768],
                kernelSizes: [Int]? = nil, layerScale: Bool = true, normEps: Float = 1e-6, finalNormEps: Float = 1e-6,
                activation: Activation = .gelu, dropPath: Float = 0, classes: Int? = nil, inputSize: Int = 224,
                mean: [Float] = ImageEncoderShape.imagenetMean, std: [Float] = ImageEncoderShape.imagenetStd) {
        self.architecture = architecture
        self.layout = layout
        self.keyPrefix = keyPrefix
        self.channels = channels
        self.patchSize = patchSize
        self.depths = depths
        self.dims = dims
        self.kernelSizes = kernelSizes ?? Array(repeating: 7, count: depths.count)
        self.layerScale = layerScale
        self.normEps = normEps
        self.finalNormEps = finalNormEps
        self.activation = activation
        self.dropPath = dropPath
        self.classes = classes
        self.inputSize = inputSize
        self.mean = mean
        self.std = std
    }

    /// timm's presets (`convnext_*` model functions): depths and widths.
    static let presets: [String: (depths: [Int], dims: [Int])] = [
        "convnext_tiny": ([3, 3, 9, 3], [96, 192, 384, 768]),
        "convnext_small": ([3, 3, 27, 3], [96, 192, 384, 768]),
        "convnext_base": ([3, 3, 27, 3], [128, 256, 512, 1024]),
    ]

    /// The timm preset `name` (ImageNet preprocessing, 224×224).
    public static func preset(_ name: String) -> ConvNeXtConfiguration? {
        guard let p = presets[name] else { return nil }
        return ConvNeXtConfiguration(architecture: name, layout: .timm, depths: p.depths, dims: p.dims)
    }

    /// Smallest input side the stem and the downsampling layers can read.
    public var minimumSize: Int { patchSize << max(depths.count - 1, 0) }

    /// Throws `ImageEncoderError.invalidConfiguration` naming the first value that does not fit.
    func validate() throws {
        func fail(_ key: String, _ reason: String) -> ImageEncoderError {
            .invalidConfiguration(architecture: architecture, key: key, reason: reason)
        }
        guard !depths.isEmpty, depths.count == dims.count else {
            throw fail("depths", "must name one depth per stage (\(dims.count) hidden_sizes), got \(depths)")
        }
        guard kernelSizes.count == depths.count, kernelSizes.allSatisfy({ $0 > 0 && $0 % 2 == 1 }) else {
            throw fail("kernel_sizes", "must hold one odd size per stage, got \(kernelSizes)")
        }
        if let bad = depths.first(where: { $0 <= 0 }) { throw fail("depths", "must be positive, got \(bad)") }
        if let bad = dims.first(where: { $0 <= 0 }) { throw fail("hidden_sizes", "must be positive, got \(bad)") }
        guard patchSize > 0 else { throw fail("patch_size", "must be positive, got \(patchSize)") }
        guard channels == 3 else { throw fail("num_channels", "must be 3 (RGB), got \(channels)") }
        for (e, key) in [(normEps, "norm_eps"), (finalNormEps, "layer_norm_eps")] where !(e > 0 && e.isFinite) {
            throw fail(key, "must be a positive number, got \(e)")
        }
        guard dropPath >= 0, dropPath < 1 else { throw fail("drop_path_rate", "must be in [0, 1), got \(dropPath)") }
        if let classes, classes <= 0 { throw fail("num_classes", "must be positive, got \(classes)") }
        guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 > 0 }) else {
            throw fail("pretrained_cfg.mean/std", "must hold three values each, std positive; got \(mean) and \(std)")
        }
    }
}

/// Hugging Face's `ConvNextConfig` (config.json with `model_type: convnext`), with `transformers`'
/// defaults for absent keys.
public struct HFConvNextConfig: Decodable, Sendable, Equatable {
    public var channels: Int
    public var patchSize: Int
    public var stages: Int
    public var hiddenSizes: [Int]
    public var depths: [Int]
    public var hiddenAct: String
    public var layerNormEps: Float
    public var layerScaleInitValue: Float
    public var dropPathRate: Float
    public var imageSize: Int
    public var architectures: [String]?

    enum CodingKeys: String, CodingKey {
        case channels = "num_channels"
        case patchSize = "patch_size"
        case stages = "num_stages"
        case hiddenSizes = "hidden_sizes"
        case depths
        case hiddenAct = "hidden_act"
        case layerNormEps = "layer_norm_eps"
        case layerScaleInitValue = "layer_scale_init_value"
        case dropPathRate = "drop_path_rate"
        case imageSize = "image_size"
        case architectures
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        channels = try c.decodeIfPresent(Int.self, forKey: .channels) ?? 3
        patchSize = try c.decodeIfPresent(SquareSize.self, forKey: .patchSize)?.value ?? 4
        stages = try c.decodeIfPresent(Int.self, forKey: .stages) ?? 4
        hiddenSizes = try c.decodeIfPresent([Int].self, forKey: .hiddenSizes) ?? [96, 192, 384, 768]
        depths = try c.decodeIfPresent([Int].self, forKey: .depths) ?? [3, 3, 9, 3]
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "gelu"
        layerNormEps = try c.decodeIfPresent(Float.self, forKey: .layerNormEps) ?? 1e-12
        layerScaleInitValue = try c.decodeIfPresent(Float.self, forKey: .layerScaleInitValue) ?? 1e-6
        dropPathRate = try c.decodeIfPresent(Float.self, forKey: .dropPathRate) ?? 0
        imageSize = try c.decodeIfPresent(SquareSize.self, forKey: .imageSize)?.value ?? 224
        architectures = try c.decodeIfPresent([String].self, forKey: .architectures)
    }
}

/// The `model_args` of a timm ConvNeXt hub config.json that runpipe reads. Arguments that change
/// the structure in ways not implemented here are rejected unless they hold timm's default.
public struct TimmConvNeXtArguments: Decodable, Sendable, Equatable {
    public var channels: Int?
    public var numClasses: Int?
    public var globalPool: String?
    public var depths: [Int]?
    public var dims: [Int]?
    public var kernelSizes: [Int]?
    /// nil when absent; `layerScaleDisabled` when given as null.
    public var layerScaleInitValue: Double?
    public var layerScaleDisabled: Bool
    public var patchSize: Int?
    public var normEps: Float?
    public var dropPathRate: Float?
    /// timm's dropout before `head.fc`; read but unused (features stop before the classifier, and
    /// `logits` is for evaluation).
    public var dropRate: Float?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case channels = "in_chans"
        case numClasses = "num_classes"
        case globalPool = "global_pool"
        case depths, dims
        case kernelSizes = "kernel_sizes"
        case layerScaleInitValue = "ls_init_value"
        case patchSize = "patch_size"
        case normEps = "norm_eps"
        case dropPathRate = "drop_path_rate"
        case dropRate = "drop_rate"
    }

    static let fixedDefaults: [String: JSONScalar] = [
        "output_stride": .number(32), "stem_type": .string("patch"), "head_norm_first": .bool(false),
        "head_hidden_size": .null, "conv_mlp": .bool(false), "conv_bias": .bool(true), "use_grn": .bool(false),
        "act_layer": .string("gelu"), "norm_layer": .null,
    ]
    static let ignored: Set<String> = ["head_init_scale"]

    public init(from decoder: Decoder) throws {
        try TimmArguments.check(decoder, known: Set(CodingKeys.allCases.map(\.rawValue)), fixed: Self.fixedDefaults,
                                ignored: Self.ignored, family: "ConvNeXt")
        let c = try decoder.container(keyedBy: CodingKeys.self)
        channels = try c.decodeIfPresent(Int.self, forKey: .channels)
        numClasses = try c.decodeIfPresent(Int.self, forKey: .numClasses)
        globalPool = try c.decodeIfPresent(String.self, forKey: .globalPool)
        depths = try c.decodeIfPresent([Int].self, forKey: .depths)
        dims = try c.decodeIfPresent([Int].self, forKey: .dims)
        if let one = try? c.decodeIfPresent(Int.self, forKey: .kernelSizes) {
            kernelSizes = [one]
        } else {
            kernelSizes = try c.decodeIfPresent([Int].self, forKey: .kernelSizes)
        }
        layerScaleDisabled = try c.contains(.layerScaleInitValue) && c.decodeNil(forKey: .layerScaleInitValue)
        layerScaleInitValue = layerScaleDisabled ? nil : try c.decodeIfPresent(Double.self, forKey: .layerScaleInitValue)
        patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize)
        normEps = try c.decodeIfPresent(Float.self, forKey: .normEps)
        dropPathRate = try c.decodeIfPresent(Float.self, forKey: .dropPathRate)
        dropRate = try c.decodeIfPresent(Float.self, forKey: .dropRate)
    }
}

// MARK: - Modules

/// LayerNorm over the channels of NCHW input at every pixel (the `channels_first` LayerNorm of the
/// stem and the downsampling layers; timm's `LayerNorm2d`).
func channelsFirstLayerNorm(_ norm: LayerNorm, _ x: Tensor) throws -> Tensor {
    try norm(try x.permuted([0, 2, 3, 1])).permuted([0, 3, 1, 2])
}

/// One ConvNeXt block; keys follow `layout`.
final class ConvNeXtBlock: Module {
    let depthwise: Conv2d
    let norm: LayerNorm
    let fc1: Linear, fc2: Linear
    let gamma: Tensor?
    let activation: Activation
    let dropPath: StochasticDepth

    init(dim: Int, kernel: Int, c: ConvNeXtConfiguration, dropPath rate: Float, rng: RandomSource) throws {
        depthwise = try Conv2d(dim, dim, kernel: (kernel, kernel), padding: (kernel / 2, kernel / 2), groups: dim, rng: rng)
        norm = LayerNorm(dim, eps: c.normEps)
        fc1 = Linear(dim, 4 * dim, rng: rng)
        fc2 = Linear(4 * dim, dim, rng: rng)
        gamma = c.layerScale ? Tensor.parameter(Tensor.full([dim], 1e-6)) : nil
        activation = c.activation
        dropPath = StochasticDepth(rate, rng: rng)
        super.init()
        switch c.layout {
        case .huggingFace:
            register(child: "dwconv", depthwise)
            register(child: "layernorm", norm)
            register(child: "pwconv1", fc1)
            register(child: "pwconv2", fc2)
            if let gamma { register(parameter: "layer_scale_parameter", gamma) }
        case .timm:
            if let gamma { register(parameter: "gamma", gamma) }
            register(child: "conv_dw", depthwise)
            register(child: "norm", norm)
            register(child: "mlp.fc1", fc1)
            register(child: "mlp.fc2", fc2)
        }
        register(child: "drop_path", dropPath)
    }

    /// x: [batch, dim, height, width].
    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let pixels = try depthwise(x).permuted([0, 2, 3, 1])      // [B, H, W, C]
        var h = try fc2(try activation.apply(try fc1(try norm(pixels))))
        if let gamma { h = try mul(h, gamma) }
        return try add(x, try dropPath(try h.permuted([0, 3, 1, 2])))
    }
}

/// A stage's downsampling: channels-first LayerNorm, then a 2×2 stride-2 convolution.
final class ConvNeXtDownsample: Module {
    let norm: LayerNorm
    let conv: Conv2d

    init(_ inChannels: Int, _ outChannels: Int, eps: Float, rng: RandomSource) throws {
        norm = LayerNorm(inChannels, eps: eps)
        conv = try Conv2d(inChannels, outChannels, kernel: (2, 2), stride: (2, 2), rng: rng)
        super.init()
        register(child: "0", norm)
        register(child: "1", conv)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor { try conv(try channelsFirstLayerNorm(norm, x)) }
}

/// A ConvNeXt image encoder whose parameter keys equal a Hugging Face or timm checkpoint's (see the
/// file header).
public final class ConvNeXt: Module, ImageEncoder {
    public let configuration: ConvNeXtConfiguration
    public let shape: ImageEncoderShape
    let stem: Conv2d
    let stemNorm: LayerNorm
    /// Per stage: its downsampling layer (none for the first) and its blocks.
    let downsamples: [ConvNeXtDownsample?]
    let stages: [[ConvNeXtBlock]]
    let finalNorm: LayerNorm
    let classifier: Linear?

    /// A ConvNeXt with freshly initialised weights.
    public init(_ c: ConvNeXtConfiguration, rng: RandomSource) throws {
        try c.validate()
        configuration = c
        shape = ImageEncoderShape(architecture: c.architecture, features: c.dims[c.dims.count - 1],
                                  blocks: c.depths.reduce(0, +), inputSize: c.inputSize, mean: c.mean, std: c.std,
                                  fixedSize: false, minimumSize: c.minimumSize)
        stem = try Conv2d(c.channels, c.dims[0], kernel: (c.patchSize, c.patchSize), stride: (c.patchSize, c.patchSize), rng: rng)
        stemNorm = LayerNorm(c.dims[0], eps: c.normEps)
        let total = c.depths.reduce(0, +)
        var downsamples: [ConvNeXtDownsample?] = [], stages: [[ConvNeXtBlock]] = []
        var index = 0
        for s in c.depths.indices {
            downsamples.append(s == 0 ? nil : try ConvNeXtDownsample(c.dims[s - 1], c.dims[s], eps: c.normEps, rng: rng))
            var blocks: [ConvNeXtBlock] = []
            for _ in 0..<c.depths[s] {
                let rate = total > 1 ? c.dropPath * Float(index) / Float(total - 1) : c.dropPath
                blocks.append(try ConvNeXtBlock(dim: c.dims[s], kernel: c.kernelSizes[s], c: c, dropPath: rate, rng: rng))
                index += 1
            }
            stages.append(blocks)
        }
        self.downsamples = downsamples
        self.stages = stages
        finalNorm = LayerNorm(c.dims[c.dims.count - 1], eps: c.finalNormEps)
        classifier = c.classes.map { Linear(c.dims[c.dims.count - 1], $0, rng: rng) }
        super.init()
        let p = c.keyPrefix
        switch c.layout {
        case .huggingFace:
            register(child: p + "embeddings.patch_embeddings", stem)
            register(child: p + "embeddings.layernorm", stemNorm)
        case .timm:
            register(child: p + "stem.0", stem)
            register(child: p + "stem.1", stemNorm)
        }
        for s in stages.indices {
            if let down = downsamples[s] { register(child: downsamplePrefix(stage: s), down) }
            for (l, block) in stages[s].enumerated() { register(child: blockPrefix(stage: s, layer: l), block) }
        }
        switch c.layout {
        case .huggingFace:
            register(child: p + "layernorm", finalNorm)
            if let classifier { register(child: "classifier", classifier) }
        case .timm:
            register(child: p + "head.norm", finalNorm)
            if let classifier { register(child: p + "head.fc", classifier) }
        }
    }

    /// Key (without the trailing dot) of block `layer` of stage `stage`.
    func blockPrefix(stage: Int, layer: Int) -> String {
        let p = configuration.keyPrefix
        switch configuration.layout {
        case .huggingFace: return p + "encoder.stages.\(stage).layers.\(layer)"
        case .timm: return p + "stages.\(stage).blocks.\(layer)"
        }
    }

    /// Key (without the trailing dot) of stage `stage`'s downsampling layer.
    func downsamplePrefix(stage: Int) -> String {
        let p = configuration.keyPrefix
        switch configuration.layout {
        case .huggingFace: return p + "encoder.stages.\(stage).downsampling_layer"
        case .timm: return p + "stages.\(stage).downsample"
        }
    }

    /// The last stage's feature map [batch, dims.last, h, w].
    func featureMap(_ images: Tensor) throws -> Tensor {
        let c = configuration
        guard images.rank == 4, images.shape[1] == c.channels else {
            throw ImageEncoderError.invalidInput("\(c.architecture) reads [batch, \(c.channels), height, width] images; got \(shapeString(images.shape))")
        }
        guard images.shape[2] >= c.minimumSize, images.shape[3] >= c.minimumSize else {
            throw ImageEncoderError.invalidInput(
                "\(c.architecture) needs images of at least \(c.minimumSize)×\(c.minimumSize); got \(images.shape[2])×\(images.shape[3])")
        }
        var x = try channelsFirstLayerNorm(stemNorm, try stem(images))
        for s in stages.indices {
            if let down = downsamples[s] { x = try down(x) }
            for block in stages[s] { x = try block(x) }
        }
        return x
    }

    public func features(_ images: Tensor) throws -> Tensor {
        try finalNorm(try mean(try featureMap(images), axes: [2, 3]))
    }

    public func logits(_ images: Tensor) throws -> Tensor? {
        guard let classifier else { return nil }
        return try classifier(try features(images))
    }

    /// Blocks are numbered across stages in order; a stage's downsampling layer goes with its
    /// first block; the final norm and the classifier join the top block. The stem belongs to none.
    public func parameterPrefixes(ofBlock index: Int) -> [String] {
        var remaining = index
        guard index >= 0 else { return [] }
        for s in stages.indices {
            if remaining < stages[s].count {
                var out = [blockPrefix(stage: s, layer: remaining) + "."]
                if remaining == 0, downsamples[s] != nil { out.append(downsamplePrefix(stage: s) + ".") }
                if s == stages.count - 1, remaining == stages[s].count - 1 {
                    let p = configuration.keyPrefix
                    switch configuration.layout {
                    case .huggingFace:
                        out.append(p + "layernorm.")
                        if classifier != nil { out.append("classifier.") }
                    case .timm:
                        out.append(p + "head.")
                    }
                }
                return out
            }
            remaining -= stages[s].count
        }
        return []
    }
}

// MARK: - Building from a checkpoint

extension ConvNeXtConfiguration {
    /// The configuration `description` calls for: config.json (Hugging Face or timm hub) when there
    /// is one, else what the tensor shapes say (checked against the named preset), else the named
    /// preset; the key layout, key prefix, layer scale and classifier always from the tensor names
    /// when there are tensors.
    static func resolve(_ d: ImageCheckpointDescription) throws -> ConvNeXtConfiguration {
        let keys = d.tensorShapes
        // A config.json that is not JSON fails loudly here (recognition only skips it).
        let probe = try d.configJSON.map { try ImageConfigDecoding.decode(ImageConfigProbe.self, from: $0, architecture: d.architecture ?? "convnext") }
        let layout = KeyLayout(keys)
        var c: ConvNeXtConfiguration
        if let data = d.configJSON, probe?.modelType == "convnext" {
            c = try fromHuggingFace(data, name: d.architecture)
        } else if let data = d.configJSON, probe?.timmArchitecture != nil {
            c = try fromTimm(data, named: d.architecture)
        } else if let named = d.architecture {
            guard let preset = preset(named) else {
                throw ImageEncoderError.unsupportedArchitecture(named, supported: presets.keys.sorted())
            }
            // With weights at hand, read their shapes so a different size is reported below
            // rather than as a list of missing keys.
            c = try layout.map { try inferred(keys, layout: $0, source: d.source) } ?? preset
            c.architecture = named
        } else if let layout {
            c = try inferred(keys, layout: layout, source: d.source)
        } else {
            throw ImageEncoderError.unrecognisedCheckpoint(source: d.source, supported: presets.keys.sorted())
        }
        if let named = d.architecture, let p = presets[named], (p.depths, p.dims) != (c.depths, c.dims) {
            throw ImageEncoderError.invalidConfiguration(
                architecture: named, key: "architecture",
                reason: "names depths \(p.depths) and widths \(p.dims) but the checkpoint has depths \(c.depths) and widths \(c.dims)")
        }
        if let layout {
            // The final norm's epsilon follows the weights' library when the configuration came
            // from the other one: Hugging Face's default `layer_norm_eps` is 1e-12, timm's 1e-6.
            if c.layout != layout.layout {
                c.finalNormEps = layout.layout == .huggingFace ? 1e-12 : c.normEps
            }
            c.layout = layout.layout
            c.keyPrefix = layout.prefix
            c.layerScale = keys[layout.gammaKey] != nil
            c.classes = keys[layout.classifierKey].map { $0[0] }
        } else {
            c.classes = nil
        }
        return c
    }

    /// The key layout a set of tensor names uses.
    struct KeyLayout {
        var layout: ImageKeyLayout
        var prefix: String

        init?(_ keys: [String: [Int]]) {
            if keys["embeddings.patch_embeddings.weight"] != nil { layout = .huggingFace; prefix = "" }
            else if keys["convnext.embeddings.patch_embeddings.weight"] != nil { layout = .huggingFace; prefix = "convnext." }
            else if keys["stem.0.weight"] != nil, keys["stages.0.blocks.0.conv_dw.weight"] != nil { layout = .timm; prefix = "" }
            else { return nil }
        }

        var stemKey: String { prefix + (layout == .huggingFace ? "embeddings.patch_embeddings.weight" : "stem.0.weight") }
        var gammaKey: String { prefix + (layout == .huggingFace ? "encoder.stages.0.layers.0.layer_scale_parameter" : "stages.0.blocks.0.gamma") }
        var classifierKey: String { layout == .huggingFace ? "classifier.weight" : prefix + "head.fc.weight" }
        func stage(_ s: Int) -> String { prefix + (layout == .huggingFace ? "encoder.stages.\(s)." : "stages.\(s).") }
        var blockWord: String { layout == .huggingFace ? "layers." : "blocks." }
        var depthwiseName: String { layout == .huggingFace ? "dwconv" : "conv_dw" }
    }

    /// Widths, depths, patch and kernel sizes read from the tensor shapes (no config.json, no name).
    static func inferred(_ keys: [String: [Int]], layout k: KeyLayout, source: String) throws -> ConvNeXtConfiguration {
        func fail(_ key: String, _ reason: String) -> ImageEncoderError {
            .invalidConfiguration(architecture: "convnext", key: key, reason: reason)
        }
        guard let stemShape = keys[k.stemKey], stemShape.count == 4 else { throw fail(k.stemKey, "must be a 4-D convolution weight") }
        var depths: [Int] = [], dims: [Int] = [], kernels: [Int] = []
        while true {
            let s = depths.count
            let stage = k.stage(s) + k.blockWord
            var depth = 0
            while keys["\(stage)\(depth).\(k.depthwiseName).weight"] != nil { depth += 1 }
            if depth == 0 { break }
            guard let dw = keys["\(stage)0.\(k.depthwiseName).weight"], dw.count == 4 else { break }
            depths.append(depth)
            dims.append(dw[0])
            kernels.append(dw[2])
        }
        guard !depths.isEmpty else { throw fail(k.stage(0) + k.blockWord + "0", "has no blocks in '\(source)'") }
        var c = ConvNeXtConfiguration(architecture: "convnext", layout: k.layout, keyPrefix: k.prefix, patchSize: stemShape[2],
                                      depths: depths, dims: dims, kernelSizes: kernels)
        if k.layout == .huggingFace { c.finalNormEps = 1e-12 }
        return c
    }

    static func fromHuggingFace(_ data: Data, name: String?) throws -> ConvNeXtConfiguration {
        let label = name ?? "convnext"
        let h = try ImageConfigDecoding.decode(HFConvNextConfig.self, from: data, architecture: label)
        func fail(_ key: String, _ reason: String) -> ImageEncoderError {
            .invalidConfiguration(architecture: label, key: key, reason: reason)
        }
        guard h.stages == h.hiddenSizes.count, h.stages == h.depths.count else {
            throw fail("num_stages", "(\(h.stages)) must equal the lengths of hidden_sizes (\(h.hiddenSizes.count)) and depths (\(h.depths.count))")
        }
        let activation: Activation
        switch h.hiddenAct {
        case "gelu": activation = .gelu
        case "gelu_new", "gelu_pytorch_tanh", "gelu_fast": activation = .gelu_tanh
        case "relu": activation = .relu
        default: throw fail("hidden_act", "'\(h.hiddenAct)' is not supported (gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu)")
        }
        return ConvNeXtConfiguration(architecture: name ?? h.architectures?.first ?? "convnext", layout: .huggingFace,
                                     channels: h.channels, patchSize: h.patchSize, depths: h.depths, dims: h.hiddenSizes,
                                     layerScale: h.layerScaleInitValue > 0, normEps: 1e-6, finalNormEps: h.layerNormEps,
                                     activation: activation, dropPath: h.dropPathRate, inputSize: h.imageSize)
    }

    static func fromTimm(_ data: Data, named: String?) throws -> ConvNeXtConfiguration {
        let hub = try ImageConfigDecoding.decode(TimmHubConfiguration<TimmConvNeXtArguments>.self, from: data,
                                                 architecture: named ?? "convnext")
        let arch = hub.architecture
        func fail(_ key: String, _ reason: String) -> ImageEncoderError {
            .invalidConfiguration(architecture: arch, key: key, reason: reason)
        }
        let a = hub.modelArgs
        var c: ConvNeXtConfiguration
        if let preset = preset(arch) {
            c = preset
        } else if a?.depths != nil, a?.dims != nil {
            c = ConvNeXtConfiguration(architecture: arch, layout: .timm)
        } else {
            throw fail("architecture", "has no runpipe preset (supported: \(presets.keys.sorted().joined(separator: ", "))); give model_args with depths and dims")
        }
        if let named, named != arch {
            throw fail("architecture", "is '\(arch)' in config.json but the pipeline names '\(named)'")
        }
        if let v = a?.depths { c.depths = v }
        if let v = a?.dims { c.dims = v }
        if let v = a?.kernelSizes {
            c.kernelSizes = v.count == 1 ? Array(repeating: v[0], count: c.depths.count) : v
        } else {
            c.kernelSizes = Array(repeating: 7, count: c.depths.count)
        }
        if let v = a?.channels { c.channels = v }
        if let v = a?.patchSize { c.patchSize = v }
        if let v = a?.normEps { c.normEps = v; c.finalNormEps = v }
        if a?.layerScaleDisabled == true { c.layerScale = false }
        if let v = a?.layerScaleInitValue { c.layerScale = v > 0 }
        if let v = a?.dropPathRate { c.dropPath = v }
        let pool = a?.globalPool ?? hub.globalPool ?? "avg"
        guard pool == "avg" else { throw fail("model_args.global_pool", "'\(pool)' is not supported (avg)") }
        if let s = hub.pretrainedConfig?.inputSize, s.count == 3 { c.inputSize = s[1] }
        try hub.pretrainedConfig?.applyNormalisation(mean: &c.mean, std: &c.std, architecture: arch)
        return c
    }
}

extension ImageEncoderFamily {
    /// ConvNeXt (Hugging Face `ConvNextModel` / `ConvNextForImageClassification`, timm `convnext_*`).
    static var convNeXt: ImageEncoderFamily {
        ImageEncoderFamily(
            name: "convnext",
            architectures: ConvNeXtConfiguration.presets.keys.sorted(),
            recognises: { d in
                if let name = d.architecture { return ConvNeXtConfiguration.presets[name] != nil }
                if let said = d.configSays(modelType: "convnext", timmPrefix: "convnext_") { return said }
                return ConvNeXtConfiguration.KeyLayout(d.tensorShapes) != nil
            },
            build: { d, rng in try ConvNeXt(try ConvNeXtConfiguration.resolve(d), rng: rng) })
    }
}
