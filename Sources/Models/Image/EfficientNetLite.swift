// EfficientNet-Lite (Tan & Le, 2019; the "lite" variants for mobile accelerators: ReLU6 instead
// of swish, no squeeze-and-excitation, stem and head not scaled) with the parameter names of
// lukemelas' EfficientNet-PyTorch, as the converted Lite weights carry them: `_conv_stem`, `_bn0`,
// `_blocks.N.{_expand_conv,_bn0,_depthwise_conv,_bn1,_project_conv,_bn2}`, `_conv_head`, `_bn1`,
// `_fc`. Facts from the reference: TensorFlow "SAME" padding (the extra row/column of an odd
// padding goes bottom/right), BN eps 1e-3 and momentum 0.01, identity shortcut when stride is 1
// and the width is kept, with drop-connect (training only) at 0.2 · block / blocks; dropout before
// `_fc`; inputs normalised with mean 0.5 / std 0.5 (TensorFlow's 127/128 on 0…255, timm's
// `tf_efficientnet_lite*` settings).
// Reference: https://pypi.org/project/efficientnet-lite-pytorch/ (efficientnet_lite_pytorch/model.py,
// utils.py — a fork of https://github.com/lukemelas/EfficientNet-PyTorch) and
// https://github.com/tensorflow/tpu/blob/master/models/official/efficientnet/lite/efficientnet_lite_builder.py
import Foundation
import Layers
import TensorEngine

// MARK: - Configuration

/// Architecture of an EfficientNet-Lite: every block, stem and head widths, the classifier.
public struct EfficientNetLiteConfig: Sendable, Equatable {
    /// One mobile inverted bottleneck (MBConv) block.
    public struct Block: Sendable, Equatable {
        public var input: Int
        /// Channels of the depthwise stage (`input × expansion`; equal to `input` without expansion).
        public var hidden: Int
        public var output: Int
        public var kernel: Int
        public var stride: Int
        public var expands: Bool { hidden != input }
        /// Whether the block adds its input back (and drops that path in training).
        public var residual: Bool { stride == 1 && input == output }

        public init(input: Int, hidden: Int, output: Int, kernel: Int, stride: Int) {
            self.input = input
            self.hidden = hidden
            self.output = output
            self.kernel = kernel
            self.stride = stride
        }
    }

    public var architecture: String
    public var stemWidth: Int
    public var blocks: [Block]
    public var headWidth: Int
    /// Classes of `_fc`, or nil for a headless backbone.
    public var classes: Int?
    public var inputSize: Int
    /// Dropout before `_fc` and the largest drop-connect rate (training only).
    public var dropout: Float
    public var dropConnect: Float

    public init(architecture: String = "efficientnet_lite", stemWidth: Int, blocks: [Block], headWidth: Int = 1280,
                classes: Int? = 1000, inputSize: Int = 224, dropout: Float = 0.2, dropConnect: Float = 0.2) {
        self.architecture = architecture
        self.stemWidth = stemWidth
        self.blocks = blocks
        self.headWidth = headWidth
        self.classes = classes
        self.inputSize = inputSize
        self.dropout = dropout
        self.dropConnect = dropConnect
    }

    /// Normalisation the Lite weights were trained with (TensorFlow: (x − 127) / 128 on 0…255).
    public static let mean: [Float] = [0.5, 0.5, 0.5]
    public static let std: [Float] = [0.5, 0.5, 0.5]

