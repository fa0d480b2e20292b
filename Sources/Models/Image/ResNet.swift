// ResNet (He et al., 2015) with torchvision's parameter names — which timm's ResNet shares — so
// both kinds of checkpoint load without renaming: conv1, bn1,
// layer{1-4}.{i}.{conv1,bn1,conv2,bn2[,conv3,bn3],downsample.0,downsample.1}, fc.
// Reference: https://github.com/pytorch/vision/blob/main/torchvision/models/resnet.py
// (BasicBlock; Bottleneck "v1.5": the stride sits on the 3×3 convolution) and
// https://github.com/huggingface/pytorch-image-models/blob/main/timm/models/resnet.py
// (same names and blocks; hub folders add a config.json with `architecture` and `pretrained_cfg`).
import Foundation
import Layers
import TensorEngine

// MARK: - Configuration

/// Architecture of a ResNet: block kind, blocks and width per stage, stem width and classifier.
public struct ResNetConfig: Sendable, Equatable {
    /// The residual block a ResNet is built from.
    public enum Block: String, Sendable, Equatable {
        /// Two 3×3 convolutions; a stage's output width is its `width`.
        case basic
        /// 1×1 reduce, 3×3 (strided), 1×1 expand; a stage's output width is 4 × its `width`.
        case bottleneck

        /// Output channels per unit of stage width.
        public var expansion: Int { self == .basic ? 1 : 4 }
    }

    /// Name for messages and `ImageEncoderShape.architecture` (`resnet18`, or `resnet` when inferred).
    public var architecture: String
    public var block: Block
    /// Residual blocks per stage.
    public var blocks: [Int]
    /// Width ("planes") per stage.
    public var widths: [Int]
    /// Output channels of the 7×7 stem convolution (64 in every torchvision model).
    public var stemWidth: Int
    /// Classes of the `fc` classifier, or nil for a headless backbone.
    public var classes: Int?
    /// Preprocessing the weights were trained with.
    public var inputSize: Int
    public var mean: [Float]
    public var std: [Float]

    public init(architecture: String = "resnet", block: Block = .basic, blocks: [Int], widths: [Int] = [64, 128, 256, 512],
                stemWidth: Int? = nil, classes: Int? = 1000, inputSize: Int = 224,
                mean: [Float] = ImageEncoderShape.imagenetMean, std: [Float] = ImageEncoderShape.imagenetStd) {
        self.architecture = architecture
        self.block = block
        self.blocks = blocks
        self.widths = widths
        self.stemWidth = stemWidth ?? widths.first ?? 64
        self.classes = classes
        self.inputSize = inputSize
        self.mean = mean
        self.std = std
    }

    public static let resnet18 = ResNetConfig(architecture: "resnet18", blocks: [2, 2, 2, 2])
    public static let resnet34 = ResNetConfig(architecture: "resnet34", blocks: [3, 4, 6, 3])
    public static let resnet50 = ResNetConfig(architecture: "resnet50", block: .bottleneck, blocks: [3, 4, 6, 3])
    public static let resnet101 = ResNetConfig(architecture: "resnet101", block: .bottleneck, blocks: [3, 4, 23, 3])
    public static let resnet152 = ResNetConfig(architecture: "resnet152", block: .bottleneck, blocks: [3, 8, 36, 3])

    /// The named architectures, by name.
    public static let named: [String: ResNetConfig] = [
        "resnet18": .resnet18, "resnet34": .resnet34, "resnet50": .resnet50, "resnet101": .resnet101, "resnet152": .resnet152,
    ]

    /// Width of the pooled features.
    public var features: Int { (widths.last ?? 0) * block.expansion }

    /// Throws `invalidConfiguration` naming the first value that cannot build a model.
    public func validate() throws {
        func fail(_ key: String, _ reason: String) -> ImageEncoderError {
            .invalidConfiguration(architecture: architecture, key: key, reason: reason)
        }
        guard !blocks.isEmpty, blocks.count == widths.count else {
            throw fail("blocks", "\(blocks) and widths \(widths) must be non-empty and of equal length")
        }
        guard blocks.allSatisfy({ $0 > 0 }) else { throw fail("blocks", "\(blocks) must all be positive") }
        guard widths.allSatisfy({ $0 > 0 }), stemWidth > 0 else {
            throw fail("widths", "\(widths) and stem width \(stemWidth) must be positive")
        }
        if let classes, classes <= 0 { throw fail("num_classes", "must be positive, got \(classes)") }
        guard mean.count == 3, std.count == 3, std.allSatisfy({ $0 > 0 }) else {
            throw fail("pretrained_cfg.mean/std", "must be three values each with positive std, got \(mean) / \(std)")
        }
    }
}

