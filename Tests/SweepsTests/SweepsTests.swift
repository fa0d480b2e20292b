import Foundation
import XCTest
@testable import Spec
@testable import Sweeps

/// Trials from the `sweep:` section and flags, the checks that stop a sweep before it starts,
/// and successive halving's decisions. (Running trial processes is covered by the CLI tests.)
final class SweepPlanTests: XCTestCase {
    private func pipeline(_ sweep: String, extra: String = "") throws -> (URL, PipelineSpec) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sweep-plan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try "a,b,y\n1,x,0\n2,y,1\n3,x,0\n4,y,1\n".write(to: dir.appendingPathComponent("train.csv"), atomically: true, encoding: .utf8)
        let url = dir.appendingPathComponent("p.yaml")
        try """
        version: 1
        data: {train: train.csv, label: y}
        trainer: {epochs: 9}
        \(extra)
        \(sweep)
        """.write(to: url, atomically: true, encoding: .utf8)
        return (url, try PipelineLoader.load(url))
    }

    func testGridIsTheProductInDeclarationOrder() throws {
        let (_, spec) = try pipeline("""
        sweep:
          parameters:
            trainer.optimizer.lr: [1.0e-3, 3.0e-3, 1.0e-2]
            fusion.dropout: [0.1, 0.3]
        """)
        let s = try XCTUnwrap(spec.sweep)
        XCTAssertEqual(s.method, .grid)
        XCTAssertEqual(s.parameters.map(\.key), ["trainer.optimizer.lr", "fusion.dropout"])
        XCTAssertEqual(s.parameters[0].location?.line, 7)
        let trials = try SweepPlan(section: s, flags: [], method: nil, trials: nil, pipelineSeed: 0).trials()
        XCTAssertEqual(trials.count, 6)
        XCTAssertEqual(trials.map { $0.parameters["trainer.optimizer.lr"]! }, ["1.0e-3", "1.0e-3", "3.0e-3", "3.0e-3", "1.0e-2", "1.0e-2"])
        XCTAssertEqual(trials.map { $0.parameters["fusion.dropout"]! }, ["0.1", "0.3", "0.1", "0.3", "0.1", "0.3"])
        XCTAssertEqual(trials[3].overrides, ["trainer.optimizer.lr=3.0e-3", "fusion.dropout=0.3"])
        XCTAssertEqual(trials[3].name, "003")
    }

    func testListValuesBecomeFlowText() throws {
        let (_, spec) = try pipeline("""
        sweep:
          parameters:
            backbones.tabular.hidden: [[64], [128, 64]]
            name: ["a b", plain]
        """)
        guard case .values(let v) = try XCTUnwrap(spec.sweep).parameters[0].domain else { return XCTFail("not values") }
        XCTAssertEqual(v, ["[64]", "[128, 64]"])
        guard case .values(let names) = try XCTUnwrap(spec.sweep).parameters[1].domain else { return XCTFail("not values") }
        XCTAssertEqual(names, ["\"a b\"", "plain"])
    }

    func testRandomDrawsAreSeededCounterBasedAndInRange() throws {
        let (_, spec) = try pipeline("""
        sweep:
          method: random
          trials: 50
          seed: 11
          parameters:
            trainer.optimizer.lr: {log_uniform: [1.0e-5, 1.0e-2]}
            fusion.dropout: {uniform: [0.0, 0.5]}
            trainer.batch_size: {int: [16, 20]}
            fusion.kind: {choice: [mlp, transformer]}
        """)
        let plan = SweepPlan(section: spec.sweep, flags: [], method: nil, trials: nil, pipelineSeed: 0)
        let a = try plan.trials(), b = try plan.trials()
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.count, 50)
        var batchSizes = Set<String>(), kinds = Set<String>()
        for t in a {
            let lr = try XCTUnwrap(Double(t.parameters["trainer.optimizer.lr"]!))
            XCTAssert((1e-5...1e-2).contains(lr), "\(lr)")
            let d = try XCTUnwrap(Double(t.parameters["fusion.dropout"]!))
            XCTAssert((0...0.5).contains(d))
            batchSizes.insert(t.parameters["trainer.batch_size"]!)
            kinds.insert(t.parameters["fusion.kind"]!)
        }
        XCTAssertEqual(batchSizes, ["16", "17", "18", "19", "20"])
        XCTAssertEqual(kinds, ["mlp", "transformer"])
        // More trials keep the first ones (counter-based draws).
        let more = try SweepPlan(section: spec.sweep, flags: [], method: nil, trials: 60, pipelineSeed: 0).trials()
        XCTAssertEqual(Array(more.prefix(50)), a)
        // Another seed, other values.
        var other = try XCTUnwrap(spec.sweep)
        other.seed = 12
        XCTAssertNotEqual(try SweepPlan(section: other, flags: [], method: nil, trials: nil, pipelineSeed: 0).trials(), a)
    }

    func testFlagsAddToAndReplaceTheSection() throws {
        let (_, spec) = try pipeline("""
        sweep:
          parameters:
            trainer.optimizer.lr: [1.0e-3, 3.0e-3]
        """)
        let flags = [try SweepSpec.gridFlag("trainer.optimizer.lr=0.1,0.2,0.3"), try SweepSpec.gridFlag("backbones.tabular.hidden=[64],[32,32]")]
        let trials = try SweepPlan(section: spec.sweep, flags: flags, method: nil, trials: nil, pipelineSeed: 0).trials()
        XCTAssertEqual(trials.count, 6)
        XCTAssertEqual(Set(trials.map { $0.parameters["backbones.tabular.hidden"]! }), ["[64]", "[32,32]"])
        // Only --random flags and no section: a random sweep.
        let r = SweepPlan(section: nil, flags: [try SweepSpec.randomFlag("trainer.optimizer.lr=log_uniform(1e-4,1e-2)")],
                          method: nil, trials: 4, pipelineSeed: 3)
        XCTAssertEqual(r.method, .random)
        XCTAssertEqual(try r.trials().count, 4)
    }

    func testBadSweepsAreRefusedWithTheirLocation() throws {
        func errors(_ sweep: String) -> String {
            do { _ = try pipeline(sweep); return "" } catch { return String(describing: error) }
        }
        let empty = errors("""
        sweep:
          parameters:
            trainer.optimizer.lr: []
        """)
        XCTAssert(empty.contains("p.yaml:7:") && empty.contains("empty list"), empty)
        let reversed = errors("""
        sweep:
          method: random
          parameters:
            trainer.optimizer.lr: {uniform: [0.5, 0.1]}
        """)
        XCTAssert(reversed.contains("lower bound is above the upper") && reversed.contains("p.yaml:8:"), reversed)
        let gridWithDistribution = errors("""
        sweep:
          parameters:
            trainer.optimizer.lr: {log_uniform: [1.0e-4, 1.0e-2]}
        """)
        XCTAssert(gridWithDistribution.contains("a grid takes lists of values"), gridWithDistribution)
        let unknownDistribution = errors("""
        sweep:
          method: random
          parameters:
            trainer.optimizer.lr: {loguniform: [1.0e-4, 1.0e-2]}
        """)
        XCTAssert(unknownDistribution.contains("did you mean 'log_uniform'"), unknownDistribution)
        let unknownSweepKey = errors("""
        sweep:
          metod: grid
        """)
        XCTAssert(unknownSweepKey.contains("metod"), unknownSweepKey)

        XCTAssertThrowsError(try SweepSpec.gridFlag("trainer.optimizer.lr=")) { XCTAssert("\($0)".contains("empty value")) }
        XCTAssertThrowsError(try SweepSpec.randomFlag("trainer.optimizer.lr=uniform(1,0)")) { XCTAssert("\($0)".contains("above the upper")) }
        XCTAssertThrowsError(try SweepSpec.randomFlag("trainer.optimizer.lr=gauss(1,0)")) { XCTAssert("\($0)".contains("unknown distribution")) }
        XCTAssertThrowsError(try SweepPlan(section: nil, flags: [], method: nil, trials: nil, pipelineSeed: 0).trials()) {
            XCTAssert("\($0)".contains("nothing to sweep"))
        }
    }

    func testInvalidTrialStopsTheSweepBeforeAnyTrialNamingIt() throws {
        let (url, _) = try pipeline("""
        sweep:
          parameters:
            trainer.optimizer.lr: [1.0e-3, -2]
            trainer.optimzer.momentum: [0.9]
        """)
        let folder = url.deletingLastPathComponent().appendingPathComponent("sweeps/s")
        var request = SweepRequest(pipeline: url, threads: 1, executable: URL(fileURLWithPath: "/bin/false"))
        request.folder = folder
        XCTAssertThrowsError(try SweepRunner.prepare(request)) { error in
            let text = String(describing: error)
            XCTAssert(text.contains("trial 000") && text.contains("no trial was started"), text)
            XCTAssert(text.contains("optimzer"), text)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.path), "nothing is created for a refused sweep")
    }

    func testSplitTopLevelKeepsBrackets() {
        XCTAssertEqual(SweepSpec.splitTopLevel("[64, 64],[128],\"a,b\""), ["[64, 64]", "[128]", "\"a,b\""])
        XCTAssertEqual(SweepSpec.splitTopLevel("1e-3, 3e-3"), ["1e-3", "3e-3"])
    }

    func testHalvingRungs() {
        XCTAssertEqual(HalvingSpec(minEpochs: 1, eta: 3).rungs(epochs: 27), [1, 3, 9])
        XCTAssertEqual(HalvingSpec(minEpochs: 2, eta: 2).rungs(epochs: 9), [2, 4, 8])
        XCTAssertEqual(HalvingSpec(minEpochs: 5, eta: 3).rungs(epochs: 5), [])
    }
}

