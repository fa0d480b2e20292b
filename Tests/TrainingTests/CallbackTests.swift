import Foundation
import Layers
import TensorEngine
import Training
import XCTest

/// Copies the weights at every validation, by global step.
final class WeightsAtValidation: TrainerCallback {
    var byStep: [Int: [[Float]]] = [:]
    var checkpoints: [CheckpointRecord] = []
    func on(_ event: TrainerEvent, trainer: any TrainerContext) throws -> TrainerDecision {
        if case .validation(let r) = event { byStep[r.step] = trainer.state.map { $0.tensor.toArray() } }
        if case .checkpoint(let c) = event { checkpoints.append(c) }
        return .proceed
    }
}

/// Reads a file every time a validation event arrives.
final class FileWatcher: TrainerCallback {
    let url: URL
    var contents: [String] = []
    init(_ url: URL) { self.url = url }
    func on(_ event: TrainerEvent, trainer: any TrainerContext) throws -> TrainerDecision {
        if case .validation = event { contents.append((try? String(contentsOf: url, encoding: .utf8)) ?? "<missing>") }
        return .proceed
    }
}

func mean(of weights: [[[Float]]]) -> [[Float]] {
    weights[0].indices.map { t in
        weights[0][t].indices.map { i in Float(weights.reduce(0.0) { $0 + Double($1[t][i]) } * (1 / Double(weights.count))) }
    }
}

final class CallbackTests: XCTestCase {
    let values = [0.5, 0.3, 0.4, 0.2, 0.6]

    /// Five validations at steps 2, 4, 6, 8, 10 with `values`.
    func topK(_ averaging: CheckpointAveraging, evaluate: (() throws -> Double)? = nil) throws
        -> (TopKCheckpoints, WeightsAtValidation, TinyTask, TrainingSummary) {
        let task = try TinyTask(seed: 6)
        let watch = WeightsAtValidation()
        let top = try TopKCheckpoints(monitor: "val.loss", mode: .min, k: 3, averaging: averaging, evaluate: evaluate)
        let summary = try task.trainer(TrainerOptions(epochs: 5, batchSize: 5, seed: 2), callbacks: [top, watch])
            .fit(sampleCount: 10, step: task.loss, validate: scripted("val.loss", values))
        return (top, watch, task, summary)
    }

    func testTopKKeepsTheBestAndReportsRanks() throws {
        let (top, watch, task, summary) = try topK(.best)
        XCTAssertEqual(top.keptValidations.map(\.step), [8, 4, 6])
        XCTAssertEqual(top.keptValidations.map(\.value), [0.2, 0.3, 0.4])
        XCTAssertEqual(watch.checkpoints.map(\.step), [2, 4, 6, 8])
        XCTAssertEqual(watch.checkpoints.map(\.rank), [1, 1, 2, 1])
        XCTAssertEqual(watch.checkpoints.map(\.source), Array(repeating: "top_k_checkpoints", count: 4))
        XCTAssertEqual(watch.checkpoints[2].epochProgress, 3)
        XCTAssertEqual(top.installedSteps, [8])
        XCTAssertEqual(bits(task.weights), bits(try XCTUnwrap(watch.byStep[8])))
        XCTAssertEqual(summary.bestStep, 8)
        XCTAssertEqual(summary.bestEpoch, 4)
        XCTAssertEqual(summary.bestValue, 0.2)
    }

    func testUniformSoupAveragesTheKeptWeights() throws {
        let (top, watch, task, _) = try topK(.uniformSoup)
        XCTAssertEqual(top.installedSteps, [8, 4, 6])
        let expected = mean(of: [8, 4, 6].map { watch.byStep[$0] ?? [] })
        for (a, b) in zip(task.weights, expected) { assertClose(a, b, atol: 1e-7, rtol: 1e-6) }
    }

