import Foundation
import XCTest
import Layers
import TensorEngine
import Training
@testable import Models

/// Shapes, validation errors, parameter names, seeded initialisation and a small training run of
/// the tabular backbones (`TabularMLP`, `FTTransformer`) and `TaskHead`.
final class TabularModelTests: XCTestCase {
    static let schema = TabularSchema(numericCount: 5, cardinalities: [3, 6, 11])
    static let smallFT = FTTransformerConfig(dToken: 16, layers: 2, heads: 4)
    static let smallMLP = TabularMLPConfig(hidden: [16, 8])

    /// Both backbones for `schema`, seeded.
    func backbones(_ schema: TabularSchema, seed: UInt64 = 0) throws -> [any TabularBackbone] {
        [try TabularMLP(Self.smallMLP, schema: schema, rng: RandomSource(seed: seed)),
         try FTTransformer(Self.smallFT, schema: schema, rng: RandomSource(seed: seed))]
    }

    /// Random numeric rows and in-range categorical indices.
    func batch(_ schema: TabularSchema, rows: Int, seed: UInt64 = 7) -> (Tensor?, [Int]) {
        var g = RandomGenerator(seed: seed)
        let numeric = schema.numericCount > 0 ? Tensor.normal([rows, schema.numericCount], rng: &g) : nil
        var cats: [Int] = []
        for _ in 0..<rows { for k in schema.cardinalities { cats.append(g.nextInt(below: k)) } }
        return (numeric, cats)
    }

    // MARK: - Configuration

    func testConfigsDecodeSnakeCaseWithDefaults() throws {
        let empty = Data("{}".utf8)
        XCTAssertEqual(try JSONDecoder().decode(TabularMLPConfig.self, from: empty), TabularMLPConfig())
        XCTAssertEqual(try JSONDecoder().decode(FTTransformerConfig.self, from: empty), FTTransformerConfig())

        let mlp = try JSONDecoder().decode(TabularMLPConfig.self, from: Data("""
            {"hidden": [64], "dropout": 0.2, "activation": "gelu", "embedding_dim": 8, "normalization": "layer_norm"}
            """.utf8))
        XCTAssertEqual(mlp, TabularMLPConfig(hidden: [64], dropout: 0.2, activation: .gelu, embeddingDim: 8, normalization: .layerNorm))
        let ft = try JSONDecoder().decode(FTTransformerConfig.self, from: Data("""
            {"d_token": 64, "layers": 1, "heads": 2, "attention_dropout": 0, "ffn_dropout": 0.3, "residual_dropout": 0.1, "ffn_factor": 2}
            """.utf8))
        XCTAssertEqual(ft, FTTransformerConfig(dToken: 64, layers: 1, heads: 2, attentionDropout: 0, ffnDropout: 0.3,
                                               residualDropout: 0.1, ffnFactor: 2))
        // rtdl's defaults for three blocks.
        let d = FTTransformerConfig()
        XCTAssertEqual([d.dToken, d.layers, d.heads, d.ffnHidden], [192, 3, 8, 256])
        XCTAssertEqual([d.attentionDropout, d.ffnDropout, d.residualDropout], [0.2, 0.1, 0])
    }

    func testEmbeddingDimensionRule() {
        // min(32, round(1.6 · k^0.56))
        XCTAssertEqual([1, 2, 3, 6, 11, 100, 1000].map { TabularMLPConfig.embeddingDim(cardinality: $0) }, [2, 2, 3, 4, 6, 21, 32])
        XCTAssertEqual(TabularMLPConfig(embeddingDim: 5).embeddingDims(for: [3, 1000]), [5, 5])
    }

    func testInvalidConfigurationsThrowNamingTheField() {
        let schema = Self.schema
        XCTAssertThrowsError(try FTTransformer(FTTransformerConfig(dToken: 18, heads: 4), schema: schema, rng: RandomSource(seed: 0))) {
            XCTAssertEqual($0 as? TabularModelError, .invalidConfig(model: "ft_transformer", field: "heads", detail: "d_token 18 is not divisible by 4 heads"))
        }
        XCTAssertThrowsError(try FTTransformer(FTTransformerConfig(attentionDropout: 1), schema: schema, rng: RandomSource(seed: 0)))
        XCTAssertThrowsError(try TabularMLP(TabularMLPConfig(hidden: [8, 0]), schema: schema, rng: RandomSource(seed: 0))) {
            XCTAssertTrue("\($0)".contains("`hidden`"), "\($0)")
        }
        XCTAssertThrowsError(try TabularMLP(Self.smallMLP, schema: TabularSchema(numericCount: 1, cardinalities: [0]), rng: RandomSource(seed: 0))) {
            XCTAssertTrue("\($0)".contains("categorical column 0 has cardinality 0"), "\($0)")
        }
    }

