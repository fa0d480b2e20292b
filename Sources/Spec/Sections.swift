import Foundation
import Training

// The declarations: every key of the pipeline file, once — its name, type, constraint,
// description and (through `init()`) its default. See `Schema.swift` for how they are used.

// MARK: - Top level

extension PipelineSpec: SpecSection {
    init() { self.init(name: "", data: DataSpec()) }
    static let title = "runpipe pipeline"
    static let summary = "A runpipe pipeline file: data, problem, processors, backbones, fusion and trainer. "
        + "Every key but `version`, `data.train` and `data.label` has a default (the resolved YAML writes them all out)."

    static var fields: [Field<PipelineSpec>] {
        [
            Field("version", \.version, Codecs.int().checked { $0 == 1 ? nil : ("unsupported version \($0); this runpipe reads version 1", "set `version: 1`") }
                .schemaAdding([("const", .int(1))]),
                  "Format version of the pipeline file; must be 1.", required: true, example: "version: 1"),
            Field("name", \.name, Codecs.string(pattern: "[A-Za-z0-9._-]+", maxLength: 64),
                  "Name of the pipeline (letters, digits, `.`, `_`, `-`; at most 64 characters). Defaults to the file name without its extension.", contextualDefault: true),
            Field("seed", \.seed, Codecs.uint64, "Seed of every random choice: splits, initialisation, dropout, shuffling."),
            Field("data", \.data, Sections.codec(DataSpec.self), "Where the data comes from and how its columns are read.",
                  required: true, example: "data: {train: train.csv, label: target}"),
            Field("problem", \.problem, problemCodec,
                  "The problem type, or `auto` to infer it from the label column; with several label columns one type for all, "
                  + "`multilabel` (the columns are the binary labels of one task), or a mapping label column → type (others inferred). "
                  + "`multilabel` is never inferred."),
            Field("metric", \.metric, metricCodec, "The evaluation metric, or `auto` for the problem's default."),
            Field("processors", \.processors, Sections.codec(ProcessorsSpec.self), "How columns are turned into model inputs."),
            Field("backbones", \.backbones, Sections.codec(BackbonesSpec.self), "The backbone network per modality."),
            Field("fusion", \.fusion, FusionSections.codec, "How the backbones' features are fused into the prediction head."),
            Field("trainer", \.trainer, Sections.codec(TrainerSpec.self), "Optimizer, schedule, epochs, batch size, clipping and callbacks."),
            Field("peft", \.peft, Sections.codec(PEFTSpec.self), "Parameter-efficient fine-tuning of the pretrained backbones that train."),
            Field("preset", \.preset, Codecs.optional(Codecs.enumeration(PresetName.self)),
                  "medium_quality, high_quality or best_quality: AutoMM's presets, sitting under this file's own values (which win); null: none."),
            Field("sweep", \.sweep, Codecs.optional(Sections.codec(SweepSpec.self)),
                  "What `runpipe sweep` varies (grid, random or successive halving over any keys); `runpipe train` ignores it."),
        ]
    }

    static var problemCodec: Codec<ProblemChoice> {
        let w = Codecs.words(["auto"] + ProblemType.allCases.map(\.rawValue), what: "problem")
        let perTask = Codecs.dictionary(Codecs.enumeration(ProblemType.self))
        return Codec(schema: {
            .object([("oneOf", .list([w.schema(), perTask.schema().adding([("description", .string("Label column → problem type."))])]))])
        }, decode: { node, path, ctx in
            if node.mapEntries != nil { return perTask.decode(node, path, ctx).map(ProblemChoice.perTask) }
            return w.decode(node, path, ctx).map { ProblemType(rawValue: $0).map(ProblemChoice.fixed) ?? .auto }
        }, encode: { choice in
            switch choice {
            case .auto: return .string("auto")
            case .fixed(let p): return .string(p.rawValue)
            case .perTask(let map): return perTask.encode(map)
            }
        })
    }

    static var metricCodec: Codec<Metric?> {
        let w = Codecs.words(["auto"] + Metric.allCases.map(\.rawValue), what: "metric")
        return Codec(schema: w.schema, decode: { node, path, ctx in
            w.decode(node, path, ctx).map { text -> Metric? in Metric(rawValue: text) }
        }, encode: { .string($0?.rawValue ?? "auto") })
    }

