import Foundation
import Layers
import TensorEngine
import Training
import XCTest

/// A clock the test advances by hand.
final class ManualClock: TrainingClock {
    var seconds = 0.0
    func now() -> Double { seconds }
}

/// Stops training after `steps` optimizer steps.
final class StopAfterSteps: TrainerCallback {
    let steps: Int
    init(_ steps: Int) { self.steps = steps }
    func on(_ event: TrainerEvent, trainer: any TrainerContext) throws -> TrainerDecision {
        if case .step(let r) = event, r.globalStep >= steps { return .stop(reason: "custom stop after \(r.globalStep) steps") }
        return .proceed
    }
}

func bits(_ w: [[Float]]) -> [[UInt32]] { w.map { $0.map(\.bitPattern) } }

final class TrainerFeatureTests: XCTestCase {
    // MARK: - Clipping

    /// The trainer's loop against a hand-written one: zero, loss, backward, clip, step.
    func manualRun(clip: (([Tensor]) -> Void)?) throws -> [[Float]] {
        let task = try TinyTask(seed: 21)
        let opt = try SGD(parameters: task.model.parameters, lr: 0.3, momentum: 0.9)
        for e in 1...2 {
            let order = Trainer.epochOrder(sampleCount: 10, seed: 4, epoch: e)
            for s in 0..<4 {
                let batch = Array(order[(s * 3)..<Swift.min(s * 3 + 3, 10)])
                opt.zeroGrad()
                try task.loss(batch).backward()
                clip?(opt.allParameters)
                try opt.step()
            }
        }
        return task.weights
    }

    func trainerRun(_ clip: GradientClipping?) throws -> [[Float]] {
        let task = try TinyTask(seed: 21)
        let opt = try SGD(parameters: task.model.parameters, lr: 0.3, momentum: 0.9)
        let trainer = try Trainer(options: TrainerOptions(epochs: 2, batchSize: 3, seed: 4, gradClip: clip),
                                  parameters: task.named, optimizer: opt)
        _ = try trainer.fit(sampleCount: 10, step: task.loss)
        return task.weights
    }

    func testClippingByNormAndByValueMatchAHandWrittenLoop() throws {
        XCTAssertEqual(bits(try trainerRun(.norm(0.5))), bits(try manualRun { clipGradNorm($0, maxNorm: 0.5) }))
        XCTAssertEqual(bits(try trainerRun(.value(0.05))), bits(try manualRun { clipGradValue($0, clipValue: 0.05) }))
        XCTAssertEqual(bits(try trainerRun(nil)), bits(try manualRun(clip: nil)))
        XCTAssertNotEqual(bits(try trainerRun(.value(0.05))), bits(try trainerRun(nil)))
        XCTAssertEqual(TrainerOptions(epochs: 1, batchSize: 2, seed: 0, gradClipNorm: 2).gradClip, .norm(2))
        XCTAssertNil(TrainerOptions(epochs: 1, batchSize: 2, seed: 0, gradClipNorm: nil).gradClip)
    }

    // MARK: - Accumulation

    func testAccumulationEqualsOneStepOnTheLargerBatch() throws {
        // batchSize 3 × accumulation 3 over 10 samples: micro-batches 3, 3, 3 | 1 → steps of 9 and 1
        // rows, the same as batchSize 9 without accumulation.
        func run(batchSize: Int, accumulation: Int) throws -> (weights: [[Float]], lrs: [Double], summary: TrainingSummary) {
            let task = try TinyTask(seed: 8)
            let opt = try AdamW(groups: [ParameterGroup(parameters: task.model.parameters, lr: 0.05, weightDecay: 0.01)])
            let options = TrainerOptions(epochs: 3, batchSize: batchSize, seed: 5, accumulation: accumulation)
            let sched = try Scheduler(optimizer: opt, schedule: LRSchedule.linear(warmupSteps: 1, totalSteps: options.totalSteps(sampleCount: 10)))
            let lr = LRMonitor()
            let trainer = try Trainer(options: options, parameters: task.named, optimizer: opt, scheduler: sched, callbacks: [lr])
            let summary = try trainer.fit(sampleCount: 10, step: task.loss)
            XCTAssertEqual(trainer.stepsPerEpoch, 2)
            return (task.weights, lr.rows.map { $0.learningRates[0] }, summary)
        }
        let acc = try run(batchSize: 3, accumulation: 3), big = try run(batchSize: 9, accumulation: 1)
        XCTAssertEqual(acc.summary.steps, 6)
        XCTAssertEqual(acc.lrs, big.lrs, "the schedule counts optimizer steps")
        for (a, b) in zip(acc.weights, big.weights) { assertClose(a, b, atol: 1e-6, rtol: 0, "accumulated vs big batch") }
        for (a, b) in zip(acc.summary.history.records, big.summary.history.records) { assertClose(a.trainLoss, b.trainLoss, rtol: 1e-6) }
        XCTAssertEqual(TrainerOptions(epochs: 2, batchSize: 3, seed: 0, accumulation: 3).stepsPerEpoch(sampleCount: 10), 2)
        XCTAssertEqual(TrainerOptions(epochs: 2, batchSize: 3, seed: 0, accumulation: 3).batchesPerEpoch(sampleCount: 10), 4)
    }

