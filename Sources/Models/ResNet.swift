// ResNet (He et al., 2015) with torchvision's parameter names, so torchvision checkpoints load
// without renaming: conv1, bn1, layer{1-4}.{i}.{conv1,bn1,conv2,bn2,downsample.0,downsample.1}, fc.
// Reference: torchvision/models/resnet.py (BasicBlock; stride on the first 3×3 conv).
import Layers
import TensorEngine

/// Architecture of a ResNet built from basic blocks.
public struct ResNetConfig: Sendable, Equatable {
    public var blocks: [Int]
    public var widths: [Int]
    public var classes: Int

    public init(blocks: [Int], widths: [Int] = [64, 128, 256, 512], classes: Int = 1000) {
        self.blocks = blocks
        self.widths = widths
        self.classes = classes
    }

    public static let resnet18 = ResNetConfig(blocks: [2, 2, 2, 2])
    public static let resnet34 = ResNetConfig(blocks: [3, 4, 6, 3])
}

/// Two 3×3 convolutions with a shortcut (a strided 1×1 conv + BN when the shape changes).
final class BasicBlock: Module {
    let conv1: Conv2d, bn1: BatchNorm2d, conv2: Conv2d, bn2: BatchNorm2d
    let downsampleConv: Conv2d?, downsampleNorm: BatchNorm2d?

    init(_ inC: Int, _ outC: Int, stride: Int, rng: RandomSource) throws {
        conv1 = try Conv2d(inC, outC, kernel: (3, 3), stride: (stride, stride), padding: (1, 1), bias: false, rng: rng)
        bn1 = BatchNorm2d(outC)
        conv2 = try Conv2d(outC, outC, kernel: (3, 3), padding: (1, 1), bias: false, rng: rng)
        bn2 = BatchNorm2d(outC)
        if stride != 1 || inC != outC {
            downsampleConv = try Conv2d(inC, outC, kernel: (1, 1), stride: (stride, stride), bias: false, rng: rng)
            downsampleNorm = BatchNorm2d(outC)
        } else {
            downsampleConv = nil
            downsampleNorm = nil
        }
        super.init()
        register(child: "conv1", conv1)
        register(child: "bn1", bn1)
        register(child: "conv2", conv2)
        register(child: "bn2", bn2)
        if let downsampleConv, let downsampleNorm {
            register(child: "downsample.0", downsampleConv)
            register(child: "downsample.1", downsampleNorm)
        }
    }

    func callAsFunction(_ x: Tensor) throws -> Tensor {
        var out = try relu(try bn1(try conv1(x)))
        out = try bn2(try conv2(out))
        var shortcut = x
        if let downsampleConv, let downsampleNorm { shortcut = try downsampleNorm(try downsampleConv(x)) }
        return try relu(try add(out, shortcut))
    }
}

/// A ResNet classifier; `features(_:)` gives the pooled [batch, widths.last] embedding.
public final class ResNet: Module {
    public let config: ResNetConfig
    let conv1: Conv2d, bn1: BatchNorm2d
    let stages: [[BasicBlock]]
    public let fc: Linear

    public init(_ config: ResNetConfig, rng: RandomSource) throws {
        guard config.blocks.count == config.widths.count, !config.blocks.isEmpty, config.blocks.allSatisfy({ $0 > 0 }) else {
            throw TensorError.invalidArgument(op: "ResNet", detail: "blocks \(config.blocks) and widths \(config.widths) must be non-empty, positive and of equal length")
        }
        self.config = config
        conv1 = try Conv2d(3, config.widths[0], kernel: (7, 7), stride: (2, 2), padding: (3, 3), bias: false, rng: rng)
        bn1 = BatchNorm2d(config.widths[0])
        var inC = config.widths[0]
        var built: [[BasicBlock]] = []
        for (s, (count, width)) in zip(config.blocks, config.widths).enumerated() {
            var stage: [BasicBlock] = []
            for b in 0..<count {
                stage.append(try BasicBlock(inC, width, stride: (b == 0 && s > 0) ? 2 : 1, rng: rng))
                inC = width
            }
            built.append(stage)
        }
        stages = built
        fc = Linear(inC, config.classes, rng: rng)
        super.init()
        register(child: "conv1", conv1)
        register(child: "bn1", bn1)
        for (s, stage) in stages.enumerated() {
            for (b, block) in stage.enumerated() { register(child: "layer\(s + 1).\(b)", block) }
        }
        register(child: "fc", fc)
    }

    /// Pooled features [batch, widths.last] for NCHW images.
    public func features(_ x: Tensor) throws -> Tensor {
        var h = try relu(try bn1(try conv1(x)))
        h = try maxPool2d(h, kernel: (3, 3), stride: (2, 2), padding: (1, 1))
        for stage in stages { for block in stage { h = try block(h) } }
        let pooled = try adaptiveAvgPool2d(h, outputSize: (1, 1))
        return try pooled.reshaped([pooled.shape[0], pooled.shape[1]])
    }

    /// Class logits [batch, classes].
    public func callAsFunction(_ x: Tensor) throws -> Tensor { try fc(try features(x)) }
}
