import Cache
import Foundation
import GRDB
import XCTest
@testable import Registry

final class RegistryRecordingTests: RegistryTestCase {
    func testMigratesAFreshFileAndReopens() throws {
        _ = try makeRegistry()
        XCTAssertTrue(FileManager.default.fileExists(atPath: registryURL.path))
        let db = try DatabaseQueue(path: registryURL.path)
        try db.read { db in
            XCTAssertEqual(try Int.fetchOne(db, sql: "PRAGMA user_version"), RegistrySchema.version)
            XCTAssertEqual(try Int32.fetchOne(db, sql: "PRAGMA application_id"), RegistrySchema.applicationID)
            XCTAssertEqual(try String.fetchOne(db, sql: "PRAGMA journal_mode"), "wal")
            for table in RegistrySchema.tables { XCTAssertTrue(try db.tableExists(table), table) }
        }
        // Opening again migrates nothing and keeps the data.
        let registry = try makeRegistry()
        XCTAssertTrue(try registry.isEmpty())
        try recordRun(registry, "a")
        XCTAssertFalse(try makeRegistry().isEmpty())
    }

    func testDefaultURL() {
        let root = URL(fileURLWithPath: "/tmp/cache")
        XCTAssertEqual(RunRegistry.defaultURL(cacheRoot: root, environment: [:]).path, "/tmp/cache/registry.sqlite")
        XCTAssertEqual(RunRegistry.defaultURL(cacheRoot: root, environment: ["RUNPIPE_REGISTRY": "/x/r.sqlite"]).path, "/x/r.sqlite")
        XCTAssertEqual(RunRegistry.defaultURL(cacheRoot: root, environment: ["RUNPIPE_REGISTRY": ""]).path, "/tmp/cache/registry.sqlite")
    }

    func testOpenExistingCreatesNothing() throws {
        XCTAssertNil(try RunRegistry.openExisting(url: registryURL))
        XCTAssertFalse(FileManager.default.fileExists(atPath: registryURL.path))
    }

    func testBeginFinishRoundTrip() throws {
        let registry = try makeRegistry()
        let folder = try makeRunFolder("penguins-20261130-045135", validation: ["accuracy": 0.8, "loss": 0.64, "f1_macro": "nan"])
        let id = try registry.begin(newRun(folder, parameters: ["trainer.optimizer.lr": "0.003"]))
        var run = try registry.run(String(id))
        XCTAssertEqual(run.status, .running)
        XCTAssertNil(run.ended)
        XCTAssertEqual(run.parameters, ["trainer.optimizer.lr": "0.003"])
        XCTAssertEqual(run.overrides, ["trainer.epochs=3"])

        try registry.finish(id: id, runDirectory: folder)
        run = try registry.run("penguins-20261130-045135")
        XCTAssertEqual(run.id, id)
        XCTAssertEqual(run.status, .finished)
        XCTAssertEqual(run.runDirectory, folder.standardizedFileURL.path)
        XCTAssertEqual(run.pipelineSHA256, key("pipeline"))
        XCTAssertEqual(run.seed, 7)
        XCTAssertEqual(run.threads, 2)
        XCTAssertEqual(run.runpipeVersion, "0.1.0")
        XCTAssertEqual(run.metric, "accuracy")
        XCTAssertEqual(run.metrics["validation"]?["accuracy"], 0.8)
        XCTAssertEqual(run.metrics["validation"]?["f1_macro"], .some(nil), "NaN is stored as NULL")
        XCTAssertEqual(run.metrics["test"]?["accuracy"], 0.79)
        XCTAssertEqual(run.stages, ["fit": key("fit"), "train": key("train-penguins-20261130-045135")])
        XCTAssertEqual(run.history.columns, ["epoch", "step", "train_loss", "lr", "seconds", "val.accuracy", "val.loss"])
        XCTAssertEqual(run.history.rows.count, 3)
        XCTAssertEqual(run.history.column("val.accuracy"), [0.8, nil, 0.8])
        XCTAssertEqual(run.history.column("step"), [7, 14, 21])
        XCTAssertNotNil(run.ended)
        XCTAssertGreaterThanOrEqual(run.seconds ?? -1, 0)
        XCTAssertTrue(run.resolvedYAML?.contains("metric: accuracy") ?? false)
        XCTAssertTrue(run.lockJSON?.contains("pipeline_sha256") ?? false)
        XCTAssertEqual(run.metricValue("val.accuracy"), .some(0.8))
        XCTAssertEqual(run.metricValue("test.accuracy"), .some(0.79))
        if case .some = run.metricValue("val.nothing") { XCTFail("val.nothing is not a metric") }

        // By path, relative spellings included.
        XCTAssertEqual(try registry.run(folder.path + "/").id, id)
        XCTAssertEqual(try registry.run(folder.appendingPathComponent("../penguins-20261130-045135").path).id, id)
    }

