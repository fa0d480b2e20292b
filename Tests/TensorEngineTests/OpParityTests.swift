import XCTest
import TensorEngine

/// Forward values and input gradients of the engine's ops against PyTorch, through the fixtures
/// in Tests/Fixtures/ops/ (scripts/fixtures/make_op_fixtures.py). Each case runs twice: with
/// contiguous inputs and with every input of rank ≥ 2 passed as a non-contiguous `transposed()`
/// view. Non-tensor arguments (axes, eps, slopes, …) repeat the ones written in the script.
final class OpParityTests: XCTestCase {

    // MARK: - Element-wise

    func testBinaryOpsWithBroadcasting() throws {
        let fx = try OpFixture("elementwise")
        let ops: [(String, (Tensor, Tensor) throws -> Tensor)] = [
            ("add", { try add($0, $1) }), ("sub", { try sub($0, $1) }),
            ("mul", { try mul($0, $1) }), ("div", { try div($0, $1) }),
        ]
        for (op, fn) in ops {
            for suffix in ["", "_bcast", "_outer", "_scalar"] {
                try runParityCase(fx, op + suffix, inputs: ["a", "b"]) { try fn($0[0], $0[1]) }
            }
        }
    }

    func testBinaryOperatorsMatchFunctions() throws {
        let fx = try OpFixture("elementwise")
        try runParityCase(fx, "add_bcast", inputs: ["a", "b"]) { try $0[0] + $0[1] }
        try runParityCase(fx, "sub_outer", inputs: ["a", "b"]) { try $0[0] - $0[1] }
        try runParityCase(fx, "mul_scalar", inputs: ["a", "b"]) { try $0[0] * $0[1] }
        try runParityCase(fx, "div_bcast", inputs: ["a", "b"]) { try $0[0] / $0[1] }
    }

    func testUnaryOps() throws {
        let fx = try OpFixture("elementwise")
        let ops: [(String, (Tensor) throws -> Tensor)] = [
            ("neg", { try neg($0) }),
            ("exp", { try TensorEngine.exp($0) }),
            ("log", { try TensorEngine.log($0) }),
            ("sqrt", { try TensorEngine.sqrt($0) }),
            ("pow2", { try TensorEngine.pow($0, 2) }),
            ("pow3", { try TensorEngine.pow($0, 3) }),
            ("pow0_5", { try TensorEngine.pow($0, 0.5) }),
            ("pow_m1_5", { try TensorEngine.pow($0, -1.5) }),
            ("abs", { try TensorEngine.abs($0) }),
            ("clamp", { try clamp($0, min: -0.5, max: 0.7) }),
            ("clamp_min", { try clamp($0, min: 0) }),
        ]
        for (name, fn) in ops {
            try runParityCase(fx, name, inputs: ["x"]) { try fn($0[0]) }
        }
    }

    func testActivations() throws {
        let fx = try OpFixture("elementwise")
        let ops: [(String, (Tensor) throws -> Tensor)] = [
            ("tanh", { try TensorEngine.tanh($0) }),
            ("sigmoid", { try sigmoid($0) }),
            ("relu", { try relu($0) }),
            ("leaky_relu", { try leakyRelu($0) }),
            ("leaky_relu_0_2", { try leakyRelu($0, slope: 0.2) }),
            ("gelu", { try gelu($0) }),
            ("gelu_tanh", { try gelu($0, approximate: .tanh) }),
            ("silu", { try silu($0) }),
            ("tanh_wide", { try TensorEngine.tanh($0) }),
            ("sigmoid_wide", { try sigmoid($0) }),
            ("gelu_wide", { try gelu($0) }),
            ("gelu_tanh_wide", { try gelu($0, approximate: .tanh) }),
            ("silu_wide", { try silu($0) }),
            ("exp_wide", { try TensorEngine.exp($0) }),
        ]
        for (name, fn) in ops {
            try runParityCase(fx, name, inputs: ["x"]) { try fn($0[0]) }
        }
    }

    /// Points where PyTorch's conventions decide: relu/leaky_relu/abs at ±0, clamp exactly on
    /// its bounds (no gradient there), exp overflowing to +inf and underflowing through the
    /// subnormals to 0.
    func testEdgeConventions() throws {
        let fx = try OpFixture("elementwise")
        let ops: [(String, (Tensor) throws -> Tensor)] = [
            ("relu_edges", { try relu($0) }),
            ("leaky_relu_edges", { try leakyRelu($0, slope: 0.1) }),
            ("abs_edges", { try TensorEngine.abs($0) }),
            ("clamp_edges", { try clamp($0, min: -0.5, max: 0.5) }),
            ("clamp_min_edges", { try clamp($0, min: 0) }),
            ("exp_limits", { try TensorEngine.exp($0) }),
        ]
        for (name, fn) in ops {
            try runParityCase(fx, name, inputs: ["x"], layouts: [.contiguous]) { try fn($0[0]) }
        }
        let big = try TensorEngine.exp(try Tensor([88.8, 1e30, .infinity, -.infinity, -1e30], shape: [5])).toArray()
        XCTAssertEqual(big, [.infinity, .infinity, .infinity, 0, 0])
        XCTAssertTrue(try TensorEngine.exp(try Tensor([.nan], shape: [1])).toArray()[0].isNaN)
    }