    // MARK: - Shapes and inputs

    func testForwardShapesWithBothNumericOnlyAndCategoricalOnly() throws {
        let schemas = [Self.schema, TabularSchema(numericCount: 4, cardinalities: []), TabularSchema(numericCount: 0, cardinalities: [5, 2])]
        for schema in schemas {
            for model in try backbones(schema) {
                model.eval()   // dropout off: the two calls below must agree
                let (numeric, cats) = batch(schema, rows: 6)
                let out = try model.forward(numeric: numeric, categorical: cats)
                XCTAssertEqual(out.shape, [6, model.outputDim], "\(type(of: model)) on \(schema)")
                XCTAssertEqual(try model.forward(numeric: numeric, categorical: cats.map { Int32($0) }).toArray(), out.toArray())
            }
        }
        // Numeric-only also takes an explicit [B, 0] block for "no categorical" and vice versa.
        let catOnly = TabularSchema(numericCount: 0, cardinalities: [5, 2])
        for model in try backbones(catOnly) {
            let out = try model.forward(numeric: Tensor.zeros([3, 0]), categorical: [1, 0, 4, 1, 0, 0])
            XCTAssertEqual(out.shape, [3, model.outputDim])
        }
        // A single block is both first and last (no attention pre-norm, [CLS] query only).
        let one = try FTTransformer(FTTransformerConfig(dToken: 8, layers: 1, heads: 2), schema: Self.schema, rng: RandomSource(seed: 3))
        let (numeric, cats) = batch(Self.schema, rows: 2)
        XCTAssertEqual(try one.forward(numeric: numeric, categorical: cats).shape, [2, 8])
    }

    func testNoColumnsThrows() {
        let empty = TabularSchema(numericCount: 0, cardinalities: [])
        XCTAssertThrowsError(try TabularMLP(Self.smallMLP, schema: empty, rng: RandomSource(seed: 0))) {
            XCTAssertEqual($0 as? TabularModelError, .noFeatures)
        }
        XCTAssertThrowsError(try FTTransformer(Self.smallFT, schema: empty, rng: RandomSource(seed: 0))) {
            XCTAssertEqual($0 as? TabularModelError, .noFeatures)
        }
    }

    func testOutOfRangeCategoricalIndexNamesColumnAndCardinality() throws {
        for model in try backbones(Self.schema) {
            let (numeric, cats) = batch(Self.schema, rows: 4)
            var bad = cats
            bad[2 * 3 + 1] = 6   // row 2, column 1 (cardinality 6)
            XCTAssertThrowsError(try model.forward(numeric: numeric, categorical: bad)) { error in
                XCTAssertEqual(error as? TabularModelError, .categoricalIndexOutOfRange(row: 2, column: 1, index: 6, cardinality: 6))
                let message = "\(error)"
                XCTAssertTrue(message.contains("column 1") && message.contains("0..<6") && message.contains("row 2"), message)
            }
            bad = cats
            bad[0] = -1
            XCTAssertThrowsError(try model.forward(numeric: numeric, categorical: bad)) {
                XCTAssertEqual($0 as? TabularModelError, .categoricalIndexOutOfRange(row: 0, column: 0, index: -1, cardinality: 3))
            }
        }
    }

    func testMalformedInputsThrow() throws {
        for model in try backbones(Self.schema) {
            let (numeric, cats) = batch(Self.schema, rows: 4)
            XCTAssertThrowsError(try model.forward(numeric: nil, categorical: cats)) {
                XCTAssertTrue("\($0)".contains("5 numeric column(s)"), "\($0)")
            }
            XCTAssertThrowsError(try model.forward(numeric: Tensor.zeros([4, 3]), categorical: cats)) {
                XCTAssertEqual($0 as? TabularModelError, .numericInput("expected [batch, 5], got [4, 3]"))
            }
            XCTAssertThrowsError(try model.forward(numeric: numeric, categorical: Array(cats.dropLast()))) {
                XCTAssertEqual($0 as? TabularModelError, .categoricalCount(count: 11, columns: 3, batch: 4))
            }
            XCTAssertThrowsError(try model.forward(numeric: Tensor.zeros([0, 5]), categorical: [])) {
                XCTAssertEqual($0 as? TabularModelError, .emptyBatch)
            }
        }
        let numericOnly = TabularSchema(numericCount: 2, cardinalities: [])
        let mlp = try TabularMLP(Self.smallMLP, schema: numericOnly, rng: RandomSource(seed: 0))
        XCTAssertThrowsError(try mlp.forward(numeric: Tensor.zeros([2, 2]), categorical: [1, 1]))
    }

