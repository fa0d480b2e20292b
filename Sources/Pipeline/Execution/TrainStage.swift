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
    /// A library user's callbacks, after the pipeline's own.
    var userCallbacks: [any TrainerCallback] = []

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
        let network: FusionNetwork
        do {
            network = try FusionNetwork(config, encoder: encoder, imageEncoder: imageBackbone)
        } catch let e as FusionError {
            var at = spec.sources["fusion"]
            if case .invalidConfig(_, let field, _) = e {
                // The module's settings carry AutoMM's names; the file uses runpipe's.
                let names = ["adapt_in_features": "adapt_width", "attention_num_heads": "heads", "num_blocks": "blocks",
                             "ffn_hidden_size": "ffn_width", "hidden_sizes": "hidden", "modality_dropout": "modality_dropout",
                             "aux_loss_weight": "aux_loss_weight", "dropout": "dropout"]
                let automm = String(field.prefix { $0 != "." && $0 != "[" })
                at = names[automm].flatMap { spec.sources["fusion.\($0)"] } ?? at
            }
            throw PipelineError("fusion: \(e)", at: at)
        }
        try initialiseBackbone(network)
        let adapted = try applyPEFT(network, config)
        let trainable = network.parameterCount(trainableOnly: true)
        var frozenNote = config.text?.mode == .frozen ? " (the frozen text encoder is not in the network: its features are cached)" : ""
        if config.image?.mode == .frozen { frozenNote += " (the frozen image backbone is not in the network: its features are cached)" }
        log("  parameters: \(formatCount(trainable)) trainable of \(formatCount(network.parameterCount()))\(frozenNote)")
        for line in adapted { log("  \(line)") }
        if let module = config.fusionModule {
            log("  fusion: \(FusionNetwork.backboneOutputs(config)) backbone outputs → \(module.summary)")
        }

        let t = spec.trainer
        // Rows `missing: skip_row` left out do not train.
        let usable = train.usablePositions
        guard !usable.isEmpty else {
            throw PipelineError("every training row was left out for lack of a readable image (processors.image.missing: skip_row)",
                                at: spec.sources["processors.image.missing"], hint: "check the image paths; `runpipe inspect` decodes a sample")
        }
        if usable.count < train.count { log("  \(train.count - usable.count) training row(s) without a readable image left out") }
        let options = TrainerOptions(
            epochs: t.epochs, batchSize: t.batchSize, seed: spec.seed,
            gradClip: t.gradClip.map { t.gradClipAlgorithm == .norm ? .norm(Float($0)) : .value(Float($0)) },
            accumulation: t.accumulate, validationInterval: t.valCheckInterval, timeLimit: t.timeLimit)
        let batches = options.batchesPerEpoch(sampleCount: usable.count)
        if t.accumulate > batches {
            throw PipelineError("trainer.accumulate is \(t.accumulate), but an epoch has only \(batches) batch\(batches == 1 ? "" : "es") of \(t.batchSize) (\(usable.count) training rows)",
                                at: spec.sources["trainer.accumulate"],
                                hint: "use accumulate: \(max(1, batches)) or less, or a smaller batch_size")
        }
        let optimizer = try makeOptimizer(network, config)
        let totalSteps = options.totalSteps(sampleCount: usable.count)
        let scheduler = try Scheduler(optimizer: optimizer, schedule: schedule(totalSteps: totalSteps))

        let metricSet = try validationMetrics(problem: problem, metric: metric)
        let validate = {
            try Scoring.validationScores(network: network, processors: processors, part: validation,
                                         metrics: metricSet, batchSize: max(t.batchSize, 256))
        }
        var callbacks: [any TrainerCallback] = []
        var checkpoints: TopKCheckpoints?
        var lrMonitor: LRMonitor?
        var progressStyle = ProgressStyle.auto
        for (i, c) in t.callbacks.enumerated() {
            switch c {
            case .earlyStopping(let e):
                let (monitor, mode) = try resolveMonitor(e.monitor, e.mode, metric: metric, problem: problem,
                                                         key: "trainer.callbacks[\(i)].early_stopping")
                callbacks.append(try EarlyStopping(monitor: monitor, mode: mode, patience: e.patience, minDelta: e.minDelta))
            case .checkpoint(let cp):
                let (monitor, mode) = try resolveMonitor(cp.monitor, cp.mode, metric: metric, problem: problem,
                                                         key: "trainer.callbacks[\(i)].checkpoint")
                let averaging: CheckpointAveraging
                switch cp.average {
                case .best: averaging = .best
                case .uniform_soup: averaging = .uniformSoup
                case .greedy_soup: averaging = .greedySoup
                }
                let keeper = try TopKCheckpoints(monitor: monitor, mode: mode, k: cp.topK, averaging: averaging, evaluate: {
                    guard let value = try validate()[monitor] else {
                        throw PipelineError.internalInconsistency("validation did not produce \(monitor)")
                    }
                    return value
                })
                checkpoints = keeper
                callbacks.append(keeper)
            case .lrMonitor:
                let m = LRMonitor()
                lrMonitor = m
                callbacks.append(m)
            case .csvLogger(let l):
                let path = l.path.replacingOccurrences(of: "{name}", with: spec.name)
                let url = spec.resolve(path, declaredAt: "trainer.callbacks[\(i)].csv_logger.path")
                do {
                    try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                } catch {
                    throw PipelineError("cannot create the folder of csv_logger's file \(url.path): \(error.localizedDescription)",
                                        at: spec.sources["trainer.callbacks[\(i)].csv_logger.path"] ?? spec.sources["trainer.callbacks[\(i)].csv_logger"],
                                        hint: "choose a path in a writable folder")
                }
                callbacks.append(CSVLogger(url: url))
            case .progress(let p):
                progressStyle = p.style
            }
        }
        if progressStyle != .none {
            var shown = ["val.loss", "val." + (processors.targets?.monitorKey(metric) ?? metric.rawValue)]
            for c in callbacks {
                if let m = c as? any MonitoringCallback, !shown.contains(m.monitor) { shown.append(m.monitor) }
            }
            callbacks.append(ProgressReporter(interactive: progressStyle == .lines ? false : nil, shownKeys: shown, output: progress))
        }

        callbacks += userCallbacks
        let named = network.namedParameters().filter { $0.tensor.requiresGrad }
        let trainer = try Trainer(
            options: options,
            parameters: named.map { (name: $0.key, tensor: $0.tensor) },
            buffers: network.namedBuffers().map { (name: $0.key, tensor: $0.tensor) },
            optimizer: optimizer, scheduler: scheduler, callbacks: callbacks)

        var imageSource = network.imageBatchSource
        let augmentation = try image.map { try $0.reading.trainingPipelines().random }
        let mixup = try makeMixup(config)
        let summary = try trainer.fit(
            sampleCount: usable.count,
            step: { indices in
                let positions = indices.map { usable[$0] }
                if let augmentation, config.image?.mode != .frozen {
                    imageSource?.augmentation = (augmentation, spec.seed, trainer.epoch)
                }
                var batch = try train.batch(positions, text: config.text?.mode, image: imageSource)
                let targets = train.targetValues(positions)
                var soft: Tensor?
                if let mixup, mixup.turnOff.map({ trainer.epoch < $0 }) ?? true {
                    (batch, soft) = try mix(batch, targets: targets, mixup: mixup.mixup, step: trainer.globalStep)
                }
                return try network.loss(try network.outputs(batch), targets: targets, soft: soft)
            },
            validate: validate,
            setTraining: { network.train($0) })
        network.eval()
        let merged = try mergePEFT(in: network)
        if merged > 0 { log("  merged the adapters of \(merged) layer\(merged == 1 ? "" : "s") into their weights") }
        if let checkpoints, !checkpoints.installedSteps.isEmpty {
            let steps = checkpoints.installedSteps.map(String.init).joined(separator: ", ")
            log("  final weights: \(checkpoints.averaging.rawValue) of the validation\(checkpoints.installedSteps.count == 1 ? "" : "s") at step\(checkpoints.installedSteps.count == 1 ? "" : "s") \(steps)"
                + (checkpoints.installedScore.map { " (\(checkpoints.monitor) \(String(format: "%.4f", $0)))" } ?? ""))
        }

        let record = TrainSummaryRecord(
            epochs: summary.history.records.last.map { Int($0.epoch) } ?? 0, steps: summary.steps,
            bestEpoch: checkpoints == nil ? nil : summary.bestEpoch,
            monitor: summary.monitor, bestValue: summary.bestValue, stoppedEarly: summary.stoppedEarly,
            seconds: Date().timeIntervalSince(start), parameters: network.parameterCount(),
            trainRows: train.count, validationRows: validation.count)
        return TrainedModel(network: network, historyCSV: summary.history.csv(), summary: record,
                            learningRatesCSV: lrMonitor?.csv())
    }

    /// Applies `peft:` to the pretrained backbones that train, within what their `trainable`
    /// opens; returns the log lines. Errors name `peft` keys.
    func applyPEFT(_ network: FusionNetwork, _ config: NetworkConfig) throws -> [String] {
        let p = spec.peft
        guard p.method != .none else { return [] }
        var lines: [String] = []
        var branches: [(name: String, module: Module, scope: [String]?)] = []
        if let text = config.text, text.mode != .frozen, let encoder = network.encoder {
            branches.append(("text", encoder, PEFTPlan.textScope(text.mode, firstTrainable: text.firstTrainableLayer, encoder: encoder)))
        }
        if let image = config.image, image.mode != .frozen, let encoder = network.imageEncoder {
            branches.append(("image", encoder, PEFTPlan.imageScope(image.mode, encoder: encoder)))
        }
        guard !branches.isEmpty else {
            throw PipelineError("peft.method \(p.method.rawValue) has no pretrained backbone to adapt: the data has no text or image column whose backbone trains",
                                at: spec.sources["peft.method"], hint: "remove peft, or add text/image columns")
        }
        let rng = RandomSource(seed: spec.seed ^ 0x5045_4654)
        for branch in branches {
            guard let options = PEFTPlan.options(spec, scope: branch.scope) else { break }
            let method = options.method
            let report: PEFTReport
            do {
                report = try Layers.applyPEFT(options, to: branch.module, rng: rng)
            } catch let e as PEFTError {
                let key: String
                switch e {
                case .unmatchedTarget(_, let list, _): key = list == "target" ? "peft.targets" : "peft.feedforward"
                case .noTargets: key = "peft.targets"
                case .invalidPattern: key = "peft.targets"
                default: key = "peft.method"
                }
                throw PipelineError("peft on the \(branch.name) backbone: \(e)", at: spec.sources[key] ?? spec.sources["peft.method"] ?? spec.sources["peft"],
                                    hint: branch.name == "image" && network.imageEncoder.map({ !($0.shape.architecture.hasPrefix("vit")) }) == true
                                        ? "LoRA and IA3 adapt linear layers; a CNN's are convolutions — use bit_fit or norm_fit, or set backbones.image.trainable: frozen"
                                        : "adjust peft.targets or choose another method")
            }
            let share = report.totalParameters > 0 ? 100 * Double(report.trainableParameters) / Double(report.totalParameters) : 0
            lines.append("peft \(method.rawValue) on the \(branch.name) backbone: \(formatCount(report.trainableParameters)) of \(formatCount(report.totalParameters)) weights train (\(String(format: "%.2f", share)) %)"
                         + (report.adaptedModules.isEmpty ? "" : ", adapters on \(report.adaptedModules.count) layers"))
        }
        return lines
    }

    /// The mixup settings when `trainer.mixup` is on; throws when the pipeline cannot mix.
    func makeMixup(_ config: NetworkConfig) throws -> (mixup: Mixup, turnOff: Int?)? {
        guard let m = spec.trainer.mixup else { return nil }
        let at = spec.sources["trainer.mixup"]
        guard config.problem != .regression else {
            throw PipelineError("trainer.mixup mixes class targets; this is a regression problem", at: at, hint: "remove mixup")
        }
        guard let image = config.image, image.mode != .frozen else {
            throw PipelineError("trainer.mixup mixes training images, but there is no image column with a fine-tuned backbone",
                                at: at, hint: "set backbones.image.trainable: full (or {top_blocks: N}), or remove mixup")
        }
        let mixup = Mixup(mixupAlpha: m.mixupAlpha, cutmixAlpha: m.cutmixAlpha, prob: m.prob, switchProb: m.switchProb,
                          labelSmoothing: m.labelSmoothing, classes: config.outputs, seed: spec.seed)
        try located(at) { try mixup.validate() }
        return (mixup, m.turnOffEpoch)
    }

    /// Mixes the batch's images (every image column with the same draw) and returns soft targets.
    func mix(_ batch: NetworkBatch, targets: [Float], mixup: Mixup, step: Int) throws -> (NetworkBatch, Tensor?) {
        var out = batch
        var soft: Tensor?
        for (i, input) in batch.images.enumerated() {
            guard case .pixels(let pixels, let owners, let rows) = input else { continue }
            guard owners == Array(0..<rows) else {
                throw PipelineError("trainer.mixup needs exactly one image per row and column; this batch has cells with \(owners.count) images for \(rows) rows",
                                    at: spec.sources["trainer.mixup"], hint: "set processors.image.max_images_per_cell: 1, or remove mixup")
            }
            let mixed = try mixup.apply(pixels: pixels, targets: targets.map { Int($0) }, step: step)
            out.images[i] = .pixels(mixed.pixels, owners: owners, rows: rows)
            soft = mixed.targets
        }
        return (out, soft)
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
        var config = NetworkConfig(backbone: hasTabular ? backbone : nil, text: textBranch, image: imageBranch,
                                   fusionHidden: [], fusionDropout: 0,
                                   schema: schema, problem: processors.problem, outputs: outputs, seed: spec.seed,
                                   targets: processors.targets?.weighted(spec.data.labelWeights))
        if config.targets == nil {
            config.loss = try TaskLoss(spec, problem: processors.problem, classes: outputs)
        } else if let key = ["trainer.loss", "trainer.label_smoothing", "trainer.mixup"].first(where: { spec.sources[$0] != nil }) {
            throw PipelineError("\(key) applies to a single classification or regression label; this pipeline has several labels or a multi-label task",
                                at: spec.sources[key], hint: "remove \(key): each task uses its own standard loss (cross-entropy, MSE, binary cross-entropy)")
        }
        let count = FusionNetwork.backboneOutputs(config)
        if FusionKind.needsFusion(backboneCount: count) {
            config.fusionModule = fusionKind()
        } else if spec.fusion.auxLossWeight != nil || spec.fusion.modalityDropout > 0 {
            let key = spec.fusion.auxLossWeight != nil ? "aux_loss_weight" : "modality_dropout"
            throw PipelineError("fusion.\(key) needs two or more backbone outputs; this pipeline has one, so there is no fusion module",
                                at: spec.sources["fusion.\(key)"] ?? spec.sources["fusion"], hint: "remove fusion.\(key)")
        }
        return config
    }

    /// `fusion:` as the fusion module's settings.
    func fusionKind() -> FusionKind {
        let adapt: (AdaptWidth) -> AdaptInFeatures = { $0 == .max ? .max : .min }
        switch spec.fusion {
        case .mlp(let m):
            return .mlp(FusionMLPConfig(adaptInFeatures: adapt(m.adaptWidth), hiddenSizes: m.hidden,
                                        activation: Layers.Activation(rawValue: m.activation.rawValue) ?? .leaky_relu,
                                        dropout: Float(m.dropout), auxLossWeight: m.auxLossWeight.map { Float($0) },
                                        modalityDropout: ModalityDropoutConfig(probability: Float(m.modalityDropout))))
        case .transformer(let f):
            return .transformer(FusionTransformerConfig(adaptInFeatures: adapt(f.adaptWidth), blocks: f.blocks, heads: f.heads,
                                                        ffnHiddenSize: f.ffnWidth, attentionDropout: Float(f.attentionDropout),
                                                        residualDropout: Float(f.residualDropout), ffnDropout: Float(f.ffnDropout),
                                                        auxLossWeight: f.auxLossWeight.map { Float($0) },
                                                        modalityDropout: ModalityDropoutConfig(probability: Float(f.modalityDropout))))
        }
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

    /// The optimizer over the trainable parameters, grouped as `trainer.optimizer.lr_choice`
    /// says (AutoMM's rules): weight decay on matrices only; with `layerwise_decay`, a pretrained
    /// backbone's layer i of L trains at lr × lr_decay^(L − i), its embeddings/stem at
    /// lr × lr_decay^(L + 1), and the tabular backbone, fusion and heads at lr; with
    /// `two_stages`, the fusion and heads at lr × lr_mult.
    func makeOptimizer(_ network: FusionNetwork, _ config: NetworkConfig) throws -> any Optimizer {
        let o = spec.trainer.optimizer
        let trainable = network.namedParameters().filter { $0.tensor.requiresGrad }
        let lr = Float(o.lr), wd = Float(o.weightDecay)
        // Keys under a pretrained backbone, with their depth.
        var prefixes: [(prefix: String, depth: Int, layers: Int)] = []
        var backboneRoots: [(root: String, layers: Int)] = []
        if let encoder = network.encoder, config.text?.mode != .frozen {
            let layers = encoder.shape.layers
            backboneRoots.append(("text.encoder.", layers))
            for l in 0..<layers {
                for p in encoder.parameterPrefixes(ofLayer: l) { prefixes.append(("text.encoder." + p, l + 1, layers)) }
            }
        }
        if let image = network.imageEncoder, config.image?.mode != .frozen {
            let blocks = image.shape.blocks
            backboneRoots.append(("image.encoder.", blocks))
            for b in 0..<blocks {
                for p in image.parameterPrefixes(ofBlock: b) { prefixes.append(("image.encoder." + p, b + 1, blocks)) }
            }
        }
        prefixes.sort { $0.prefix.count > $1.prefix.count }
        func position(_ key: String) -> LayerDepth? {
            for p in prefixes where key == p.prefix || key.hasPrefix(p.prefix.hasSuffix(".") ? p.prefix : p.prefix + ".") {
                return LayerDepth(depth: p.depth, layers: p.layers)
            }
            // The rest of a backbone (embeddings, stem, final norm) sits below its first layer.
            for r in backboneRoots where key.hasPrefix(r.root) { return LayerDepth(depth: 0, layers: r.layers) }
            return nil
        }
        let isHead: (String) -> Bool = { key in !backboneRoots.contains { key.hasPrefix($0.root) } }
        let groups: [ParameterGroup]
        switch o.lrChoice {
        case .layerwise_decay:
            groups = try ParameterGroup.layerwiseDecay(trainable, lr: lr, decay: Float(o.lrDecay), weightDecay: wd,
                                                       position: position, isHead: isHead)
        case .two_stages:
            groups = try ParameterGroup.twoStages(trainable, lr: lr, headMultiplier: Float(o.lrMult), weightDecay: wd, isHead: isHead)
        case .single:
            let decay = trainable.filter { $0.tensor.rank >= 2 }, noDecay = trainable.filter { $0.tensor.rank < 2 }
            var g = [ParameterGroup(name: "decay", namedParameters: decay, lr: lr, weightDecay: wd)]
            if !noDecay.isEmpty { g.append(ParameterGroup(name: "no_decay", namedParameters: noDecay, lr: lr, weightDecay: 0)) }
            groups = g
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
        try Self.resolveMonitor(text, mode, metric: metric, problem: problem, key: key, spec: spec, processors: processors)
    }

    static func resolveMonitor(_ text: String, _ mode: MonitorModeSpec, metric: Metric, problem: ProblemType,
                               key: String, spec: PipelineSpec, processors: FittedProcessors) throws -> (String, MonitorMode) {
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