    static func validate(_ spec: PipelineSpec, _ scope: Scope) {
        validateLabels(spec, scope)
        let multiTask = spec.isMultiTask
        // With several tasks the run's metric and `auto` monitor are the first task's.
        let problem = multiTask ? spec.problem.problem(for: spec.data.label) : spec.problem.fixed
        if let m = spec.metric, let p = problem, !m.problems.contains(p) {
            scope.fail("metric", "metric '\(m.rawValue)' does not apply to problem '\(p.rawValue)'",
                       hint: "use one of: \(Metric.allCases.filter { $0.problems.contains(p) }.map(\.rawValue).joined(separator: ", "))")
        }
        let metric = spec.metric ?? problem.map(Metric.defaultMetric(for:))
        for (i, callback) in spec.trainer.callbacks.enumerated() {
            let base = "trainer.callbacks[\(i)].\(callback.key)"
            guard let (monitor, mode) = callback.monitored else { continue }
            var higherIsBetter: Bool? = nil
            switch MonitorTarget(monitor) {
            case .metric(let m)? where multiTask:
                scope.fail(base + ".monitor", "monitor '\(monitor)' names no task, and this pipeline has \(spec.data.labels.count)",
                           hint: "name the task: val.\(spec.data.label).\(m.rawValue)")
                continue
            case .task(let task, let m)?:
                guard multiTask, spec.data.labels.contains(task) else {
                    let hint = multiTask ? "use val.<task>.<metric> with a task among \(spec.data.labels.joined(separator: ", "))"
                        : "this pipeline has one task: monitor val.\(m.rawValue)"
                    scope.fail(base + ".monitor", "monitor '\(monitor)': '\(task)' is not a task of this pipeline\(Suggest.didYouMean(task, spec.data.labels))",
                               hint: hint)
                    continue
                }
                if let p = spec.problem.problem(for: task), !m.problems.contains(p) {
                    scope.fail(base + ".monitor", "monitor '\(monitor)' is not computed for task '\(task)' (\(p.rawValue))",
                               hint: "use one of: \(Metric.standardSet(for: p).map { "val.\(task).\($0.rawValue)" }.joined(separator: ", "))")
                    continue
                }
                higherIsBetter = m.higherIsBetter
            case .metric(let m)?:
                if let p = problem, !m.problems.contains(p) {
                    scope.fail(base + ".monitor", "monitor '\(monitor)' is not computed for problem '\(p.rawValue)'",
                               hint: "use `auto`, `val.loss` or one of: \(Metric.allCases.filter { $0.problems.contains(p) }.map { "val." + $0.rawValue }.joined(separator: ", "))")
                    continue
                }
                if let chosen = spec.metric, m.problems.isDisjoint(with: chosen.problems) {
                    scope.fail(base + ".monitor", "monitor '\(monitor)' and metric '\(chosen.rawValue)' belong to different problem types",
                               hint: "monitor `auto` (val.\(chosen.rawValue)) or another metric of the same problem type")
                    continue
                }
                higherIsBetter = m.higherIsBetter
            case .loss?: higherIsBetter = false
            case .auto?: higherIsBetter = metric?.higherIsBetter
            case nil: break
            }
            if let h = higherIsBetter, (mode == .min && h) || (mode == .max && !h) {
                let shown = monitor == "auto" ? "auto (val.\(metric?.rawValue ?? "?"))" : monitor
                scope.fail(base + ".mode", "mode: \(mode.rawValue) contradicts monitor \(shown), where \(h ? "higher" : "lower") is better",
                           hint: "remove `mode` (auto follows the monitor) or use mode: \(h ? "max" : "min")")
            }
        }
        let ctx = scope.ctx
        let train = PipelineSpec.resolve(spec.data.train, origin: ctx.origins["data.train"], topFile: ctx.topFile)
        if let test = spec.data.test, PipelineSpec.resolve(test, origin: ctx.origins["data.test"], topFile: ctx.topFile) == train {
            scope.fail("data.test", "data.test is the same file as data.train (\(spec.data.train))",
                       hint: "evaluate on held-out rows: point data.test at a separate file, or remove it")
        }
        if case .file(let v) = spec.data.validation,
           PipelineSpec.resolve(v, origin: ctx.origins["data.validation"], topFile: ctx.topFile) == train {
            scope.fail("data.validation", "data.validation is the same file as data.train (\(spec.data.train))",
                       hint: "use a separate file, or a holdout split: `validation: {fraction: 0.2}`")
        }
    }
}

// MARK: - Data

extension DataSpec: SpecSection {
    init() { self.init(train: "", label: "") }
    static let title = "data"
    static let summary = "The training table, optional test and validation data, the label column and how cells are read."

    static var fields: [Field<DataSpec>] {
        [
            Field("train", \.train, Codecs.string(nonEmpty: true), "Path of the training table (CSV or JSON Lines), relative to the file that declares it.",
                  required: true, example: "train: data/train.csv"),
            Field("test", \.test, Codecs.optional(Codecs.string(nonEmpty: true)), "Path of a test table evaluated after training, or null."),
            Field("validation", \.validation, validationCodec,
                  "Validation data: a path to a table, or a holdout split of the training rows `{fraction, stratify}`."),
            Field("label", \.labels, labelsCodec,
                  "The label (target) column, or a list of them: each a task of its own (one head each, losses summed), "
                  + "or with `problem: multilabel` the binary columns of one multi-label task.",
                  required: true, example: "label: target"),
            Field("label_separator", \.labelSeparator, Codecs.string(nonEmpty: true),
                  "What separates labels in a cell of a label-set column (`problem: multilabel` on one column); cells may also be JSON lists."),
            Field("label_weights", \.labelWeights, Codecs.dictionary(Codecs.double(min: 0, minOpen: true)),
                  "With several label columns: label column → weight of its task's loss in the sum (> 0; tasks not named weigh 1)."),
            Field("columns", \.columns, Codecs.dictionary(Codecs.enumeration(ColumnOverride.self)),
                  "Per-column modality overrides: column name → numeric, categorical, text, image or ignore."),
            Field("missing_values", \.missingValues, Codecs.list(Codecs.string()), "Cell values read as missing."),
            Field("format", \.format, Codecs.enumeration(DataFormat.self),
                  "Table format; `auto` goes by the file extension (.csv/.tsv → csv, .jsonl/.ndjson → jsonl)."),
        ]
    }

    /// A column name, or a non-empty list of them (written back as a string when there is one).
    static var labelsCodec: Codec<[String]> {
        let one = Codecs.string(nonEmpty: true)
        let many = Codecs.list(one, minItems: 1)
        return Codec(schema: {
            .object([("oneOf", .list([one.schema(), many.schema()]))])
        }, decode: { node, path, ctx in
            if case .list = node.kind { return many.decode(node, path, ctx) }
            return one.decode(node, path, ctx).map { [$0] }
        }, encode: { $0.count == 1 ? one.encode($0[0]) : many.encode($0) })
    }