    func testGreedySoupAddsAnIngredientOnlyWhenTheScoreIsNotWorse() throws {
        var calls = 0
        let scores = [0.25, 0.22, 0.23]
        let (top, watch, t, _) = try topK(.greedySoup, evaluate: {
            calls += 1
            return scores[calls - 1]
        })
        XCTAssertEqual(calls, 3)
        XCTAssertEqual(top.installedSteps, [8, 4])
        XCTAssertEqual(top.installedScore, 0.22)
        let w = { (s: Int) in watch.byStep[s] ?? [] }
        for (a, b) in zip(t.weights, mean(of: [w(8), w(4)])) { assertClose(a, b, atol: 1e-7, rtol: 1e-6) }
    }

    func testGreedySoupScoresTheAveragedWeights() throws {
        let task = try TinyTask(seed: 6)
        let watch = WeightsAtValidation()
        var seen: [[[Float]]] = []
        let top = try TopKCheckpoints(monitor: "val.loss", mode: .min, k: 3, averaging: .greedySoup, evaluate: {
            seen.append(task.weights)
            return [0.25, 0.25, 0.3][seen.count - 1]
        })
        _ = try task.trainer(TrainerOptions(epochs: 5, batchSize: 5, seed: 2), callbacks: [top, watch])
            .fit(sampleCount: 10, step: task.loss, validate: scripted("val.loss", values))
        let w = { (s: Int) in watch.byStep[s] ?? [] }
        XCTAssertEqual(seen.count, 3)
        XCTAssertEqual(bits(seen[0]), bits(w(8)))
        for (a, b) in zip(seen[1], mean(of: [w(8), w(4)])) { assertClose(a, b, atol: 1e-7, rtol: 1e-6) }
        for (a, b) in zip(seen[2], mean(of: [w(8), w(4), w(6)])) { assertClose(a, b, atol: 1e-7, rtol: 1e-6) }
        XCTAssertEqual(top.installedSteps, [8, 4], "an equal score is not worse")
    }

    func testTopKErrors() throws {
        assertThrowsContaining(["greedy_soup needs an evaluate closure"]) { _ = try TopKCheckpoints(monitor: "val.loss", mode: .min) }
        assertThrowsMessage("top_k_checkpoints: k must be >= 1 (1 keeps the best weights only), got 0") {
            _ = try TopKCheckpoints(monitor: "val.loss", mode: .min, k: 0, averaging: .best)
        }
        assertThrowsContaining(["top_k_checkpoints: monitor 'val.f1'"]) {
            let task = try TinyTask(seed: 1)
            let top = try TopKCheckpoints(monitor: "val.f1", mode: .max, averaging: .best)
            _ = try task.trainer(TrainerOptions(epochs: 1, batchSize: 5, seed: 1), callbacks: [top])
                .fit(sampleCount: 10, step: task.loss, validate: scripted("val.loss", [1]))
        }
    }

    func testBestWeightsReportsCheckpoints() throws {
        let task = try TinyTask(seed: 6)
        let watch = WeightsAtValidation()
        let best = try BestWeights(monitor: "val.loss", mode: .min)
        _ = try task.trainer(TrainerOptions(epochs: 5, batchSize: 5, seed: 2, validationInterval: 0.5), callbacks: [best, watch])
            .fit(sampleCount: 10, step: task.loss, validate: scripted("val.loss", [0.5, 0.3, 0.4, 0.2, 0.6, 0.7, 0.8, 0.9, 1, 1.1]))
        XCTAssertEqual(watch.checkpoints.map(\.step), [1, 2, 4])
        XCTAssertEqual(watch.checkpoints.map(\.epochProgress), [0.5, 1, 2])
        XCTAssertEqual(best.restoredStep, 4)
        XCTAssertEqual(bits(task.weights), bits(try XCTUnwrap(watch.byStep[4])))
    }

    // MARK: - Loggers

