import Foundation
import XCTest
@testable import Cache
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

final class ContentStoreTests: XCTestCase {
    var root: URL!
    var seen: Collected!
    var store: ContentStore!

    override func setUpWithError() throws {
        root = try makeTemporaryDirectory(self).appendingPathComponent("cache")
        let seen = Collected()
        self.seen = seen
        store = ContentStore(root: root) { seen.append($0) }
    }

    func key(_ name: String) -> String { ContentHash.sha256(name) }

    @discardableResult
    func putSample(_ name: String, created: Date? = nil) throws -> CacheEntry {
        try store.put(key: key(name), stage: "fit", description: "sample \(name)", components: ["name": .string(name)]) { dir in
            try Data("weights of \(name)".utf8).write(to: dir.appendingPathComponent("model.bin"))
            try FileManager.default.createDirectory(at: dir.appendingPathComponent("sub"), withIntermediateDirectories: true)
            try Data("{}".utf8).write(to: dir.appendingPathComponent("sub/meta.json"))
        }
    }

    func testPutAndGetRoundTrip() throws {
        let entry = try putSample("a")
        XCTAssertEqual(entry.key, key("a"))
        XCTAssertEqual(entry.url.path, root.appendingPathComponent("objects/\(key("a").prefix(2))/\(key("a").dropFirst(2))").path)
        XCTAssertEqual(entry.manifest.files.map(\.path), ["model.bin", "sub/meta.json"])
        XCTAssertEqual(entry.manifest.files[0].sha256, ContentHash.sha256("weights of a"))
        let found = try XCTUnwrap(try store.entry(for: key("a")))
        XCTAssertEqual(found.manifest.components, ["name": "a"])
        XCTAssertEqual(found.manifest.stage, "fit")
        XCTAssertEqual(found.manifest.description, "sample a")
        XCTAssertEqual(try String(contentsOf: found.file(named: "model.bin"), encoding: .utf8), "weights of a")
        XCTAssertTrue(found.contains("sub/meta.json"))
        XCTAssertNil(try store.entry(for: key("b")))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("tmp").path), [])
        XCTAssertThrowsError(try store.entry(for: "not-a-key")) { XCTAssertEqual($0 as? CacheError, .invalidKey("not-a-key")) }
        XCTAssertEqual(seen.items, [])
    }

    func testEntriesAreReadOnly() throws {
        let entry = try putSample("a")
        XCTAssertEqual(try FileStatus.of(entry.url.path)?.mode, 0o555)
        XCTAssertEqual(try FileStatus.of(entry.url.appendingPathComponent("sub").path)?.mode, 0o555)
        XCTAssertEqual(try FileStatus.of(entry.file(named: "model.bin").path)?.mode, 0o444)
        XCTAssertEqual(try FileStatus.of(entry.file(named: "manifest.json").path)?.mode, 0o444)
        if geteuid() != 0 {
            XCTAssertThrowsError(try Data("x".utf8).write(to: entry.file(named: "model.bin")))
        }
    }

    func testFailedBuildLeavesNothing() throws {
        struct Boom: Error {}
        XCTAssertThrowsError(try store.put(key: key("x"), stage: "s", description: "", components: nil) { dir in
            try Data("partial".utf8).write(to: dir.appendingPathComponent("f"))
            throw Boom()
        })
        XCTAssertNil(try store.entry(for: key("x")))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent("tmp").path), [])
        XCTAssertThrowsError(try store.put(key: key("y"), stage: "s", description: "", components: nil) { dir in
            try Data().write(to: dir.appendingPathComponent("manifest.json"))
        }) { XCTAssertTrue("\($0)".contains("reserved"), "\($0)") }
        XCTAssertThrowsError(try store.put(key: key("z"), stage: "s", description: "", components: .double(.nan)) { _ in
            XCTFail("build must not run")
        })
    }

    func testMissingFileIsCorruptAndRecomputed() throws {
        let entry = try putSample("a")
        chmod(entry.url.path, 0o755)
        try FileManager.default.removeItem(at: entry.file(named: "model.bin"))

        XCTAssertNil(try store.entry(for: key("a")))
        XCTAssertEqual(seen.items, [.corruptEntry(key: key("a"), reason: "file model.bin missing")])
        XCTAssertNil(try FileStatus.of(entry.url.path))

        var builds = 0
        let (again, wasCached) = try store.getOrCompute(key: key("a"), stage: "fit", description: "", components: nil) { dir in
            builds += 1
            try Data("new".utf8).write(to: dir.appendingPathComponent("model.bin"))
        }
        XCTAssertFalse(wasCached)
        XCTAssertEqual(builds, 1)
        XCTAssertEqual(try String(contentsOf: again.file(named: "model.bin"), encoding: .utf8), "new")
        let (cached, cachedFlag) = try store.getOrCompute(key: key("a"), stage: "fit", description: "", components: nil) { _ in
            XCTFail("must not rebuild")
        }
        XCTAssertTrue(cachedFlag)
        XCTAssertEqual(cached, again)
    }

    func testCorruptManifestIsAMiss() throws {
        let entry = try putSample("a")
        let manifest = entry.file(named: "manifest.json")
        chmod(manifest.path, 0o644)
        try Data("{\"format\":1".utf8).write(to: manifest)
        XCTAssertNil(try store.entry(for: key("a")))
        XCTAssertEqual(seen.items.count, 1)
        XCTAssertTrue("\(seen.items[0])".contains(key("a")))
    }

    func testVerifyCatchesFlippedByte() throws {
        let good = try putSample("good")
        let bad = try putSample("bad")
        let file = bad.file(named: "model.bin")
        chmod(file.path, 0o644)
        var bytes = try Data(contentsOf: file)
        bytes[0] ^= 0x01
        try bytes.write(to: file)

        XCTAssertNotNil(try store.entry(for: bad.key), "same size: the fast check passes")
        let report = try store.verify()
        XCTAssertEqual(report.verified, 1)
        XCTAssertEqual(report.removed.map(\.key), [bad.key])
        XCTAssertTrue(report.removed[0].reason.contains("model.bin content changed"), report.removed[0].reason)
        XCTAssertNil(try store.entry(for: bad.key))
        XCTAssertNotNil(try store.entry(for: good.key))
        XCTAssertEqual(seen.items.count, 1)
    }

    func testConcurrentGetOrComputeBuildsOnce() throws {
        let builds = Collected()
        let results = ResultBox()
        let store = self.store!
        let key = self.key("shared")
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            do {
                let result = try store.getOrCompute(key: key, stage: "s", description: "", components: nil) { dir in
                    builds.append(.unexpectedItem(path: "build"))
                    Thread.sleep(forTimeInterval: 0.2)
                    try Data("once".utf8).write(to: dir.appendingPathComponent("out"))
                }
                results.append(result.entry, result.wasCached)
            } catch {
                results.fail("\(error)")
            }
        }
        XCTAssertEqual(results.errors, [])
        XCTAssertEqual(builds.items.count, 1)
        XCTAssertEqual(results.entries.count, 8)
        XCTAssertEqual(Set(results.entries.map(\.url)).count, 1)
        XCTAssertTrue(results.entries.allSatisfy { $0 == results.entries[0] })
        XCTAssertEqual(results.cachedFlags.filter { !$0 }.count, 1)
    }

    func testKeyLockHeldDuringBuild() throws {
        let key = self.key("locked")
        XCTAssertFalse(try store.isComputing(key: key))
        var heldDuringBuild = false
        var blocksOtherDescription = false
        _ = try store.getOrCompute(key: key, stage: "s", description: "", components: nil) { dir in
            heldDuringBuild = (try? self.store.isComputing(key: key)) ?? false
            // Another open file description cannot take the lock.
            let fd = open(self.store.keyLockPath(key), O_RDWR)
            blocksOtherDescription = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK
            close(fd)
            try Data().write(to: dir.appendingPathComponent("empty"))
        }
        XCTAssertTrue(heldDuringBuild)
        XCTAssertTrue(blocksOtherDescription)
        XCTAssertFalse(try store.isComputing(key: key))
    }

    func testSharedAccessBlocksGC() throws {
        try putSample("a")
        let gcDone = Collected()
        let store = self.store!
        try store.withSharedAccess {
            DispatchQueue.global().async {
                _ = try? store.gc(keep: [], olderThan: nil)
                gcDone.append(.unexpectedItem(path: "gc"))
            }
            Thread.sleep(forTimeInterval: 0.3)
            XCTAssertEqual(gcDone.items.count, 0, "gc must wait for the shared lock")
        }
        let deadline = Date().addingTimeInterval(5)
        while gcDone.items.isEmpty, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        XCTAssertEqual(gcDone.items.count, 1)
        XCTAssertNil(try store.entry(for: key("a")))
    }

    func testGCWithKeepSetAndAge() throws {
        let a = try putSample("a")
        let b = try putSample("b")
        let c = try putSample("c")
        let report = try store.gc(keep: [a.key], olderThan: nil)
        XCTAssertEqual(Set(report.removedKeys), [b.key, c.key])
        XCTAssertEqual(report.bytesFreed, [b, c].reduce(0) { $0 + $1.manifest.totalSize }
                       + 2 * Int64(try Data(contentsOf: a.file(named: "manifest.json")).count) + 2, accuracy: 4)
        XCTAssertNotNil(try store.entry(for: a.key))
        XCTAssertNil(try store.entry(for: b.key))

        // Age: nothing is older than an hour ago; everything is older than the future.
        XCTAssertEqual(try store.gc(keep: nil, olderThan: Date(timeIntervalSinceNow: -3600)).entriesRemoved, 0)
        XCTAssertEqual(try store.gc(keep: nil, olderThan: Date(timeIntervalSinceNow: 60)).removedKeys, [a.key])
        XCTAssertEqual(try store.list(), [])
    }

    func testGCRemovesStaleTemporaryDirectoriesAndOrphanLocks() throws {
        try putSample("a")
        let tmp = root.appendingPathComponent("tmp")
        let stale = tmp.appendingPathComponent("build-stale")
        let fresh = tmp.appendingPathComponent("build-fresh")
        try FileManager.default.createDirectory(at: stale, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: fresh, withIntermediateDirectories: true)
        try Data(count: 100).write(to: stale.appendingPathComponent("partial"))
        chmod(stale.path, 0o555)
        try backdate(stale, secondsAgo: 7200)
        let orphan = root.appendingPathComponent("locks/\(key("gone")).lock")
        _ = FileManager.default.createFile(atPath: orphan.path, contents: nil)

        let report = try store.gc(keep: nil, olderThan: Date(timeIntervalSinceNow: -60))
        XCTAssertEqual(report.entriesRemoved, 0)
        XCTAssertEqual(report.temporaryDirectoriesRemoved, 1)
        XCTAssertEqual(report.lockFilesRemoved, 1)
        XCTAssertEqual(report.bytesFreed, 100)
        XCTAssertNil(try FileStatus.of(stale.path))
        XCTAssertNotNil(try FileStatus.of(fresh.path))
        XCTAssertNil(try FileStatus.of(orphan.path))
        XCTAssertNotNil(try store.entry(for: key("a")))
    }

    func testList() throws {
        let a = try putSample("a")
        Thread.sleep(forTimeInterval: 0.01)
        let b = try putSample("b")
        let summaries = try store.list()
        XCTAssertEqual(summaries.map(\.key), [a.key, b.key])
        XCTAssertEqual(summaries[0].stage, "fit")
        XCTAssertEqual(summaries[0].description, "sample a")
        let manifestSize = Int64(try Data(contentsOf: a.file(named: "manifest.json")).count)
        XCTAssertEqual(summaries[0].size, a.manifest.totalSize + manifestSize)
    }

    func testDefaultRoot() {
        let pipeline = URL(fileURLWithPath: "/work/proj/pipeline.yaml")
        XCTAssertEqual(ContentStore.defaultRoot(pipelineFile: pipeline, override: nil, environment: [:]).path,
                       "/work/proj/.runpipe/cache")
        XCTAssertEqual(ContentStore.defaultRoot(pipelineFile: pipeline, override: nil,
                                                environment: ["RUNPIPE_CACHE_DIR": "/var/c"]).path, "/var/c")
        XCTAssertEqual(ContentStore.defaultRoot(pipelineFile: pipeline, override: "/o",
                                                environment: ["RUNPIPE_CACHE_DIR": "/var/c"]).path, "/o")
        XCTAssertEqual(ContentStore.defaultRoot(pipelineFile: pipeline, override: nil,
                                                environment: ["RUNPIPE_CACHE_DIR": ""]).path, "/work/proj/.runpipe/cache")
    }
}

/// Thread-safe collector of getOrCompute results.
final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var entries: [CacheEntry] = []
    private(set) var cachedFlags: [Bool] = []
    private(set) var errors: [String] = []
    func append(_ entry: CacheEntry, _ cached: Bool) { lock.lock(); entries.append(entry); cachedFlags.append(cached); lock.unlock() }
    func fail(_ message: String) { lock.lock(); errors.append(message); lock.unlock() }
}
