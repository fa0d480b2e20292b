import Foundation
import XCTest
@testable import Tables

final class JSONLinesTests: XCTestCase {
    func testValuesKeyOrderAndMissingKeys() throws {
        let text = """
        {"id": 1, "price": 1.50e2, "ok": true, "name": "caf\\u00e9 \\"x\\""}

        {"name": "b", "extra": null, "ok": false, "id": -0.5}
        {"id": 3, "extra": "NA", "new": "z"}
        """
        let table = try readJSONL(text)
        XCTAssertEqual(table.columnNames, ["id", "price", "ok", "name", "extra", "new"])
        XCTAssertEqual(table.column(named: "id"), ["1", "-0.5", "3"])
        XCTAssertEqual(table.column(named: "price"), ["1.50e2", nil, nil], "numbers are kept as written")
        XCTAssertEqual(table.column(named: "ok"), ["true", "false", nil])
        XCTAssertEqual(table.column(named: "name"), ["café \"x\"", "b", nil])
        XCTAssertEqual(table.column(named: "extra"), [nil, nil, nil])
        XCTAssertEqual(table.column(named: "new"), [nil, nil, "z"])
        XCTAssertEqual(table.lineNumbers, [1, 3, 4])
    }

    func testSurrogatePairsAndCRLF() throws {
        let table = try readJSONL("{\"e\": \"\\ud83d\\ude00\"}\r\n{\"e\": \"b\"}\r\n")
        XCTAssertEqual(table.column(named: "e"), ["😀", "b"])
    }

    func testNestedValueIsAnError() {
        assertTableError(.invalidJSON(path: "data/train.jsonl", line: 2,
                                      detail: "the value of \"tags\" is a nested array; flatten it into separate keys or a string"),
                         ["data/train.jsonl:2", "tags"]) {
            try readJSONL("{\"a\": 1}\n{\"a\": 2, \"tags\": [1, 2]}\n")
        }
    }

    func testNonObjectLineIsAnError() {
        assertTableError(.invalidJSON(path: "data/train.jsonl", line: 1, detail: "the line is not a JSON object (it must start with '{')")) {
            try readJSONL("[1, 2]\n")
        }
    }

    func testMalformedLinesNameTheLine() throws {
        for (text, line) in [("{\"a\": 1}\n{\"a\": 01}\n", 2), ("{\"a\": tru}\n", 1), ("{\"a\": 1,}\n", 1),
                             ("{\"a\": 1} x\n", 1), ("{\"a\": \"open}\n", 1), ("{\"a\": 1, \"a\": 2}\n", 1)] {
            do {
                _ = try readJSONL(text)
                XCTFail("accepted \(text)")
            } catch let TableError.invalidJSON(path, errorLine, _) {
                XCTAssertEqual(path, "data/train.jsonl")
                XCTAssertEqual(errorLine, line, text)
            }
        }
    }

    func testEmptyFile() {
        assertTableError(.emptyFile(path: "data/train.jsonl")) { try readJSONL("\n  \n") }
    }
}
