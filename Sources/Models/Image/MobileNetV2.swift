// MobileNetV2 (Sandler et al., 2018) with torchvision's parameter names: the stem `features.0`
// (conv `.0`, BN `.1`), inverted residual blocks `features.1…17` (`conv.0.0/1` expand, `conv.1.0/1`
// depthwise, `conv.2` project, `conv.3` BN; the first block has no expansion and so one index
// less), the head convolution `features.18`, and `classifier.1` after a dropout of 0.2. ReLU6
// throughout; BN eps 1e-5. Channel widths are read from the checkpoint, so any width multiplier
// loads; strides follow torchvision's standard setting.
// Reference: https://github.com/pytorch/vision/blob/main/torchvision/models/mobilenetv2.py
import Foundation
import Layers
import TensorEngine

// MARK: - Configuration

/// Architecture of a MobileNetV2: every block's widths, stem and head widths, the classifier.
public struct MobileNetV2Config: Sendable, Equatable {
    /// One inverted residual block.
    public struct Block: Sendable, Equatable {
        public var input: Int
        /// Channels of the depthwise stage (`input × expansion`).
        public var hidden: Int
        public var output: Int
        public var stride: Int
        /// Whether a 1×1 expansion precedes the depthwise convolution.
        public var expands: Bool { hidden != input }

        public init(input: Int, hidden: Int, output: Int, stride: Int) {
            self.input = input
            self.hidden = hidden
            self.output = output
            self.stride = stride
        }
    }

    public var architecture: String
    public var stemWidth: Int
    public var blocks: [Block]
    /// Output channels of the 1×1 head convolution `features.18` (1280 for width ≤ 1).
    public var lastChannel: Int
    /// Classes of `classifier.1`, or nil for a headless backbone.
    public var classes: Int?
    /// Dropout before the classifier (training only).
    public var dropout: Float

    public init(architecture: String = "mobilenet_v2", stemWidth: Int, blocks: [Block], lastChannel: Int,
                classes: Int? = 1000, dropout: Float = 0.2) {
        self.architecture = architecture
        self.stemWidth = stemWidth
        self.blocks = blocks
        self.lastChannel = lastChannel
        self.classes = classes
        self.dropout = dropout
    }

    /// torchvision's inverted residual setting: (expansion, channels, repeats, first stride).
    static let setting: [(t: Int, c: Int, n: Int, s: Int)] = [
        (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
    ]

    /// Strides of the 17 standard blocks, in order.
    static let strides: [Int] = setting.flatMap { row in (0..<row.n).map { $0 == 0 ? row.s : 1 } }

    /// torchvision's `_make_divisible`: nearest multiple of `divisor`, never below it nor 10 % under `value`.
    static func makeDivisible(_ value: Double, divisor: Int = 8) -> Int {
        var rounded = max(divisor, Int(value + Double(divisor) / 2) / divisor * divisor)
        if Double(rounded) < 0.9 * value { rounded += divisor }
        return rounded
    }

    /// torchvision's `mobilenet_v2(width_mult:)`.
    public static func standard(widthMultiplier: Double = 1, classes: Int? = 1000) -> MobileNetV2Config {
        var input = makeDivisible(32 * widthMultiplier)
        let stem = input
        var blocks: [Block] = []
        for row in setting {
            let output = makeDivisible(Double(row.c) * widthMultiplier)
            for i in 0..<row.n {
                blocks.append(Block(input: input, hidden: input * row.t, output: output, stride: i == 0 ? row.s : 1))
                input = output
            }
        }
        return MobileNetV2Config(stemWidth: stem, blocks: blocks, lastChannel: makeDivisible(1280 * max(1, widthMultiplier)),
                                 classes: classes)
    }

    /// Width of the pooled features.
    public var features: Int { lastChannel }

    /// Throws `invalidConfiguration` naming the first value that cannot build a model.
    public func validate() throws {
        func fail(_ key: String, _ reason: String) -> ImageEncoderError {
            .invalidConfiguration(architecture: architecture, key: key, reason: reason)
        }
        guard stemWidth > 0, lastChannel > 0 else { throw fail("features.0.0.weight", "stem \(stemWidth) and head \(lastChannel) widths must be positive") }
        guard !blocks.isEmpty else { throw fail("features.1", "no inverted residual block") }
        var input = stemWidth
        for (i, b) in blocks.enumerated() {
            guard b.input == input, b.hidden > 0, b.output > 0, b.stride == 1 || b.stride == 2 else {
                throw fail("features.\(i + 1)", "input \(b.input) (expected \(input)), hidden \(b.hidden), output \(b.output) and stride \(b.stride) do not chain")
            }
            input = b.output
        }
        if let classes, classes <= 0 { throw fail("classifier.1.weight", "must have a positive number of classes, got \(classes)") }
        guard dropout >= 0, dropout < 1 else { throw fail("dropout", "must be in [0, 1), got \(dropout)") }
    }
}

// MARK: - Modules

/// Convolution → BN (→ ReLU6): torchvision's `Conv2dNormActivation`, children `0` and `1`.
final class ConvNormReLU6: Module {
    let conv: Conv2d, norm: BatchNorm2d
    let activates: Bool