    func testAccumulationSeesEveryMicroBatchOnce() throws {
        let task = try TinyTask(seed: 1)
        let rec = Recorder()
        _ = try task.trainer(TrainerOptions(epochs: 1, batchSize: 2, seed: 3, accumulation: 2), callbacks: [rec])
            .fit(sampleCount: 10, step: task.loss, validate: scripted("val.loss", [1]))
        XCTAssertEqual(task.batches.map(\.count), [2, 2, 2, 2, 2])
        XCTAssertEqual(rec.events, ["begin 3", "epoch 1", "step 1.1 #1", "step 1.2 #2", "step 1.3 #3", "val 1@3", "end 1", "done"])
    }

    func testAccumulationLargerThanAnEpochThrows() throws {
        let task = try TinyTask(seed: 1)
        assertThrowsMessage("trainer: accumulation (5) is larger than the 4 batch(es) of an epoch (10 samples, batchSize 3); "
            + "set accumulation to at most 4 or lower batchSize") {
            _ = try task.trainer(TrainerOptions(epochs: 1, batchSize: 3, seed: 1, accumulation: 5)).fit(sampleCount: 10, step: task.loss)
        }
    }

    // MARK: - Validation inside epochs

    func testValidationIntervalSchedule() throws {
        let task = try TinyTask(seed: 1)
        let rec = Recorder()
        var calls = 0
        let summary = try task.trainer(TrainerOptions(epochs: 2, batchSize: 1, seed: 3, validationInterval: 0.3), callbacks: [rec])
            .fit(sampleCount: 10, step: task.loss, validate: { calls += 1; return ["val.loss": Double(calls)] })
        // ⌈0.3 × 10⌉ = 3: after steps 3, 6, 9 and the epoch's last step 10, never twice.
        XCTAssertEqual(summary.history.validations.map(\.step), [3, 6, 9, 10, 13, 16, 19, 20])
        XCTAssertEqual(summary.history.validations.map(\.epochProgress), [0.3, 0.6, 0.9, 1, 1.3, 1.6, 1.9, 2])
        XCTAssertEqual(summary.history.validations.map(\.epoch), [1, 1, 1, 1, 2, 2, 2, 2])
        XCTAssertEqual(rec.events.filter { $0.hasPrefix("val") }, ["val 1@3", "val 1@6", "val 1@9", "val 1@10", "val 2@13", "val 2@16", "val 2@19", "val 2@20"])
        XCTAssertEqual(summary.history.records.map(\.metrics), [["val.loss": 4], ["val.loss": 8]], "an epoch record holds its last validation")
        let lines = summary.history.csv().split(separator: "\n")
        XCTAssertEqual(lines.count, 9)
        XCTAssertEqual(lines[0], "epoch,step,train_loss,lr,seconds,val.loss")
        XCTAssert(lines[1].hasPrefix("0.3,3,"), String(lines[1]))
        XCTAssertEqual(TrainerOptions(epochs: 1, batchSize: 1, seed: 0, validationInterval: 0.1).validationEvery(stepsPerEpoch: 30), 3)
        XCTAssertEqual(TrainerOptions(epochs: 1, batchSize: 1, seed: 0, validationInterval: 0.5).validationEvery(stepsPerEpoch: 3), 2)
    }

