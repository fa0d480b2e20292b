import Foundation
import XCTest

/// The `runpipe` binary as a user meets it: exit status, what goes to standard output and
/// standard error, and what is (not) left on disk.
final class CLITests: XCTestCase {
    /// The folder holding the test bundle holds the built products, `runpipe` among them.
    static let binary: URL = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<3 where !FileManager.default.fileExists(atPath: dir.appendingPathComponent("runpipe").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("runpipe")
    }()

    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    struct Outcome {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    func run(_ arguments: [String], in directory: URL? = nil) throws -> Outcome {
        try Self.execute(arguments, in: directory)
    }

    /// Runs the binary with `arguments` (RUNPIPE_THREADS=2) and collects what it printed.
    static func execute(_ arguments: [String], in directory: URL? = nil) throws -> Outcome {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: Self.binary.path),
                          "runpipe binary not found next to the test bundle (\(binary.path)); build it with `swift build`")
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = directory }
        var environment = ProcessInfo.processInfo.environment
        environment["RUNPIPE_THREADS"] = "2"
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                       stderr: String(decoding: e, as: UTF8.self))
    }

    func temporaryFolder() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cli-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        return dir
    }

    func testHelpAndVersion() throws {
        let help = try run(["--help"])
        XCTAssertEqual(help.status, 0)
        for command in ["train", "predict", "evaluate", "validate", "plan", "graph", "inspect", "schema", "cache"] {
            XCTAssertTrue(help.stdout.contains(command), "help lacks \(command)")
        }
        let version = try run(["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertEqual(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "0.1.0")
    }

    func testSchemaCommandPrintsTheCommittedSchema() throws {
        let schema = try run(["schema"])
        XCTAssertEqual(schema.status, 0)
        let committed = try String(contentsOf: Self.repository.appendingPathComponent("schemas/pipeline.schema.json"), encoding: .utf8)
        XCTAssertEqual(schema.stdout, committed, "regenerate with: swift run runpipe schema > schemas/pipeline.schema.json")
    }

    func testValidateReportsEveryErrorWithLocationsAndFails() throws {
        let dir = try temporaryFolder()
        let bad = dir.appendingPathComponent("bad.yaml")
        try Data("version: 1\ndata:\n  train: t.csv\n  lable: y\ntrainer:\n  epochs: 0\n".utf8).write(to: bad)
        let r = try run(["validate", bad.path])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("bad.yaml:4:3: error: unknown key 'lable'"), r.stderr)
        XCTAssertTrue(r.stderr.contains("did you mean 'label'"), r.stderr)
        XCTAssertTrue(r.stderr.contains("bad.yaml:6:11"), r.stderr)

        let good = try run(["validate", Self.repository.appendingPathComponent("pipelines/penguins.yaml").path])
        XCTAssertEqual(good.status, 0, good.stderr)
    }

    func testTrainOnBadDataExitsNonZeroAndWritesNothing() throws {
        let dir = try temporaryFolder()
        try Data("a,b,target\n1,2,x\n3,4\n".utf8).write(to: dir.appendingPathComponent("train.csv"))
        try Data("version: 1\ndata: {train: train.csv, label: target}\n".utf8).write(to: dir.appendingPathComponent("p.yaml"))
        let r = try run(["train", "p.yaml", "--run-dir", "out"], in: dir)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("train.csv:3"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("out").path))
    }

    func testTrainPredictEvaluateRoundTrip() throws {
        let dir = try temporaryFolder()
        let data = Self.repository.appendingPathComponent("pipelines/data/penguins")
        let pipeline = """
            version: 1
            data: {train: \(data.appendingPathComponent("train.csv").path), test: \(data.appendingPathComponent("test.csv").path), label: species}
            trainer: {epochs: 5, batch_size: 64}
            """
        try Data(pipeline.utf8).write(to: dir.appendingPathComponent("p.yaml"))
        let train = try run(["train", "p.yaml", "--run-dir", "run", "--cache-dir", "cache", "--quiet"], in: dir)
        XCTAssertEqual(train.status, 0, train.stderr)
        XCTAssertTrue(train.stdout.contains("test: accuracy"), train.stdout)

        let again = try run(["train", "p.yaml", "--run-dir", "run", "--cache-dir", "cache"], in: dir)
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.contains("already holds a run"), again.stderr)

        let predict = try run(["predict", "run", "--data", data.appendingPathComponent("test.csv").path, "--out", "p.csv"], in: dir)
        XCTAssertEqual(predict.status, 0, predict.stderr)
        let header = try String(contentsOf: dir.appendingPathComponent("p.csv"), encoding: .utf8).split(separator: "\n").first
        XCTAssertTrue(header?.hasSuffix("species_predicted,proba_Adelie,proba_Chinstrap,proba_Gentoo") ?? false, "\(header ?? "")")

        let evaluate = try run(["evaluate", "run", "--data", data.appendingPathComponent("test.csv").path], in: dir)
        XCTAssertEqual(evaluate.status, 0, evaluate.stderr)
        let metrics = try JSONSerialization.jsonObject(with: Data(evaluate.stdout.utf8)) as? [String: Any]
        XCTAssertNotNil(metrics?["accuracy"])

        let plan = try run(["plan", "p.yaml", "--cache-dir", "cache", "--set", "trainer.epochs=6"], in: dir)
        XCTAssertEqual(plan.status, 0, plan.stderr)
        XCTAssertTrue(plan.stdout.contains("cached  fit"), plan.stdout)
        XCTAssertTrue(plan.stdout.contains("trainer.epochs"), plan.stdout)

        let ls = try run(["cache", "ls", "--cache-dir", "cache"], in: dir)
        XCTAssertEqual(ls.status, 0, ls.stderr)
        XCTAssertTrue(ls.stdout.contains("entries"), ls.stdout)
        let verify = try run(["cache", "verify", "--cache-dir", "cache"], in: dir)
        XCTAssertTrue(verify.stdout.contains("0 removed"), verify.stdout)
        let gc = try run(["cache", "gc", "--cache-dir", "cache"], in: dir)
        XCTAssertEqual(gc.status, 0, gc.stderr)
        XCTAssertTrue(try run(["cache", "ls", "--cache-dir", "cache"], in: dir).stdout.contains("0 entries"))
    }

    func testInspectExplainsEachColumn() throws {
        let r = try run(["inspect", Self.repository.appendingPathComponent("pipelines/data/penguins/train.csv").path, "--label", "species"])
        XCTAssertEqual(r.status, 0, r.stderr)
        for column in ["island", "bill_length_mm", "sex", "species"] { XCTAssertTrue(r.stdout.contains(column), r.stdout) }
        XCTAssertTrue(r.stdout.contains("multiclass"), r.stdout)
    }
}
