import Checkpoints
import Foundation
import Layers
import Models
import Spec
import TensorEngine
import Training

/// The `train` stage: builds the network the spec describes, the optimizer with its parameter
/// groups, the schedule and the callbacks, and runs the trainer.
struct TrainStage {
    let spec: PipelineSpec
    let processors: FittedProcessors
    /// The text backbone's checkpoint when the pipeline has text columns.
    let text: TextCheckpoint?
    /// Loads the pretrained text encoder (called only when some of it trains).
    let encoder: () throws -> any TextEncoder
    /// The image backbone's checkpoint and settings when the pipeline has image columns.
    let image: (checkpoint: ImageCheckpoint, reading: ImageReading, mode: ImageTrainMode)?
    /// Loads the pretrained image backbone.
    let imageEncoder: () throws -> LoadedImageEncoder
    let log: (String) -> Void
    /// Receives the trainer's progress text (a redrawn bar on a terminal, epoch lines otherwise).
    let progress: (String) -> Void

    func run(train: EncodedPart, validation: EncodedPart) throws -> TrainedModel {
        let start = Date()
        let problem = processors.problem
        let metric = try resolvedMetric(spec, problem: problem)
        var pretrainedImage: LoadedImageEncoder?
        if image != nil, !(processors.image ?? []).isEmpty { pretrainedImage = try imageEncoder() }
        let config = try networkConfig(image: pretrainedImage)
        var encoder: (any TextEncoder)?
        if let t = config.text, t.mode != .frozen { encoder = try self.encoder() }
        let imageBackbone = config.image.flatMap { $0.mode == .frozen ? nil : pretrainedImage?.encoder }
        let network = try FusionNetwork(config, encoder: encoder, imageEncoder: imageBackbone)
        try initialiseBackbone(network)
        let trainable = network.parameterCount(trainableOnly: true)
        var frozenNote = config.text?.mode == .frozen ? " (the frozen text encoder is not in the network: its features are cached)" : ""
        if config.image?.mode == .frozen { frozenNote += " (the frozen image backbone is not in the network: its features are cached)" }
        log("  parameters: \(formatCount(trainable)) trainable of \(formatCount(network.parameterCount()))\(frozenNote)")

        let t = spec.trainer
        let optimizer = try makeOptimizer(network)
        // Rows `missing: skip_row` left out do not train.
        let usable = train.usablePositions
        guard !usable.isEmpty else {
            throw PipelineError("every training row was left out for lack of a readable image (processors.image.missing: skip_row)",
                                at: spec.sources["processors.image.missing"], hint: "check the image paths; `runpipe inspect` decodes a sample")
        }
        if usable.count < train.count { log("  \(train.count - usable.count) training row(s) without a readable image left out") }
        let stepsPerEpoch = (usable.count + t.batchSize - 1) / t.batchSize
        let totalSteps = stepsPerEpoch * t.epochs
        let scheduler = try Scheduler(optimizer: optimizer, schedule: schedule(totalSteps: totalSteps))

        var callbacks: [any TrainerCallback] = []
        var bestWeights: BestWeights?
        for (i, c) in t.callbacks.enumerated() {
            switch c {
            case .earlyStopping(let e):
                let (monitor, mode) = try resolveMonitor(e.monitor, e.mode, metric: metric, problem: problem,
                                                         key: "trainer.callbacks[\(i)].early_stopping")
                callbacks.append(try EarlyStopping(monitor: monitor, mode: mode, patience: e.patience, minDelta: e.minDelta))
            case .checkpoint(let cp):
                let (monitor, mode) = try resolveMonitor(cp.monitor, cp.mode, metric: metric, problem: problem,
                                                         key: "trainer.callbacks[\(i)].checkpoint")
                let b = try BestWeights(monitor: monitor, mode: mode)
                bestWeights = b
                callbacks.append(b)
            }
        }
        var shown = ["val.loss", "val." + (processors.targets?.monitorKey(metric) ?? metric.rawValue)]
        for c in callbacks {
            if let m = c as? any MonitoringCallback, !shown.contains(m.monitor) { shown.append(m.monitor) }
        }
        callbacks.append(ProgressReporter(shownKeys: shown, output: progress))

        let named = network.namedParameters().filter { $0.tensor.requiresGrad }
        let trainer = try Trainer(
            options: TrainerOptions(epochs: t.epochs, batchSize: t.batchSize, seed: spec.seed,
                                    gradClipNorm: t.gradClip.map { Float($0) }),
            parameters: named.map { (name: $0.key, tensor: $0.tensor) },
            buffers: network.namedBuffers().map { (name: $0.key, tensor: $0.tensor) },
            optimizer: optimizer, scheduler: scheduler, callbacks: callbacks)

        let metricSet = try validationMetrics(problem: problem, metric: metric)
        var imageSource = network.imageBatchSource
        let augmentation = try image.map { try $0.reading.trainingPipelines().random }
        let summary = try trainer.fit(
            sampleCount: usable.count,
            step: { indices in
                let positions = indices.map { usable[$0] }
                if let augmentation, config.image?.mode != .frozen {
                    imageSource?.augmentation = (augmentation, spec.seed, trainer.epoch)
                }
                let logits = try network.logits(try train.batch(positions, text: config.text?.mode, image: imageSource))
                return try network.loss(logits, targets: train.targetValues(positions))
            },
            validate: {
                try Scoring.validationScores(network: network, processors: processors, part: validation,
                                             metrics: metricSet, batchSize: max(t.batchSize, 256))
            },
            setTraining: { network.train($0) })
        network.eval()

        let record = TrainSummaryRecord(
            epochs: summary.history.records.count, steps: summary.steps, bestEpoch: bestWeights == nil ? nil : summary.bestEpoch,
            monitor: summary.monitor, bestValue: summary.bestValue, stoppedEarly: summary.stoppedEarly,
            seconds: Date().timeIntervalSince(start), parameters: network.parameterCount(),
            trainRows: train.count, validationRows: validation.count)
        return TrainedModel(network: network, historyCSV: summary.history.csv(), summary: record)
    }