    // MARK: - Reductions

    func testSumAndMean() throws {
        let fx = try OpFixture("reductions")
        let cases: [(String, [Int], Bool)] = [
            ("sum_all", [], false), ("sum_ax1", [1], false), ("sum_ax02_keep", [0, 2], true),
            ("sum_last", [-1], false), ("sum_ax0_keep", [0], true), ("sum_long", [1], false),
        ]
        for (name, axes, keep) in cases {
            try runParityCase(fx, name, inputs: ["x"]) { try sum($0[0], axes: axes, keepDims: keep) }
        }
        let means: [(String, [Int], Bool)] = [
            ("mean_all", [], false), ("mean_ax1_keep", [1], true), ("mean_ax02", [0, 2], false), ("mean_last", [-1], false),
        ]
        for (name, axes, keep) in means {
            try runParityCase(fx, name, inputs: ["x"]) { try mean($0[0], axes: axes, keepDims: keep) }
        }
    }

    func testMaxOverAxis() throws {
        let fx = try OpFixture("reductions")
        for (name, axis, keep) in [("max_ax1", 1, false), ("max_ax0_keep", 0, true), ("max_last", -1, false), ("max_long", 1, false),
                                   ("max_ties", 1, false)] {
            try runParityCase(fx, name, inputs: ["x"]) { try TensorEngine.max($0[0], axis: axis, keepDims: keep) }
        }
    }

    func testVariance() throws {
        let fx = try OpFixture("reductions")
        let cases: [(String, [Int], Bool, Int)] = [
            ("var_ax1", [1], false, 1), ("var_ax02_keep", [0, 2], true, 1), ("var_all_c0", [], false, 0), ("var_last_c0", [-1], false, 0),
        ]
        for (name, axes, keep, correction) in cases {
            try runParityCase(fx, name, inputs: ["x"]) { try variance($0[0], axes: axes, keepDims: keep, correction: correction) }
        }
    }

    // MARK: - Softmax, layer norm

    func testSoftmaxAndLogSoftmax() throws {
        let fx = try OpFixture("nn")
        for (name, axis) in [("softmax_last", -1), ("softmax_ax1", 1), ("softmax_long", -1)] {
            try runParityCase(fx, name, inputs: ["x"]) { try softmax($0[0], axis: axis) }
        }
        for (name, axis) in [("log_softmax_last", -1), ("log_softmax_ax0", 0), ("log_softmax_long", -1)] {
            try runParityCase(fx, name, inputs: ["x"]) { try logSoftmax($0[0], axis: axis) }
        }
    }

    func testLayerNorm() throws {
        let fx = try OpFixture("nn")
        for (name, eps) in [("layer_norm", Float(1e-5)), ("layer_norm_d16", 1e-5), ("layer_norm_eps12", 1e-12)] {
            try runParityCase(fx, name, inputs: ["x", "weight", "bias"]) {
                try layerNorm($0[0], weight: $0[1], bias: $0[2], eps: eps)
            }
        }
        try runParityCase(fx, "layer_norm_noaffine", inputs: ["x"]) { try layerNorm($0[0], weight: nil, bias: nil, eps: 1e-5) }
    }

    // MARK: - Matrix products

    func testMatmul() throws {
        let fx = try OpFixture("matmul")
        for name in ["matmul_2d", "matmul_nd2d", "matmul_batched", "matmul_batched3"] {
            try runParityCase(fx, name, inputs: ["a", "b"]) { try matmul($0[0], $0[1]) }
        }
        try runParityCase(fx, "bmm_transb", inputs: ["a", "b"]) { try batchedMatmul($0[0], $0[1], transB: true) }
    }

    func testLinear() throws {
        let fx = try OpFixture("matmul")
        try runParityCase(fx, "linear", inputs: ["x", "w", "b"]) { try linear($0[0], weight: $0[1], bias: $0[2]) }
        try runParityCase(fx, "linear_nobias", inputs: ["x", "w"]) { try linear($0[0], weight: $0[1], bias: nil) }
        try runParityCase(fx, "linear_1d", inputs: ["x", "w", "b"]) { try linear($0[0], weight: $0[1], bias: $0[2]) }
    }

