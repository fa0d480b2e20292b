import Cache
import Foundation
import XCTest
@testable import Registry

/// `rm`, `gc`, `best`, `compare`, `diff`.
final class RegistryMaintenanceTests: RegistryTestCase {
    private var store: ContentStore!

    override func setUpWithError() throws {
        try super.setUpWithError()
        store = ContentStore(root: temporary.appendingPathComponent("cache"))
    }

    private func putEntry(_ name: String, bytes: Int = 1000) throws -> String {
        let k = key(name)
        try store.put(key: k, stage: "fit", description: name, components: ["name": .string(name)]) { dir in
            try Data(repeating: 7, count: bytes).write(to: dir.appendingPathComponent("data.bin"))
        }
        return k
    }

    private func storedKeys() throws -> Set<String> { Set(try store.list().map(\.key)) }

    func testRemoveFreesOnlyEntriesNoOtherRunUses() throws {
        let shared = try putEntry("shared"), onlyA = try putEntry("onlyA", bytes: 5000), onlyB = try putEntry("onlyB")
        let registry = try makeRegistry()
        let a = try recordRun(registry, "a", stages: ["fit": shared, "train": onlyA])
        let b = try recordRun(registry, "b", stages: ["fit": shared, "train": onlyB])

        let dry = try registry.remove(ids: [a], store: store, dryRun: true)
        XCTAssertEqual(dry.cacheKeysRemoved, [onlyA])
        XCTAssertEqual(dry.cacheKeysShared, 1)
        XCTAssertTrue(dry.runs[0].folderRemoved)
        XCTAssertGreaterThan(dry.cacheBytesFreed, 5000)
        XCTAssertEqual(try storedKeys(), [shared, onlyA, onlyB], "a dry run changes nothing")
        XCTAssertEqual(try registry.list().count, 2)
        XCTAssertTrue(FileManager.default.fileExists(atPath: temporary.appendingPathComponent("runs/a/lock.json").path))

        let report = try registry.remove(ids: [a], store: store)
        XCTAssertEqual(report, RemovalReport(dryRun: false, runs: report.runs, cacheKeysRemoved: [onlyA],
                                             cacheBytesFreed: dry.cacheBytesFreed, cacheKeysShared: 1))
        XCTAssertEqual(report.folderBytesFreed, dry.folderBytesFreed)
        XCTAssertGreaterThan(report.folderBytesFreed, 0)
        XCTAssertEqual(try storedKeys(), [shared, onlyB])
        XCTAssertFalse(FileManager.default.fileExists(atPath: temporary.appendingPathComponent("runs/a").path))
        XCTAssertEqual(try registry.list().map(\.id), [b])

        // The last user of `shared` goes: now it is freed too; --keep-files keeps the folder.
        let last = try registry.remove(ids: [b], store: store, keepFiles: true)
        XCTAssertEqual(Set(last.cacheKeysRemoved), [shared, onlyB])
        XCTAssertFalse(last.runs[0].folderRemoved)
        XCTAssertTrue(FileManager.default.fileExists(atPath: temporary.appendingPathComponent("runs/b/lock.json").path))
        XCTAssertEqual(try storedKeys(), [])
        XCTAssertTrue(try registry.isEmpty())
    }