    // MARK: - Parts


    func networkConfig(image pretrained: LoadedImageEncoder? = nil) throws -> NetworkConfig {
        let backbone: NetworkConfig.Backbone
        switch spec.backbones.tabular {
        case .mlp(let m):
            backbone = .mlp(TabularMLPConfig(hidden: m.hidden, dropout: Float(m.dropout),
                                             activation: Layers.Activation(rawValue: m.activation.rawValue) ?? .relu,
                                             embeddingDim: m.embeddingDim))
        case .ftTransformer(let f):
            backbone = .ftTransformer(FTTransformerConfig(
                dToken: f.dToken, layers: f.layers, heads: f.heads, attentionDropout: Float(f.attentionDropout),
                ffnDropout: Float(f.ffnDropout), residualDropout: Float(f.residualDropout), ffnFactor: Float(f.ffnFactor)))
        }
        let schema = processors.tabularSchema
        let hasTabular = schema.numericCount + schema.categoricalCount > 0
        var textBranch: TextBranchConfig?
        if !processors.text.isEmpty, let text, let t = spec.backbones.text {
            textBranch = TextBranchConfig(checkpoint: text, mode: TextTrainMode(t.trainable), columns: processors.text,
                                          segments: t.combine == .separate ? processors.text.count : 1)
        }
        var imageBranch: ImageBranchConfig?
        if let columns = processors.image, !columns.isEmpty, let image, let pretrained {
            let shape = pretrained.encoder.shape
            let location = spec.sources["backbones.image"]
            if shape.fixedSize, image.reading.size != shape.inputSize {
                throw PipelineError("backbones.image.size is \(image.reading.size), but \(shape.architecture) reads \(shape.inputSize)×\(shape.inputSize) images only",
                                    at: spec.sources["backbones.image.size"] ?? location, hint: "set size: \(shape.inputSize)")
            }
            if image.reading.size < shape.minimumSize {
                throw PipelineError("backbones.image.size is \(image.reading.size); \(shape.architecture) needs at least \(shape.minimumSize)",
                                    at: spec.sources["backbones.image.size"] ?? location, hint: "set size: \(shape.minimumSize) or more")
            }
            if case .topBlocks(let n) = image.mode, n > shape.blocks {
                throw PipelineError("backbones.image.trainable.top_blocks is \(n), but \(shape.architecture) has \(shape.blocks) blocks",
                                    at: spec.sources["backbones.image.trainable.top_blocks"] ?? location,
                                    hint: "use top_blocks between 1 and \(shape.blocks), or trainable: full")
            }
            imageBranch = ImageBranchConfig(checkpoint: image.checkpoint, reading: image.reading, mode: image.mode, columns: columns,
                                            shape: shape, description: StoredImageDescription(pretrained.description))
        }
        guard hasTabular || textBranch != nil || imageBranch != nil else {
            throw PipelineError("no feature column is left to train on (every column is the label or ignored)",
                                at: spec.sources["data.columns"] ?? spec.sources["data.train"],
                                hint: "check `runpipe inspect` on the training file and the overrides in data.columns")
        }
        let outputs = processors.targets?.outputCount ?? (processors.problem == .regression ? 1 : processors.classes.count)
        return NetworkConfig(backbone: hasTabular ? backbone : nil, text: textBranch, image: imageBranch,
                             fusionHidden: spec.fusion.hidden, fusionDropout: Float(spec.fusion.dropout),
                             schema: schema, problem: processors.problem, outputs: outputs, seed: spec.seed,
                             targets: processors.targets?.weighted(spec.data.labelWeights))
    }

