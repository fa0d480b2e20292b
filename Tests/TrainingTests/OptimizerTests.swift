import Foundation
import TensorEngine
import Training
import XCTest

/// Expected values come from PyTorch 2.15 (CPU, float32, `foreach=False`, i.e. the single-tensor
/// reference path). Shared setup of the PyTorch snippets:
///
///     P0 = [0.5, -1.5, 2.0]; G0 = [0.3, -0.7, 1.1]
///     def single(make):                       # one step
///         p = torch.tensor(P0, requires_grad=True); opt = make([p])
///         p.grad = torch.tensor(G0); opt.step(); return p, opt.state[p]
///     A = [0.5, 2.0, -1.0]; B = [0.1, -0.3, 0.2]
///     def traj(make, steps=5):                # gradient g = p*A + B before every step
///         p = torch.tensor(P0, requires_grad=True); opt = make([p])
///         a, b = torch.tensor(A), torch.tensor(B)
///         for t in range(steps):
///             with torch.no_grad(): p.grad = p.detach() * a + b
///             opt.step(); print(p)
final class OptimizerTests: XCTestCase {
    let p0: [Float] = [0.5, -1.5, 2.0]
    let g0: [Float] = [0.3, -0.7, 1.1]
    let a: [Float] = [0.5, 2.0, -1.0]
    let b: [Float] = [0.1, -0.3, 0.2]

    func singleStep(_ make: ([Tensor]) throws -> any Optimizer) throws -> (Tensor, any Optimizer) {
        let p = try param(p0)
        let opt = try make([p])
        try setGrad(p, g0)
        try opt.step()
        return (p, opt)
    }

    /// Runs `steps` steps with g = p*A + B; returns the parameter after each step.
    func trajectory(_ opt: any Optimizer, _ p: Tensor, steps: Int = 5) throws -> [[Float]] {
        var out: [[Float]] = []
        for _ in 0..<steps {
            let pv = p.toArray()
            var g = [Float](repeating: 0, count: pv.count)
            for i in pv.indices { g[i] = pv[i] * a[i] + b[i] }
            try setGrad(p, g)
            try opt.step()
            out.append(p.toArray())
        }
        return out
    }

    // MARK: - SGD

    func testSGDPlainSingleStep() throws {
        // single(lambda ps: torch.optim.SGD(ps, lr=0.1, foreach=False))
        let (p, _) = try singleStep { try SGD(parameters: $0, lr: 0.1) }
        assertClose(p.toArray(), [0.469999999, -1.42999995, 1.88999999])
    }

    func testSGDWeightDecaySingleStep() throws {
        // single(lambda ps: torch.optim.SGD(ps, lr=0.1, weight_decay=0.01, foreach=False))
        let (p, _) = try singleStep { try SGD(parameters: $0, lr: 0.1, weightDecay: 0.01) }
        assertClose(p.toArray(), [0.469500005, -1.42850006, 1.88800001])
    }

    func testSGDMomentumFirstStepStoresBuffer() throws {
        // single(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01, foreach=False))
        // -> momentum_buffer = [0.305000007, -0.714999974, 1.12] (first step: buf = g + wd*p, no dampening)
        let (p, opt) = try singleStep { try SGD(parameters: $0, lr: 0.1, momentum: 0.9, dampening: 0.1, weightDecay: 0.01) }
        assertClose(p.toArray(), [0.469500005, -1.42850006, 1.88800001])
        let state = opt.stateTensors()
        assertClose(try XCTUnwrap(state["group0.param0.momentum_buffer"]).toArray(), [0.305000007, -0.714999974, 1.12])
        XCTAssertEqual(try XCTUnwrap(state["step"]).item(), 1)
    }

    func testSGDNesterovTrajectory() throws {
        // traj(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01, foreach=False))
        let p = try param(p0)
        let opt = try SGD(parameters: [p], lr: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true)
        let traj = try trajectory(opt, p)
        let expected: [[Float]] = [
            [0.432550013, -0.87014997, 2.33820009],
            [0.342880934, -0.212324724, 2.88419557],
            [0.238807634, 0.333394676, 3.68977499],
            [0.127739444, 0.688809156, 4.83186102],
            [0.016361393, 0.835937083, 6.41985273],
        ]
        for (t, (got, want)) in zip(traj, expected).enumerated() { assertClose(got, want, "step \(t + 1)") }
        assertClose(try XCTUnwrap(opt.stateTensors()["group0.param0.momentum_buffer"]).toArray(),
                    [1.05403709, -2.83976173, -12.551528], atol: 1e-5)
    }