// MARK: - Blocks

/// A residual block of either kind.
protocol ResNetBlock: Module {
    func callAsFunction(_ x: Tensor) throws -> Tensor
}

/// Two 3×3 convolutions with a shortcut (a strided 1×1 conv + BN when the shape changes).
final class BasicBlock: Module, ResNetBlock {
    let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d
    let downsample: (conv: Conv2d, norm: BatchNorm2d)?

    init(_ inC: Int, _ width: Int, stride: Int, rng: RandomSource) throws {
        conv1 = try Conv2d(inC, width, kernel: (3, 3), stride: (stride, stride), padding: (1, 1), bias: false, rng: rng)
        bn1 = BatchNorm2d(width)
        conv2 = try Conv2d(width, width, kernel: (3, 3), padding: (1, 1), bias: false, rng: rng)
        bn2 = BatchNorm2d(width)
        downsample = try resNetShortcut(inC, width, stride: stride, rng: rng)
        super.init()
        register(child: "conv1", conv1)
        register(child: "bn1", bn1)
        register(child: "conv2", conv2)
        register(child: "bn2", bn2)
        registerShortcut(downsample, on: self)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        var out = try relu(try convBatchNorm(conv1, bn1, x))
        out = try convBatchNorm(conv2, bn2, out)
        let shortcut = try downsample.map { try convBatchNorm($0.conv, $0.norm, x) } ?? x
        return try relu(try add(out, shortcut))
    }
}

/// 1×1 reduce → 3×3 (carrying the stride, torchvision's "v1.5") → 1×1 expand ×4, with a shortcut.
final class BottleneckBlock: Module, ResNetBlock {
    let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d, conv3: Conv2d, bn3: BatchNorm2d
    let downsample: (conv: Conv2d, norm: BatchNorm2d)?

    init(_ inC: Int, _ width: Int, stride: Int, rng: RandomSource) throws {
        let outC = width * ResNetConfig.Block.bottleneck.expansion
        conv1 = try Conv2d(inC, width, kernel: (1, 1), bias: false, rng: rng)
        bn1 = BatchNorm2d(width)
        conv2 = try Conv2d(width, width, kernel: (3, 3), stride: (stride, stride), padding: (1, 1), bias: false, rng: rng)
        bn2 = BatchNorm2d(width)
        conv3 = try Conv2d(width, outC, kernel: (1, 1), bias: false, rng: rng)
        bn3 = BatchNorm2d(outC)
        downsample = try resNetShortcut(inC, outC, stride: stride, rng: rng)
        super.init()
        register(child: "conv1", conv1)
        register(child: "bn1", bn1)
        register(child: "conv2", conv2)
        register(child: "bn2", bn2)
        register(child: "conv3", conv3)
        register(child: "bn3", bn3)
        registerShortcut(downsample, on: self)
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        var out = try relu(try convBatchNorm(conv1, bn1, x))
        out = try relu(try convBatchNorm(conv2, bn2, out))
        out = try convBatchNorm(conv3, bn3, out)
        let shortcut = try downsample.map { try convBatchNorm($0.conv, $0.norm, x) } ?? x
        return try relu(try add(out, shortcut))
    }
}

/// The projection shortcut (`downsample.0` conv, `downsample.1` BN) when stride or width change.
private func resNetShortcut(_ inC: Int, _ outC: Int, stride: Int, rng: RandomSource) throws -> (conv: Conv2d, norm: BatchNorm2d)? {
    guard stride != 1 || inC != outC else { return nil }
    return (try Conv2d(inC, outC, kernel: (1, 1), stride: (stride, stride), bias: false, rng: rng), BatchNorm2d(outC))
}