    static var validationCodec: Codec<ValidationSpec> {
        let path = Codecs.string(nonEmpty: true)
        let holdout = Sections.codec(HoldoutSpec.self)
        return Codec(schema: {
            .object([("oneOf", .list([path.schema().adding([("description", .string("Path of a validation table."))]), holdout.schema()]))])
        }, decode: { node, p, ctx in
            if case .scalar = node.kind, !node.isNull { return path.decode(node, p, ctx).map(ValidationSpec.file) }
            if node.mapEntries == nil && !node.isNull {
                ctx.fail(node.origin, p, "\(p) expects a path or a mapping {fraction, stratify}, found \(node.shown)")
                return nil
            }
            return holdout.decode(node, p, ctx).map { .holdout(fraction: $0.fraction, stratify: $0.stratify) }
        }, encode: { v in
            switch v {
            case .file(let s): return .string(s)
            case .holdout(let f, let s): return holdout.encode(HoldoutSpec(fraction: f, stratify: s))
            }
        })
    }
}

/// `data.validation` as a holdout split.
struct HoldoutSpec: SpecSection {
    var fraction = 0.2
    var stratify = true
    static let title = "holdout"
    static let summary = "Hold out a fraction of the training rows for validation."
    static var fields: [Field<HoldoutSpec>] {
        [
            Field("fraction", \.fraction, Codecs.double(min: 0, minOpen: true, max: 0.9), "Fraction of training rows held out, in (0, 0.9]."),
            Field("stratify", \.stratify, Codecs.bool, "Keep the label distribution in both parts (classification only)."),
        ]
    }
}

// MARK: - Processors

extension ProcessorsSpec: SpecSection {
    static let title = "processors"
    static let summary = "Column processors per modality."
    static var fields: [Field<ProcessorsSpec>] {
        [
            Field("numeric", \.numeric, Sections.codec(NumericProcessorSpec.self), "Numeric columns."),
            Field("categorical", \.categorical, Sections.codec(CategoricalProcessorSpec.self), "Categorical columns."),
            Field("image", \.image, Sections.codec(ImageProcessorSpec.self), "Image columns."),
        ]
    }
}

extension ImageProcessorSpec: SpecSection {
    static let title = "image processor"
    static let summary = "How image cells are read and transformed before the image backbone."
    static var fields: [Field<ImageProcessorSpec>] {
        [
            Field("missing", \.missing, Codecs.enumeration(ImageMissing.self),
                  "A missing, unreadable or broken image: error stops with the row; skip_row leaves the row out of training and scoring and gives it no prediction; zero uses a black image (AutoMM's choice)."),
            Field("max_pixels", \.maxPixels, Codecs.int(min: 1),
                  "Images with more pixels (width × height, read from the header) are refused before decoding."),
            Field("allow_outside", \.allowOutside, Codecs.bool,
                  "Let cells name files outside the data file's folder (absolute paths, `..`)."),
            Field("train_transforms", \.trainTransforms, Codecs.list(Codecs.string(nonEmpty: true), minItems: 1),
                  "Transforms of training images, in order: resize_shorter_side, resize, center_crop, random_resize_crop, random_horizontal_flip, color_jitter, trivial_augment."),
            Field("val_transforms", \.valTransforms, Codecs.list(Codecs.string(nonEmpty: true), minItems: 1),
                  "Transforms of validation, test and prediction images (deterministic ones only)."),
            Field("max_images_per_cell", \.maxImagesPerCell, Codecs.int(1...64),
                  "At most this many `;`-separated images of a cell are read; their features are averaged."),
        ]
    }
}

extension NumericProcessorSpec: SpecSection {
    static let title = "numeric processor"
    static let summary = "Missing-value imputation and scaling of numeric columns."
    static var fields: [Field<NumericProcessorSpec>] {
        [
            Field("impute", \.impute, Codecs.enumeration(NumericImpute.self), "Fill missing numbers with the training median or mean."),
            Field("scale", \.scale, Codecs.enumeration(NumericScale.self),
                  "standard: zero mean, unit variance; quantile: map to a normal distribution by rank; none: as is."),
        ]
    }
}

extension CategoricalProcessorSpec: SpecSection {
    static let title = "categorical processor"
    static let summary = "Vocabulary of categorical columns."
    static var fields: [Field<CategoricalProcessorSpec>] {
        [
            Field("min_count", \.minCount, Codecs.int(min: 1), "Categories seen fewer times in training map to the unknown category."),
            Field("max_categories", \.maxCategories, Codecs.int(min: 2), "At most this many (most frequent) categories get their own embedding."),
        ]
    }
}

// MARK: - Backbones

extension BackbonesSpec: SpecSection {
    static let title = "backbones"
    static let summary = "The backbone network per modality."
    static var fields: [Field<BackbonesSpec>] {
        [
            Field("tabular", \.tabular, tabularCodec, "The backbone over numeric and categorical columns, chosen by `kind`."),
            Field("text", \.text, Codecs.optional(Sections.codec(TextBackboneSpec.self)),
                  "The pretrained encoder of text columns (a Hugging Face checkpoint folder), or null.",
                  example: "text: {checkpoint: ../models/all-MiniLM-L6-v2, trainable: frozen}"),
            Field("image", \.image, Codecs.optional(Sections.codec(ImageBackboneSpec.self)),
                  "The pretrained encoder of image columns (a CNN or ViT checkpoint), or null.",
                  example: "image: {checkpoint: ../models/mobilenet_v2, architecture: mobilenet_v2, trainable: frozen}"),
        ]
    }