    func testSGDMomentumDampeningTrajectory() throws {
        // traj(lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.25, foreach=False))
        let p = try param(p0)
        let opt = try SGD(parameters: [p], lr: 0.05, momentum: 0.8, dampening: 0.25)
        let traj = try trajectory(opt, p)
        let expected: [[Float]] = [
            [0.482499987, -1.33500004, 2.08999991],
            [0.45570311, -1.09162498, 2.23287487],
            [0.421971172, -0.803803086, 2.42340779],
            [0.383323669, -0.502010345, 2.65921187],
            [0.341468334, -0.211675376, 2.94007564],
        ]
        for (t, (got, want)) in zip(traj, expected).enumerated() { assertClose(got, want, "step \(t + 1)") }
        assertClose(try XCTUnwrap(opt.stateTensors()["group0.param0.momentum_buffer"]).toArray(),
                    [0.837106466, -5.80669928, -5.61727333], atol: 1e-5)
    }

    // MARK: - Adam / AdamW

    func testAdamWeightDecaySingleStep() throws {
        // single(lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.1, foreach=False))
        let (p, opt) = try singleStep { try Adam(parameters: $0, lr: 0.01, weightDecay: 0.1) }
        assertClose(p.toArray(), [0.49000001, -1.49000001, 1.99000001])
        let s = opt.stateTensors()
        assertClose(try XCTUnwrap(s["group0.param0.exp_avg"]).toArray(), [0.0350000039, -0.0850000009, 0.13000001])
        assertClose(try XCTUnwrap(s["group0.param0.exp_avg_sq"]).toArray(), [0.000122500031, 0.000722499972, 0.0016900003])
        XCTAssertEqual(try XCTUnwrap(s["group0.param0.step"]).item(), 1)
    }

    func testAdamWSingleStep() throws {
        // single(lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1, foreach=False))
        let (p, opt) = try singleStep { try AdamW(parameters: $0, lr: 0.01, weightDecay: 0.1) }
        assertClose(p.toArray(), [0.489500016, -1.4885, 1.98800004])
        let s = opt.stateTensors()
        assertClose(try XCTUnwrap(s["group0.param0.exp_avg"]).toArray(), [0.0300000012, -0.0700000003, 0.110000007])
        assertClose(try XCTUnwrap(s["group0.param0.exp_avg_sq"]).toArray(), [9.00000086e-05, 0.000490000006, 0.00121000013])
    }

    func testAdamSmallBetasLargeEps() throws {
        // single(lambda ps: torch.optim.Adam(ps, lr=0.001, betas=(0.3, 0.5), eps=1e-3, foreach=False))
        // (1 - beta1 = 0.7 >= 0.5 takes the other branch of torch's lerp)
        let (p, opt) = try singleStep { try Adam(parameters: $0, lr: 0.001, betas: (0.3, 0.5), eps: 1e-3) }
        assertClose(p.toArray(), [0.499003321, -1.49900138, 1.99900091])
        assertClose(try XCTUnwrap(opt.stateTensors()["group0.param0.exp_avg"]).toArray(), [0.210000008, -0.48999998, 0.769999981])
        assertClose(try XCTUnwrap(opt.stateTensors()["group0.param0.exp_avg_sq"]).toArray(), [0.0450000018, 0.24499999, 0.605000019])
    }

