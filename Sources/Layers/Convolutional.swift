import TensorEngine

/// 2-D convolution over NCHW input, weight [out, in/groups, kH, kW] (PyTorch layout and
/// initialisation: Kaiming-uniform with a = √5).
public final class Conv2d: Module {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: (Int, Int), padding: (Int, Int), dilation: (Int, Int), groups: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernel: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1, bias: Bool = true,
                rng: RandomSource) throws {
        guard groups > 0, inChannels % groups == 0, outChannels % groups == 0 else {
            throw TensorError.invalidArgument(op: "Conv2d", detail: "groups \(groups) must divide in (\(inChannels)) and out (\(outChannels)) channels")
        }
        guard kernel.0 > 0, kernel.1 > 0 else {
            throw TensorError.invalidArgument(op: "Conv2d", detail: "kernel size \(kernel) must be positive")
        }
        let fanIn = inChannels / groups * kernel.0 * kernel.1
        let bound = 1 / Float(max(fanIn, 1)).squareRoot()
        weight = Tensor.parameter(Tensor.uniform([outChannels, inChannels / groups, kernel.0, kernel.1], low: -bound, high: bound, rng: &rng.generator))
        self.bias = bias ? Tensor.parameter(Tensor.uniform([outChannels], low: -bound, high: bound, rng: &rng.generator)) : nil
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.groups = groups
        super.init()
        register(parameter: "weight", weight)
        if let b = self.bias { register(parameter: "bias", b) }
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation, groups: groups)
    }
}

/// Batch normalisation over the channels of NCHW input, with running statistics as buffers
/// (`running_mean`, `running_var`) updated in training mode.
public final class BatchNorm2d: Module {
    public let weight: Tensor
    public let bias: Tensor
    public let runningMean: Tensor
    public let runningVar: Tensor
    public let momentum: Float
    public let eps: Float

    public init(_ channels: Int, momentum: Float = 0.1, eps: Float = 1e-5) {
        weight = Tensor.parameter(Tensor.ones([channels]))
        bias = Tensor.parameter(Tensor.zeros([channels]))
        runningMean = Tensor.zeros([channels])
        runningVar = Tensor.ones([channels])
        self.momentum = momentum
        self.eps = eps
        super.init()
        register(parameter: "weight", weight)
        register(parameter: "bias", bias)
        register(buffer: "running_mean", runningMean)
        register(buffer: "running_var", runningVar)
    }

    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        try batchNorm2d(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                        training: isTraining, momentum: momentum, eps: eps)
    }
}

/// `norm(conv(x))`, with the normalisation folded into the convolution when that gives the same
/// result — in evaluation mode, and when no gradient is being recorded for either layer's
/// parameters (feature extraction, prediction, frozen layers) — and saves work: the convolution
/// has fewer than eight weights per output element. The folded layer convolves with
/// `w·γ/√(var+ε)` and adds `(b − mean)·γ/√(var+ε) + β`, so the activations are visited once
/// instead of twice; the result equals the two-step one up to rounding (a few ulps). In training
/// mode, or when either layer trains, it is exactly `norm(conv(x))`.
public func convBatchNorm(_ conv: Conv2d, _ norm: BatchNorm2d, _ x: Tensor) throws -> Tensor {
    let trains = [conv.weight, norm.weight, norm.bias].contains { $0.requiresGrad } || (conv.bias?.requiresGrad ?? false)
    // Folding rewrites every weight once per call (a tight loop), the pass it saves is a
    // separate kernel over the output; it stops paying when the weights outnumber the outputs
    // several times over (ResNet's last stages on small images). By shape alone, so results
    // stay deterministic.
    let outputs = x.rank == 4 ? x.shape[0] * conv.weight.shape[0] * (x.shape[2] / conv.stride.0) * (x.shape[3] / conv.stride.1) : 0
    guard !norm.isTraining, !(GradMode.isEnabled && trains), conv.weight.shape[0] == norm.runningMean.count,
          8 * outputs > conv.weight.count else {
        return try norm(try conv(x))
    }
    let out = conv.weight.shape[0]
    let perOut = conv.weight.count / out
    func dense(_ t: Tensor) -> Tensor { t.isContiguous ? t : t.clone() }
    let w = dense(conv.weight), gamma = dense(norm.weight), beta = dense(norm.bias)
    let mean = dense(norm.runningMean), variance = dense(norm.runningVar)
    let convBias = conv.bias.map(dense)
    let foldedWeight = Tensor(uninitialized: conv.weight.shape)
    let foldedBias = Tensor(uninitialized: [out])
    withExtendedLifetime((w, gamma, beta, mean, variance, convBias)) {
        for o in 0..<out {
            let scale = gamma.data[o] / (variance.data[o] + norm.eps).squareRoot()
            let src = w.data + o * perOut, dst = foldedWeight.data + o * perOut
            for i in 0..<perOut { dst[i] = src[i] * scale }
            foldedBias.data[o] = ((convBias?.data[o] ?? 0) - mean.data[o]) * scale + beta.data[o]
        }
    }
    return try conv2d(x, weight: foldedWeight, bias: foldedBias, stride: conv.stride, padding: conv.padding,
                      dilation: conv.dilation, groups: conv.groups)
}
