import Foundation
import GRDB
import XCTest
@testable import Registry

/// Bad registry files: typed errors, and the file's bytes exactly as they were.
final class RegistryFileTests: RegistryTestCase {
    private func prepareDirectory() throws {
        try FileManager.default.createDirectory(at: registryURL.deletingLastPathComponent(), withIntermediateDirectories: true)
    }

    func testGarbageFileIsReportedAndKept() throws {
        try prepareDirectory()
        var bytes = Data("this is not a database, it is a shopping list\n".utf8)
        bytes.append(Data((0..<4000).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }))
        try bytes.write(to: registryURL)
        assertRegistryError(try makeRegistry()) {
            guard case .damaged(let path, _) = $0 else { return false }
            return path == self.registryURL.path
                && $0.description.contains("move it aside") && $0.description.contains("runs folders are untouched")
        }
        XCTAssertEqual(try Data(contentsOf: registryURL), bytes)
        XCTAssertFalse(FileManager.default.fileExists(atPath: registryURL.path + "-wal"))
    }

    func testDamagedPagesAreReportedAndKept() throws {
        let registry = try makeRegistry()
        try recordRun(registry, "a")
        try DatabaseQueue(path: registryURL.path).writeWithoutTransaction { db in
            _ = try db.checkpoint(.truncate)
        }
        // Keep the SQLite header, trash every page after the first.
        var bytes = try Data(contentsOf: registryURL)
        let pageSize = 4096
        XCTAssertGreaterThan(bytes.count, pageSize)
        for i in pageSize..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: i &* 37) }
        try? FileManager.default.removeItem(atPath: registryURL.path + "-wal")
        try? FileManager.default.removeItem(atPath: registryURL.path + "-shm")
        try bytes.write(to: registryURL)
        do {
            let reopened = try makeRegistry()
            _ = try reopened.list()
            XCTFail("a damaged registry opened")
        } catch let error as RegistryError {
            guard case .damaged = error else { return XCTFail("unexpected \(error)") }
        }
        XCTAssertEqual(try Data(contentsOf: registryURL), bytes)
    }

    func testAnotherProgramsDatabaseIsRefused() throws {
        try prepareDirectory()
        try DatabaseQueue(path: registryURL.path).write { db in
            try db.execute(sql: "CREATE TABLE photos (id INTEGER PRIMARY KEY, path TEXT); INSERT INTO photos (path) VALUES ('a.jpg')")
        }
        let before = try Data(contentsOf: registryURL)
        assertRegistryError(try makeRegistry()) { if case .notARegistry = $0 { return true }; return false }
        XCTAssertEqual(try Data(contentsOf: registryURL), before)
    }

    func testNewerSchemaVersionIsRefusedWithoutWriting() throws {
        let registry = try makeRegistry()
        try recordRun(registry, "a")
        try DatabaseQueue(path: registryURL.path).writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA user_version = 7")
            _ = try db.checkpoint(.truncate)
        }
        let before = try Data(contentsOf: registryURL)
        assertRegistryError(try makeRegistry()) {
            guard case .newerVersion(_, let found, let known) = $0 else { return false }
            return found == 7 && known == RegistrySchema.version
                && $0.description.contains("version 7") && $0.description.contains("upgrade runpipe")
        }
        XCTAssertEqual(try Data(contentsOf: registryURL), before)
    }

    func testUnknownMigrationIsANewerVersion() throws {
        _ = try makeRegistry()
        try DatabaseQueue(path: registryURL.path).write { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v2: from the future')")
        }
        assertRegistryError(try makeRegistry()) { if case .newerVersion = $0 { return true }; return false }
    }

    func testLockedBeyondTheTimeoutIsReported() throws {
        let registry = try makeRegistry()
        try recordRun(registry, "a")
        var configuration = Configuration()
        configuration.journalMode = .wal
        let holder = try DatabaseQueue(path: registryURL.path, configuration: configuration)
        let before = try Data(contentsOf: registryURL)
        try holder.writeWithoutTransaction { db in
            try db.execute(sql: "BEGIN EXCLUSIVE TRANSACTION")
            try db.execute(sql: "UPDATE run SET name = name")
            defer { try? db.execute(sql: "ROLLBACK") }

            let other = try makeRegistry(busyTimeout: 0.3)
            let started = Date()
            assertRegistryError(try other.begin(newRun(temporary.appendingPathComponent("runs/b")))) {
                guard case .locked = $0 else { return false }
                return $0.description.contains("another runpipe holds the run registry")
            }
            XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.25, "waited for the busy timeout")
        }
        XCTAssertEqual(try Data(contentsOf: registryURL), before)
        // Once released, writing works again.
        XCTAssertNoThrow(try makeRegistry(busyTimeout: 0.3).begin(newRun(temporary.appendingPathComponent("runs/b"))))
    }

    func testEmptyFileBecomesARegistry() throws {
        try prepareDirectory()
        try Data().write(to: registryURL)
        XCTAssertTrue(try makeRegistry().isEmpty())
    }
}