    static var tabularCodec: Codec<TabularBackboneSpec> {
        Unions.tagged("kind", default: "mlp", [
            UnionCase("mlp", MLPBackboneSpec.self, "A multilayer perceptron over embedded columns.",
                      wrap: TabularBackboneSpec.mlp, unwrap: { if case .mlp(let s) = $0 { return s }; return nil }),
            UnionCase("ft_transformer", FTTransformerSpec.self, "FT-Transformer: one token per column, transformer layers, [CLS] readout.",
                      wrap: TabularBackboneSpec.ftTransformer, unwrap: { if case .ftTransformer(let s) = $0 { return s }; return nil }),
        ])
    }
}

extension MLPBackboneSpec: SpecSection {
    static let title = "mlp backbone"
    static let summary = "A multilayer perceptron over the concatenated column embeddings."
    static var fields: [Field<MLPBackboneSpec>] {
        [
            Field("hidden", \.hidden, Codecs.list(Codecs.int(min: 1)), "Widths of the hidden layers."),
            Field("dropout", \.dropout, Codecs.double(min: 0, max: 1, maxOpen: true), "Dropout after each hidden layer, in [0, 1)."),
            Field("activation", \.activation, Codecs.enumeration(Activation.self), "Activation after each hidden layer."),
            Field("embedding_dim", \.embeddingDim, Codecs.optional(Codecs.int(min: 1)),
                  "Width of every categorical embedding; null = a rule of thumb from the category count."),
            Field("trainable", \.trainable, Codecs.bool, "Whether the backbone's weights are updated."),
            Field("checkpoint", \.checkpoint, Codecs.optional(Codecs.string(nonEmpty: true)),
                  "A safetensors file to initialise the backbone from (relative to the declaring file), or null."),
        ]
    }
}

extension FTTransformerSpec: SpecSection {
    static let title = "ft_transformer backbone"
    static let summary = "FT-Transformer (Gorishniy et al., 2021): a token per column and a transformer encoder."
    static var fields: [Field<FTTransformerSpec>] {
        [
            Field("d_token", \.dToken, Codecs.int(min: 8), "Token width; a multiple of `heads`."),
            Field("layers", \.layers, Codecs.int(min: 1), "Number of transformer layers."),
            Field("heads", \.heads, Codecs.int(min: 1), "Attention heads; must divide `d_token`."),
            Field("attention_dropout", \.attentionDropout, Codecs.double(min: 0, max: 1, maxOpen: true), "Dropout on attention probabilities, in [0, 1)."),
            Field("ffn_dropout", \.ffnDropout, Codecs.double(min: 0, max: 1, maxOpen: true), "Dropout inside the feed-forward block, in [0, 1)."),
            Field("residual_dropout", \.residualDropout, Codecs.double(min: 0, max: 1, maxOpen: true), "Dropout on residual branches, in [0, 1)."),
            Field("ffn_factor", \.ffnFactor, Codecs.double(min: 0, minOpen: true), "Feed-forward width as a multiple of `d_token` (> 0)."),
            Field("trainable", \.trainable, Codecs.bool, "Whether the backbone's weights are updated."),
            Field("checkpoint", \.checkpoint, Codecs.optional(Codecs.string(nonEmpty: true)),
                  "A safetensors file to initialise the backbone from (relative to the declaring file), or null."),
        ]
    }

    static func validate(_ s: FTTransformerSpec, _ scope: Scope) {
        if s.dToken % s.heads != 0 {
            let divisors = (1...min(s.dToken, 64)).filter { s.dToken % $0 == 0 }.map(String.init).joined(separator: ", ")
            scope.fail("heads", "heads (\(s.heads)) must divide d_token (\(s.dToken))",
                       hint: "use heads among \(divisors), or a d_token that is a multiple of \(s.heads) (e.g. \(s.dToken / s.heads * s.heads + s.heads))")
        }
    }
}

extension TextBackboneSpec: SpecSection {
    static let title = "text backbone"
    static let summary = "A pretrained transformer encoder of text columns: BERT, RoBERTa/XLM-R, DistilBERT, ELECTRA, MPNet or DeBERTa-v2/v3."
    static var fields: [Field<TextBackboneSpec>] {
        [
            Field("checkpoint", \.checkpoint, Codecs.string(nonEmpty: true),
                  "The checkpoint folder (config.json, weights, tokenizer.json or vocab.txt), relative to the declaring file.",
                  required: true, example: "checkpoint: ../models/all-MiniLM-L6-v2"),
            Field("pooling", \.pooling, Codecs.enumeration(TextPoolingSpec.self),
                  "cls, mean or max over the tokens; auto: the checkpoint's sentence-transformers pooling if it has one, else cls."),
            Field("max_length", \.maxLength, Codecs.int(2...8192),
                  "Tokens per text input, special tokens included; longer texts are truncated (and counted in the log)."),
            Field("trainable", \.trainable, trainableCodec,
                  "full: fine-tune every layer; frozen: cache pooled features, train the head only; {top_layers: N}: cache the hidden states below the top N layers and train those."),
            Field("combine", \.combine, Codecs.enumeration(TextCombine.self),
                  "Several text columns: join them into one sequence with the separator token, or encode each separately."),
        ]
    }