    func testRemoveRefusesRunningRunsAndNeverDeletesNonRuns() throws {
        let registry = try makeRegistry()
        let running = try registry.begin(newRun(temporary.appendingPathComponent("runs/live")))
        assertRegistryError(try registry.remove(ids: [running], store: store)) {
            if case .refused(let message, _) = $0 { return message.contains("still running") }
            return false
        }
        XCTAssertNoThrow(try registry.remove(ids: [running], store: store, force: true))

        let id = try recordRun(registry, "c")
        let folder = temporary.appendingPathComponent("runs/c")
        try FileManager.default.removeItem(at: folder.appendingPathComponent("lock.json"))
        try Data("mine".utf8).write(to: folder.appendingPathComponent("notes.txt"))
        let report = try registry.remove(ids: [id], store: store)
        XCTAssertFalse(report.runs[0].folderRemoved)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.appendingPathComponent("notes.txt").path))
    }

    func testGarbageCollectionDropsMissingRunsAndTheirOwnEntries() throws {
        let shared = try putEntry("shared"), kept = try putEntry("kept"), orphan = try putEntry("orphan")
        let registry = try makeRegistry()
        let alive = try recordRun(registry, "alive", stages: ["fit": shared, "train": kept])
        let gone = try recordRun(registry, "gone", stages: ["fit": shared, "train": orphan])
        try FileManager.default.removeItem(at: temporary.appendingPathComponent("runs/gone"))

        let dry = try registry.collectGarbage(store: store, dryRun: true)
        XCTAssertEqual(dry.runs.map(\.id), [gone])
        XCTAssertEqual(dry.cacheKeysRemoved, [orphan])
        XCTAssertEqual(try storedKeys(), [shared, kept, orphan])

        let report = try registry.collectGarbage(store: store)
        XCTAssertEqual(report.runs.map(\.id), [gone])
        XCTAssertEqual(report.runs[0].note, "already gone")
        XCTAssertEqual(report.cacheKeysRemoved, [orphan])
        XCTAssertEqual(report.cacheKeysShared, 1)
        XCTAssertEqual(try storedKeys(), [shared, kept])
        XCTAssertEqual(try registry.list().map(\.id), [alive])
        XCTAssertEqual(try registry.collectGarbage(store: store).runs, [])
    }

    func testBestPicksByModeAndSkipsUnfinishedTrials() throws {
        let registry = try makeRegistry()
        try recordRun(registry, "t0", sweep: "sw", trial: 0, validation: ["accuracy": 0.70, "loss": 0.50])
        try recordRun(registry, "t1", sweep: "sw", trial: 1, validation: ["accuracy": 0.90, "loss": 0.60])
        try recordRun(registry, "t2", stoppedEarly: true, sweep: "sw", trial: 2, validation: ["accuracy": 0.80, "loss": 0.40])
        try recordRun(registry, "t3", sweep: "sw", trial: 3, validation: ["accuracy": "nan", "loss": "nan"])
        let failed = try registry.begin(newRun(temporary.appendingPathComponent("runs/t4"), sweep: "sw", trial: 4))
        try registry.fail(id: failed, message: "diverged")
        try recordRun(registry, "other", sweep: "other", trial: 0, validation: ["accuracy": 0.99, "loss": 0.01])

        let byAccuracy = try registry.best(sweep: "sw", metric: "val.accuracy")
        XCTAssertEqual(byAccuracy.mode, .max)
        XCTAssertEqual(byAccuracy.run.trialIndex, 1)
        XCTAssertEqual(byAccuracy.value, 0.90)

        let byLoss = try registry.best(sweep: "sw", metric: "loss")
        XCTAssertEqual(byLoss.mode, .min)
        XCTAssertEqual(byLoss.run.trialIndex, 2, "a stopped trial counts")
        XCTAssertEqual(byLoss.run.status, .stopped)

        XCTAssertEqual(try registry.best(sweep: "sw", metric: "accuracy", mode: .min).run.trialIndex, 0)
        XCTAssertEqual(try registry.best(sweep: "sw", metric: "val.loss", mode: .max).run.trialIndex, 1)
        assertRegistryError(try registry.best(sweep: "sw", metric: "val.f1")) {
            if case .noMetric(_, _, let available) = $0 { return available.contains("val.accuracy") }
            return false
        }
        assertRegistryError(try registry.best(sweep: "nope", metric: "val.f1")) {
            if case .noSuchSweep = $0 { return true }; return false
        }
    }

    func testDefaultModes() {
        for name in ["loss", "val.loss", "log_loss", "rmse", "test.mae", "mse", "hamming_loss", "mean_absolute_error"] {
            XCTAssertEqual(MetricMode.default(for: name), .min, name)
        }
        for name in ["accuracy", "val.roc_auc", "f1_macro", "r2", "test.precision_macro"] {
            XCTAssertEqual(MetricMode.default(for: name), .max, name)
        }
    }

    func testCompareMarksBestAndShowsDifferingParameters() throws {
        let registry = try makeRegistry()
        let a = try registry.begin(NewRun(pipeline: "/p.yaml", name: "p", runDirectory: try makeRunFolder("a").path,
                                          overrides: ["trainer.optimizer.lr=0.01", "trainer.epochs=3"], threads: 2, seed: 7))
        try registry.finish(id: a, runDirectory: temporary.appendingPathComponent("runs/a"))
        let folderB = try makeRunFolder("b", validation: ["accuracy": 0.9, "loss": 0.7])
        let b = try registry.begin(NewRun(pipeline: "/p.yaml", name: "p", runDirectory: folderB.path,
                                          overrides: ["trainer.optimizer.lr=0.001", "trainer.epochs=3"], threads: 2, seed: 7))
        try registry.finish(id: b, runDirectory: folderB)

        let comparison = RunComparison(try registry.runs([String(a), String(b)]))
        XCTAssertEqual(comparison.parameters.map(\.key), ["trainer.optimizer.lr"])
        XCTAssertEqual(comparison.parameters[0].values, ["0.01", "0.001"])
        let accuracy = try XCTUnwrap(comparison.metrics.first { $0.split == "validation" && $0.name == "accuracy" })
        XCTAssertEqual(accuracy.best, [1])
        let loss = try XCTUnwrap(comparison.metrics.first { $0.split == "validation" && $0.name == "loss" })
        XCTAssertEqual(loss.best, [0])
        let test = try XCTUnwrap(comparison.metrics.first { $0.split == "test" })
        XCTAssertEqual(test.best, [0, 1], "ties mark both")
        XCTAssertEqual(comparison.metrics.first?.split, "validation")
    }

    func testDiffShowsPipelineDataSeedAndMetrics() throws {
        let registry = try makeRegistry()
        let folderA = try makeRunFolder("a", seed: 7, lr: "0.003")
        let folderB = try makeRunFolder("b", validation: ["accuracy": 0.9, "loss": 0.64], seed: 8, lr: "0.01",
                                        trainSHA: key("other train.csv"))
        let a = try registry.begin(newRun(folderA)); try registry.finish(id: a, runDirectory: folderA)
        let b = try registry.begin(newRun(folderB)); try registry.finish(id: b, runDirectory: folderB)
        let diff = RunDiff(try registry.run(String(a)), try registry.run(String(b)))
        func section(_ name: String) -> [String] {
            diff.sections.first { $0.name == name }?.changes.map(\.path) ?? []
        }
        XCTAssertEqual(section("pipeline"), ["seed", "trainer.optimizer.lr"])
        XCTAssertEqual(section("data"), ["train.sha256"])
        XCTAssertEqual(section("run"), ["seed"])
        XCTAssertEqual(section("stages"), ["train"])
        XCTAssertEqual(section("metrics"), ["validation.accuracy"])
        XCTAssertTrue(RunDiff(try registry.run(String(a)), try registry.run(String(a))).isEmpty)
    }
}