private func registerShortcut(_ shortcut: (conv: Conv2d, norm: BatchNorm2d)?, on block: Module) {
    guard let shortcut else { return }
    block.register(child: "downsample.0", shortcut.conv)
    block.register(child: "downsample.1", shortcut.norm)
}

// MARK: - Model

/// A ResNet backbone (optionally with its `fc` classifier). Every residual block is one block of
/// `parameterPrefixes(ofBlock:)` (resnet18: 8, resnet50: 16); the stem (`conv1`, `bn1`) belongs
/// to none, nor does the classifier.
public final class ResNet: Module, ImageEncoder {
    public let config: ResNetConfig
    public let shape: ImageEncoderShape
    let conv1: Conv2d, bn1: BatchNorm2d
    /// Residual blocks in order, with their checkpoint prefix (`layer1.0`).
    let residualBlocks: [(name: String, block: any ResNetBlock)]
    public let fc: Linear?

    public init(_ config: ResNetConfig, rng: RandomSource) throws {
        try config.validate()
        self.config = config
        conv1 = try Conv2d(3, config.stemWidth, kernel: (7, 7), stride: (2, 2), padding: (3, 3), bias: false, rng: rng)
        bn1 = BatchNorm2d(config.stemWidth)
        var inC = config.stemWidth
        var built: [(name: String, block: any ResNetBlock)] = []
        for (s, (count, width)) in zip(config.blocks, config.widths).enumerated() {
            for b in 0..<count {
                let stride = (b == 0 && s > 0) ? 2 : 1
                let block: any ResNetBlock = config.block == .basic
                    ? try BasicBlock(inC, width, stride: stride, rng: rng)
                    : try BottleneckBlock(inC, width, stride: stride, rng: rng)
                built.append(("layer\(s + 1).\(b)", block))
                inC = width * config.block.expansion
            }
        }
        residualBlocks = built
        fc = config.classes.map { Linear(inC, $0, rng: rng) }
        shape = ImageEncoderShape(architecture: config.architecture, features: inC, blocks: built.count,
                                  inputSize: config.inputSize, mean: config.mean, std: config.std,
                                  fixedSize: false, minimumSize: 32)
        super.init()
        register(child: "conv1", conv1)
        register(child: "bn1", bn1)
        for (name, block) in built { register(child: name, block) }
        if let fc { register(child: "fc", fc) }
    }

    /// Pooled features [batch, features] for normalised NCHW images.
    public func features(_ images: Tensor) throws -> Tensor {
        try shape.checkInput(images)
        var h = try relu(try convBatchNorm(conv1, bn1, images))
        h = try maxPool2d(h, kernel: (3, 3), stride: (2, 2), padding: (1, 1))
        for (_, block) in residualBlocks { h = try block(h) }
        return try globalAveragePool(h)
    }

    public func logits(_ images: Tensor) throws -> Tensor? {
        guard let fc else { return nil }
        return try fc(try features(images))
    }

    /// Class logits [batch, classes]; throws `invalidConfiguration` for a headless model.
    public func callAsFunction(_ images: Tensor) throws -> Tensor {
        guard let logits = try logits(images) else {
            throw ImageEncoderError.invalidConfiguration(architecture: config.architecture, key: "fc", reason: "is absent: this backbone has no classifier")
        }
        return logits
    }

    public func parameterPrefixes(ofBlock index: Int) -> [String] {
        residualBlocks.indices.contains(index) ? [residualBlocks[index].name + "."] : []
    }
}

// MARK: - Recognising and building checkpoints

