import Foundation
import Layers
import Models
import TensorEngine
import Training

// Image backbone workloads of issue #5: ResNet-18 and MobileNetV2 forward passes, MobileNetV2
// training steps and frozen-backbone training, each mirrored by benchmarks/reference/torch_image.py
// (torchvision's models). Inputs are normal noise; labels follow `labels(_:classes:)`. Weights are
// fresh (the standard width-1.0 MobileNetV2 builds without a checkpoint), which changes nothing
// about the arithmetic.

// MARK: - FLOPs

/// Forward FLOPs of the standard MobileNetV2 (width 1.0) on `batch` images of `size`×`size`:
/// every convolution, depthwise ones included (2·N·OH·OW·O·(C/groups)·KH·KW), plus the classifier
/// when `classes` is given. Mirrored by `mobilenet_v2_forward_flops` in torch_image.py.
func mobileNetV2ForwardFlops(batch: Int, size: Int, classes: Int? = 1000) -> Double {
    func out(_ i: Int, _ stride: Int) -> Int { (i + 2 - 3) / stride + 1 }   // 3×3, padding 1
    let config = MobileNetV2Config.standard()
    let n = Double(batch)
    var hw = out(size, 2)
    var total = 2 * n * Double(hw * hw * config.stemWidth * 3 * 9)
    for b in config.blocks {
        if b.expands { total += 2 * n * Double(hw * hw * b.hidden * b.input) }
        hw = out(hw, b.stride)
        total += 2 * n * Double(hw * hw * b.hidden * 9)                       // depthwise
        total += 2 * n * Double(hw * hw * b.output * b.hidden)                // project
    }
    total += 2 * n * Double(hw * hw * config.lastChannel * config.blocks[config.blocks.count - 1].output)
    if let classes { total += 2 * n * Double(config.lastChannel * classes) }
    return total
}

// MARK: - Models

/// The standard MobileNetV2 with its 1000-class classifier, built through the Models registry as
/// the pipeline builds it (no tensors: torchvision's `mobilenet_v2()` shapes).
func benchMobileNetV2(rng: RandomSource) throws -> any ImageEncoder {
    try ImageEncoders.build(ImageCheckpointDescription(architecture: "mobilenet_v2", configJSON: nil, tensorShapes: [:], source: "bench"),
                            rng: rng)
}

/// Logits of an encoder built with its classifier.
func classLogits(_ encoder: any ImageEncoder, _ x: Tensor) throws -> Tensor {
    guard let logits = try encoder.logits(x) else {
        throw BenchError.unavailable("\(encoder.shape.architecture) was built without a classifier")
    }
    return logits
}

// MARK: - Workloads

/// ResNet-18 (torchvision layout) inference on 32 images: eval-mode batch norm, no tape, logits.
func resnetForwardWorkload(imageSize: Int) -> Workload {
    let batch = 32
    return Workload(name: "resnet18-forward-\(imageSize)", unitName: "forward",
                    flopsPerUnit: resnet18ForwardFlops(batch: batch, size: imageSize), unitsPerRun: imageSize <= 64 ? 5 : 1,
                    notes: ["model": "ResNet-18 (torchvision layout), NCHW", "input": "[32,3,\(imageSize),\(imageSize)]",
                            "mode": "eval, no grad, logits"]) {
        let rng = RandomSource(seed: 3)
        let model = try ResNet(.resnet18, rng: rng)
        model.eval()
        let x = Tensor.normal([batch, 3, imageSize, imageSize], rng: &rng.generator)
        return { _ = try withNoGrad { try model(x) } }
    }
}

