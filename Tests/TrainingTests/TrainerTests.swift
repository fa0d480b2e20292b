import Foundation
import Layers
import TensorEngine
import Training
import XCTest

/// A tiny regression task: y = 2·x0 − x1 + 0.5 on 10 fixed points, fitted by `Linear(2, 1)`.
final class TinyTask {
    let model: Linear
    let xs: Tensor
    let ys: Tensor
    let count = 10
    /// The batches `step` saw, in order.
    var batches: [[Int]] = []

    init(seed: UInt64) throws {
        model = Linear(2, 1, rng: RandomSource(seed: seed))
        let x: [Float] = (0..<20).map { Float(($0 * 7) % 11) / 5 - 1 }
        xs = try Tensor(x, shape: [10, 2])
        ys = try Tensor((0..<10).map { 2 * x[2 * $0] - x[2 * $0 + 1] + 0.5 }, shape: [10, 1])
    }

    var named: [(name: String, tensor: Tensor)] { model.namedParameters().map { (name: $0.key, tensor: $0.tensor) } }
    var weights: [[Float]] { named.map { $0.tensor.toArray() } }

    func loss(_ batch: [Int]) throws -> Tensor {
        batches.append(batch)
        let x = try indexSelect(xs, axis: 0, indices: batch)
        let y = try indexSelect(ys, axis: 0, indices: batch)
        return try mseLoss(try model(x), y)
    }

    func trainer(_ options: TrainerOptions, callbacks: [any TrainerCallback] = []) throws -> Trainer {
        let opt = try SGD(parameters: model.parameters, lr: 0.1, momentum: 0.9)
        return try Trainer(options: options, parameters: named, optimizer: opt, callbacks: callbacks)
    }
}

/// Returns scripted validation values, one per epoch.
func scripted(_ key: String, _ values: [Double]) -> () throws -> [String: Double] {
    var epoch = 0
    return {
        defer { epoch += 1 }
        return [key: values[Swift.min(epoch, values.count - 1)]]
    }
}

/// Copies the parameters at every epoch end.
final class Recorder: TrainerCallback {
    var weightsByEpoch: [Int: [[Float]]] = [:]
    var events: [String] = []
    func on(_ event: TrainerEvent, trainer: any TrainerContext) throws -> TrainerDecision {
        switch event {
        case .trainBegin(let total): events.append("begin \(total)")
        case .epochBegin(let e): events.append("epoch \(e)")
        case .step(let r): events.append("step \(r.epoch).\(r.step) #\(r.globalStep)")
        case .validation(let r): events.append("val \(r.epoch)@\(r.step)")
        case .checkpoint(let c): events.append("ckpt \(c.source) #\(c.step) rank \(c.rank)")
        case .epochEnd(let r):
            events.append("end \(r.epoch)")
            weightsByEpoch[r.epoch] = trainer.parameters.map { $0.tensor.toArray() }
        case .trainEnd: events.append("done")
        }
        return .proceed
    }
}

final class FakeContext: TrainerContext {
    var options = TrainerOptions(epochs: 20, batchSize: 4, seed: 0)
    var epoch = 3
    var globalStep = 30
    var stepsPerEpoch = 10
    var totalSteps = 200
    var parameters: [(name: String, tensor: Tensor)] = []
    var state: [(name: String, tensor: Tensor)] { parameters }
    var history = History()
    var groupNames = ["group0"]
    var reported: [CheckpointRecord] = []
    func reportCheckpoint(_ record: CheckpointRecord) { reported.append(record) }
}

