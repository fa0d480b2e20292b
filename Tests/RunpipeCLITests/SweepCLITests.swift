import Foundation
import XCTest

/// `runpipe sweep`, `runpipe reproduce` and the registry as a user meets them: real trial
/// processes on a small copy of the penguins pipeline.
final class SweepCLITests: XCTestCase {
    enum cli {
        static func run(_ arguments: [String], in directory: URL? = nil) throws -> CLITests.Outcome {
            try CLITests.execute(arguments, in: directory)
        }
    }

    /// A folder with the penguins training data and a short pipeline (4 epochs, no test file).
    func project(epochs: Int = 4, sweep: String = "") throws -> (dir: URL, pipeline: URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cli-sweep-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
        let data = CLITests.repository.appendingPathComponent("pipelines/data/penguins/train.csv")
        try FileManager.default.copyItem(at: data, to: dir.appendingPathComponent("train.csv"))
        let pipeline = dir.appendingPathComponent("p.yaml")
        try """
        version: 1
        name: pens
        seed: 3
        data: {train: train.csv, label: species, validation: {fraction: 0.25, stratify: true}}
        metric: accuracy
        backbones:
          tabular: {kind: mlp, hidden: [16], dropout: 0.1}
        trainer:
          optimizer: {kind: adamw, lr: 3.0e-3}
          epochs: \(epochs)
          batch_size: 32
          callbacks: []
        \(sweep)
        """.write(to: pipeline, atomically: true, encoding: .utf8)
        return (dir, pipeline)
    }

    struct Unreadable: Error {}