    /// The seven stages of EfficientNet-B0/Lite0: (repeats, kernel, first stride, expansion, input, output).
    static let stages: [(repeats: Int, kernel: Int, stride: Int, expansion: Int, input: Int, output: Int)] = [
        (1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
        (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320),
    ]

    /// Lite0…4: (width coefficient, depth coefficient, resolution, dropout).
    static let variants: [String: (width: Double, depth: Double, resolution: Int, dropout: Float)] = [
        "efficientnet_lite0": (1.0, 1.0, 224, 0.2), "efficientnet_lite1": (1.0, 1.1, 240, 0.2),
        "efficientnet_lite2": (1.1, 1.2, 260, 0.3), "efficientnet_lite3": (1.2, 1.4, 280, 0.3),
        "efficientnet_lite4": (1.4, 1.8, 300, 0.3),
    ]

    /// Channels scaled by `width`, rounded to a multiple of 8 and never 10 % under.
    static func roundFilters(_ filters: Int, width: Double) -> Int {
        let scaled = Double(filters) * width
        var rounded = max(8, Int(scaled + 4) / 8 * 8)
        if Double(rounded) < 0.9 * scaled { rounded += 8 }
        return rounded
    }

    /// A named Lite variant as the reference builds it: stem (32) and head (1280) unscaled, the
    /// first and last stages' repeats unscaled, the others rounded up.
    public static func named(_ name: String, classes: Int? = 1000) -> EfficientNetLiteConfig? {
        guard let v = variants[name] else { return nil }
        var blocks: [Block] = []
        for (i, stage) in stages.enumerated() {
            let fixed = i == 0 || i == stages.count - 1
            let repeats = fixed ? stage.repeats : Int((v.depth * Double(stage.repeats)).rounded(.up))
            var input = i == 0 ? 32 : roundFilters(stage.input, width: v.width)
            let output = roundFilters(stage.output, width: v.width)
            for r in 0..<repeats {
                blocks.append(Block(input: input, hidden: input * stage.expansion, output: output, kernel: stage.kernel,
                                    stride: r == 0 ? stage.stride : 1))
                input = output
            }
        }
        return EfficientNetLiteConfig(architecture: name, stemWidth: 32, blocks: blocks, headWidth: 1280, classes: classes,
                                      inputSize: v.resolution, dropout: v.dropout)
    }

    /// Throws `invalidConfiguration` naming the first value that cannot build a model.
    public func validate() throws {
        func fail(_ key: String, _ reason: String) -> ImageEncoderError {
            .invalidConfiguration(architecture: architecture, key: key, reason: reason)
        }
        guard stemWidth > 0, headWidth > 0 else { throw fail("_conv_stem.weight", "stem \(stemWidth) and head \(headWidth) widths must be positive") }
        guard !blocks.isEmpty else { throw fail("_blocks", "no MBConv block") }
        var input = stemWidth
        for (i, b) in blocks.enumerated() {
            guard b.input == input, b.hidden > 0, b.output > 0, b.kernel > 0, b.kernel % 2 == 1, b.stride == 1 || b.stride == 2 else {
                throw fail("_blocks.\(i)", "input \(b.input) (expected \(input)), hidden \(b.hidden), output \(b.output), kernel \(b.kernel) and stride \(b.stride) do not fit")
            }
            input = b.output
        }
        if let classes, classes <= 0 { throw fail("_fc.weight", "must have a positive number of classes, got \(classes)") }
        guard dropout >= 0, dropout < 1, dropConnect >= 0, dropConnect < 1 else {
            throw fail("dropout", "rates \(dropout) and \(dropConnect) must be in [0, 1)")
        }
    }
}

// MARK: - Modules

/// A bias-free convolution with TensorFlow's "SAME" padding: output size ⌈input / stride⌉, the
/// total padding split evenly with the odd row or column at the bottom/right. Parameter `weight`.
final class SamePaddingConv2d: Module {
    let weight: Tensor
    let kernel: Int, stride: Int, groups: Int

    init(_ inC: Int, _ outC: Int, kernel: Int, stride: Int = 1, groups: Int = 1, rng: RandomSource) throws {
        let conv = try Conv2d(inC, outC, kernel: (kernel, kernel), groups: groups, bias: false, rng: rng)
        weight = conv.weight
        self.kernel = kernel
        self.stride = stride
        self.groups = groups
        super.init()
        register(parameter: "weight", weight)
    }

    /// Total "SAME" padding along one axis of length `size`.
    func padding(_ size: Int) -> Int { max(((size + stride - 1) / stride - 1) * stride + kernel - size, 0) }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let padH = padding(x.shape[2]), padW = padding(x.shape[3])
        var input = x
        // The odd extra row/column (bottom/right) as explicit zeros; the even part is conv2d's padding.
        if padH % 2 == 1 {
            input = try concat([input, Tensor.zeros([input.shape[0], input.shape[1], 1, input.shape[3]])], axis: 2)
        }
        if padW % 2 == 1 {
            input = try concat([input, Tensor.zeros([input.shape[0], input.shape[1], input.shape[2], 1])], axis: 3)
        }
        return try conv2d(input, weight: weight, bias: nil, stride: (stride, stride), padding: (padH / 2, padW / 2), groups: groups)
    }
}

/// BN with the reference's TensorFlow-derived settings (eps 1e-3, momentum 0.01).
private func liteBatchNorm(_ channels: Int) -> BatchNorm2d { BatchNorm2d(channels, momentum: 0.01, eps: 1e-3) }

private func relu6(_ x: Tensor) throws -> Tensor { try clamp(x, min: 0, max: 6) }

