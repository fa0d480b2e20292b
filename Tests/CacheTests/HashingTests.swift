import Foundation
import XCTest
@testable import Cache

/// A fresh directory under the system temporary folder, removed (read-only parts included)
/// when the test ends.
func makeTemporaryDirectory(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("CacheTests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? removeTree(url.path) }
    return url
}

/// Sets a file's modification time to `secondsAgo` in the past.
func backdate(_ url: URL, secondsAgo: TimeInterval) throws {
    try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -secondsAgo)],
                                          ofItemAtPath: url.path)
}

final class HashingTests: XCTestCase {
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

    func testKnownDigests() throws {
        XCTAssertEqual(ContentHash.sha256("abc"), abc)
        XCTAssertEqual(ContentHash.sha256(Data("abc".utf8)), abc)
        XCTAssertEqual(ContentHash.sha256(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertTrue(ContentHash.isDigest(abc))
        XCTAssertFalse(ContentHash.isDigest(abc.uppercased()))
        XCTAssertFalse(ContentHash.isDigest("abc"))
    }

    func testFileHashStreamsAcrossChunks() throws {
        let dir = try makeTemporaryDirectory(self)
        let file = dir.appendingPathComponent("big.bin")
        var data = Data(count: ContentHash.chunkSize * 2 + 12345)
        for i in stride(from: 0, to: data.count, by: 997) { data[i] = UInt8(i % 251) }
        try data.write(to: file)
        XCTAssertEqual(try ContentHash.sha256(fileAt: file), ContentHash.sha256(data))
        XCTAssertThrowsError(try ContentHash.sha256(fileAt: dir.appendingPathComponent("missing"))) { error in
            XCTAssertTrue("\(error)".contains("missing"))
        }
    }

    func testAtomicFile() throws {
        let dir = try makeTemporaryDirectory(self)
        let file = dir.appendingPathComponent("a.json")
        try AtomicFile.write(Data("one".utf8), to: file)
        try AtomicFile.write(Data("two".utf8), to: file, permissions: 0o600)
        XCTAssertEqual(try Data(contentsOf: file), Data("two".utf8))
        XCTAssertEqual(try FileStatus.of(file.path)?.mode, 0o600)
        XCTAssertThrowsError(try AtomicFile.writeNew(Data("three".utf8), to: file)) { error in
            XCTAssertEqual(error as? CacheError, .alreadyExists(path: file.path))
        }
        try AtomicFile.writeNew(Data("new".utf8), to: dir.appendingPathComponent("b.json"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["a.json", "b.json"])
    }
}

final class FileHasherTests: XCTestCase {
    func testStatCacheReuseAndInvalidation() throws {
        let dir = try makeTemporaryDirectory(self)
        let data = dir.appendingPathComponent("train.csv")
        let statCache = dir.appendingPathComponent("cache/stat-cache.json")
        try Data("a,b\n1,2\n".utf8).write(to: data)
        try backdate(data, secondsAgo: 100)

        let hasher = FileHasher(statCacheURL: statCache)
        let first = try hasher.hash(of: data)
        XCTAssertEqual(first, ContentHash.sha256("a,b\n1,2\n"))
        XCTAssertEqual(try hasher.hash(of: data), first)
        XCTAssertEqual(hasher.hashesComputed, 1)

        // A new hasher reads the stored stat cache.
        let second = FileHasher(statCacheURL: statCache)
        XCTAssertEqual(try second.hash(of: data), first)
        XCTAssertEqual(second.hashesComputed, 0)

        // Same size, new mtime: hashed again.
        try Data("a,b\n1,3\n".utf8).write(to: data)
        try backdate(data, secondsAgo: 50)
        XCTAssertEqual(try second.hash(of: data), ContentHash.sha256("a,b\n1,3\n"))
        XCTAssertEqual(second.hashesComputed, 1)

        // Size change with the mtime restored: hashed again.
        let mtime = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: data.path)[.modificationDate] as? Date)
        try Data("a,b\n1,30\n".utf8).write(to: data)
        try FileManager.default.setAttributes([.modificationDate: mtime], ofItemAtPath: data.path)
        XCTAssertEqual(try second.hash(of: data), ContentHash.sha256("a,b\n1,30\n"))
        XCTAssertEqual(second.hashesComputed, 2)
    }

    func testRecentFilesAreNotRemembered() throws {
        let dir = try makeTemporaryDirectory(self)
        let data = dir.appendingPathComponent("fresh.csv")
        try Data("x".utf8).write(to: data)
        let hasher = FileHasher(statCacheURL: nil)
        _ = try hasher.hash(of: data)
        _ = try hasher.hash(of: data)
        XCTAssertEqual(hasher.hashesComputed, 2)
    }

    func testCorruptStatCacheIsDiscarded() throws {
        let dir = try makeTemporaryDirectory(self)
        let data = dir.appendingPathComponent("t.csv")
        try Data("x".utf8).write(to: data)
        try backdate(data, secondsAgo: 100)
        let statCache = dir.appendingPathComponent("stat.json")
        try Data("{not json".utf8).write(to: statCache)
        let seen = Collected()
        let hasher = FileHasher(statCacheURL: statCache) { seen.append($0) }
        XCTAssertEqual(try hasher.hash(of: data), ContentHash.sha256("x"))
        XCTAssertEqual(seen.items.count, 1)
        if case .statCacheDiscarded(let path, _)? = seen.items.first {
            XCTAssertEqual(path, statCache.path)
        } else {
            XCTFail("expected statCacheDiscarded, got \(seen.items)")
        }
        // Rewritten as a valid stat cache.
        XCTAssertEqual(try FileHasher(statCacheURL: statCache).hash(of: data), ContentHash.sha256("x"))
        XCTAssertThrowsError(try hasher.hash(of: dir.appendingPathComponent("nope.csv")))
    }
}

/// Thread-safe collector of diagnostics.
final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [CacheDiagnostic] = []
    func append(_ item: CacheDiagnostic) { lock.lock(); storage.append(item); lock.unlock() }
    var items: [CacheDiagnostic] { lock.lock(); defer { lock.unlock() }; return storage }
}

final class DeferredStatCacheTests: XCTestCase {
    func testDeferredSavesWriteOnceAtTheEndAndAreReadBack() throws {
        let dir = try makeTemporaryDirectory(self)
        let statCache = dir.appendingPathComponent("stat.json")
        var files: [URL] = []
        for i in 0..<20 {
            let f = dir.appendingPathComponent("img\(i).png")
            try Data("image \(i)".utf8).write(to: f)
            try backdate(f, secondsAgo: 100)
            files.append(f)
        }
        let hasher = FileHasher(statCacheURL: statCache)
        try hasher.deferringSaves {
            for f in files { _ = try hasher.hash(of: f) }
            XCTAssertFalse(FileManager.default.fileExists(atPath: statCache.path), "nothing is written inside the block")
        }
        let again = FileHasher(statCacheURL: statCache)
        for (i, f) in files.enumerated() { XCTAssertEqual(try again.hash(of: f), ContentHash.sha256("image \(i)")) }
        XCTAssertEqual(again.hashesComputed, 0)
    }
}