    func tempDir() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("trainer-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    func testLRMonitorRecordsEveryGroupEveryStep() throws {
        let dir = try tempDir()
        let task = try TinyTask(seed: 1)
        let ps = task.named
        let opt = try SGD(groups: [ParameterGroup(name: "decay", parameters: [ps[0].tensor], lr: 0.1),
                                   ParameterGroup(name: "no_decay", parameters: [ps[1].tensor], lr: 0.2)])
        let sched = try Scheduler(optimizer: opt, schedule: LRSchedule.linear(warmupSteps: 2, totalSteps: 4))
        let monitor = LRMonitor(url: dir.appendingPathComponent("lr.csv"))
        let trainer = try Trainer(options: TrainerOptions(epochs: 2, batchSize: 5, seed: 1), parameters: ps, optimizer: opt,
                                  scheduler: sched, callbacks: [monitor])
        _ = try trainer.fit(sampleCount: 10, step: task.loss)
        XCTAssertEqual(monitor.groupNames, ["decay", "no_decay"])
        XCTAssertEqual(monitor.rows.map(\.step), [1, 2, 3, 4])
        XCTAssertEqual(monitor.rows.map(\.learningRates), [[0, 0], [0.05, 0.1], [0.1, 0.2], [0.05, 0.1]])
        XCTAssertEqual(monitor.csv(), "step,decay,no_decay\n1,0,0\n2,0.05,0.1\n3,0.1,0.2\n4,0.05,0.1\n")
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("lr.csv"), encoding: .utf8), monitor.csv())
    }

    func testCSVLoggerRewritesAWholeFileAfterEveryValidation() throws {
        let dir = try tempDir()
        let url = dir.appendingPathComponent("history.csv")
        let task = try TinyTask(seed: 1)
        let watcher = FileWatcher(url)
        var calls = 0
        let clock = ManualClock()
        let opt = try SGD(parameters: task.model.parameters, lr: 0.1)
        let trainer = try Trainer(options: TrainerOptions(epochs: 1, batchSize: 2, seed: 1, validationInterval: 0.4), parameters: task.named,
                                  optimizer: opt, callbacks: [CSVLogger(url: url), watcher], clock: clock)
        _ = try trainer.fit(sampleCount: 10, step: { clock.seconds += 0.5; return try task.loss($0) }, validate: {
            calls += 1
            return calls == 1 ? ["val.loss": 0.5] : ["val.loss": 0.25, "val.accuracy": 0.75]
        })
        XCTAssertEqual(watcher.contents.count, 3)
        let last = try XCTUnwrap(watcher.contents.last).split(separator: "\n").map(String.init)
        XCTAssertEqual(last[0], "epoch,step,train_loss,lr,seconds,val.loss,val.accuracy", "a key seen later is appended")
        XCTAssertEqual(watcher.contents[0].split(separator: "\n").first, "epoch,step,train_loss,lr,seconds,val.loss")
        XCTAssertEqual(last.count, 4)
        XCTAssert(last[1].hasPrefix("0.4,2,"), last[1])
        XCTAssert(last[1].hasSuffix(",0.1,1,0.5,"), last[1])
        XCTAssert(last[3].hasPrefix("1,5,"), last[3])
        XCTAssert(last[3].hasSuffix(",0.25,0.75"), last[3])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path), ["history.csv"], "no temporary file is left")
    }

    func testCSVLoggerWriteFailureIsTyped() throws {
        let task = try TinyTask(seed: 1)
        let url = URL(fileURLWithPath: "/nonexistent-dir-\(UUID().uuidString)/h.csv")
        assertThrowsContaining(["csv_logger: cannot write \(url.path)", "check that its folder exists"]) {
            _ = try task.trainer(TrainerOptions(epochs: 1, batchSize: 5, seed: 1), callbacks: [CSVLogger(url: url)])
                .fit(sampleCount: 10, step: task.loss, validate: scripted("val.loss", [1]))
        }
    }
}