    static var trainableCodec: Codec<TextTrainable> {
        let word = Codecs.words(["full", "frozen"], what: "trainable")
        let top = Sections.codec(TopLayersSpec.self)
        return Codec(schema: {
            .object([("oneOf", .list([word.schema(), top.schema()]))])
        }, decode: { node, p, ctx in
            if case .scalar = node.kind, !node.isNull {
                return word.decode(node, p, ctx).map { $0 == "frozen" ? TextTrainable.frozen : .full }
            }
            if node.mapEntries == nil {
                ctx.fail(node.origin, p, "\(p) expects full, frozen or a mapping {top_layers: N}, found \(node.shown)")
                return nil
            }
            return top.decode(node, p, ctx).map { TextTrainable.topLayers($0.topLayers) }
        }, encode: { v in
            switch v {
            case .full: return .string("full")
            case .frozen: return .string("frozen")
            case .topLayers(let n): return top.encode(TopLayersSpec(topLayers: n))
            }
        })
    }
}

extension ImageBackboneSpec: SpecSection {
    static let title = "image backbone"
    static let summary = "A pretrained image encoder: ResNet, MobileNetV2, EfficientNet-Lite, ViT or ConvNeXt."
    static var fields: [Field<ImageBackboneSpec>] {
        [
            Field("checkpoint", \.checkpoint, Codecs.string(nonEmpty: true),
                  "A Hugging Face or timm folder, a folder holding one weights file, or the weights file itself (.safetensors, .bin, .pth), relative to the declaring file.",
                  required: true, example: "checkpoint: ../models/mobilenet_v2"),
            Field("architecture", \.architecture, Codecs.optional(Codecs.string(nonEmpty: true)),
                  "The architecture (resnet18, mobilenet_v2, efficientnet_lite0, vit_base_patch16_224, convnext_tiny, …) when the files do not name it; null: from config.json or the weight names."),
            Field("size", \.size, Codecs.int(16...1024), "Side in pixels of the square images the backbone reads."),
            Field("trainable", \.trainable, trainableCodec,
                  "full: fine-tune every weight, with train-time augmentation; frozen: cache pooled features, train the head only; {top_blocks: N}: fine-tune the top N blocks."),
        ]
    }

    static var trainableCodec: Codec<ImageTrainable> {
        let word = Codecs.words(["full", "frozen"], what: "trainable")
        let top = Sections.codec(TopBlocksSpec.self)
        return Codec(schema: {
            .object([("oneOf", .list([word.schema(), top.schema()]))])
        }, decode: { node, p, ctx in
            if case .scalar = node.kind, !node.isNull {
                return word.decode(node, p, ctx).map { $0 == "frozen" ? ImageTrainable.frozen : .full }
            }
            if node.mapEntries == nil {
                ctx.fail(node.origin, p, "\(p) expects full, frozen or a mapping {top_blocks: N}, found \(node.shown)")
                return nil
            }
            return top.decode(node, p, ctx).map { ImageTrainable.topBlocks($0.topBlocks) }
        }, encode: { v in
            switch v {
            case .full: return .string("full")
            case .frozen: return .string("frozen")
            case .topBlocks(let n): return top.encode(TopBlocksSpec(topBlocks: n))
            }
        })
    }
}

/// `backbones.image.trainable` as `{top_blocks: N}`.
struct TopBlocksSpec: SpecSection {
    var topBlocks = 1
    static let title = "top blocks"
    static let summary = "Fine-tune only the top N blocks of the image backbone."
    static var fields: [Field<TopBlocksSpec>] {
        [Field("top_blocks", \.topBlocks, Codecs.int(min: 1), "How many of the backbone's top blocks train (≥ 1).",
               required: true, example: "top_blocks: 2")]
    }
}

/// `backbones.text.trainable` as `{top_layers: N}`.
struct TopLayersSpec: SpecSection {
    var topLayers = 1
    static let title = "top layers"
    static let summary = "Fine-tune only the top N encoder layers; the hidden states below them are cached."
    static var fields: [Field<TopLayersSpec>] {
        [Field("top_layers", \.topLayers, Codecs.int(min: 1), "How many of the encoder's top layers train (≥ 1).",
               required: true, example: "top_layers: 2")]
    }
}

// MARK: - Fusion

enum FusionSections {
    static var codec: Codec<FusionSpec> {
        Unions.tagged("kind", default: "mlp", [
            UnionCase("mlp", FusionMLPSpec.self, "AutoMM's late-fusion MLP: per-backbone adapters, concatenation, hidden units, head.",
                      wrap: FusionSpec.mlp, unwrap: { if case .mlp(let s) = $0 { return s }; return nil }),
            UnionCase("transformer", FusionTransformerSpec.self, "FT-Transformer blocks over one token per backbone, read out through a [CLS] token.",
                      wrap: FusionSpec.transformer, unwrap: { if case .transformer(let s) = $0 { return s }; return nil }),
        ])
    }
}

/// `aux_loss_weight`: null or ≥ 0.
private let auxLossCodec = Codecs.optional(Codecs.double(min: 0))
private let auxLossSummary = "Weight of per-backbone auxiliary heads' losses added to the fused loss (two or more backbones); null: no auxiliary heads."
private let modalityDropoutSummary = "Probability that a training row loses one backbone's features (never all of them), in [0, 1)."