    func testAdamWeightDecayTrajectory() throws {
        // traj(lambda ps: torch.optim.Adam(ps, lr=0.05, weight_decay=0.1, foreach=False))
        let p = try param(p0)
        let opt = try Adam(parameters: [p], lr: 0.05, weightDecay: 0.1)
        let traj = try trajectory(opt, p)
        let expected: [[Float]] = [
            [0.449999988, -1.45000005, 2.04999995],
            [0.400139362, -1.40004635, 2.10003138],
            [0.350528777, -1.35017169, 2.15011382],
            [0.30129388, -1.30041039, 2.2002666],
            [0.252576649, -1.25079811, 2.25050783],
        ]
        for (t, (got, want)) in zip(traj, expected).enumerated() { assertClose(got, want, "step \(t + 1)") }
        let s = opt.stateTensors()
        assertClose(try XCTUnwrap(s["group0.param0.exp_avg"]).toArray(), [0.136769965, -1.31792152, -0.695971966])
        assertClose(try XCTUnwrap(s["group0.param0.exp_avg_sq"]).toArray(), [0.000586312206, 0.0524944775, 0.0142750004])
        XCTAssertEqual(try XCTUnwrap(s["group0.param0.step"]).item(), 5)
        XCTAssertEqual(opt.stepCount, 5)
    }

    func testAdamWTrajectory() throws {
        // traj(lambda ps: torch.optim.AdamW(ps, lr=0.05, betas=(0.8, 0.99), weight_decay=0.1, foreach=False))
        let p = try param(p0)
        let opt = try AdamW(parameters: [p], lr: 0.05, betas: (0.8, 0.99), weightDecay: 0.1)
        let traj = try trajectory(opt, p)
        let expected: [[Float]] = [
            [0.44749999, -1.44250011, 2.03999996],
            [0.395506948, -1.38538957, 2.0798552],
            [0.344204664, -1.3287375, 2.11960077],
            [0.293792784, -1.27261412, 2.15926957],
            [0.244485527, -1.21709013, 2.19889188],
        ]
        for (t, (got, want)) in zip(traj, expected).enumerated() { assertClose(got, want, "step \(t + 1)") }
        let s = opt.stateTensors()
        assertClose(try XCTUnwrap(s["group0.param0.exp_avg"]).toArray(), [0.192852095, -2.03178144, -1.27548349])
        assertClose(try XCTUnwrap(s["group0.param0.exp_avg_sq"]).toArray(), [0.0044052396, 0.463003725, 0.173476622])
    }

    // MARK: - Large parameters: SIMD body + tail + parallel split vs a scalar reference

    func testAdamWLargeParameterMatchesScalarReferenceAndIsThreadCountIndependent() throws {
        let n = 100_003   // > 2 × grain, not a multiple of 8
        var rng = RandomGenerator(seed: 7)
        let initial = Tensor.normal([n], rng: &rng).toArray()
        let grads = (0..<3).map { _ in Tensor.normal([n], rng: &rng).toArray() }

        func run(threads: Int) throws -> [Float] {
            let saved = Parallel.threadCount
            Parallel.threadCount = threads
            defer { Parallel.threadCount = saved }
            let p = try param(initial)
            let opt = try AdamW(parameters: [p], lr: 0.01, betas: (0.9, 0.999), eps: 1e-8, weightDecay: 0.05)
            for g in grads { try setGrad(p, g); try opt.step() }
            return p.toArray()
        }
        let one = try run(threads: 1)
        let two = try run(threads: 2)
        let three = try run(threads: 3)
        XCTAssertEqual(one, two, "result depends on thread count")
        XCTAssertEqual(one, three, "result depends on thread count")

        // Scalar Float reference of the same formulas (PyTorch's op order).
        var p = initial, m = [Float](repeating: 0, count: n), v = m
        for (t, g) in grads.enumerated() {
            let step = Double(t + 1)
            let bc1 = 1 - Foundation.pow(0.9, step), bc2 = 1 - Foundation.pow(0.999, step)
            let negStep = Float(-(0.01 / bc1)), bc2s = Float(bc2.squareRoot()), decay = Float(1 - 0.01 * 0.05)
            for i in 0..<n {
                p[i] *= decay
                m[i] += Float(1 - 0.9) * (g[i] - m[i])
                v[i] = v[i] * 0.999 + Float(1 - 0.999) * g[i] * g[i]
                p[i] += negStep * m[i] / (v[i].squareRoot() / bc2s + 1e-8)
            }
        }
        assertClose(one, p, atol: 1e-6, rtol: 1e-6)
    }

