import XCTest
import TensorEngine
@testable import Layers

final class ModuleTests: XCTestCase {
    func makeEncoder() throws -> TransformerEncoder {
        let cfg = TransformerLayerConfig(hidden: 8, heads: 2, intermediate: 16)
        return try TransformerEncoder(cfg, depth: 2, rng: RandomSource(seed: 1))
    }

    func testKeysMatchHuggingFaceBertNames() throws {
        let keys = try makeEncoder().namedParameters().map(\.key)
        XCTAssertEqual(keys.count, 2 * 16)
        for expected in ["layer.0.attention.self.query.weight", "layer.0.attention.self.key.bias",
                         "layer.0.attention.output.dense.weight", "layer.0.attention.output.LayerNorm.weight",
                         "layer.1.intermediate.dense.bias", "layer.1.output.dense.weight", "layer.1.output.LayerNorm.bias"] {
            XCTAssertTrue(keys.contains(expected), "missing \(expected)")
        }
        XCTAssertEqual(Set(keys).count, keys.count, "keys must be unique")
    }

    func testTrainEvalPropagates() throws {
        let enc = try makeEncoder()
        enc.eval()
        XCTAssertTrue(enc.namedModules().allSatisfy { !$0.module.isTraining })
        enc.train()
        XCTAssertTrue(enc.namedModules().allSatisfy { $0.module.isTraining })
    }

    func testFreezeByPatternStopsGradients() throws {
        let enc = try makeEncoder()
        let frozen = try enc.setTrainable(false, matching: #"^layer\.0\."#)
        XCTAssertEqual(frozen.count, 16)
        XCTAssertEqual(enc.trainableParameters.count, 16)
        let x = Tensor.normal([2, 3, 8], rng: &RandomSource(seed: 2).generator)
        enc.eval()
        let y = try enc(x)
        try sum(y).backward()
        for (key, p) in enc.namedParameters() {
            if key.hasPrefix("layer.0.") { XCTAssertNil(p.grad, key) } else { XCTAssertNotNil(p.grad, key) }
        }
        XCTAssertThrowsError(try enc.freeze(matching: "([unclosed")) { error in
            XCTAssertTrue("\(error)".contains("invalid parameter pattern"))
        }
    }

    func testFrozenModelRecordsNoTape() throws {
        let rng = RandomSource(seed: 3)
        let mlp = try MLP([4, 8, 2], rng: rng)
        try mlp.freeze()
        let y = try mlp(Tensor.normal([5, 4], rng: &rng.generator))
        XCTAssertFalse(y.requiresGrad)
        XCTAssertNil(y.gradFn)
    }

    func testStrictLoadReportsMissingUnusedAndShape() throws {
        let rng = RandomSource(seed: 4)
        let lin = Linear(3, 2, rng: rng)
        let w = Tensor.ones([2, 3]), b = Tensor.zeros([2])
        try lin.load(["weight": w, "bias": b])
        XCTAssertEqual(lin.weight.toArray(), [Float](repeating: 1, count: 6))

        XCTAssertThrowsError(try lin.load(["weight": w])) { error in
            XCTAssertEqual(error as? ModuleError, .missingKeys(["bias"]))
        }
        XCTAssertThrowsError(try lin.load(["weight": w, "bias": b, "extra.weight": b])) { error in
            XCTAssertEqual(error as? ModuleError, .unusedKeys(["extra.weight"]))
            XCTAssertTrue("\(error)".contains("extra.weight"))
        }
        XCTAssertThrowsError(try lin.load(["weight": Tensor.ones([3, 2]), "bias": b])) { error in
            XCTAssertEqual(error as? ModuleError, .shapeMismatch(key: "weight", model: [2, 3], checkpoint: [3, 2]))
            XCTAssertTrue("\(error)".contains("[2, 3]") && "\(error)".contains("[3, 2]"))
        }
        try lin.load(["weight": w, "bias": b, "position_ids": b], ignoring: ["position_ids"])
    }

    func testLoadKeepsParameterIdentity() throws {
        let lin = Linear(2, 2, rng: RandomSource(seed: 5))
        let before = ObjectIdentifier(lin.weight)
        try lin.load(["weight": Tensor.full([2, 2], 3), "bias": Tensor.zeros([2])])
        XCTAssertEqual(ObjectIdentifier(lin.weight), before)
        XCTAssertEqual(lin.weight.toArray(), [3, 3, 3, 3])
    }

    func testParameterCounts() throws {
        let mlp = try MLP([4, 8, 2], rng: RandomSource(seed: 6))
        XCTAssertEqual(mlp.parameterCount(), 4 * 8 + 8 + 8 * 2 + 2)
        try mlp.freeze(matching: #"layers\.0\."#)
        XCTAssertEqual(mlp.parameterCount(trainableOnly: true), 8 * 2 + 2)
    }

    func testBadConfigurationsThrow() {
        XCTAssertThrowsError(try MLP([4], rng: RandomSource(seed: 7)))
        XCTAssertThrowsError(try SelfAttention(hidden: 10, heads: 3, rng: RandomSource(seed: 7))) { error in
            XCTAssertTrue("\(error)".contains("not divisible"))
        }
    }

    func testDropoutOnlyInTraining() throws {
        let rng = RandomSource(seed: 8)
        let d = Dropout(0.5, rng: rng)
        let x = Tensor.ones([1000])
        d.eval()
        XCTAssertEqual(try d(x).toArray(), x.toArray())
        d.train()
        let y = try d(x).toArray()
        let zeros = y.filter { $0 == 0 }.count
        XCTAssertGreaterThan(zeros, 400)
        XCTAssertLessThan(zeros, 600)
        XCTAssertTrue(y.allSatisfy { $0 == 0 || $0 == 2 })
    }
}
