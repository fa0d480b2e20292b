import Foundation
import GRDB
import XCTest
@testable import Registry

/// Several writers at once, as a sweep's trial processes are.
final class RegistryConcurrencyTests: RegistryTestCase {
    private static let childVariable = "RUNPIPE_REGISTRY_TEST_CHILD"

    func testTwoConnectionsWriteConcurrently() throws {
        let first = try makeRegistry(), second = try makeRegistry()
        let folder = try makeRunFolder("shared")
        let perThread = 25
        let errors = ErrorBox()
        DispatchQueue.concurrentPerform(iterations: 2) { thread in
            let registry = thread == 0 ? first : second
            for i in 0..<perThread {
                do {
                    let id = try registry.begin(newRun(folder, sweep: "s", trial: thread * perThread + i))
                    try registry.finish(id: id, runDirectory: folder)
                } catch {
                    errors.append(error)
                }
            }
        }
        XCTAssertEqual(errors.all.map { "\($0)" }, [])
        let runs = try first.list(RunQuery(sweepID: "s"))
        XCTAssertEqual(runs.count, 2 * perThread)
        XCTAssertTrue(runs.allSatisfy { $0.status == .finished && $0.metrics["validation"]?["accuracy"] == 0.8 })
    }

    /// Opening a brand-new file from several threads at once: every opener migrates or finds
    /// the migration done.
    func testConcurrentFirstOpen() throws {
        let errors = ErrorBox()
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            do { _ = try self.makeRegistry() } catch { errors.append(error) }
        }
        XCTAssertEqual(errors.all.map { "\($0)" }, [])
    }

    /// Two child processes (this test binary, running `testChildWriter`) write to one registry.
    func testTwoProcessesWriteConcurrently() throws {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0])
        guard executable.path.hasSuffix(".xctest") else { throw XCTSkip("not run from an xctest binary") }
        guard ProcessInfo.processInfo.environment[Self.childVariable] == nil else { return }   // a child: no grandchildren
        let folder = try makeRunFolder("shared")
        _ = try makeRegistry()
        let children = try (0..<2).map { index -> Process in
            let p = Process()
            p.executableURL = executable
            p.arguments = ["RegistryTests.RegistryConcurrencyTests/testChildWriter"]
            var environment = ProcessInfo.processInfo.environment
            environment[Self.childVariable] = [registryURL.path, folder.path, String(index)].joined(separator: "\n")
            p.environment = environment
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            return p
        }
        for child in children { child.waitUntilExit() }
        XCTAssertEqual(children.map(\.terminationStatus), [0, 0])
        let runs = try makeRegistry().list(RunQuery(sweepID: "processes"))
        XCTAssertEqual(runs.count, 2 * 20)
        XCTAssertTrue(runs.allSatisfy { $0.status == .finished })
        XCTAssertEqual(Set(runs.compactMap(\.trialIndex)).count, 40)
    }

    /// Does nothing unless started by `testTwoProcessesWriteConcurrently`.
    func testChildWriter() throws {
        guard let spec = ProcessInfo.processInfo.environment[Self.childVariable] else { return }
        let parts = spec.components(separatedBy: "\n")
        let registry = try RunRegistry(url: URL(fileURLWithPath: parts[0]))
        let folder = URL(fileURLWithPath: parts[1])
        let index = Int(parts[2]) ?? 0
        for i in 0..<20 {
            let run = NewRun(pipeline: "/p/penguins.yaml", name: "penguins", runDirectory: folder.path,
                             sweepID: "processes", trialIndex: index * 20 + i, threads: 1, seed: 7)
            let id = try registry.begin(run)
            try registry.finish(id: id, runDirectory: folder)
        }
    }
}

/// Errors collected from several threads.
final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [Error] = []
    func append(_ error: Error) { lock.lock(); errors.append(error); lock.unlock() }
    var all: [Error] { lock.lock(); defer { lock.unlock() }; return errors }
}
