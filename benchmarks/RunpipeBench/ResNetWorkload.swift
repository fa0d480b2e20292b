import Foundation
import TensorEngine
import Layers
import Models
import Training

// ResNet-18 from the Models module (torchvision layout), as users get it.

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
        let model = try ResNet(.resnet18, rng: rng)
        model.train()
        let opt = try SGD(parameters: model.parameters, lr: 0.1, momentum: 0.9, weightDecay: 1e-4)
        let x = Tensor.normal([batch, 3, imageSize, imageSize], rng: &rng.generator)
        let y = labels(batch, classes: 1000)
        return {
            opt.zeroGrad()
            let loss = try crossEntropy(try model(x), targets: y)
            try loss.backward()
            try opt.step()
        }
    }
}