    func testEarlyStoppingPatienceCountsValidations() throws {
        let task = try TinyTask(seed: 1)
        let stopper = try EarlyStopping(monitor: "val.loss", mode: .min, patience: 2)
        // Two validations per epoch (5 steps each): best at the 2nd, then two without improvement.
        let summary = try task.trainer(TrainerOptions(epochs: 5, batchSize: 1, seed: 3, validationInterval: 0.5), callbacks: [stopper])
            .fit(sampleCount: 10, step: task.loss, validate: scripted("val.loss", [1, 0.5, 0.6, 0.7, 0.1]))
        XCTAssertEqual(summary.history.validations.count, 4)
        XCTAssertEqual(summary.steps, 20)
        XCTAssertEqual(summary.bestStep, 10)
        XCTAssertEqual(summary.bestEpoch, 1)
        XCTAssertEqual(summary.stoppedEarly, "early stopping: val.loss did not improve for 2 validation(s) (best 0.5 at epoch 1, step 10)")
    }

    // MARK: - Stopping

    func testACustomCallbackStopsAfterNSteps() throws {
        let task = try TinyTask(seed: 1)
        let rec = Recorder()
        let summary = try task.trainer(TrainerOptions(epochs: 3, batchSize: 2, seed: 3), callbacks: [StopAfterSteps(3), rec])
            .fit(sampleCount: 10, step: task.loss, validate: scripted("val.loss", [1, 2]))
        XCTAssertEqual(summary.steps, 3)
        XCTAssertEqual(summary.stoppedEarly, "custom stop after 3 steps")
        XCTAssertEqual(task.batches.count, 3)
        // The stop comes mid-epoch: one validation at the stopping step, then a partial epoch.
        XCTAssertEqual(rec.events, ["begin 15", "epoch 1", "step 1.1 #1", "step 1.2 #2", "step 1.3 #3", "val 1@3", "end 1", "done"])
        XCTAssertEqual(summary.history.validations.map(\.epochProgress), [0.6])
    }

    func testTimeLimitStopsAfterTheStepAndValidatesOnce() throws {
        let task = try TinyTask(seed: 4)
        let clock = ManualClock()
        let best = try BestWeights(monitor: "val.loss", mode: .min)
        let rec = Recorder()
        let opt = try SGD(parameters: task.model.parameters, lr: 0.1)
        let trainer = try Trainer(options: TrainerOptions(epochs: 4, batchSize: 2, seed: 2, timeLimit: 3.5), parameters: task.named,
                                  optimizer: opt, callbacks: [rec, best], clock: clock)
        let summary = try trainer.fit(sampleCount: 10, step: { batch in
            clock.seconds += 1
            return try task.loss(batch)
        }, validate: scripted("val.loss", [0.5]))
        // The limit passes during step 4 (t = 4 ≥ 3.5): stop after it, validate there, end normally.
        XCTAssertEqual(summary.steps, 4)
        XCTAssertEqual(summary.stoppedEarly, "time limit of 3.5 s reached after step 4")
        XCTAssertEqual(summary.history.validations.map(\.step), [4])
        XCTAssertEqual(summary.history.validations.first?.seconds, 4)
        XCTAssertEqual(summary.seconds, 4)
        XCTAssertEqual(best.restoredStep, 4)
        XCTAssertEqual(rec.events.suffix(4), ["val 1@4", "ckpt best_weights #4 rank 1", "end 1", "done"])

        // A limit that passes exactly at an epoch's end validates only once.
        let task2 = try TinyTask(seed: 4)
        let clock2 = ManualClock()
        let trainer2 = try Trainer(options: TrainerOptions(epochs: 4, batchSize: 2, seed: 2, timeLimit: 5), parameters: task2.named,
                                   optimizer: try SGD(parameters: task2.model.parameters, lr: 0.1), clock: clock2)
        let s2 = try trainer2.fit(sampleCount: 10, step: { batch in clock2.seconds += 1; return try task2.loss(batch) },
                                  validate: scripted("val.loss", [0.5]))
        XCTAssertEqual(s2.history.validations.map(\.step), [5])
        XCTAssertEqual(s2.history.records.count, 1)
    }