    func testSGDLargeParameterThreadCountIndependent() throws {
        let n = 70_001
        var rng = RandomGenerator(seed: 3)
        let initial = Tensor.normal([n], rng: &rng).toArray()
        let grads = (0..<3).map { _ in Tensor.normal([n], rng: &rng).toArray() }
        func run(threads: Int) throws -> [Float] {
            let saved = Parallel.threadCount
            Parallel.threadCount = threads
            defer { Parallel.threadCount = saved }
            let p = try param(initial)
            let opt = try SGD(parameters: [p], lr: 0.1, momentum: 0.9, weightDecay: 1e-3, nesterov: true)
            for g in grads { try setGrad(p, g); try opt.step() }
            return p.toArray()
        }
        XCTAssertEqual(try run(threads: 1), try run(threads: 2))
    }

    // MARK: - Groups, frozen parameters, zeroGrad

    func testGroupsUseTheirOwnLRAndWeightDecay() throws {
        let w = try param([1, 2]), bias = try param([1, 1])
        let opt = try SGD(groups: [
            ParameterGroup(name: "decay", parameters: [w], lr: 0.1, weightDecay: 0.5),
            ParameterGroup(name: "no_decay", parameters: [bias], lr: 0.01, weightDecay: 0),
        ])
        try setGrad(w, [1, 1]); try setGrad(bias, [1, 1])
        try opt.step()
        assertClose(w.toArray(), [1 - 0.1 * (1 + 0.5 * 1), 2 - 0.1 * (1 + 0.5 * 2)])
        assertClose(bias.toArray(), [0.99, 0.99])
    }

    func testSplitByDecay() throws {
        let named: [(key: String, tensor: Tensor)] = [
            (key: "fc.weight", tensor: try param([1, 2, 3, 4], [2, 2])),
            (key: "fc.bias", tensor: try param([0, 0])),
            (key: "norm.weight", tensor: try param([1, 1])),
            (key: "proj.weight", tensor: try param([1, 2], [1, 2])),
        ]
        let groups = ParameterGroup.splitByDecay(named, lr: 1e-3, weightDecay: 0.05, name: "layer0")
        XCTAssertEqual(groups.count, 2)
        XCTAssertEqual(groups[0].name, "layer0.decay")
        XCTAssertEqual(groups[0].parameterNames, ["fc.weight", "proj.weight"])
        XCTAssertEqual(groups[0].weightDecay, 0.05)
        XCTAssertEqual(groups[1].parameterNames, ["fc.bias", "norm.weight"])
        XCTAssertEqual(groups[1].weightDecay, 0)
        XCTAssertNoThrow(try AdamW(groups: groups))
    }

    func testFrozenParametersAreSkipped() throws {
        let trained = try param([1, 2, 3]), frozen = try param([4, 5, 6])
        let opt = try AdamW(parameters: [trained, frozen], lr: 0.1, weightDecay: 0.1)
        try setGrad(trained, [1, 1, 1])
        try opt.step()
        XCTAssertEqual(frozen.toArray(), [4, 5, 6], "a parameter without gradient must not move (not even decay)")
        XCTAssertNotEqual(trained.toArray(), [1, 2, 3])
        let keys = Set(opt.stateTensors().keys)
        XCTAssertEqual(keys, ["step", "group0.param0.exp_avg", "group0.param0.exp_avg_sq", "group0.param0.step"])
        opt.zeroGrad()
        XCTAssertNil(trained.grad)
        XCTAssertNil(frozen.grad)
    }

    func testZeroGradInPlace() throws {
        let p = try param([1, 2])
        let opt = try SGD(parameters: [p], lr: 0.1)
        try setGrad(p, [3, 4])
        let g = try XCTUnwrap(p.grad)
        opt.zeroGradInPlace()
        XCTAssert(p.grad === g)
        XCTAssertEqual(g.toArray(), [0, 0])
    }

    func testUpdatesDoNotRecordOnTheTape() throws {
        let p = try param([1, 2, 3])
        let opt = try Adam(parameters: [p], lr: 0.1)
        try setGrad(p, [1, 1, 1])
        try opt.step()
        XCTAssertTrue(p.isLeaf)
        XCTAssertTrue(p.requiresGrad)
    }

    // MARK: - State export / import