/// Expand 1×1 (when expanding) → depthwise k×k → project 1×1, BN after each, ReLU6 after the
/// first two; the identity shortcut with drop-connect when stride is 1 and the width is kept.
final class MBConvBlock: Module {
    let block: EfficientNetLiteConfig.Block
    let expand: (conv: SamePaddingConv2d, norm: BatchNorm2d)?
    let depthwise: SamePaddingConv2d, depthwiseNorm: BatchNorm2d
    let project: SamePaddingConv2d, projectNorm: BatchNorm2d
    /// Probability of dropping the residual branch per sample in training.
    let dropConnect: Float
    let rng: RandomSource

    init(_ block: EfficientNetLiteConfig.Block, dropConnect: Float, rng: RandomSource) throws {
        self.block = block
        expand = block.expands ? (try SamePaddingConv2d(block.input, block.hidden, kernel: 1, rng: rng), liteBatchNorm(block.hidden)) : nil
        depthwise = try SamePaddingConv2d(block.hidden, block.hidden, kernel: block.kernel, stride: block.stride, groups: block.hidden, rng: rng)
        depthwiseNorm = liteBatchNorm(block.hidden)
        project = try SamePaddingConv2d(block.hidden, block.output, kernel: 1, rng: rng)
        projectNorm = liteBatchNorm(block.output)
        self.dropConnect = dropConnect
        self.rng = rng
        super.init()
        if let expand {
            register(child: "_expand_conv", expand.conv)
            register(child: "_bn0", expand.norm)
        }
        register(child: "_depthwise_conv", depthwise)
        register(child: "_bn1", depthwiseNorm)
        register(child: "_project_conv", project)
        register(child: "_bn2", projectNorm)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = x
        if let expand { h = try relu6(try expand.norm(try expand.conv(h))) }
        h = try relu6(try depthwiseNorm(try depthwise(h)))
        h = try projectNorm(try project(h))
        guard block.residual else { return h }
        if isTraining && dropConnect > 0 { h = try dropPath(h) }
        return try add(h, x)
    }

    /// Zeroes whole samples of the branch with probability `dropConnect`, scaling the kept ones by
    /// 1 / (1 − dropConnect), as the reference's `drop_connect`.
    private func dropPath(_ h: Tensor) throws -> Tensor {
        let batch = h.shape[0], keep = 1 - dropConnect
        let draws = Tensor.uniform([batch], rng: &rng.generator).toArray()
        let scale = try Tensor(draws.map { $0 < dropConnect ? 0 : 1 / keep }, shape: [batch, 1, 1, 1])
        return try mul(h, scale)
    }
}

// MARK: - Model

/// An EfficientNet-Lite backbone (optionally with its classifier). Each `_blocks.N` is one block;
/// the head convolution `_conv_head`/`_bn1` joins the top block; the stem (`_conv_stem`, `_bn0`)
/// and the classifier belong to none.
public final class EfficientNetLite: Module, ImageEncoder {
    public let config: EfficientNetLiteConfig
    public let shape: ImageEncoderShape
    let stem: SamePaddingConv2d, stemNorm: BatchNorm2d
    let blocks: [MBConvBlock]
    let head: SamePaddingConv2d, headNorm: BatchNorm2d
    let dropout: Dropout
    public let classifier: Linear?

    public init(_ config: EfficientNetLiteConfig, rng: RandomSource) throws {
        try config.validate()
        self.config = config
        stem = try SamePaddingConv2d(3, config.stemWidth, kernel: 3, stride: 2, rng: rng)
        stemNorm = liteBatchNorm(config.stemWidth)
        let count = config.blocks.count
        blocks = try config.blocks.enumerated().map { i, b in
            try MBConvBlock(b, dropConnect: config.dropConnect * Float(i) / Float(count), rng: rng)
        }
        head = try SamePaddingConv2d(config.blocks[count - 1].output, config.headWidth, kernel: 1, rng: rng)
        headNorm = liteBatchNorm(config.headWidth)
        dropout = Dropout(config.dropout, rng: rng)
        classifier = config.classes.map { Linear(config.headWidth, $0, rng: rng) }
        shape = ImageEncoderShape(architecture: config.architecture, features: config.headWidth, blocks: count,
                                  inputSize: config.inputSize, mean: EfficientNetLiteConfig.mean, std: EfficientNetLiteConfig.std,
                                  fixedSize: false, minimumSize: 32)
        super.init()
        register(child: "_conv_stem", stem)
        register(child: "_bn0", stemNorm)
        for (i, block) in blocks.enumerated() { register(child: "_blocks.\(i)", block) }
        register(child: "_conv_head", head)
        register(child: "_bn1", headNorm)
        register(child: "_dropout", dropout)
        if let classifier { register(child: "_fc", classifier) }
    }