    func testAStopBeforeTheFirstStepTrainsNothing() throws {
        final class StopAtBegin: TrainerCallback {
            func on(_ event: TrainerEvent, trainer: any TrainerContext) throws -> TrainerDecision {
                if case .trainBegin = event { return .stop(reason: "not today") }
                return .proceed
            }
        }
        let task = try TinyTask(seed: 1)
        let before = task.weights
        let summary = try task.trainer(TrainerOptions(epochs: 2, batchSize: 5, seed: 1), callbacks: [StopAtBegin()])
            .fit(sampleCount: 10, step: task.loss, validate: scripted("val.loss", [1]))
        XCTAssertEqual(summary.steps, 0)
        XCTAssertEqual(summary.stoppedEarly, "not today")
        XCTAssert(summary.history.records.isEmpty && summary.history.validations.isEmpty)
        XCTAssertEqual(task.weights, before)
    }

    func testProgressReporterPrintsMidEpochValidations() throws {
        var text = ""
        let reporter = ProgressReporter(interactive: false, shownKeys: ["val.loss"], output: { text += $0 })
        let ctx = FakeContext()
        let mid = ValidationRecord(epoch: 2, step: 15, epochProgress: 1.5, trainLoss: 0.5, learningRate: 1e-3, seconds: 3,
                                   metrics: ["val.loss": 0.25, "val.accuracy": 0.5])
        _ = try reporter.on(.validation(mid), trainer: ctx)
        var end = mid
        end.step = 20
        _ = try reporter.on(.validation(end), trainer: ctx)
        XCTAssertEqual(text, "validation at epoch 1.5 (step 15)  val.loss 0.2500\n", "the epoch-end validation is on the epoch line")
    }

    // MARK: - Determinism

    func testSameSeedIsBitIdenticalWithAccumulationAndMidEpochValidation() throws {
        func run() throws -> ([[Float]], [Double]) {
            let task = try TinyTask(seed: 13)
            let opt = try AdamW(groups: [ParameterGroup(parameters: task.model.parameters, lr: 0.05, weightDecay: 0.01)])
            let options = TrainerOptions(epochs: 3, batchSize: 2, seed: 9, gradClip: .norm(0.5), accumulation: 2, validationInterval: 0.5)
            let best = try TopKCheckpoints(monitor: "val.loss", mode: .min, k: 2, averaging: .uniformSoup)
            let trainer = try Trainer(options: options, parameters: task.named, optimizer: opt, callbacks: [best])
            let summary = try trainer.fit(sampleCount: 10, step: task.loss, validate: {
                ["val.loss": Double(try withNoGrad { try task.loss(Array(0..<10)) }.item())]
            })
            return (task.weights, summary.history.validations.map { $0.metrics["val.loss"] ?? .nan })
        }
        let a = try run(), b = try run()
        XCTAssertEqual(bits(a.0), bits(b.0))
        XCTAssertEqual(a.1.map(\.bitPattern), b.1.map(\.bitPattern))
        XCTAssertEqual(a.1.count, 6)
    }

    // MARK: - Options

    func testInvalidNewOptionsThrow() throws {
        let task = try TinyTask(seed: 1)
        func opts(_ clip: GradientClipping? = nil, acc: Int = 1, interval: Double = 1, limit: Double? = nil) -> TrainerOptions {
            TrainerOptions(epochs: 1, batchSize: 2, seed: 0, gradClip: clip, accumulation: acc, validationInterval: interval, timeLimit: limit)
        }
        assertThrowsMessage("trainer: gradClip norm must be a finite number > 0 (or no clipping), got 0.0") { _ = try task.trainer(opts(.norm(0))) }
        assertThrowsMessage("trainer: gradClip value must be a finite number > 0 (or no clipping), got -1.0") { _ = try task.trainer(opts(.value(-1))) }
        assertThrowsMessage("trainer: accumulation must be >= 1 (1 = no accumulation), got 0") { _ = try task.trainer(opts(acc: 0)) }
        assertThrowsContaining(["validationInterval must be a fraction of an epoch in (0, 1]", "got 1.5"]) { _ = try task.trainer(opts(interval: 1.5)) }
        assertThrowsContaining(["validationInterval", "got 0.0"]) { _ = try task.trainer(opts(interval: 0)) }
        assertThrowsMessage("trainer: timeLimit must be a finite number of seconds > 0 (or unset), got -1.0") { _ = try task.trainer(opts(limit: -1)) }
    }
}