    func testFailRecordsTheMessage() throws {
        let registry = try makeRegistry()
        let id = try registry.begin(newRun(temporary.appendingPathComponent("runs/never")))
        try registry.fail(id: id, message: "data/train.csv: no such file")
        let run = try registry.run(String(id))
        XCTAssertEqual(run.status, .failed)
        XCTAssertEqual(run.errorMessage, "data/train.csv: no such file")
        XCTAssertNotNil(run.seconds)
        // A failed run has no folder: it is not reported missing.
        XCTAssertEqual(try registry.list().map(\.status), [.failed])
    }

    func testFinishWithoutLockLeavesTheRunRunning() throws {
        let registry = try makeRegistry()
        let folder = try makeRunFolder("broken")
        try FileManager.default.removeItem(at: folder.appendingPathComponent("lock.json"))
        let id = try registry.begin(newRun(folder))
        assertRegistryError(try registry.finish(id: id, runDirectory: folder)) {
            if case .unreadableRun(_, let detail) = $0 { return detail.contains("lock.json") }
            return false
        }
        XCTAssertEqual(try registry.run(String(id)).status, .running)
    }

    func testUnknownReferenceListsNearMatches() throws {
        let registry = try makeRegistry()
        try recordRun(registry, "penguins-20261130-045135")
        try recordRun(registry, "iris-20261130-050000")
        assertRegistryError(try registry.run("penguins-20261130-045153")) {
            if case .noSuchRun(_, let near) = $0 { return near == ["penguins-20261130-045135"] }
            return false
        }
        assertRegistryError(try registry.run("99")) { if case .noSuchRun = $0 { return true }; return false }
        XCTAssertTrue(RegistryError.noSuchRun(reference: "x", nearMatches: ["y"]).description.contains("did you mean `y`"))
    }

    func testTrialFolderNamesAreNotIDs() throws {
        let registry = try makeRegistry()
        let first = try recordRun(registry, "000", sweep: "s", trial: 0)
        let second = try recordRun(registry, "001", sweep: "s", trial: 1)
        let third = try recordRun(registry, "1", sweep: "t", trial: 0)   // a folder named like an id
        XCTAssertEqual(try registry.run("001").id, second, "a zero-padded reference is a folder name")
        XCTAssertEqual(try registry.run("000").id, first)
        XCTAssertEqual(try registry.run(String(second)).id, second)
        assertRegistryError(try registry.run("1")) {
            guard case .ambiguousRun(_, let matches) = $0 else { return false }
            return matches.count == 2 && matches[0].hasPrefix("1 ") && matches[1].hasPrefix("\(third) ")
        }
        // Trial folders of two sweeps share names: ambiguous, and the paths tell them apart.
        let sweepB = temporary.appendingPathComponent("other/000")
        try FileManager.default.createDirectory(at: sweepB.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: temporary.appendingPathComponent("runs/000"), to: sweepB)
        let id = try registry.begin(newRun(sweepB, sweep: "u", trial: 0))
        try registry.finish(id: id, runDirectory: sweepB)
        assertRegistryError(try registry.run("000")) { if case .ambiguousRun = $0 { return true }; return false }
        XCTAssertEqual(try registry.run(sweepB.path).id, id)
    }