/// MobileNetV2 inference on 32 images: eval mode, no tape, `encoder.logits`.
func mobileNetV2ForwardWorkload(imageSize: Int) -> Workload {
    let batch = 32
    return Workload(name: "mobilenetv2-forward-\(imageSize)", unitName: "forward",
                    flopsPerUnit: mobileNetV2ForwardFlops(batch: batch, size: imageSize), unitsPerRun: imageSize <= 64 ? 5 : 1,
                    notes: ["model": "MobileNetV2 1.0 (torchvision layout), NCHW", "input": "[32,3,\(imageSize),\(imageSize)]",
                            "mode": "eval, no grad, logits"]) {
        let rng = RandomSource(seed: 4)
        let encoder = try benchMobileNetV2(rng: rng)
        encoder.eval()
        let x = Tensor.normal([batch, 3, imageSize, imageSize], rng: &rng.generator)
        return { _ = try withNoGrad { try classLogits(encoder, x) } }
    }
}

/// One MobileNetV2 training step on 32 images: train-mode batch norm and classifier dropout 0.2,
/// cross-entropy over 1000 classes, backward, SGD (lr 0.1, momentum 0.9, weight decay 1e-4) as
/// the ResNet-18 training workloads.
func mobileNetV2TrainWorkload(imageSize: Int) -> Workload {
    let batch = 32
    return Workload(name: "mobilenetv2-train-\(imageSize)", unitName: "step",
                    flopsPerUnit: 3 * mobileNetV2ForwardFlops(batch: batch, size: imageSize), unitsPerRun: 1,
                    notes: ["model": "MobileNetV2 1.0 (torchvision layout), NCHW", "input": "[32,3,\(imageSize),\(imageSize)]",
                            "step": "forward (dropout 0.2) + backward + SGD(lr=0.1, momentum=0.9, wd=1e-4)"]) {
        let rng = RandomSource(seed: 4)
        let encoder = try benchMobileNetV2(rng: rng)
        encoder.train()
        let opt = try SGD(parameters: encoder.parameters, lr: 0.1, momentum: 0.9, weightDecay: 1e-4)
        let x = Tensor.normal([batch, 3, imageSize, imageSize], rng: &rng.generator)
        let y = labels(batch, classes: 1000)
        return {
            opt.zeroGrad()
            let loss = try crossEntropy(try classLogits(encoder, x), targets: y)
            try loss.backward()
            try opt.step()
        }
    }
}

/// Frozen MobileNetV2 and a linear head (1280 → 10) trained for 5 epochs over 512 noise images of
/// 3×96×96 (batch 32, AdamW lr 1e-3, wd 0.01). runpipe's way: pooled features once, in eval mode
/// without a tape (what the `embed_image` stage computes and caches), then 5 epochs over them. The
/// reference recomputes the frozen backbone in every epoch, as a plain training loop does. The
/// images are generated before timing on both sides. One unit is the whole job.
func mobileNetV2FrozenEpochsWorkload() -> Workload {
    let rows = 512, size = 96, batch = 32, epochs = 5, classes = 10
    return Workload(name: "mobilenetv2-frozen-5ep", unitName: "job",
                    flopsPerUnit: mobileNetV2ForwardFlops(batch: rows, size: size, classes: nil), unitsPerRun: 1,
                    notes: ["model": "MobileNetV2 1.0 frozen", "data": "\(rows) images 3x\(size)x\(size)",
                            "mode": "features once + \(epochs) epochs of a linear head 1280->\(classes), batch \(batch), AdamW lr=1e-3"]) {
        let rng = RandomSource(seed: 4)
        let encoder = try benchMobileNetV2(rng: rng)
        encoder.eval()
        let images = (0..<(rows / batch)).map { _ in Tensor.normal([batch, 3, size, size], rng: &rng.generator) }
        let y = labels(rows, classes: classes)
        return {
            let head = Linear(encoder.shape.features, classes, rng: RandomSource(seed: 3))
            let opt = try AdamW(parameters: head.parameters, lr: 1e-3, weightDecay: 0.01)
            let features = try withNoGrad { try images.map { try encoder.features($0) } }
            for _ in 0..<epochs {
                for (i, f) in features.enumerated() {
                    opt.zeroGrad()
                    let loss = try crossEntropy(try head(f), targets: Array(y[(i * batch)..<((i + 1) * batch)]))
                    try loss.backward()
                    try opt.step()
                }
            }
        }
    }
}