final class TrainerTests: XCTestCase {
    func testEventOrderAndBatching() throws {
        let task = try TinyTask(seed: 1)
        let rec = Recorder()
        let trainer = try task.trainer(TrainerOptions(epochs: 2, batchSize: 4, seed: 3), callbacks: [rec])
        let summary = try trainer.fit(sampleCount: 10, step: task.loss, validate: scripted("val.loss", [1, 2]))
        XCTAssertEqual(rec.events, ["begin 6", "epoch 1", "step 1.1 #1", "step 1.2 #2", "step 1.3 #3", "val 1@3", "end 1",
                                    "epoch 2", "step 2.1 #4", "step 2.2 #5", "step 2.3 #6", "val 2@6", "end 2", "done"])
        XCTAssertEqual(task.batches.map(\.count), [4, 4, 2, 4, 4, 2])
        XCTAssertEqual(task.batches.prefix(3).flatMap { $0 }.sorted(), Array(0..<10), "an epoch visits every sample once")
        XCTAssertEqual(Array(task.batches.prefix(3).joined()), Trainer.epochOrder(sampleCount: 10, seed: 3, epoch: 1))
        XCTAssertEqual(summary.steps, 6)
        XCTAssertNil(summary.stoppedEarly)
        XCTAssertEqual(summary.history.records.map(\.metrics), [["val.loss": 1], ["val.loss": 2]])
        XCTAssertEqual(summary.history.records[0].learningRate, 0.1)

        // dropLast drops the short batch; no shuffle keeps the order.
        let task2 = try TinyTask(seed: 1)
        _ = try task2.trainer(TrainerOptions(epochs: 1, batchSize: 4, seed: 3, shuffle: false, dropLast: true))
            .fit(sampleCount: 10, step: task2.loss)
        XCTAssertEqual(task2.batches, [[0, 1, 2, 3], [4, 5, 6, 7]])
    }

    func testTrainLossIsWeightedByBatchSize() throws {
        let w = Tensor.parameter(Tensor.zeros([1]))
        let opt = try SGD(parameters: [w], lr: 0)
        let trainer = try Trainer(options: TrainerOptions(epochs: 1, batchSize: 2, seed: 0, shuffle: false),
                                  parameters: [(name: "w", tensor: w)], optimizer: opt)
        // Loss of a batch = its size: (2·2 + 2·2 + 1·1) / 5 = 1.8.
        let summary = try trainer.fit(sampleCount: 5, step: { batch in try addScalar(try sum(w), Float(batch.count)) })
        XCTAssertEqual(summary.history.records[0].trainLoss, 1.8, accuracy: 1e-12)
    }

    func testSameSeedIsBitIdenticalDifferentSeedReorders() throws {
        func run(seed: UInt64) throws -> (weights: [[Float]], batches: [[Int]]) {
            let task = try TinyTask(seed: 11)
            _ = try task.trainer(TrainerOptions(epochs: 3, batchSize: 3, seed: seed, gradClip: .norm(1))).fit(sampleCount: 10, step: task.loss)
            return (task.weights, task.batches)
        }
        let a = try run(seed: 5), b = try run(seed: 5), c = try run(seed: 6)
        XCTAssertEqual(a.batches, b.batches)
        XCTAssertEqual(a.weights.map { $0.map(\.bitPattern) }, b.weights.map { $0.map(\.bitPattern) })
        XCTAssertNotEqual(a.batches, c.batches)
        XCTAssertNotEqual(Trainer.epochOrder(sampleCount: 10, seed: 5, epoch: 1), Trainer.epochOrder(sampleCount: 10, seed: 5, epoch: 2),
                          "each epoch has its own order")
    }

    func testTrainingReducesLoss() throws {
        let task = try TinyTask(seed: 2)
        let summary = try task.trainer(TrainerOptions(epochs: 40, batchSize: 5, seed: 1)).fit(sampleCount: 10, step: task.loss)
        let losses = summary.history.records.map(\.trainLoss)
        XCTAssertLessThan(losses.last ?? 1, losses[0] / 100, "\(losses)")
    }

    // MARK: - Early stopping

    func earlyStop(_ key: String, _ values: [Double], mode: MonitorMode, patience: Int, minDelta: Double) throws -> TrainingSummary {
        let task = try TinyTask(seed: 1)
        let stopper = try EarlyStopping(monitor: key, mode: mode, patience: patience, minDelta: minDelta)
        return try task.trainer(TrainerOptions(epochs: values.count, batchSize: 5, seed: 1), callbacks: [stopper])
            .fit(sampleCount: 10, step: task.loss, validate: scripted(key, values))
    }