    func testAdamWStateRoundTripContinuesIdentically() throws {
        let pA = try param(p0), qA = try param([1, 2, 3, 4], [2, 2])
        let optA = try AdamW(groups: [ParameterGroup(parameters: [pA], lr: 0.05, weightDecay: 0.1),
                                      ParameterGroup(parameters: [qA], lr: 0.01, weightDecay: 0)])
        func grads(_ step: Int) -> ([Float], [Float]) {
            let s = Float(step)
            return ([0.1 * s, -0.2, 0.3 + s], [1, -1, 0.5 * s, 2])
        }
        for t in 0..<3 {
            let (gp, gq) = grads(t)
            try setGrad(pA, gp); try setGrad(qA, gq)
            try optA.step()
        }
        let saved = optA.stateTensors()
        XCTAssertEqual(Set(saved.keys), [
            "step",
            "group0.param0.exp_avg", "group0.param0.exp_avg_sq", "group0.param0.step",
            "group1.param0.exp_avg", "group1.param0.exp_avg_sq", "group1.param0.step",
        ])

        // A fresh optimizer on copies of the parameters, restored from the saved state.
        let pB = Tensor.parameter(pA.clone()), qB = Tensor.parameter(qA.clone())
        let optB = try AdamW(groups: [ParameterGroup(parameters: [pB], lr: 0.05, weightDecay: 0.1),
                                      ParameterGroup(parameters: [qB], lr: 0.01, weightDecay: 0)])
        try optB.loadStateTensors(saved.mapValues { $0.clone() })
        XCTAssertEqual(optB.stepCount, 3)
        for t in 3..<5 {
            let (gp, gq) = grads(t)
            try setGrad(pA, gp); try setGrad(qA, gq); try optA.step()
            try setGrad(pB, gp); try setGrad(qB, gq); try optB.step()
        }
        XCTAssertEqual(pA.toArray(), pB.toArray())
        XCTAssertEqual(qA.toArray(), qB.toArray())
        XCTAssertEqual(try optB.stateTensors()["group1.param0.step"]?.item(), 5)
    }

    func testSGDStateRoundTrip() throws {
        let pA = try param(p0)
        let optA = try SGD(parameters: [pA], lr: 0.1, momentum: 0.9)
        try setGrad(pA, g0); try optA.step()
        let pB = Tensor.parameter(pA.clone())
        let optB = try SGD(parameters: [pB], lr: 0.1, momentum: 0.9)
        try optB.loadStateTensors(optA.stateTensors())
        try setGrad(pA, g0); try optA.step()
        try setGrad(pB, g0); try optB.step()
        XCTAssertEqual(pA.toArray(), pB.toArray())
    }

    func testLoadStateRejectsMismatches() throws {
        let p = try param(p0)
        let opt = try Adam(parameters: [p], lr: 0.1)
        let good: [String: Tensor] = [
            "group0.param0.exp_avg": Tensor.zeros([3]),
            "group0.param0.exp_avg_sq": Tensor.zeros([3]),
            "group0.param0.step": Tensor(scalar: 2),
        ]
        XCTAssertNoThrow(try opt.loadStateTensors(good))

        var wrongShape = good
        wrongShape["group0.param0.exp_avg"] = Tensor.zeros([4])
        assertThrowsContaining(["adam: state:", "'group0.param0.exp_avg' has shape [4]", "[3]"]) { try opt.loadStateTensors(wrongShape) }

        var unknown = good
        unknown["group1.param0.exp_avg"] = Tensor.zeros([3])
        assertThrowsContaining(["unexpected key 'group1.param0.exp_avg'"]) { try opt.loadStateTensors(unknown) }

        var missing = good
        missing["group0.param0.exp_avg_sq"] = nil
        assertThrowsContaining(["'group0.param0.exp_avg_sq' is missing"]) { try opt.loadStateTensors(missing) }

        var badStep = good
        badStep["group0.param0.step"] = Tensor(scalar: 1.5)
        assertThrowsContaining(["'group0.param0.step' must be a whole number >= 0, got 1.5"]) { try opt.loadStateTensors(badStep) }
    }

    // MARK: - Invalid hyperparameters and inputs