    func testListFiltersAndOrder() throws {
        let registry = try makeRegistry()
        let a = try recordRun(registry, "a")
        let b = try recordRun(registry, "b", sweep: "s1", trial: 0)
        let c = try registry.begin(newRun(temporary.appendingPathComponent("runs/c"), sweep: "s1", trial: 1))
        XCTAssertEqual(try registry.list().map(\.id), [c, b, a])
        XCTAssertEqual(try registry.list(RunQuery(sweepID: "s1")).map(\.id), [c, b])
        XCTAssertEqual(try registry.list(RunQuery(status: .running)).map(\.id), [c])
        XCTAssertEqual(try registry.list(RunQuery(limit: 1)).map(\.id), [c])
        XCTAssertEqual(try registry.list(RunQuery(pipeline: temporary.appendingPathComponent("penguins.yaml").path)).count, 3)
        XCTAssertEqual(try registry.list(RunQuery(pipeline: "/elsewhere.yaml")).count, 0)
        XCTAssertEqual(try registry.runs(sweep: "s1").map(\.trialIndex), [0, 1])
        assertRegistryError(try registry.runs(sweep: "nope")) { if case .noSuchSweep = $0 { return true }; return false }
    }

    func testSweepRecordIsCreatedThenUpdated() throws {
        let registry = try makeRegistry()
        let created = Date(timeIntervalSince1970: 1_800_000_000)
        var sweep = SweepRecord(id: "penguins-lr", name: "penguins", pipeline: "/p/penguins.yaml", directory: "/p/sweeps/lr",
                                method: "grid", monitor: "val.accuracy", mode: "max", trials: 4, status: "running", created: created)
        try registry.recordSweep(sweep)
        sweep.status = "finished"
        sweep.created = Date()
        try registry.recordSweep(sweep)
        let stored = try XCTUnwrap(registry.sweep("penguins-lr"))
        XCTAssertEqual(stored.status, "finished")
        XCTAssertEqual(stored.created.timeIntervalSince1970, created.timeIntervalSince1970, accuracy: 0.01)
        XCTAssertEqual(try registry.sweeps().count, 1)
        XCTAssertEqual(try registry.runs(sweep: "penguins-lr"), [])
    }

    func testMissingFolderIsDetectedPersistedAndRestored() throws {
        let registry = try makeRegistry()
        let id = try recordRun(registry, "gone")
        let stopped = try recordRun(registry, "pruned", stoppedEarly: true)
        let folder = temporary.appendingPathComponent("runs/gone")
        let aside = temporary.appendingPathComponent("aside")
        try FileManager.default.moveItem(at: folder, to: aside)
        try FileManager.default.removeItem(at: temporary.appendingPathComponent("runs/pruned/lock.json"))

        XCTAssertEqual(try registry.run(String(id)).status, .missing)
        XCTAssertEqual(try registry.run(String(stopped)).status, .missing)
        let persisted = try DatabaseQueue(path: registryURL.path).read { db in
            try String.fetchAll(db, sql: "SELECT status FROM run ORDER BY id")
        }
        XCTAssertEqual(persisted, ["missing", "missing"])

        try FileManager.default.moveItem(at: aside, to: folder)
        XCTAssertEqual(try registry.run(String(id)).status, .finished)
    }
}

final class RegistryGitTests: RegistryTestCase {
    func testGitCommitIsCapturedAndDirtyFlagged() throws {
        let repo = temporary.appendingPathComponent("repo")
        try FileManager.default.createDirectory(at: repo, withIntermediateDirectories: true)
        guard git(["init", "-q"], in: repo) == 0 else { throw XCTSkip("git is not available") }
        let pipeline = repo.appendingPathComponent("penguins.yaml")
        try Data("name: penguins\n".utf8).write(to: pipeline)
        XCTAssertEqual(git(["add", "penguins.yaml"], in: repo), 0)
        XCTAssertEqual(git(["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "first"], in: repo), 0)
        let head = try XCTUnwrap(gitOutput(["rev-parse", "HEAD"], in: repo))

        let registry = try makeRegistry()
        let folder = try makeRunFolder("git-run")
        let clean = try registry.run(String(registry.begin(newRun(folder, pipeline: pipeline.path))))
        XCTAssertEqual(clean.git, GitState(commit: head, dirty: false))

        try Data("name: penguins\nseed: 1\n".utf8).write(to: pipeline)
        let dirty = try registry.run(String(registry.begin(newRun(folder, pipeline: pipeline.path))))
        XCTAssertEqual(dirty.git, GitState(commit: head, dirty: true))

        // Outside a repository: nil, no error.
        XCTAssertNil(GitState.probe(file: "/penguins.yaml"))
    }

    private func git(_ arguments: [String], in directory: URL) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git", "-C", directory.path] + arguments
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    private func gitOutput(_ arguments: [String], in directory: URL) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["git", "-C", directory.path] + arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        guard (try? p.run()) != nil else { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