    /// Loads `backbones.tabular.checkpoint` into the backbone and freezes it when not trainable.
    func initialiseBackbone(_ network: FusionNetwork) throws {
        let tabular = spec.backbones.tabular
        guard let backbone = network.backbone else { return }
        if let path = tabular.checkpoint {
            let key = "backbones.tabular.checkpoint"
            let url = spec.resolve(path, declaredAt: key)
            try located(spec.sources[key]) {
                let weights = try SafetensorsFile(url: url).tensors()
                try backbone.load(weights, strict: true)
            }
        }
        if !tabular.trainable { try backbone.freeze() }
    }

    /// Two parameter groups as AutoMM makes them: weight decay on matrices, none on biases,
    /// norms and other vectors.
    func makeOptimizer(_ network: FusionNetwork) throws -> any Optimizer {
        let o = spec.trainer.optimizer
        let trainable = network.namedParameters().filter { $0.tensor.requiresGrad }
        let decay = trainable.filter { $0.tensor.rank >= 2 }
        let noDecay = trainable.filter { $0.tensor.rank < 2 }
        var groups = [ParameterGroup(name: "decay", namedParameters: decay, lr: Float(o.lr), weightDecay: Float(o.weightDecay))]
        if !noDecay.isEmpty {
            groups.append(ParameterGroup(name: "no_decay", namedParameters: noDecay, lr: Float(o.lr), weightDecay: 0))
        }
        let betas = (Float(o.betas[0]), Float(o.betas[1]))
        switch o.kind {
        case .adamw: return try AdamW(groups: groups, betas: betas, eps: Float(o.eps))
        case .adam: return try Adam(groups: groups, betas: betas, eps: Float(o.eps))
        case .sgd: return try SGD(groups: groups, momentum: Float(o.momentum), nesterov: o.nesterov)
        }
    }