    /// sweep.json as JSON (throws without recording a failure, so it can be polled).
    func state(_ folder: URL) throws -> [String: Any] {
        let data = try Data(contentsOf: folder.appendingPathComponent("sweep.json"))
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw Unreadable() }
        return object
    }

    func trials(_ folder: URL) throws -> [[String: Any]] {
        guard let t = try state(folder)["trials"] as? [[String: Any]] else { throw Unreadable() }
        return t
    }

    func testGridSharesStagesAndJobsDoNotChangeResults() throws {
        let (dir, pipeline) = try project()
        let grid = ["--grid", "trainer.optimizer.lr=1e-3,1e-2", "--grid", "backbones.tabular.dropout=0.0,0.2"]
        let one = try cli.run(["sweep", pipeline.path] + grid + ["--jobs", "1", "--sweep-dir", dir.appendingPathComponent("s1").path,
                                                                  "--cache-dir", dir.appendingPathComponent("c1").path], in: dir)
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertTrue(one.stdout.contains("val.accuracy"), one.stdout)
        XCTAssertTrue(one.stdout.contains("best: trial"), one.stdout)
        let two = try cli.run(["sweep", pipeline.path] + grid + ["--jobs", "2", "--sweep-dir", dir.appendingPathComponent("s2").path,
                                                                  "--cache-dir", dir.appendingPathComponent("c2").path], in: dir)
        XCTAssertEqual(two.status, 0, two.stderr)
        // With two jobs the stages every trial shares are computed first, on both cores.
        XCTAssertTrue(two.stderr.contains("computing the stages every trial shares"), two.stderr)
        XCTAssertFalse(one.stderr.contains("computing the stages every trial shares"), one.stderr)

        // The sweep leaves its report beside sweep.json.
        let report = try String(contentsOf: dir.appendingPathComponent("s1/report.html"), encoding: .utf8)
        XCTAssertTrue(report.contains("<svg") && report.contains("fig-parallel"), "sweep report lacks its plots")
        XCTAssertTrue(one.stdout.contains("report: "), one.stdout)

        let a = try trials(dir.appendingPathComponent("s1")), b = try trials(dir.appendingPathComponent("s2"))
        XCTAssertEqual(a.count, 4)
        for (x, y) in zip(a, b) {
            XCTAssertEqual(x["status"] as? String, "finished")
            XCTAssertEqual(x["parameters"] as? [String: String], y["parameters"] as? [String: String])
            XCTAssertEqual(x["metrics"] as? [String: Double], y["metrics"] as? [String: Double], "trial \(x["name"] ?? "")")
        }
        // The stages before training ran once for all four trials — also with two trials
        // starting together, where one waits for the other's stage —; training once per trial.
        for cache in ["c1", "c2"] {
            let ls = try cli.run(["cache", "ls", "--cache-dir", dir.appendingPathComponent(cache).path])
            XCTAssertEqual(ls.status, 0, ls.stderr)
            let stages = ls.stdout.split(separator: "\n").compactMap { line -> String? in
                let parts = line.split(separator: " ", omittingEmptySubsequences: true)
                return parts.count > 4 ? String(parts[4]) : nil
            }
            XCTAssertEqual(stages.filter { $0 == "fit" }.count, 1, ls.stdout)
            XCTAssertEqual(stages.filter { $0 == "encode.train" }.count, 1, ls.stdout)
            XCTAssertEqual(stages.filter { $0 == "train" }.count, 4, ls.stdout)
        }

        // Every trial is in the registry, with its sweep.
        let runs = try cli.run(["runs", "list", "--cache-dir", dir.appendingPathComponent("c1").path, "--json"])
        XCTAssertEqual(runs.status, 0, runs.stderr)
        let list = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(list.count, 4)
        // A report by registry id.
        let byID = try cli.run(["report", "1", "--cache-dir", dir.appendingPathComponent("c1").path], in: dir)
        XCTAssertEqual(byID.status, 0, byID.stderr)
        XCTAssertTrue(byID.stdout.hasSuffix("/s1/trials/000/report.html\n"), byID.stdout)
    }

    func testAnInvalidTrialStopsTheSweepBeforeAnyTrialStarts() throws {
        let (dir, pipeline) = try project()
        let r = try cli.run(["sweep", pipeline.path, "--grid", "trainer.optimizer.lr=1e-3,fast", "--sweep-dir", dir.appendingPathComponent("s").path], in: dir)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("trial 001 (trainer.optimizer.lr=fast)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("no trial was started"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("s").path))

        let unknown = try cli.run(["sweep", pipeline.path, "--grid", "trainer.optimizer.lrr=1e-3,1e-2"], in: dir)
        XCTAssertEqual(unknown.status, 1)
        XCTAssertTrue(unknown.stderr.contains("lrr") && unknown.stderr.contains("did you mean 'lr'"), unknown.stderr)

        let reversed = try cli.run(["sweep", pipeline.path, "--random", "trainer.optimizer.lr=log_uniform(1e-2,1e-4)"], in: dir)
        XCTAssertEqual(reversed.status, 1)
        XCTAssertTrue(reversed.stderr.contains("lower bound is above the upper"), reversed.stderr)

        // --dry-run lists the trials and creates nothing.
        let dry = try cli.run(["sweep", pipeline.path, "--grid", "trainer.optimizer.lr=1e-3,1e-2", "--grid", "backbones.tabular.hidden=[8],[16, 16]",
                               "--dry-run", "--sweep-dir", dir.appendingPathComponent("dry").path], in: dir)
        XCTAssertEqual(dry.status, 0, dry.stderr)
        XCTAssertTrue(dry.stdout.contains("003    1e-2                  [16, 16]"), dry.stdout)
        XCTAssertTrue(dry.stdout.contains("4 trials (grid), every one a valid pipeline"), dry.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("dry").path))

        // A trial that fails while running: the others finish, the sweep exits 1 naming it.
        let failing = try cli.run(["sweep", pipeline.path, "--set", "trainer.epochs=1", "--grid", "data.label=species,nosuch",
                                   "--sweep-dir", dir.appendingPathComponent("f").path], in: dir)
        XCTAssertEqual(failing.status, 1, failing.stderr)
        XCTAssertTrue(failing.stderr.contains("1 trial failed (001)") && failing.stderr.contains("--resume"), failing.stderr)
        XCTAssertTrue(failing.stdout.contains("label column 'nosuch' is not in the table"), failing.stdout)
        XCTAssertEqual(try trials(dir.appendingPathComponent("f")).map { $0["status"] as? String }, ["finished", "failed"])

        let nothing = try cli.run(["sweep", pipeline.path], in: dir)
        XCTAssertEqual(nothing.status, 1)
        XCTAssertTrue(nothing.stderr.contains("nothing to sweep"), nothing.stderr)
    }

    func testMoreJobsThanCoresWarnsAndCaps() throws {
        let (dir, pipeline) = try project(epochs: 1)
        let r = try cli.run(["sweep", pipeline.path, "--grid", "trainer.optimizer.lr=1e-3,1e-2", "--jobs", "64", "--threads", "2",
                             "--sweep-dir", dir.appendingPathComponent("s").path], in: dir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: --jobs 64 is more than the 2 cores available; running 2 at once"), r.stderr)
    }

    func testKilledSweepResumesWithoutRerunningFinishedTrials() throws {
        let (dir, pipeline) = try project(epochs: 6)
        let folder = dir.appendingPathComponent("s")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: CLITests.binary.path), "runpipe binary not built")
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = ["sweep", pipeline.path, "--grid", "trainer.optimizer.lr=1e-3,2e-3,3e-3,4e-3", "--jobs", "1",
                             "--sweep-dir", folder.path, "--quiet"]
        process.currentDirectoryURL = dir
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Wait for the first trial to finish, then kill the sweep without warning.
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline {
            if let t = try? trials(folder), t.contains(where: { $0["status"] as? String == "finished" }) { break }
            Thread.sleep(forTimeInterval: 0.05)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let before = try trials(folder)
        let finished = before.filter { $0["status"] as? String == "finished" }.compactMap { $0["name"] as? String }
        XCTAssertFalse(finished.isEmpty)
        XCTAssertLessThan(finished.count, 4, "the sweep was killed before its end")
        // The orphaned trial process notices and ends; give it a moment.
        Thread.sleep(forTimeInterval: 1.5)

        let resumed = try cli.run(["sweep", "--resume", folder.path], in: dir)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        let after = try trials(folder)
        XCTAssertEqual(after.map { $0["status"] as? String }, Array(repeating: "finished", count: 4))
        for name in finished {
            // One command line in its log: it ran once.
            let log = try String(contentsOf: folder.appendingPathComponent("logs/\(name).log"), encoding: .utf8)
            XCTAssertEqual(log.components(separatedBy: "$ runpipe").count - 1, 1, "trial \(name) ran again")
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.appendingPathComponent("trials").path).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [])

        // The same sweep in one go gives the same metrics.
        let fresh = try cli.run(["sweep", pipeline.path, "--grid", "trainer.optimizer.lr=1e-3,2e-3,3e-3,4e-3",
                                 "--sweep-dir", dir.appendingPathComponent("fresh").path, "--quiet"], in: dir)
        XCTAssertEqual(fresh.status, 0, fresh.stderr)
        XCTAssertEqual(try trials(dir.appendingPathComponent("fresh")).map { $0["metrics"] as? [String: Double] },
                       after.map { $0["metrics"] as? [String: Double] })
    }

    func testInterruptEndsTrialsCleanlyAndResumes() throws {
        let (dir, pipeline) = try project(epochs: 30)
        let folder = dir.appendingPathComponent("s")
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: CLITests.binary.path), "runpipe binary not built")
        let process = Process()
        process.executableURL = CLITests.binary
        process.arguments = ["sweep", pipeline.path, "--grid", "trainer.optimizer.lr=1e-3,2e-3,3e-3", "--jobs", "2", "--threads", "2",
                             "--sweep-dir", folder.path]
        process.currentDirectoryURL = dir
        let err = Pipe()
        process.standardOutput = FileHandle.nullDevice
        process.standardError = err
        try process.run()
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline {
            if let t = try? trials(folder), t.contains(where: { $0["status"] as? String == "running" }) { break }
            Thread.sleep(forTimeInterval: 0.02)
        }
        kill(process.processIdentifier, SIGINT)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 130, stderr)
        XCTAssertTrue(stderr.contains("runpipe sweep --resume \(folder.path)"), stderr)
        XCTAssertEqual(try state(folder)["status"] as? String, "interrupted")
        XCTAssertFalse(try trials(folder).contains { $0["status"] as? String == "running" })

        let resumed = try cli.run(["sweep", "--resume", folder.path, "--jobs", "2"], in: dir)
        XCTAssertEqual(resumed.status, 0, resumed.stderr)
        XCTAssertEqual(try trials(folder).map { $0["status"] as? String }, ["finished", "finished", "finished"])
        XCTAssertEqual(try state(folder)["status"] as? String, "finished")
    }

    func testSuccessiveHalvingStopsTheSameTrialsWhateverTheJobs() throws {
        let (dir, pipeline) = try project(epochs: 4, sweep: """
        sweep:
          method: halving
          trials: 6
          halving: {min_epochs: 1, eta: 2}
          parameters:
            trainer.optimizer.lr: {log_uniform: [1.0e-4, 3.0e-2]}
        """)
        var outcomes: [[String]] = []
        for jobs in ["1", "2"] {
            let folder = dir.appendingPathComponent("h\(jobs)")
            let r = try cli.run(["sweep", pipeline.path, "--jobs", jobs, "--sweep-dir", folder.path], in: dir)
            XCTAssertEqual(r.status, 0, r.stderr)
            let t = try trials(folder)
            outcomes.append(t.map { "\($0["status"] ?? "")@\($0["stopped_at"] ?? "-"):\($0["epochs"] ?? "")" })
            XCTAssertTrue(t.contains { $0["status"] as? String == "stopped" }, "\(t)")
            XCTAssertEqual(try state(folder)["rungs"] as? [Int], [1, 2])
        }
        XCTAssertEqual(outcomes[0], outcomes[1])
    }

    func testReproduceComparesBitForBitAndRefusesChangedData() throws {
        let (dir, pipeline) = try project(epochs: 3)
        let runDir = dir.appendingPathComponent("run")
        let train = try cli.run(["train", pipeline.path, "--run-dir", runDir.path, "--quiet"], in: dir)
        XCTAssertEqual(train.status, 0, train.stderr)
        XCTAssertTrue(FileManager.default.fileExists(atPath: runDir.appendingPathComponent("validation_predictions.csv").path))
        let report = try cli.run(["report", runDir.path], in: dir)
        XCTAssertEqual(report.status, 0, report.stderr)
        let html = try String(contentsOf: runDir.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("fig-confusion") && html.contains("fig-roc"), "run report lacks its classification plots")
        let again = try cli.run(["reproduce", runDir.path], in: dir)
        XCTAssertEqual(again.status, 0, again.stderr + again.stdout)
        XCTAssertTrue(again.stdout.contains("reproduced:"), again.stdout)
        XCTAssertTrue(again.stdout.contains("model/"), again.stdout)

        // Change one data cell: refused, with both hashes.
        let csv = dir.appendingPathComponent("train.csv")
        var text = try String(contentsOf: csv, encoding: .utf8)
        text = text.replacingOccurrences(of: "Torgersen", with: "Dream", options: [], range: text.range(of: "Torgersen"))
        try text.write(to: csv, atomically: true, encoding: .utf8)
        let refused = try cli.run(["reproduce", runDir.path], in: dir)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("inputs changed") && refused.stderr.contains("data.train") && refused.stderr.contains("recorded sha256"),
                      refused.stderr)
    }
}