extension FusionMLPSpec: SpecSection {
    static let title = "fusion mlp"
    static let summary = "AutoMM's fusion MLP: each backbone's features pass an adapter, are concatenated, then hidden units (layer norm → linear → activation → dropout) and the task head."
    static var fields: [Field<FusionMLPSpec>] {
        [
            Field("hidden", \.hidden, Codecs.list(Codecs.int(min: 1)), "Hidden widths after concatenation (empty: the head reads the concatenation)."),
            Field("activation", \.activation, Codecs.enumeration(Activation.self), "Activation of the hidden units."),
            Field("dropout", \.dropout, Codecs.double(min: 0, max: 1, maxOpen: true), "Dropout of the hidden units, in [0, 1)."),
            Field("adapt_width", \.adaptWidth, Codecs.enumeration(AdaptWidth.self),
                  "Project every backbone's features to the widest (max) or narrowest (min) backbone's width before concatenating."),
            Field("aux_loss_weight", \.auxLossWeight, auxLossCodec, auxLossSummary),
            Field("modality_dropout", \.modalityDropout, Codecs.double(min: 0, max: 1, maxOpen: true), modalityDropoutSummary),
        ]
    }
}

extension FusionTransformerSpec: SpecSection {
    static let title = "fusion transformer"
    static let summary = "FT-Transformer fusion: each backbone's features become one token; transformer blocks; the head reads a [CLS] token."
    static var fields: [Field<FusionTransformerSpec>] {
        [
            Field("adapt_width", \.adaptWidth, Codecs.enumeration(AdaptWidth.self),
                  "The token width: the widest (max) or narrowest (min) backbone's feature width, which `heads` must divide."),
            Field("blocks", \.blocks, Codecs.int(1...64), "Transformer blocks."),
            Field("heads", \.heads, Codecs.int(min: 1), "Attention heads; must divide the token width."),
            Field("ffn_width", \.ffnWidth, Codecs.int(min: 1), "Hidden width of each block's feed-forward network."),
            Field("attention_dropout", \.attentionDropout, Codecs.double(min: 0, max: 1, maxOpen: true), "Dropout on attention probabilities, in [0, 1)."),
            Field("residual_dropout", \.residualDropout, Codecs.double(min: 0, max: 1, maxOpen: true), "Dropout on residual branches, in [0, 1)."),
            Field("ffn_dropout", \.ffnDropout, Codecs.double(min: 0, max: 1, maxOpen: true), "Dropout inside the feed-forward network, in [0, 1)."),
            Field("aux_loss_weight", \.auxLossWeight, auxLossCodec, auxLossSummary),
            Field("modality_dropout", \.modalityDropout, Codecs.double(min: 0, max: 1, maxOpen: true), modalityDropoutSummary),
        ]
    }

}

// MARK: - Trainer

extension TrainerSpec: SpecSection {
    static let title = "trainer"
    static let summary = "Optimisation: optimizer, learning-rate schedule, epochs, batch size, gradient clipping, callbacks."
    static var fields: [Field<TrainerSpec>] {
        [
            Field("optimizer", \.optimizer, Sections.codec(OptimizerSpec.self), "The optimizer."),
            Field("schedule", \.schedule, Sections.codec(ScheduleSpec.self), "The learning-rate schedule."),
            Field("epochs", \.epochs, Codecs.int(1...100_000), "Passes over the training set."),
            Field("batch_size", \.batchSize, Codecs.int(1...65_536), "Rows per optimisation step."),
            Field("grad_clip", \.gradClip, Codecs.optional(Codecs.double(min: 0, minOpen: true)),
                  "Gradient clipping threshold (> 0); null disables clipping."),
            Field("grad_clip_algorithm", \.gradClipAlgorithm, Codecs.enumeration(GradClipAlgorithm.self),
                  "norm: scale the gradients so their global L2 norm is at most grad_clip; value: clamp each element to ±grad_clip."),
            Field("accumulate", \.accumulate, Codecs.int(1...4096),
                  "Batches whose gradients add up to one optimizer step (the effective batch is batch_size × accumulate)."),
            Field("val_check_interval", \.valCheckInterval, Codecs.double(min: 0, minOpen: true, max: 1),
                  "Validate after every this fraction of an epoch, in (0, 1] (AutoMM uses 0.5); early stopping patience counts validations."),
            Field("time_limit", \.timeLimit, Codecs.optional(Codecs.double(min: 0, minOpen: true)),
                  "Stop training after this many seconds and keep the best weights so far; null: no limit."),
            Field("label_smoothing", \.labelSmoothing, Codecs.double(min: 0, max: 1, maxOpen: true),
                  "Label smoothing of the classification loss, in [0, 1)."),
            Field("loss", \.loss, Sections.codec(LossSpec.self), "The training loss."),
            Field("mixup", \.mixup, Codecs.optional(Sections.codec(MixupSpec.self)),
                  "Mixup/CutMix of training images (classification with fine-tuned image backbones); null: off.",
                  example: "mixup: {mixup_alpha: 0.8, cutmix_alpha: 1.0}"),
            Field("callbacks", \.callbacks, Codecs.list(callbackCodec),
                  "Callbacks, each a one-key mapping (`- early_stopping: {patience: 3}`). A list replaces the default; `[]` means none (progress is still shown unless a `progress` entry says otherwise)."),
        ]
    }

    static func validate(_ t: TrainerSpec, _ scope: Scope) {
        if t.mixup != nil, t.loss.kind != .auto, t.loss.kind != .cross_entropy {
            scope.fail("mixup", "mixup trains on mixed (soft) targets, which only the cross-entropy loss takes; loss.kind is \(t.loss.kind.rawValue)",
                       hint: "remove mixup, or use loss: {kind: auto}")
        }
        let keys = t.callbacks.map(\.key)
        for (i, key) in keys.enumerated() where keys[..<i].contains(key) && key != "early_stopping" {
            scope.fail("callbacks[\(i)]", "the \(key) callback is listed twice", hint: "keep one `\(key)` entry")
        }
    }