extension ResNetConfig {
    /// The configuration a checkpoint calls for. The architecture comes from the pipeline's name or
    /// config.json's `architecture`; without either, blocks and widths are read from the tensor
    /// shapes. The classifier follows the tensors (`fc.weight` present or not); only when there are
    /// no tensors does config.json's `num_classes` (0 = none) decide.
    static func forCheckpoint(_ description: ImageCheckpointDescription) throws -> ResNetConfig {
        let timm = try description.configJSON.map {
            try ImageConfigDecoding.decode(TimmHubConfiguration<NoTimmArguments>.self, from: $0, architecture: description.architecture ?? "resnet")
        }
        let name = description.architecture ?? timm?.architecture
        var config: ResNetConfig
        if let name {
            guard let named = ResNetConfig.named[name] else {
                throw ImageEncoderError.unsupportedArchitecture(name, supported: ResNetConfig.named.keys.sorted())
            }
            config = named
        } else {
            config = try inferred(from: description.tensorShapes)
        }
        if let fcShape = description.tensorShapes["fc.weight"] {
            guard fcShape.count == 2 else {
                throw ImageEncoderError.invalidConfiguration(architecture: config.architecture, key: "fc.weight", reason: "must be a matrix, got \(shapeString(fcShape))")
            }
            config.classes = fcShape[0]
        } else if !description.tensorShapes.isEmpty {
            config.classes = nil
        } else if let classes = timm?.numClasses {
            config.classes = classes == 0 ? nil : classes
        }
        try timm?.pretrainedConfig?.apply(to: &config.inputSize, mean: &config.mean, std: &config.std, architecture: config.architecture)
        try config.validate()
        return config
    }

    /// Blocks and widths read from torchvision/timm key names and shapes: stages `layer1…`, blocks
    /// per stage from `layerN.i.conv1.weight`, bottleneck when `conv3` exists, widths from conv1
    /// (a 7×7 single-convolution stem; timm's deep stems are not supported).
    static func inferred(from shapes: [String: [Int]]) throws -> ResNetConfig {
        func fail(_ key: String, _ reason: String) -> ImageEncoderError {
            .invalidConfiguration(architecture: "resnet", key: key, reason: reason)
        }
        guard let stem = shapes["conv1.weight"], stem.count == 4, stem[1] == 3, stem[2] == 7, stem[3] == 7 else {
            throw fail("conv1.weight", "must exist with shape [width, 3, 7, 7], got \(shapes["conv1.weight"].map(shapeString) ?? "nothing")")
        }
        let block: Block = shapes["layer1.0.conv3.weight"] != nil ? .bottleneck : .basic
        var blocks: [Int] = [], widths: [Int] = []
        while shapes["layer\(blocks.count + 1).0.conv1.weight"] != nil {
            let stage = blocks.count + 1
            var count = 0
            while shapes["layer\(stage).\(count).conv1.weight"] != nil { count += 1 }
            let key = "layer\(stage).0.conv1.weight"
            guard let w = shapes[key], w.count == 4 else { throw fail(key, "must be a 4-D convolution weight") }
            if block == .bottleneck {
                let expandKey = "layer\(stage).0.conv3.weight"
                guard let e = shapes[expandKey], e.count == 4, e[0] == w[0] * 4 else {
                    throw fail(expandKey, "must expand layer\(stage)'s width \(w[0]) four times (only bottlenecks with expansion 4 and base width 64 are supported)")
                }
            }
            blocks.append(count)
            widths.append(w[0])
        }
        guard !blocks.isEmpty else { throw fail("layer1.0.conv1.weight", "is missing: no residual stage found") }
        var config = ResNetConfig(architecture: "resnet", block: block, blocks: blocks, widths: widths, stemWidth: stem[0])
        // A standard shape gets its standard name (a torchvision .pth names nothing itself).
        if let match = named.values.first(where: { $0.block == block && $0.blocks == blocks && $0.widths == widths && $0.stemWidth == stem[0] }) {
            config.architecture = match.architecture
        }
        return config
    }

    /// Whether a checkpoint without an architecture name is a ResNet: config.json names one, or
    /// the torchvision/timm key names are there.
    static func recognises(_ description: ImageCheckpointDescription) -> Bool {
        if let name = description.configJSON.flatMap(ImageConfigProbe.read)?.timmArchitecture {
            return named[name] != nil
        }
        let shapes = description.tensorShapes
        return shapes["conv1.weight"] != nil && shapes["bn1.running_mean"] != nil && shapes["layer1.0.conv1.weight"] != nil
    }
}

extension ImageEncoderFamily {
    /// ResNet-18/34/50/101/152 in torchvision's and timm's layout.
    static let resnet = ImageEncoderFamily(
        name: "resnet",
        architectures: ResNetConfig.named.keys.sorted(),
        recognises: ResNetConfig.recognises,
        build: { description, rng in try ResNet(try ResNetConfig.forCheckpoint(description), rng: rng) })
}