    init(_ inC: Int, _ outC: Int, kernel: Int, stride: Int = 1, groups: Int = 1, activates: Bool = true, rng: RandomSource) throws {
        conv = try Conv2d(inC, outC, kernel: (kernel, kernel), stride: (stride, stride), padding: ((kernel - 1) / 2, (kernel - 1) / 2),
                          groups: groups, bias: false, rng: rng)
        norm = BatchNorm2d(outC)
        self.activates = activates
        super.init()
        register(child: "0", conv)
        register(child: "1", norm)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        let y = try convBatchNorm(conv, norm, x)
        return activates ? try clamp(y, min: 0, max: 6) : y
    }
}

/// Expand 1×1 (when the expansion is not 1) → depthwise 3×3 → project 1×1 + BN, with the
/// identity shortcut when stride is 1 and the width is kept. Children under `conv.`.
final class InvertedResidual: Module {
    let expand: ConvNormReLU6?
    let depthwise: ConvNormReLU6
    let project: Conv2d, projectNorm: BatchNorm2d
    let residual: Bool

    init(_ block: MobileNetV2Config.Block, rng: RandomSource) throws {
        expand = block.expands ? try ConvNormReLU6(block.input, block.hidden, kernel: 1, rng: rng) : nil
        depthwise = try ConvNormReLU6(block.hidden, block.hidden, kernel: 3, stride: block.stride, groups: block.hidden, rng: rng)
        project = try Conv2d(block.hidden, block.output, kernel: (1, 1), bias: false, rng: rng)
        projectNorm = BatchNorm2d(block.output)
        residual = block.stride == 1 && block.input == block.output
        super.init()
        var index = 0
        func next<M: Module>(_ m: M) { register(child: "conv.\(index)", m); index += 1 }
        if let expand { next(expand) }
        next(depthwise)
        next(project)
        next(projectNorm)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        var h = x
        if let expand { h = try expand(h) }
        h = try convBatchNorm(project, projectNorm, try depthwise(h))
        return residual ? try add(h, x) : h
    }
}

// MARK: - Model

/// A MobileNetV2 backbone (optionally with its classifier). Blocks: `features.1` … `features.17`,
/// one each; the head convolution `features.18` joins the top block; the stem `features.0` and
/// the classifier belong to none.
public final class MobileNetV2: Module, ImageEncoder {
    public let config: MobileNetV2Config
    public let shape: ImageEncoderShape
    let stem: ConvNormReLU6
    let blocks: [InvertedResidual]
    let head: ConvNormReLU6
    let dropout: Dropout
    public let classifier: Linear?

    public init(_ config: MobileNetV2Config, rng: RandomSource) throws {
        try config.validate()
        self.config = config
        stem = try ConvNormReLU6(3, config.stemWidth, kernel: 3, stride: 2, rng: rng)
        blocks = try config.blocks.map { try InvertedResidual($0, rng: rng) }
        head = try ConvNormReLU6(config.blocks[config.blocks.count - 1].output, config.lastChannel, kernel: 1, rng: rng)
        dropout = Dropout(config.dropout, rng: rng)
        classifier = config.classes.map { Linear(config.lastChannel, $0, rng: rng) }
        shape = ImageEncoderShape(architecture: config.architecture, features: config.lastChannel, blocks: config.blocks.count,
                                  fixedSize: false, minimumSize: 32)
        super.init()
        register(child: "features.0", stem)
        for (i, block) in blocks.enumerated() { register(child: "features.\(i + 1)", block) }
        register(child: "features.\(blocks.count + 1)", head)
        register(child: "classifier.0", dropout)
        if let classifier { register(child: "classifier.1", classifier) }
    }