    /// Pooled features [batch, headWidth] for normalised NCHW images.
    public func features(_ images: Tensor) throws -> Tensor {
        try shape.checkInput(images)
        var h = try relu6(try stemNorm(try stem(images)))
        for block in blocks { h = try block(h) }
        return try globalAveragePool(try relu6(try headNorm(try head(h))))
    }

    public func logits(_ images: Tensor) throws -> Tensor? {
        guard let classifier else { return nil }
        return try classifier(try dropout(try features(images)))
    }

    public func parameterPrefixes(ofBlock index: Int) -> [String] {
        guard blocks.indices.contains(index) else { return [] }
        return index == blocks.count - 1 ? ["_blocks.\(index).", "_conv_head.", "_bn1."] : ["_blocks.\(index)."]
    }
}

// MARK: - Recognising and building checkpoints

extension EfficientNetLiteConfig {
    /// The configuration a checkpoint's tensors call for: widths and kernels from the shapes,
    /// strides from the seven standard stages (a stage starts where the width changes). A named
    /// variant sets input size and dropout; without tensors, the named variant as built by the
    /// reference (Lite0 when unnamed).
    static func forCheckpoint(_ description: ImageCheckpointDescription) throws -> EfficientNetLiteConfig {
        let name = description.architecture ?? "efficientnet_lite0"
        guard let variant = named(name) else {
            throw ImageEncoderError.unsupportedArchitecture(name, supported: variants.keys.sorted())
        }
        let shapes = description.tensorShapes
        if shapes.isEmpty { return variant }
        func fail(_ key: String, _ reason: String) -> ImageEncoderError {
            .invalidConfiguration(architecture: name, key: key, reason: reason)
        }
        func conv(_ key: String) throws -> [Int] {
            guard let s = shapes[key] else { throw fail(key, "is missing") }
            guard s.count == 4 else { throw fail(key, "must be a 4-D convolution weight, got \(shapeString(s))") }
            return s
        }
        let stem = try conv("_conv_stem.weight")
        guard stem[1] == 3 else { throw fail("_conv_stem.weight", "must read 3 input channels, got \(shapeString(stem))") }
        var blocks: [Block] = []
        var input = stem[0], stage = -1
        while shapes["_blocks.\(blocks.count)._depthwise_conv.weight"] != nil {
            let prefix = "_blocks.\(blocks.count)."
            let dw = try conv(prefix + "_depthwise_conv.weight")
            let project = try conv(prefix + "_project_conv.weight")
            guard dw[1] == 1, dw[2] == dw[3] else { throw fail(prefix + "_depthwise_conv.weight", "must be a square depthwise kernel, got \(shapeString(dw))") }
            let startsStage = blocks.isEmpty || input != project[0]
            if startsStage { stage += 1 }
            guard stage < stages.count else { throw fail(prefix + "_project_conv.weight", "starts an eighth stage; EfficientNet-Lite has seven") }
            blocks.append(Block(input: input, hidden: dw[0], output: project[0], kernel: dw[2],
                                stride: startsStage ? stages[stage].stride : 1))
            input = project[0]
        }
        guard stage == stages.count - 1 else {
            throw fail("_blocks", "holds \(stage + 1) stages (a stage starts where the width changes); EfficientNet-Lite has \(stages.count)")
        }
        let head = try conv("_conv_head.weight")
        var classes: Int?
        if let fc = shapes["_fc.weight"] {
            guard fc.count == 2 else { throw fail("_fc.weight", "must be a matrix, got \(shapeString(fc))") }
            classes = fc[0]
        }
        return EfficientNetLiteConfig(architecture: name, stemWidth: stem[0], blocks: blocks, headWidth: head[0], classes: classes,
                                      inputSize: variant.inputSize, dropout: variant.dropout, dropConnect: variant.dropConnect)
    }

    /// lukemelas-style keys: `_conv_stem.weight` and `_blocks.0._depthwise_conv.weight`, without
    /// squeeze-and-excitation (`_se_reduce`), which full EfficientNets have.
    static func recognises(_ description: ImageCheckpointDescription) -> Bool {
        let shapes = description.tensorShapes
        return shapes["_conv_stem.weight"] != nil && shapes["_blocks.0._depthwise_conv.weight"] != nil
            && shapes["_blocks.0._se_reduce.weight"] == nil
    }
}

extension ImageEncoderFamily {
    /// EfficientNet-Lite0…4 with lukemelas EfficientNet-PyTorch names.
    static let efficientNetLite = ImageEncoderFamily(
        name: "efficientnet_lite",
        architectures: EfficientNetLiteConfig.variants.keys.sorted(),
        recognises: EfficientNetLiteConfig.recognises,
        build: { description, rng in try EfficientNetLite(try EfficientNetLiteConfig.forCheckpoint(description), rng: rng) })
}