    func testInvalidHyperparametersThrowNamedErrors() throws {
        let p = try param([1, 2, 3])
        assertThrowsMessage("adamw: beta2 must be in [0, 1), got 1.5") { _ = try AdamW(parameters: [p], betas: (0.9, 1.5)) }
        assertThrowsMessage("adam: beta1 must be in [0, 1), got -0.1") { _ = try Adam(parameters: [p], betas: (-0.1, 0.999)) }
        assertThrowsMessage("adam: beta1 must be in [0, 1), got 1.0") { _ = try Adam(parameters: [p], betas: (1, 0.999)) }
        assertThrowsMessage("adamw: eps must be a finite number > 0, got 0.0") { _ = try AdamW(parameters: [p], eps: 0) }
        assertThrowsMessage("adam: eps must be a finite number > 0, got -1e-08") { _ = try Adam(parameters: [p], eps: -1e-8) }
        assertThrowsMessage("sgd: lr must be a finite number >= 0, got -0.1 (group 0)") { _ = try SGD(parameters: [p], lr: -0.1) }
        assertThrowsMessage("adamw: lr must be a finite number >= 0, got nan (group 0 ('enc'))") {
            _ = try AdamW(groups: [ParameterGroup(name: "enc", parameters: [p], lr: .nan)])
        }
        assertThrowsMessage("adam: weightDecay must be a finite number >= 0, got -0.01 (group 0)") {
            _ = try Adam(parameters: [p], weightDecay: -0.01)
        }
        assertThrowsMessage("sgd: momentum must be a finite number >= 0, got -0.9") { _ = try SGD(parameters: [p], lr: 0.1, momentum: -0.9) }
        assertThrowsMessage("sgd: dampening must be 0 with nesterov, got 0.1") {
            _ = try SGD(parameters: [p], lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true)
        }
        assertThrowsMessage("sgd: momentum must be > 0 with nesterov, got 0.0") { _ = try SGD(parameters: [p], lr: 0.1, nesterov: true) }
    }

    func testLRChangedToInvalidValueThrowsAtStepWithoutChangingAnything() throws {
        let p = try param([1, 2, 3]), q = try param([4, 5])
        let opt = try Adam(groups: [ParameterGroup(parameters: [p], lr: 0.1), ParameterGroup(parameters: [q], lr: 0.1)])
        try setGrad(p, [1, 1, 1]); try setGrad(q, [1, 1])
        opt.groups[1].lr = -1
        assertThrowsMessage("adam: lr must be a finite number >= 0, got -1.0 (group 1)") { try opt.step() }
        XCTAssertEqual(p.toArray(), [1, 2, 3])
        XCTAssertEqual(opt.stepCount, 0)
        XCTAssertEqual(opt.stateTensors().keys.sorted(), ["step"])
    }

    func testDuplicateParameterAndGradientMismatch() throws {
        let p = try param([1, 2, 3])
        assertThrowsContaining(["sgd:", "appears more than once"]) {
            _ = try SGD(groups: [ParameterGroup(parameters: [p], lr: 0.1), ParameterGroup(parameters: [p], lr: 0.2)])
        }
        let opt = try AdamW(groups: [ParameterGroup(namedParameters: [(key: "w", tensor: p)], lr: 0.1)])
        p.grad = Tensor.zeros([2])
        assertThrowsMessage("adamw: gradient [2] does not match parameter 'w' [3] of group 0") { try opt.step() }
        XCTAssertEqual(p.toArray(), [1, 2, 3])
    }

    func testGradientWithSameCountDifferentShapeIsAccepted() throws {
        // Autograd may hand back a gradient reshaped; only the element count has to match.
        let p = try param([1, 2, 3, 4], [2, 2])
        let opt = try SGD(parameters: [p], lr: 1)
        p.grad = try Tensor([1, 1, 1, 1], shape: [4])
        try opt.step()
        XCTAssertEqual(p.toArray(), [0, 1, 2, 3])
    }

    func testNonContiguousGradientIsUsedCorrectly() throws {
        let p = try param([0, 0, 0, 0], [2, 2])
        let opt = try SGD(parameters: [p], lr: 1)
        p.grad = try Tensor([1, 2, 3, 4], shape: [2, 2]).transposed()   // [[1, 3], [2, 4]]
        try opt.step()
        XCTAssertEqual(p.toArray(), [-1, -3, -2, -4])
    }
}