    func testBatchNormNeedsTwoRowsInTraining() throws {
        let mlp = try TabularMLP(TabularMLPConfig(hidden: [4], normalization: .batchNorm), schema: Self.schema, rng: RandomSource(seed: 0))
        let (numeric, cats) = batch(Self.schema, rows: 1)
        XCTAssertThrowsError(try mlp.forward(numeric: numeric, categorical: cats)) {
            XCTAssertTrue("\($0)".contains("at least 2 rows"), "\($0)")
        }
        mlp.eval()   // running statistics: one row is fine
        XCTAssertEqual(try mlp.forward(numeric: numeric, categorical: cats).shape, [1, 4])
        XCTAssertEqual(mlp.namedBuffers().map(\.key), ["norms.0.running_mean", "norms.0.running_var"])
    }

    // MARK: - Parameters

    func testParameterKeys() throws {
        let mlp = try TabularMLP(TabularMLPConfig(hidden: [16, 8], normalization: .layerNorm), schema: Self.schema, rng: RandomSource(seed: 0))
        XCTAssertEqual(mlp.namedParameters().map(\.key), [
            "embeddings.0.weight", "embeddings.1.weight", "embeddings.2.weight",
            "norms.0.weight", "norms.0.bias", "norms.1.weight", "norms.1.bias",
            "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias",
        ])
        XCTAssertEqual(mlp.inputDim, 5 + 3 + 4 + 6)
        XCTAssertEqual(mlp.outputDim, 8)

        let ft = try FTTransformer(Self.smallFT, schema: Self.schema, rng: RandomSource(seed: 0))
        let keys = ft.namedParameters().map(\.key)
        // A module's own parameters come before its children's.
        XCTAssertEqual(Array(keys.prefix(6)), ["cls_token", "tokenizer.numeric_weight", "tokenizer.numeric_bias",
                                               "tokenizer.category_bias", "tokenizer.category_embeddings.weight",
                                               "blocks.0.attention.query.weight"])
        XCTAssertFalse(keys.contains("blocks.0.attention_norm.weight"), "the first block has no attention pre-norm")
        for k in ["blocks.1.attention_norm.weight", "blocks.1.attention.output.bias", "blocks.1.ffn_norm.bias",
                  "blocks.1.ffn.linear1.weight", "blocks.1.ffn.linear2.bias", "output_norm.weight"] {
            XCTAssertTrue(keys.contains(k), "missing \(k)")
        }
        let shapes = Dictionary(uniqueKeysWithValues: ft.namedParameters().map { ($0.key, $0.tensor.shape) })
        XCTAssertEqual(shapes["tokenizer.category_embeddings.weight"], [3 + 6 + 11, 16])
        XCTAssertEqual(shapes["blocks.0.ffn.linear1.weight"], [42, 16])
        XCTAssertEqual(shapes["blocks.0.ffn.linear2.weight"], [16, 21])
        // The tokenizer and [CLS] token are drawn within ±1/√d_token.
        for k in ["tokenizer.numeric_weight", "tokenizer.category_embeddings.weight", "cls_token"] {
            let values = try XCTUnwrap(ft.namedParameters().first { $0.key == k }).tensor.toArray()
            XCTAssertTrue(values.allSatisfy { Swift.abs($0) <= 0.25 }, k)
        }
    }

    func testInitialisationIsDeterministicPerSeed() throws {
        for make in [{ (s: UInt64) -> Module in try TabularMLP(Self.smallMLP, schema: Self.schema, rng: RandomSource(seed: s)) },
                     { (s: UInt64) -> Module in try FTTransformer(Self.smallFT, schema: Self.schema, rng: RandomSource(seed: s)) }] {
            let a = try make(42), b = try make(42), c = try make(43)
            let bits = { (m: Module) in m.stateDict().map { $0.tensor.toArray().map(\.bitPattern) } }
            XCTAssertEqual(bits(a), bits(b))
            XCTAssertNotEqual(bits(a), bits(c))
        }
    }

    // MARK: - Task head

    /// Training's `ProblemType` onto the head kind (binary: two logits, as AutoMM).
    func headKind(_ problem: ProblemType, classes: Int) -> TaskHead.Kind {
        switch problem {
        case .binary: return .classification(classes: 2)
        case .multiclass: return .classification(classes: classes)
        case .regression: return .regression
        case .multilabel: return .classification(classes: classes)  // one logit per label; the pipeline's loss is BCE
        }
    }