    func schedule(totalSteps: Int) -> LRSchedule {
        let s = spec.trainer.schedule
        let warmup = Int((s.warmup * Double(totalSteps)).rounded(.down))
        switch s.kind {
        case .constant: return warmup > 0 ? .constantWithWarmup(warmupSteps: warmup) : .constant
        case .linear: return .linear(warmupSteps: warmup, totalSteps: totalSteps)
        case .cosine:
            return s.minLRRatio > 0
                ? .cosineWithMinLR(warmupSteps: warmup, totalSteps: totalSteps, minLRRate: s.minLRRatio)
                : .cosine(warmupSteps: warmup, totalSteps: totalSteps)
        case .polynomial:
            let lr = spec.trainer.optimizer.lr
            return .polynomial(warmupSteps: warmup, totalSteps: totalSteps, lrInit: lr,
                               lrEnd: max(lr * s.minLRRatio, 1e-12), power: s.power)
        }
    }

    /// The metrics computed on the validation rows every epoch: the run's metric plus the
    /// problem's standard set.
    func validationMetrics(problem: ProblemType, metric: Metric) throws -> MetricSet {
        var list = Metric.standardSet(for: problem)
        if !list.contains(metric) { list.append(metric) }
        return try MetricSet(problem: problem, metrics: list)
    }

    /// `auto` → `val.<metric>`; mode `auto` → the metric's direction (loss: min). Checks the
    /// metric applies to the (inferred) problem.
    func resolveMonitor(_ text: String, _ mode: MonitorModeSpec, metric: Metric, problem: ProblemType,
                        key: String) throws -> (String, MonitorMode) {
        let target = MonitorTarget(text)
        let location = spec.sources["\(key).monitor"] ?? spec.sources[key]
        let higher: Bool
        let name: String
        switch target {
        case .auto?: name = "val." + (processors.targets?.monitorKey(metric) ?? metric.rawValue); higher = metric.higherIsBetter
        case .loss?: name = "val.loss"; higher = false
        case .task(let task, let m)?:
            try TargetLayout.checkMonitor(processors.targets, task: task, metric: m, text: text, key: key, at: location)
            name = text; higher = m.higherIsBetter
        case .metric(let m)? where processors.targets?.namesTasks == true:
            throw PipelineError("\(key) monitors \(text), which names no task, and this pipeline has several",
                                at: location, hint: "name the task: val.\(processors.label).\(m.rawValue)")
        case .metric(let m)?:
            guard m.problems.contains(problem) else {
                throw PipelineError("\(key) monitors \(text), which a \(problem.rawValue) problem does not produce",
                                    at: location,
                                    hint: "monitor one of: val.loss, \(Metric.standardSet(for: problem).map { "val.\($0.rawValue)" }.joined(separator: ", "))")
            }
            name = text; higher = m.higherIsBetter
        case nil:
            throw PipelineError("\(key): unknown monitor '\(text)'", at: location, hint: "use auto, val.loss or val.<metric>")
        }
        switch mode {
        case .auto: return (name, higher ? .max : .min)
        case .min: return (name, .min)
        case .max: return (name, .max)
        }
    }
}

/// 22 700 000 → "22.7M".
func formatCount(_ n: Int) -> String {
    if n >= 1_000_000 { return String(format: "%.1fM", Double(n) / 1e6) }
    if n >= 10_000 { return String(format: "%.0fk", Double(n) / 1e3) }
    return "\(n)"
}

/// The run's metric: the file's, or AutoMM's default for the problem; checked against the
/// problem that detection found.
func resolvedMetric(_ spec: PipelineSpec, problem: ProblemType) throws -> Metric {
    guard let m = spec.metric else { return Metric.defaultMetric(for: problem) }
    guard m.problems.contains(problem) else {
        throw PipelineError("metric \(m.rawValue) does not apply to this \(problem.rawValue) problem",
                            at: spec.sources["metric"],
                            hint: "use one of \(Metric.allCases.filter { $0.problems.contains(problem) }.map(\.rawValue).joined(separator: ", ")), or auto")
    }
    return m
}