    func testEarlyStoppingMin() throws {
        let values = [1.0, 0.8, 0.85, 0.79, 0.80, 0.81, 0.9, 0.7]
        // minDelta 0: best 0.79 at epoch 4, then 2 epochs without improvement.
        let s = try earlyStop("val.loss", values, mode: .min, patience: 2, minDelta: 0)
        XCTAssertEqual(s.history.records.count, 6)
        XCTAssertEqual(s.bestEpoch, 4)
        XCTAssertEqual(s.bestValue, 0.79)
        XCTAssertEqual(s.monitor, "val.loss")
        XCTAssertEqual(s.stoppedEarly, "early stopping: val.loss did not improve for 2 validation(s) (best 0.79 at epoch 4, step 8)")
        // minDelta 0.02: 0.79 is not 0.02 better than 0.8, so epochs 3 and 4 fail to improve.
        let d = try earlyStop("val.loss", values, mode: .min, patience: 2, minDelta: 0.02)
        XCTAssertEqual(d.history.records.count, 4)
        XCTAssertEqual(d.bestEpoch, 2)
        // Patience longer than the run: no stop.
        let p = try earlyStop("val.loss", values, mode: .min, patience: 5, minDelta: 0)
        XCTAssertEqual(p.history.records.count, 8)
        XCTAssertNil(p.stoppedEarly)
        XCTAssertEqual(p.bestEpoch, 8)
    }

    func testEarlyStoppingMax() throws {
        let values = [0.5, 0.6, 0.6, 0.65, 0.64]
        let s = try earlyStop("val.accuracy", values, mode: .max, patience: 1, minDelta: 0)
        XCTAssertEqual(s.history.records.count, 3, "an equal value is no improvement")
        XCTAssertEqual(s.bestEpoch, 2)
        let d = try earlyStop("val.accuracy", values, mode: .max, patience: 2, minDelta: 0.1)
        XCTAssertEqual(d.history.records.count, 3)
        XCTAssertEqual(d.bestEpoch, 1)
        XCTAssertEqual(MonitorMode.inferred(for: "val.roc_auc"), .max)
        XCTAssertEqual(MonitorMode.inferred(for: "val.rmse"), .min)
        XCTAssertEqual(MonitorMode.inferred(for: "val.loss"), .min)
        XCTAssertNil(MonitorMode.inferred(for: "val.whatever"))
    }

    func testUnknownMonitorThrows() throws {
        assertThrowsMessage("early_stopping: monitor 'val.f1' is not among the validation's values (lr, seconds, train_loss, val.loss); "
            + "monitor one of those keys or make validation report 'val.f1'") {
            let task = try TinyTask(seed: 1)
            let stopper = try EarlyStopping(monitor: "val.f1", mode: .max, patience: 1)
            _ = try task.trainer(TrainerOptions(epochs: 2, batchSize: 5, seed: 1), callbacks: [stopper])
                .fit(sampleCount: 10, step: task.loss, validate: scripted("val.loss", [1, 2]))
        }
        assertThrowsContaining(["patience must be >= 0"]) { _ = try EarlyStopping(monitor: "val.loss", mode: .min, patience: -1) }
    }

    // MARK: - Best weights

    func testBestWeightsRestoresBestEpoch() throws {
        let task = try TinyTask(seed: 4)
        let rec = Recorder()
        let best = try BestWeights(monitor: "val.loss", mode: .min)
        let summary = try task.trainer(TrainerOptions(epochs: 4, batchSize: 5, seed: 2), callbacks: [rec, best])
            .fit(sampleCount: 10, step: task.loss, validate: scripted("val.loss", [0.5, 0.3, 0.4, 0.6]))
        XCTAssertEqual(summary.bestEpoch, 2)
        XCTAssertEqual(summary.bestValue, 0.3)
        XCTAssertEqual(best.restoredEpoch, 2)
        XCTAssertNotEqual(rec.weightsByEpoch[2], rec.weightsByEpoch[4])
        XCTAssertEqual(task.weights.map { $0.map(\.bitPattern) }, rec.weightsByEpoch[2]?.map { $0.map(\.bitPattern) })
    }