    func testTaskHeadOutputsLossesAndErrors() throws {
        let rng = RandomSource(seed: 5)
        let x = Tensor.normal([4, 6], rng: &rng.generator)
        let binary = try TaskHead(inputDim: 6, kind: headKind(.binary, classes: 2), rng: rng)
        let logits = try binary(x)
        XCTAssertEqual(logits.shape, [4, 2])
        let p = try binary.probabilities(logits).toArray()
        for r in 0..<4 { XCTAssertEqual(p[2 * r] + p[2 * r + 1], 1, accuracy: 1e-6) }
        XCTAssertEqual(try binary.loss(logits, classes: [0, 1, 1, 0]).item(), try crossEntropy(logits, targets: [0, 1, 1, 0]).item())
        XCTAssertThrowsError(try binary.loss(logits, classes: [0, 2, 1, 0])) { XCTAssertTrue("\($0)".contains("class 2 in row 1"), "\($0)") }
        XCTAssertThrowsError(try binary.loss(logits, values: [0, 1, 1, 0]))
        XCTAssertThrowsError(try binary.loss(logits, classes: [0, 1]))

        let multi = try TaskHead(inputDim: 6, kind: headKind(.multiclass, classes: 5), rng: rng)
        XCTAssertEqual(try multi(x).shape, [4, 5])
        XCTAssertEqual(try multi.predictions(try multi(x)).count, 4)

        let reg = try TaskHead(inputDim: 6, kind: headKind(.regression, classes: 0), rng: rng)
        let y = try reg(x)
        XCTAssertEqual(y.shape, [4, 1])
        let targets: [Float] = [0.5, -1, 2, 0]
        let expected = zip(y.toArray(), targets).map { ($0 - $1) * ($0 - $1) }.reduce(0, +) / 4
        XCTAssertEqual(try reg.loss(y, values: targets).item(), expected, accuracy: 1e-5)
        XCTAssertEqual(try reg.predictions(y), y.toArray())
        XCTAssertThrowsError(try reg.probabilities(y))
        XCTAssertThrowsError(try reg.loss(y, classes: [0, 0, 0, 0]))
        XCTAssertThrowsError(try reg(Tensor.zeros([4, 5])))
        XCTAssertThrowsError(try TaskHead(inputDim: 6, kind: .classification(classes: 1), rng: rng))
        XCTAssertEqual(reg.namedParameters().map(\.key), ["weight", "bias"])
    }

    // MARK: - Training

    /// A synthetic problem both backbones must learn: the class is the sign of a numeric feature
    /// combination shifted by a per-category offset (so the categorical column matters).
    func testBothBackbonesLearnASeparableProblem() throws {
        let schema = TabularSchema(numericCount: 3, cardinalities: [5])
        let rows = 128
        var g = RandomGenerator(seed: 99)
        let numeric = Tensor.normal([rows, 3], rng: &g)
        let cats = (0..<rows).map { _ in g.nextInt(below: 5) }
        let shift: [Float] = [0, -1.5, -0.5, 0.5, 1.5]
        let x = numeric.toArray()
        var labels: [Int] = []
        for r in 0..<rows {
            let score: Float = x[3 * r] - x[3 * r + 1] + shift[cats[r]]
            labels.append(score > 0 ? 1 : 0)
        }

        let models: [(any TabularBackbone, Float)] = [
            (try TabularMLP(TabularMLPConfig(hidden: [32, 32], dropout: 0), schema: schema, rng: RandomSource(seed: 1)), 1e-2),
            (try FTTransformer(FTTransformerConfig(dToken: 16, layers: 1, heads: 2, attentionDropout: 0, ffnDropout: 0),
                               schema: schema, rng: RandomSource(seed: 1)), 3e-3),
        ]
        for (model, lr) in models {
            let head = try TaskHead(inputDim: model.outputDim, kind: .classification(classes: 2), rng: RandomSource(seed: 2))
            let optimizer = try AdamW(parameters: model.parameters + head.parameters, lr: lr, weightDecay: 1e-4)
            var firstLoss: Float = .nan
            for step in 0..<150 {
                optimizer.zeroGrad()
                let loss = try head.loss(try head(try model.forward(numeric: numeric, categorical: cats)), classes: labels)
                if step == 0 { firstLoss = try loss.item() }
                try loss.backward()
                try optimizer.step()
            }
            model.eval()
            let predicted = try withNoGrad { try head.predictions(try head(try model.forward(numeric: numeric, categorical: cats))) }
            let accuracy = Float(zip(predicted, labels).filter { Int($0) == $1 }.count) / Float(rows)
            XCTAssertGreaterThan(accuracy, 0.95, "\(type(of: model)) training accuracy (first loss \(firstLoss))")
        }
    }
}