final class RungPrunerTests: XCTestCase {
    func testKeepsTheBestFraction() {
        // One value: always kept (max(1, ⌊1/3⌋) = 1).
        XCTAssertTrue(RungPruner.keeps(0.5, among: [0.5], eta: 3, higherIsBetter: true))
        // Three values, eta 3: only the best goes on.
        XCTAssertTrue(RungPruner.keeps(0.9, among: [0.5, 0.7, 0.9], eta: 3, higherIsBetter: true))
        XCTAssertFalse(RungPruner.keeps(0.7, among: [0.5, 0.9, 0.7], eta: 3, higherIsBetter: true))
        // Lower is better for losses.
        XCTAssertTrue(RungPruner.keeps(0.1, among: [0.5, 0.9, 0.1], eta: 3, higherIsBetter: false))
        // Six values, eta 2: the best three.
        XCTAssertTrue(RungPruner.keeps(4, among: [1, 2, 3, 4, 5, 6], eta: 2, higherIsBetter: true))
        XCTAssertFalse(RungPruner.keeps(3, among: [1, 2, 3, 4, 5, 6], eta: 2, higherIsBetter: true))
        // NaN never goes on; a tie is kept.
        XCTAssertFalse(RungPruner.keeps(.nan, among: [.nan], eta: 3, higherIsBetter: true))
        XCTAssertTrue(RungPruner.keeps(0.5, among: [0.5, 0.5, 0.5], eta: 3, higherIsBetter: true))
    }