    // MARK: - Attention

    func testAttentionMatchesScaledDotProductAttention() throws {
        let fx = try OpFixture("nn")
        // (case, heads, has mask)
        for (name, heads, masked) in [("attn", 4, true), ("attn_cross", 2, true), ("attn_nomask", 3, false), ("attn_causal", 2, true)] {
            let mask = masked ? try fx.tensor("\(name).mask") : nil
            // q/k/v are rank 3; the transposed-view layout would change their meaning, so the
            // non-contiguous case is a slice of a wider buffer instead (below).
            try runParityCase(fx, name, inputs: ["q", "k", "v"], layouts: [.contiguous]) { t in
                var rng = RandomGenerator(seed: 0)
                return try attention(query: t[0], key: t[1], value: t[2], heads: heads, mask: mask, rng: &rng)
            }
        }
    }

    /// q, k and v as column slices of one fused [B, T, 3·E] projection (how a fused QKV linear
    /// feeds attention): non-contiguous rows read in place.
    func testAttentionOnSlicesOfFusedProjection() throws {
        let fx = try OpFixture("nn")
        let name = "attn"
        let q = try fx.tensor("\(name).q"), k = try fx.tensor("\(name).k"), v = try fx.tensor("\(name).v")
        let fused = Tensor.parameter(try concat([q, k, v], axis: 2))
        let e = q.shape[2]
        let qs = try fused.slice(axis: 2, start: 0, end: e)
        let ks = try fused.slice(axis: 2, start: e, end: 2 * e)
        let vs = try fused.slice(axis: 2, start: 2 * e, end: 3 * e)
        XCTAssertFalse(qs.isContiguous)
        var rng = RandomGenerator(seed: 0)
        let out = try attention(query: qs, key: ks, value: vs, heads: 4, mask: try fx.tensor("\(name).mask"), rng: &rng)
        assertClose(out, try fx.tensor("\(name).out"), .forward, "attention on slices forward")
        try out.backward(try fx.tensor("\(name).upstream"))
        let g = try XCTUnwrap(fused.grad)
        assertClose(try g.slice(axis: 2, start: 0, end: e), try fx.tensor("\(name).grad_q"), .gradient, "grad q")
        assertClose(try g.slice(axis: 2, start: e, end: 2 * e), try fx.tensor("\(name).grad_k"), .gradient, "grad k")
        assertClose(try g.slice(axis: 2, start: 2 * e, end: 3 * e), try fx.tensor("\(name).grad_v"), .gradient, "grad v")
    }

    func testAttentionAcceptsExtendedMaskLayout() throws {
        // Hugging Face's [B, 1, 1, Tk] extended mask must give the same result as [B, Tk].
        let fx = try OpFixture("nn")
        let mask = try fx.tensor("attn.mask")
        let extended = try mask.reshaped([mask.shape[0], 1, 1, mask.shape[1]])
        try runParityCase(fx, "attn", inputs: ["q", "k", "v"], layouts: [.contiguous]) { t in
            var rng = RandomGenerator(seed: 0)
            return try attention(query: t[0], key: t[1], value: t[2], heads: 4, mask: extended, rng: &rng)
        }
    }

    // MARK: - Losses

    func testCrossEntropy() throws {
        let fx = try OpFixture("losses")
        // (case, weighted, ignore index, label smoothing)
        let cases: [(String, Bool, Int?, Float)] = [
            ("ce", false, nil, 0), ("ce_smooth", false, nil, 0.1), ("ce_weight", true, nil, 0),
            ("ce_ignore", false, 2, 0), ("ce_weight_smooth_ignore", true, -100, 0.2), ("ce_smooth_ignore", false, -100, 0.15),
        ]
        for (name, weighted, ignore, smoothing) in cases {
            let targets = try fx.ints("\(name).targets")
            let weights = weighted ? try fx.floats("\(name).weights") : nil
            try runParityCase(fx, name, inputs: ["logits"]) {
                try crossEntropy($0[0], targets: targets, weights: weights, ignoreIndex: ignore, labelSmoothing: smoothing)
            }
        }
    }

    func testBinaryCrossEntropyWithLogits() throws {
        let fx = try OpFixture("losses")
        for name in ["bce", "bce_posw", "bce_soft_posw"] {
            let pw = fx.has("\(name).pos_weight") ? try fx.tensor("\(name).pos_weight").item() : nil
            try runParityCase(fx, name, inputs: ["logits", "targets"]) {
                try binaryCrossEntropyWithLogits($0[0], targets: $0[1], posWeight: pw)
            }
        }
    }

