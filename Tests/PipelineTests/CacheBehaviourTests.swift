import Cache
import Foundation
import XCTest
@testable import Pipeline

final class CacheBehaviourTests: XCTestCase {
    func testDamagedEntryIsReportedRemovedAndRecomputed() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 80))
        try p.write("pipeline.yaml", pipelineYAML(test: false))
        let (first, _) = try p.train(run: "a")
        let compiled = try p.session().compile(threads: 2)
        guard let fitKey = compiled.graph.node("fit")?.key else { return XCTFail("no fit stage") }
        let store = ContentStore(root: p.cacheDir)
        guard let entry = try store.entry(for: fitKey) else { return XCTFail("fit not cached") }
        // Damage the processors file the way a disk or a careless hand would.
        let file = entry.file(named: "processors.json")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: file.path)
        try Data("{".utf8).write(to: file)

        let report = try store.verify()
        XCTAssertEqual(report.removed.map(\.key), [fitKey])

        let (second, _) = try p.train(run: "b")
        XCTAssertEqual(second.stageStatus.first { $0.stage == "fit" }?.cached, false)
        XCTAssertEqual(first.metrics, second.metrics)
    }

    func testTwoRunsSharingACacheComputeEachStageOnce() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 100))
        try p.write("pipeline.yaml", pipelineYAML(test: false))
        let group = DispatchGroup()
        let results = LockedResults()
        for run in ["x", "y"] {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do {
                    let (r, _) = try p.train(run: run)
                    results.add(r)
                } catch {
                    results.fail(error)
                }
            }
        }
        group.wait()
        XCTAssertEqual(results.errors.count, 0, "\(results.errors)")
        XCTAssertEqual(results.values.count, 2)
        let trainedTwice = results.values.filter { r in r.stageStatus.contains { $0.stage == "train" && !$0.cached } }
        XCTAssertEqual(trainedTwice.count, 1, "exactly one process trains; the other waits and reuses")
        XCTAssertEqual(results.values[0].metrics, results.values[1].metrics)
    }

    func testCachedRerunDoesNotReadTheDataAgain() throws {
        let p = try Project()
        try p.write("train.csv", syntheticCSV(rows: 80))
        try p.write("pipeline.yaml", pipelineYAML(test: false))
        try p.train(run: "a")
        let (again, log) = try p.train(run: "b")
        XCTAssertTrue(again.stageStatus.allSatisfy(\.cached))
        XCTAssertFalse(log.contains { $0.contains("ran") }, "\(log)")
    }
}

final class LockedResults: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [TrainResult] = []
    private(set) var errors: [Error] = []
    func add(_ r: TrainResult) { lock.lock(); values.append(r); lock.unlock() }
    func fail(_ e: Error) { lock.lock(); errors.append(e); lock.unlock() }
}