    func testASaturatedMetricIsTieBrokenByTheValidationLoss() throws {
        let task = try TinyTask(seed: 4)
        let best = try BestWeights(monitor: "val.accuracy", mode: .max)
        let stop = try EarlyStopping(monitor: "val.accuracy", mode: .max, patience: 1)
        var epoch = 0
        let accuracy = [0.9, 1.0, 1.0, 1.0, 1.0], loss = [0.5, 0.3, 0.2, 0.25, 0.22]
        let summary = try task.trainer(TrainerOptions(epochs: 5, batchSize: 5, seed: 2), callbacks: [best, stop])
            .fit(sampleCount: 10, step: task.loss, validate: {
                epoch += 1
                return ["val.accuracy": accuracy[epoch - 1], "val.loss": loss[epoch - 1]]
            })
        // Epoch 3 ties epoch 2's accuracy with a lower loss; epochs 4 and 5 do not beat it, and
        // patience 1 ends training after epoch 4.
        XCTAssertEqual(best.restoredEpoch, 3)
        XCTAssertEqual(summary.bestEpoch, 3)
        XCTAssertEqual(summary.history.records.count, 4)
    }

    func testBestWeightsRestoresBuffersToo() throws {
        // A stand-in for BatchNorm's running mean: changed by every step without a gradient.
        let task = try TinyTask(seed: 4)
        let running = try Tensor([0], shape: [1])
        let opt = try SGD(parameters: task.model.parameters, lr: 0.1, momentum: 0.9)
        let best = try BestWeights(monitor: "val.loss", mode: .min)
        var seen: [Int: Float] = [:]
        var epoch = 0
        let trainer = try Trainer(options: TrainerOptions(epochs: 3, batchSize: 5, seed: 2), parameters: task.named,
                                  buffers: [(name: "bn.running_mean", tensor: running)], optimizer: opt, callbacks: [best])
        _ = try trainer.fit(sampleCount: 10, step: { batch in
            running.data[0] += 1
            return try task.loss(batch)
        }, validate: {
            epoch += 1
            seen[epoch] = running.data[0]
            return ["val.loss": [0.5, 0.2, 0.4][epoch - 1]]
        })
        XCTAssertEqual(best.restoredEpoch, 2)
        XCTAssertEqual(running.data[0], seen[2])
        XCTAssertNotEqual(seen[2], seen[3])
    }

    // MARK: - Errors

    func testNonFiniteLossThrows() throws {
        let task = try TinyTask(seed: 1)
        let trainer = try task.trainer(TrainerOptions(epochs: 3, batchSize: 4, seed: 1))
        var calls = 0
        assertThrowsMessage("trainer: the loss is nan at epoch 2, step 2 (global step 5); "
            + "lower the learning rate or set gradClip to clip the gradients") {
            _ = try trainer.fit(sampleCount: 10, step: { batch in
                calls += 1
                let l = try task.loss(batch)
                return calls == 5 ? try mulScalar(l, .nan) : l
            })
        }
    }

    func testInvalidOptionsThrow() throws {
        let task = try TinyTask(seed: 1)
        assertThrowsMessage("trainer: epochs must be >= 1, got 0") { _ = try task.trainer(TrainerOptions(epochs: 0, batchSize: 4, seed: 1)) }
        assertThrowsContaining(["batchSize (16) is larger than the 10 samples with dropLast"]) {
            _ = try task.trainer(TrainerOptions(epochs: 1, batchSize: 16, seed: 1, dropLast: true)).fit(sampleCount: 10, step: task.loss)
        }
        assertThrowsContaining(["sampleCount must be >= 1"]) {
            _ = try task.trainer(TrainerOptions(epochs: 1, batchSize: 4, seed: 1)).fit(sampleCount: 0, step: task.loss)
        }
    }