    func testMSEAndHuber() throws {
        let fx = try OpFixture("losses")
        try runParityCase(fx, "mse", inputs: ["pred", "target"]) { try mseLoss($0[0], $0[1]) }
        for (name, delta) in [("huber", Float(1)), ("huber_d0_5", 0.5)] {
            try runParityCase(fx, name, inputs: ["pred", "target"]) { try huberLoss($0[0], $0[1], delta: delta) }
        }
    }

    // MARK: - Joining, indexing

    func testConcatAndStack() throws {
        let fx = try OpFixture("shape")
        try runParityCase(fx, "concat_ax1", inputs: ["a", "b", "c"]) { try concat($0, axis: 1) }
        try runParityCase(fx, "concat_last", inputs: ["a", "b"]) { try concat($0, axis: -1) }
        try runParityCase(fx, "concat_ax0", inputs: ["a", "b"]) { try concat($0, axis: 0) }
        try runParityCase(fx, "stack_ax0", inputs: ["a", "b", "c"]) { try stack($0, axis: 0) }
        try runParityCase(fx, "stack_ax2", inputs: ["a", "b"]) { try stack($0, axis: 2) }
    }

    func testIndexSelectAndEmbedding() throws {
        let fx = try OpFixture("shape")
        for (name, axis) in [("index_select_ax0", 0), ("index_select_ax1", 1)] {
            let indices = try fx.ints("\(name).indices")
            try runParityCase(fx, name, inputs: ["x"]) { try indexSelect($0[0], axis: axis, indices: indices) }
        }
        let ids = try fx.tensor("embedding.ids")
        try runParityCase(fx, "embedding", inputs: ["weight"]) { t in
            let rows = try indexSelect(t[0], axis: 0, indices: ids.toArray().map { Int($0) })
            return try rows.reshaped(ids.shape + [t[0].shape[1]])
        }
    }

    func testGather() throws {
        let fx = try OpFixture("shape")
        for (name, axis) in [("gather_ax1", 1), ("gather_ax0", 0)] {
            let index = try fx.tensor("\(name).index")
            try runParityCase(fx, name, inputs: ["x"]) {
                try gather($0[0], axis: axis, index: index.toArray().map { Int($0) }, indexShape: index.shape)
            }
        }
    }

    // MARK: - Coverage of the fixture files

    /// Every case in the op fixture files is exercised by some test above (guards against a
    /// regenerated fixture gaining cases that no test reads).
    func testEveryFixtureCaseIsKnown() throws {
        let known: [String: Set<String>] = [
            "elementwise": Set(["add", "sub", "mul", "div"].flatMap { op in ["", "_bcast", "_outer", "_scalar"].map { op + $0 } }
                + ["neg", "exp", "log", "sqrt", "pow2", "pow3", "pow0_5", "pow_m1_5", "abs", "clamp", "clamp_min",
                   "tanh", "sigmoid", "relu", "leaky_relu", "leaky_relu_0_2", "gelu", "gelu_tanh", "silu",
                   "tanh_wide", "sigmoid_wide", "gelu_wide", "gelu_tanh_wide", "silu_wide", "exp_wide",
                   "relu_edges", "leaky_relu_edges", "abs_edges", "clamp_edges", "clamp_min_edges", "exp_limits"]),
            "reductions": ["sum_all", "sum_ax1", "sum_ax02_keep", "sum_last", "sum_ax0_keep", "sum_long",
                           "mean_all", "mean_ax1_keep", "mean_ax02", "mean_last", "max_ax1", "max_ax0_keep", "max_last",
                           "max_long", "max_ties", "var_ax1", "var_ax02_keep", "var_all_c0", "var_last_c0"],
            "matmul": ["matmul_2d", "matmul_nd2d", "matmul_batched", "matmul_batched3", "bmm_transb", "linear",
                       "linear_nobias", "linear_1d"],
            "nn": ["layer_norm", "layer_norm_d16", "layer_norm_eps12", "layer_norm_noaffine", "softmax_last", "softmax_ax1",
                   "softmax_long", "log_softmax_last", "log_softmax_ax0", "log_softmax_long", "attn", "attn_cross",
                   "attn_nomask", "attn_causal"],
            "losses": ["ce", "ce_smooth", "ce_weight", "ce_ignore", "ce_weight_smooth_ignore", "ce_smooth_ignore",
                       "bce", "bce_posw", "bce_soft_posw", "mse", "huber", "huber_d0_5"],
            "shape": ["concat_ax1", "concat_last", "concat_ax0", "stack_ax0", "stack_ax2", "index_select_ax0",
                      "index_select_ax1", "embedding", "gather_ax1", "gather_ax0"],
        ]
        for (family, cases) in known {
            let fx = try OpFixture(family)
            XCTAssertEqual(Set(fx.caseNames), cases, "cases of \(family).safetensors")
        }
    }
}