    /// Pooled features [batch, lastChannel] for normalised NCHW images.
    public func features(_ images: Tensor) throws -> Tensor {
        try shape.checkInput(images)
        var h = try stem(images)
        for block in blocks { h = try block(h) }
        return try globalAveragePool(try head(h))
    }

    public func logits(_ images: Tensor) throws -> Tensor? {
        guard let classifier else { return nil }
        return try classifier(try dropout(try features(images)))
    }

    public func parameterPrefixes(ofBlock index: Int) -> [String] {
        guard blocks.indices.contains(index) else { return [] }
        let own = "features.\(index + 1)."
        return index == blocks.count - 1 ? [own, "features.\(blocks.count + 1)."] : [own]
    }
}

// MARK: - Recognising and building checkpoints

extension MobileNetV2Config {
    /// The configuration a checkpoint's tensors call for: every width read from its shapes
    /// (so any width multiplier loads), strides from the standard setting, the classifier when
    /// `classifier.1.weight` is there. Without tensors, the standard width-1.0 model.
    static func forCheckpoint(_ description: ImageCheckpointDescription) throws -> MobileNetV2Config {
        let shapes = description.tensorShapes
        if shapes.isEmpty { return .standard() }
        func fail(_ key: String, _ reason: String) -> ImageEncoderError {
            .invalidConfiguration(architecture: "mobilenet_v2", key: key, reason: reason)
        }
        func conv(_ key: String) throws -> [Int] {
            guard let s = shapes[key] else { throw fail(key, "is missing") }
            guard s.count == 4 else { throw fail(key, "must be a 4-D convolution weight, got \(shapeString(s))") }
            return s
        }
        let stem = try conv("features.0.0.weight")
        guard stem[1] == 3 else { throw fail("features.0.0.weight", "must read 3 input channels, got \(shapeString(stem))") }
        var blocks: [Block] = []
        var input = stem[0]
        while shapes["features.\(blocks.count + 1).conv.0.0.weight"] != nil {
            let i = blocks.count + 1
            let first = try conv("features.\(i).conv.0.0.weight")
            let expands = first[2] == 1
            let projectKey = "features.\(i).conv.\(expands ? 2 : 1).weight"
            let project = try conv(projectKey)
            let hidden = expands ? first[0] : input
            guard blocks.count < strides.count else {
                throw fail("features.\(i)", "is one inverted residual block more than the standard 17")
            }
            blocks.append(Block(input: input, hidden: hidden, output: project[0], stride: strides[blocks.count]))
            input = project[0]
        }
        guard blocks.count == strides.count else {
            throw fail("features", "holds \(blocks.count) inverted residual blocks; the standard MobileNetV2 has \(strides.count)")
        }
        let head = try conv("features.\(blocks.count + 1).0.weight")
        var classes: Int?
        if let fc = shapes["classifier.1.weight"] {
            guard fc.count == 2 else { throw fail("classifier.1.weight", "must be a matrix, got \(shapeString(fc))") }
            classes = fc[0]
        }
        return MobileNetV2Config(stemWidth: stem[0], blocks: blocks, lastChannel: head[0], classes: classes)
    }

    /// torchvision's MobileNetV2 keys: `features.0.0.weight` (3 input channels) and the first
    /// inverted residual's `features.1.conv.0.0.weight`.
    static func recognises(_ description: ImageCheckpointDescription) -> Bool {
        guard let stem = description.tensorShapes["features.0.0.weight"], stem.count == 4, stem[1] == 3 else { return false }
        return description.tensorShapes["features.1.conv.0.0.weight"] != nil
    }
}

extension ImageEncoderFamily {
    /// torchvision's MobileNetV2, any width multiplier.
    static let mobileNetV2 = ImageEncoderFamily(
        name: "mobilenet_v2",
        architectures: ["mobilenet_v2"],
        recognises: MobileNetV2Config.recognises,
        build: { description, rng in try MobileNetV2(try MobileNetV2Config.forCheckpoint(description), rng: rng) })
}