    static var callbackCodec: Codec<CallbackSpec> {
        Unions.keyed([
            UnionCase("early_stopping", EarlyStoppingSpec.self, "Stop when the monitored value stops improving.",
                      wrap: CallbackSpec.earlyStopping, unwrap: { if case .earlyStopping(let s) = $0 { return s }; return nil }),
            UnionCase("checkpoint", CheckpointSpec.self, "Keep the top-k validations' weights and end with the best one or their (greedy) average.",
                      wrap: CallbackSpec.checkpoint, unwrap: { if case .checkpoint(let s) = $0 { return s }; return nil }),
            UnionCase("lr_monitor", LRMonitorSpec.self, "Record every step's learning rate per parameter group in the run's lr.csv.",
                      wrap: CallbackSpec.lrMonitor, unwrap: { if case .lrMonitor(let s) = $0 { return s }; return nil }),
            UnionCase("csv_logger", CSVLoggerSpec.self, "Write the validation rows to a CSV file while training runs.",
                      wrap: CallbackSpec.csvLogger, unwrap: { if case .csvLogger(let s) = $0 { return s }; return nil }),
            UnionCase("progress", ProgressSpec.self, "How training progress is shown.",
                      wrap: CallbackSpec.progress, unwrap: { if case .progress(let s) = $0 { return s }; return nil }),
        ], what: "callback")
    }
}

extension OptimizerSpec: SpecSection {
    static let title = "optimizer"
    static let summary = "The optimizer and its hyperparameters."
    static var fields: [Field<OptimizerSpec>] {
        let sgd: (OptimizerSpec) -> Bool = { $0.kind == .sgd }
        return [
            Field("kind", \.kind, Codecs.enumeration(OptimizerKind.self), "adamw (decoupled weight decay), adam or sgd."),
            Field("lr", \.lr, Codecs.double(min: 0, minOpen: true), "Peak learning rate (> 0)."),
            Field("weight_decay", \.weightDecay, Codecs.double(min: 0), "Weight decay (≥ 0): decoupled for adamw, L2 for adam and sgd."),
            Field("betas", \.betas, Codecs.list(Codecs.double(min: 0, max: 1, maxOpen: true), minItems: 2, maxItems: 2),
                  "Adam's β1 and β2, each in [0, 1)."),
            Field("eps", \.eps, Codecs.double(min: 0, minOpen: true), "Adam's ε (> 0)."),
            Field("momentum", \.momentum, Codecs.double(min: 0, max: 1, maxOpen: true), "SGD momentum, in [0, 1).",
                  only: "kind: sgd", when: sgd),
            Field("nesterov", \.nesterov, Codecs.bool, "Nesterov momentum.", only: "kind: sgd", when: sgd),
            Field("lr_choice", \.lrChoice, Codecs.enumeration(LRChoice.self),
                  "layerwise_decay: lower layers of pretrained backbones get lr × lr_decay^depth-below-top (AutoMM's default); two_stages: backbones at lr, fusion and heads at lr × lr_mult; single: one lr."),
            Field("lr_decay", \.lrDecay, Codecs.double(min: 0, minOpen: true, max: 1), "Per-layer factor of layerwise_decay, in (0, 1].",
                  only: "lr_choice: layerwise_decay", when: { $0.lrChoice == .layerwise_decay }),
            Field("lr_mult", \.lrMult, Codecs.double(min: 0, minOpen: true), "Learning-rate multiplier of the fusion module and heads (> 0).",
                  only: "lr_choice: two_stages", when: { $0.lrChoice == .two_stages }),
        ]
    }

    static func validate(_ s: OptimizerSpec, _ scope: Scope) {
        if s.kind == .sgd && s.nesterov && s.momentum == 0 {
            scope.fail("nesterov", "nesterov needs momentum > 0", hint: "set momentum (e.g. 0.9) or nesterov: false")
        }
    }
}

extension ScheduleSpec: SpecSection {
    static let title = "schedule"
    static let summary = "Learning rate over training: linear warmup, then the chosen decay to min_lr_ratio × lr."
    static var fields: [Field<ScheduleSpec>] {
        [
            Field("kind", \.kind, Codecs.enumeration(ScheduleKind.self), "Decay after warmup: constant, linear, cosine or polynomial."),
            Field("warmup", \.warmup, Codecs.double(min: 0, max: 1, maxOpen: true), "Fraction of all steps spent warming up, in [0, 1)."),
            Field("power", \.power, Codecs.double(min: 0, minOpen: true), "Exponent of the polynomial decay (> 0).",
                  only: "kind: polynomial", when: { $0.kind == .polynomial }),
            Field("min_lr_ratio", \.minLRRatio, Codecs.double(min: 0, max: 1), "Final learning rate as a fraction of lr, in [0, 1]."),
        ]
    }
}

/// `auto`, `val.loss`, `val.<metric>` or `val.<task>.<metric>` (several label columns).
let monitorCodec: Codec<String> = {
    let words = ["auto", "val.loss"] + Metric.allCases.map { "val." + $0.rawValue }
    let metrics = Metric.allCases.map(\.rawValue).joined(separator: "|")
    let w = Codecs.words(words, what: "monitor")
    return Codec(schema: {
        .object([("anyOf", .list([w.schema(), .object([("type", .string("string")), ("pattern", .string("^val\\..+\\.(\(metrics))$"))])]))])
    }, decode: { node, path, ctx in
        if case .scalar(let s, _) = node.kind, !node.isNull, MonitorTarget(s) != nil { return s }
        return w.decode(node, path, ctx)
    }, encode: w.encode)
}()