    func testDecisionsWaitForLowerTrialsOnly() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("rungs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        var state = SweepState(format: SweepState.format, id: "s", name: "p", pipeline: "/p.yaml", overrides: [], method: "halving",
                               monitor: "val.accuracy", mode: "max", created: "", parameters: ["k"], threadsPerTrial: 1,
                               rungs: [1, 3], eta: 2, status: "running",
                               trials: (0..<3).map { SweepState.TrialState(index: $0, name: String(format: "%03d", $0), parameters: [:],
                                                                             status: .running, runDir: "", metrics: [:]) }, best: nil)
        try state.write(to: folder)
        // Trial 0 recorded 0.8 at rung 1; trial 1 was stopped at... nothing yet: trial 2 must wait for 1.
        try RungPruner.write(value: 0.8, folder: folder, rung: 1, trial: 0)
        let pruner = try XCTUnwrap(try RungPruner(sweepFolder: folder, trial: 2, poll: 0.01))
        let done = expectation(description: "decided")
        var values: [Double] = []
        DispatchQueue.global().async {
            values = (try? pruner.waitForLowerTrials(rung: 1)) ?? []
            done.fulfill()
        }
        Thread.sleep(forTimeInterval: 0.1)
        XCTAssertTrue(values.isEmpty, "still waiting for trial 1")
        // Trial 1 ends without reaching the rung (failed): no longer waited for.
        state.trials[1].status = .failed
        try state.write(to: folder)
        wait(for: [done], timeout: 5)
        XCTAssertEqual(values, [0.8])
        XCTAssertNil(RungPruner.stoppedAt(folder: folder, trial: 2, rungs: [1, 3]))
        try RungPruner.write(value: 0.1, folder: folder, rung: 3, trial: 2)
        try RungPruner.write(decision: false, folder: folder, rung: 3, trial: 2)
        XCTAssertEqual(RungPruner.stoppedAt(folder: folder, trial: 2, rungs: [1, 3]), 3)
    }
}