    // MARK: - History and progress

    func testHistoryCSVAndCodable() throws {
        let history = History(records: [
            EpochRecord(epoch: 1, trainLoss: 0.69314718, learningRate: 1e-3, seconds: 1.25,
                        metrics: ["val.loss": 0.6875, "val.accuracy": 0.5]),
            EpochRecord(epoch: 2, trainLoss: 0.4123456789, learningRate: 2.5e-5, seconds: 12.0,
                        metrics: ["val.loss": 0.399, "val.roc_auc": .nan]),
        ])
        XCTAssertEqual(history.csv(), """
            epoch,step,train_loss,lr,seconds,val.accuracy,val.loss,val.roc_auc
            1,,0.693147,0.001,1.25,0.5,0.6875,
            2,,0.412346,2.5e-05,12,,0.399,nan

            """)
        let data = try JSONEncoder().encode(history)
        let back = try JSONDecoder().decode(History.self, from: data)
        XCTAssertEqual(back.records[0], history.records[0])
        XCTAssert(back.records[1].metrics["val.roc_auc"]?.isNaN ?? false)
        XCTAssertEqual(history.best("val.loss", mode: .min)?.epoch, 2)
    }

    func testProgressReporterPlainLines() throws {
        var text = ""
        let reporter = ProgressReporter(interactive: false, output: { text += $0 })
        let ctx = FakeContext()
        let record = EpochRecord(epoch: 3, trainLoss: 0.41234, learningRate: 1e-3, seconds: 1.23,
                                 metrics: ["val.accuracy": 0.913, "val.loss": 0.399])
        for event: TrainerEvent in [.trainBegin(totalSteps: 200), .epochBegin(epoch: 3),
                                    .step(StepRecord(epoch: 3, step: 1, globalStep: 21, loss: 0.5, lr: 1e-3)),
                                    .validation(ValidationRecord(epoch: 3, step: 30, epochProgress: 3, trainLoss: 0.41234, learningRate: 1e-3,
                                                                 seconds: 1.23, metrics: record.metrics)),
                                    .epochEnd(record)] {
            XCTAssertEqual(try reporter.on(event, trainer: ctx), .proceed)
        }
        let summary = TrainingSummary(history: History(records: [record]), bestEpoch: 3, bestValue: 0.399, monitor: "val.loss",
                                      stoppedEarly: "early stopping: val.loss did not improve for 2 epoch(s)", steps: 30, seconds: 4)
        _ = try reporter.on(.trainEnd(summary), trainer: ctx)
        XCTAssertEqual(text, """
            epoch 3/20  train_loss 0.4123  val.loss 0.3990  val.accuracy 0.9130  1.2s
            stopped after epoch 1: early stopping: val.loss did not improve for 2 epoch(s)
            best epoch 3: val.loss 0.3990

            """)
    }

    func testProgressReporterInteractiveRedraws() throws {
        var text = ""
        let reporter = ProgressReporter(interactive: true, output: { text += $0 })
        let ctx = FakeContext()
        _ = try reporter.on(.trainBegin(totalSteps: 200), trainer: ctx)
        _ = try reporter.on(.epochBegin(epoch: 1), trainer: ctx)
        _ = try reporter.on(.step(StepRecord(epoch: 1, step: 5, globalStep: 5, loss: 0.25, lr: 1e-3)), trainer: ctx)
        XCTAssert(text.hasPrefix("\repoch 1/20 [==========          ] 5/10  loss 0.2500  ETA "), text)
        _ = try reporter.on(.epochEnd(EpochRecord(epoch: 1, trainLoss: 0.25, learningRate: 1e-3, seconds: 0.5)), trainer: ctx)
        XCTAssert(text.contains("\repoch 1/20  train_loss 0.2500  0.5s"), text)
        XCTAssert(text.hasSuffix("\n"))
    }
}
