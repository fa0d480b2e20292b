import TensorEngine
import Training
import XCTest

/// Expected multipliers come from transformers 5.24 `transformers.optimization`, read through the
/// LambdaLR the public constructors return:
///
///     from transformers import optimization as O
///     def opt(lr=1.0): return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
///     steps = [0, 1, 5, 9, 10, 11, 37, 50, 99, 100, 101, 120]
///     s = O.get_linear_schedule_with_warmup(opt(), 10, 100)      # etc., see each test
///     [s.lr_lambdas[0](t) for t in steps]
final class ScheduleTests: XCTestCase {
    let steps = [0, 1, 5, 9, 10, 11, 37, 50, 99, 100, 101, 120]

    func check(_ schedule: LRSchedule, _ expected: [Double], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNoThrow(try schedule.validate(), file: file, line: line)
        for (t, want) in zip(steps, expected) {
            assertClose(schedule.multiplier(step: t), want, rtol: 1e-12, "\(schedule) at step \(t)", file: file, line: line)
        }
    }

    func testConstantWithWarmup() {
        // O.get_constant_schedule_with_warmup(opt(), 10)
        check(.constantWithWarmup(warmupSteps: 10), [0.0, 0.1, 0.5, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
        check(.constant, Array(repeating: 1, count: 12))
    }

    func testLinear() {
        // O.get_linear_schedule_with_warmup(opt(), 10, 100)
        check(.linear(warmupSteps: 10, totalSteps: 100),
              [0.0, 0.1, 0.5, 0.9, 1.0, 0.9888888888888889, 0.7, 0.5555555555555556, 0.011111111111111112, 0.0, 0.0, 0.0])
        // O.get_linear_schedule_with_warmup(opt(), 0, 100)
        check(.linear(warmupSteps: 0, totalSteps: 100), [1.0, 0.99, 0.95, 0.91, 0.9, 0.89, 0.63, 0.5, 0.01, 0.0, 0.0, 0.0])
    }

    func testCosine() {
        // O.get_cosine_schedule_with_warmup(opt(), 10, 100)
        check(.cosine(warmupSteps: 10, totalSteps: 100),
              [0.0, 0.1, 0.5, 0.9, 1.0, 0.9996954135095479, 0.7938926261462366, 0.5868240888334653,
               0.00030458649045211894, 0.0, 0.00030458649045211894, 0.116977778440511])
        // O.get_cosine_schedule_with_warmup(opt(), 10, 100, num_cycles=2.0)
        check(.cosine(warmupSteps: 10, totalSteps: 100, numCycles: 2),
              [0.0, 0.1, 0.5, 0.9, 1.0, 0.9951340343707852, 0.09549150281252622, 0.883022221559489,
               0.9951340343707851, 1.0, 0.9951340343707852, 0.03015368960704584])
    }

    func testCosineWithMinLR() {
        // O.get_cosine_with_min_lr_schedule_with_warmup(opt(), 10, 100, min_lr_rate=0.1)
        check(.cosineWithMinLR(warmupSteps: 10, totalSteps: 100, minLRRate: 0.1),
              [0.0, 0.1, 0.5, 0.9, 1.0, 0.9997258721585931, 0.8145033635316129, 0.6281416799501187,
               0.10027412784140691, 0.1, 0.10027412784140691, 0.2052800005964599])
    }

    func testCosineWithHardRestarts() {
        // O.get_cosine_with_hard_restarts_schedule_with_warmup(opt(), 10, 100, num_cycles=3)
        check(.cosineWithHardRestarts(warmupSteps: 10, totalSteps: 100, numCycles: 3),
              [0.0, 0.1, 0.5, 0.9, 1.0, 0.9972609476841366, 0.02447174185242329, 0.7500000000000002,
               0.0027390523158632996, 0.0, 0.0, 0.0])
    }

    func testPolynomial() {
        // O.get_polynomial_decay_schedule_with_warmup(opt(1e-3), 10, 100, lr_end=1e-5, power=2.0)
        check(.polynomial(warmupSteps: 10, totalSteps: 100, lrInit: 1e-3, lrEnd: 1e-5, power: 2),
              [0.0, 0.1, 0.5, 0.9, 1.0, 0.9781222222222222, 0.49509999999999993, 0.31555555555555564,
               0.010122222222222222, 0.01, 0.01, 0.01])
    }

    func testInverseSqrt() {
        // O.get_inverse_sqrt_schedule(opt(), 10)
        check(.inverseSqrt(warmupSteps: 10),
              [0.0, 0.1, 0.5, 0.9, 1.0, 0.9534625892455922, 0.5198752449100363, 0.4472135954999579,
               0.3178208630818641, 0.31622776601683794, 0.3146583877637763, 0.2886751345948129])
    }

    func testSchedulerDrivesLayerwiseGroupsLikeLambdaLR() throws {
        // p1, p2 = Parameter(zeros(1)), Parameter(zeros(1))
        // o = torch.optim.SGD([{"params": [p1], "lr": 0.1}, {"params": [p2], "lr": 0.01}], lr=0.1)
        // s = O.get_linear_schedule_with_warmup(o, 2, 6)
        // for t in range(8): record [g["lr"] for g in o.param_groups]; o.step(); s.step()
        let expected: [[Double]] = [[0.0, 0.0], [0.05, 0.005], [0.1, 0.01], [0.07500000000000001, 0.0075],
                                    [0.05, 0.005], [0.025, 0.0025], [0.0, 0.0], [0.0, 0.0]]
        let p1 = try param([0]), p2 = try param([0])
        let opt = try SGD(groups: [ParameterGroup(parameters: [p1], lr: 0.1), ParameterGroup(parameters: [p2], lr: 0.01)])
        let sched = try Scheduler(optimizer: opt, schedule: LRSchedule.linear(warmupSteps: 2, totalSteps: 6))
        XCTAssertEqual(sched.baseLRs, [0.1, 0.01])
        for want in expected {
            XCTAssertEqual(opt.groups.map(\.lr), want.map { Float($0) })
            try setGrad(p1, [1]); try setGrad(p2, [1])
            try opt.step()
            sched.step()
        }
        // The first optimizer step ran at lr 0 (warmup starts at 0, as in HF): p moved 0.05 + 0.1 + …
        let moved = -Double(p1.toArray()[0])
        assertClose(moved, 0.05 + 0.1 + 0.075 + 0.05 + 0.025, rtol: 1e-6, "sum of lrs applied")
        try sched.setStep(3)
        XCTAssertEqual(opt.groups.map(\.lr), [Float(0.07500000000000001), Float(0.0075)])
    }

    func testCustomSchedule() throws {
        struct Halving: LearningRateSchedule {
            func multiplier(step: Int) -> Double { Foundation.pow(0.5, Double(step)) }
        }
        let p = try param([0])
        let opt = try Adam(parameters: [p], lr: 0.8)
        let sched = try Scheduler(optimizer: opt, schedule: Halving())
        sched.step(); sched.step()
        XCTAssertEqual(opt.groups[0].lr, 0.2)
        XCTAssertEqual(sched.currentStep, 2)
    }

    func testInvalidSchedules() throws {
        assertThrowsMessage("lr_schedule: warmupSteps must be >= 0, got -1") { try LRSchedule.linear(warmupSteps: -1, totalSteps: 10).validate() }
        assertThrowsMessage("lr_schedule: lrEnd (0.001) must be smaller than the initial lr (0.001)") {
            try LRSchedule.polynomial(warmupSteps: 0, totalSteps: 10, lrInit: 1e-3, lrEnd: 1e-3).validate()
        }
        assertThrowsContaining(["lr_schedule: totalSteps must be greater than warmupSteps (10)"]) {
            try LRSchedule.polynomial(warmupSteps: 10, totalSteps: 10, lrInit: 1e-3).validate()
        }
        assertThrowsMessage("lr_schedule: minLRRate must be in [0, 1], got 1.5") {
            try LRSchedule.cosineWithMinLR(warmupSteps: 0, totalSteps: 10, minLRRate: 1.5).validate()
        }
        let opt = try SGD(parameters: [try param([0])], lr: 0.1)
        assertThrowsMessage("lr_schedule: totalSteps must be >= 0, got -5") {
            _ = try Scheduler(optimizer: opt, schedule: LRSchedule.cosine(warmupSteps: 0, totalSteps: -5))
        }
    }
}