extension EarlyStoppingSpec: SpecSection {
    static let title = "early_stopping"
    static let summary = "Stop when the monitored value has not improved for `patience` epochs."
    static var fields: [Field<EarlyStoppingSpec>] {
        [
            Field("monitor", \.monitor, monitorCodec, "`auto` (val. + the run's metric), `val.loss` or `val.<metric>`."),
            Field("patience", \.patience, Codecs.int(min: 1), "Epochs without improvement before stopping (≥ 1)."),
            Field("mode", \.mode, Codecs.enumeration(MonitorModeSpec.self), "min or max; auto follows the monitored value."),
            Field("min_delta", \.minDelta, Codecs.double(min: 0), "The smallest change that counts as an improvement (≥ 0)."),
        ]
    }
}

extension CheckpointSpec: SpecSection {
    static let title = "checkpoint"
    static let summary = "Keep the top-k validations' weights and end with the best one or their average."
    static var fields: [Field<CheckpointSpec>] {
        [
            Field("monitor", \.monitor, monitorCodec, "`auto` (val. + the run's metric), `val.loss` or `val.<metric>`."),
            Field("mode", \.mode, Codecs.enumeration(MonitorModeSpec.self), "min or max; auto follows the monitored value."),
            Field("top_k", \.topK, Codecs.int(1...100), "How many of the best validations' weights are kept (AutoMM: 3)."),
            Field("average", \.average, Codecs.enumeration(CheckpointAverage.self),
                  "best: the best one; uniform_soup: their average; greedy_soup: add each next-best to the average while validation does not get worse (AutoMM's default)."),
        ]
    }
}

extension LRMonitorSpec: SpecSection {
    static let title = "lr_monitor"
    static let summary = "Record every optimizer step's learning rate per parameter group (the run's lr.csv)."
    static var fields: [Field<LRMonitorSpec>] { [] }
}

extension CSVLoggerSpec: SpecSection {
    static let title = "csv_logger"
    static let summary = "Write one row per validation to a CSV file while training runs (replaced atomically after each row)."
    static var fields: [Field<CSVLoggerSpec>] {
        [Field("path", \.path, Codecs.string(nonEmpty: true), "The CSV file, relative to the pipeline file; `{name}` is the pipeline's name.")]
    }
}

extension ProgressSpec: SpecSection {
    static let title = "progress"
    static let summary = "How training progress is shown."
    static var fields: [Field<ProgressSpec>] {
        [Field("style", \.style, Codecs.enumeration(ProgressStyle.self),
               "auto: a redrawn bar on a terminal, a line per validation otherwise; lines: a line per validation; none: nothing.")]
    }
}

extension LossSpec: SpecSection {
    static let title = "loss"
    static let summary = "The training loss."
    static var fields: [Field<LossSpec>] {
        [
            Field("kind", \.kind, Codecs.enumeration(LossKind.self),
                  "auto (cross-entropy for classes, mse for regression), cross_entropy, focal (classification), mse or huber (regression)."),
            Field("gamma", \.gamma, Codecs.double(min: 0), "Focal loss γ (≥ 0).", only: "kind: focal", when: { $0.kind == .focal }),
            Field("alpha", \.alpha, Codecs.optional(Codecs.list(Codecs.double(min: 0), minItems: 1)),
                  "Focal loss per-class weights, in label order; null: equal.", only: "kind: focal", when: { $0.kind == .focal }),
            Field("delta", \.delta, Codecs.double(min: 0, minOpen: true), "Huber loss δ (> 0).", only: "kind: huber", when: { $0.kind == .huber }),
        ]
    }
}

extension MixupSpec: SpecSection {
    static let title = "mixup"
    static let summary = "timm's Mixup/CutMix over batches of training images (AutoMM's data.mixup)."
    static var fields: [Field<MixupSpec>] {
        [
            Field("mixup_alpha", \.mixupAlpha, Codecs.double(min: 0), "Beta(α, α) of mixup (≥ 0; 0 turns mixup off)."),
            Field("cutmix_alpha", \.cutmixAlpha, Codecs.double(min: 0), "Beta(α, α) of CutMix (≥ 0; 0 turns CutMix off)."),
            Field("prob", \.prob, Codecs.double(min: 0, max: 1), "Probability that a batch is mixed, in [0, 1]."),
            Field("switch_prob", \.switchProb, Codecs.double(min: 0, max: 1), "Probability of CutMix rather than mixup when both are on."),
            Field("label_smoothing", \.labelSmoothing, Codecs.double(min: 0, max: 1, maxOpen: true), "Label smoothing of the mixed targets, in [0, 1)."),
            Field("turn_off_epoch", \.turnOffEpoch, Codecs.optional(Codecs.int(min: 1)), "The first epoch without mixing; null: mix until the end."),
        ]
    }

    static func validate(_ m: MixupSpec, _ scope: Scope) {
        if m.mixupAlpha == 0 && m.cutmixAlpha == 0 {
            scope.fail("mixup_alpha", "mixup_alpha and cutmix_alpha are both 0, so nothing is mixed", hint: "set one of them above 0, or mixup: null")
        }
    }
}
