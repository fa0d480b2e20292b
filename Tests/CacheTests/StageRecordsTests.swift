import Foundation
import XCTest
@testable import Cache

final class StageRecordsTests: XCTestCase {
    func testRecordRoundTripAndReasons() throws {
        let root = try makeTemporaryDirectory(self)
        let seen = Collected()
        let store = ContentStore(root: root) { seen.append($0) }
        let records = store.records
        let pipeline = StageRecords.pipelineID(for: URL(fileURLWithPath: "/p/train.yaml"))
        XCTAssertTrue(pipeline.hasPrefix("train-"))

        let v1: JSONValue = ["trainer": ["epochs": 10], "data": ["train.csv": .string(ContentHash.sha256("v1"))]]
        let k1 = try v1.digest()
        XCTAssertNil(records.last(pipeline: pipeline, stage: "train"))
        XCTAssertEqual(try store.status(pipeline: pipeline, stage: "train", key: k1, components: v1), .mustRun(.neverRun))

        try records.record(pipeline: pipeline, stage: "train", key: k1, components: v1)
        let last = try XCTUnwrap(records.last(pipeline: pipeline, stage: "train"))
        XCTAssertEqual(last.key, k1)
        XCTAssertEqual(last.components, v1)

        XCTAssertEqual(try store.status(pipeline: pipeline, stage: "train", key: k1, components: v1), .mustRun(.entryMissing))

        let v2: JSONValue = ["trainer": ["epochs": 20], "data": ["train.csv": .string(ContentHash.sha256("v2"))]]
        guard case .mustRun(.inputsChanged(let differences)) = try store.status(pipeline: pipeline, stage: "train",
                                                                                 key: try v2.digest(), components: v2) else {
            return XCTFail("expected inputsChanged")
        }
        XCTAssertEqual(differences.map(\.path), [#"data["train.csv"]"#, "trainer.epochs"])
        XCTAssertEqual(differences[1].description, "trainer.epochs changed 10 → 20")

        let entry = try store.put(key: k1, stage: "train", description: "", components: v1) { dir in
            try Data().write(to: dir.appendingPathComponent("x"))
        }
        XCTAssertEqual(try store.status(pipeline: pipeline, stage: "train", key: k1, components: v1), .cached(entry))

        XCTAssertThrowsError(try records.record(pipeline: "../evil", stage: "s", key: k1, components: nil))
        XCTAssertThrowsError(try records.record(pipeline: pipeline, stage: "s", key: "short", components: nil))

        // A corrupt record is reported and ignored.
        let file = root.appendingPathComponent("records/\(pipeline)/train.json")
        try Data("garbage".utf8).write(to: file)
        XCTAssertNil(records.last(pipeline: pipeline, stage: "train"))
        XCTAssertEqual(seen.items.count, 1)
    }
}
