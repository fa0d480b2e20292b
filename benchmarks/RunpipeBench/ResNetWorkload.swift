import Foundation
import TensorEngine
import Layers
import Training

// ResNet-18 in torchvision's layout, written directly against the engine's ops (conv2d,
// batchNorm2d, maxPool2d, adaptiveAvgPool2d). When Sources/Models/ResNet.swift lands, this file
// can switch to it; the benchmark definition (shapes, optimizer, FLOP count) stays the same.

/// conv (no bias) → batch norm, train-mode statistics.
final class BenchConvBN {
    let weight: Tensor
    let gamma: Tensor, beta: Tensor
    let runningMean: Tensor, runningVar: Tensor
    let stride: Int, padding: Int

    init(_ inC: Int, _ outC: Int, kernel: Int, stride: Int, padding: Int, rng: RandomSource) {
        // Kaiming normal, fan-out, ReLU gain (torchvision's ResNet init).
        let std = (2 / Float(outC * kernel * kernel)).squareRoot()
        weight = Tensor.parameter(Tensor.normal([outC, inC, kernel, kernel], std: std, rng: &rng.generator))
        gamma = Tensor.parameter(Tensor.ones([outC]))
        beta = Tensor.parameter(Tensor.zeros([outC]))
        runningMean = Tensor.zeros([outC])
        runningVar = Tensor.ones([outC])
        self.stride = stride
        self.padding = padding
    }

    var parameters: [Tensor] { [weight, gamma, beta] }

    func callAsFunction(_ x: Tensor, training: Bool) throws -> Tensor {
        let y = try conv2d(x, weight: weight, bias: nil, stride: (stride, stride), padding: (padding, padding),
                           dilation: (1, 1), groups: 1)
        return try batchNorm2d(y, weight: gamma, bias: beta, runningMean: runningMean, runningVar: runningVar,
                               training: training, momentum: 0.1, eps: 1e-5)
    }
}

final class BenchBasicBlock {
    let conv1: BenchConvBN, conv2: BenchConvBN
    let downsample: BenchConvBN?

    init(_ inC: Int, _ outC: Int, stride: Int, rng: RandomSource) {
        conv1 = BenchConvBN(inC, outC, kernel: 3, stride: stride, padding: 1, rng: rng)
        conv2 = BenchConvBN(outC, outC, kernel: 3, stride: 1, padding: 1, rng: rng)
        downsample = stride != 1 || inC != outC ? BenchConvBN(inC, outC, kernel: 1, stride: stride, padding: 0, rng: rng) : nil
    }

    var parameters: [Tensor] { conv1.parameters + conv2.parameters + (downsample?.parameters ?? []) }

    func callAsFunction(_ x: Tensor, training: Bool) throws -> Tensor {
        let out = try conv2(try relu(try conv1(x, training: training)), training: training)
        let identity = try downsample?(x, training: training) ?? x
        return try relu(try add(out, identity))
    }
}

/// conv1 7×7/2 → bn → relu → maxpool 3/2 → 4 stages of 2 BasicBlocks (64, 128, 256, 512) →
/// adaptive average pool → fc 1000.
final class BenchResNet18 {
    let stem: BenchConvBN
    let blocks: [BenchBasicBlock]
    let fcWeight: Tensor, fcBias: Tensor

    init(classes: Int = 1000, rng: RandomSource) {
        stem = BenchConvBN(3, 64, kernel: 7, stride: 2, padding: 3, rng: rng)
        var bs: [BenchBasicBlock] = []
        var inC = 64
        for (i, c) in [64, 128, 256, 512].enumerated() {
            bs.append(BenchBasicBlock(inC, c, stride: i == 0 ? 1 : 2, rng: rng))
            bs.append(BenchBasicBlock(c, c, stride: 1, rng: rng))
            inC = c
        }
        blocks = bs
        let bound = 1 / Float(512).squareRoot()
        fcWeight = Tensor.parameter(Tensor.uniform([classes, 512], low: -bound, high: bound, rng: &rng.generator))
        fcBias = Tensor.parameter(Tensor.uniform([classes], low: -bound, high: bound, rng: &rng.generator))
    }

    var parameters: [Tensor] { stem.parameters + blocks.flatMap(\.parameters) + [fcWeight, fcBias] }

    func callAsFunction(_ x: Tensor, training: Bool) throws -> Tensor {
        var h = try relu(try stem(x, training: training))
        h = try maxPool2d(h, kernel: (3, 3), stride: (2, 2), padding: (1, 1))
        for b in blocks { h = try b(h, training: training) }
        h = try adaptiveAvgPool2d(h, outputSize: (1, 1))
        h = try h.reshaped([h.shape[0], h.shape[1]])
        return try linear(h, weight: fcWeight, bias: fcBias)
    }
}

/// Forward FLOPs of ResNet-18 on `batch` images of `size`×`size`: every convolution
/// (2·N·OH·OW·O·C·KH·KW) plus the fc layer. Mirrored by `resnet18_forward_flops` in torch_bench.py.
func resnet18ForwardFlops(batch: Int, size: Int) -> Double {
    func out(_ i: Int, _ k: Int, _ s: Int, _ p: Int) -> Int { (i + 2 * p - k) / s + 1 }
    var total = 0.0
    var hw = out(size, 7, 2, 3)
    total += 2 * Double(batch * hw * hw * 64 * 3 * 49)
    hw = out(hw, 3, 2, 1)                                   // maxpool
    var inC = 64
    for (i, c) in [64, 128, 256, 512].enumerated() {
        for j in 0..<2 {
            let stride = (i > 0 && j == 0) ? 2 : 1
            let o = out(hw, 3, stride, 1)
            total += 2 * Double(batch * o * o * c * inC * 9)     // conv1
            total += 2 * Double(batch * o * o * c * c * 9)       // conv2
            if stride != 1 || inC != c { total += 2 * Double(batch * o * o * c * inC) }   // downsample 1×1
            hw = o
            inC = c
        }
    }
    total += 2 * Double(batch * 512 * 1000)
    return total
}

/// ResNet-18, batch 32, train-mode batch norm: forward, cross-entropy over 1000 classes,
/// backward and an SGD step (lr 0.1, momentum 0.9, weight decay 1e-4). One unit is one step.
func resnetWorkload(imageSize: Int) throws -> Workload {
    let batch = 32
    let flops = 3 * resnet18ForwardFlops(batch: batch, size: imageSize)
    return Workload(name: "resnet18-train-\(imageSize)", unitName: "step", flopsPerUnit: flops, unitsPerRun: 1,
                    notes: ["model": "ResNet-18 (torchvision layout), NCHW", "input": "[32,3,\(imageSize),\(imageSize)]",
                            "step": "forward + backward + SGD(lr=0.1, momentum=0.9, wd=1e-4)"]) {
        let rng = RandomSource(seed: 3)
        let model = BenchResNet18(rng: rng)
        let opt = try SGD(parameters: model.parameters, lr: 0.1, momentum: 0.9, weightDecay: 1e-4)
        let x = Tensor.normal([batch, 3, imageSize, imageSize], rng: &rng.generator)
        let y = labels(batch, classes: 1000)
        return {
            opt.zeroGrad()
            let loss = try crossEntropy(try model(x, training: true), targets: y)
            try loss.backward()
            try opt.step()
        }
    }
}
