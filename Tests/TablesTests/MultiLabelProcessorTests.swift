import Foundation
import XCTest
@testable import Tables

final class MultiLabelProcessorTests: XCTestCase {
    func testBinaryColumnsInEveryAcceptedSpelling() throws {
        let table = try readCSV("a,b,c,x\n1,yes,TRUE,3\n0,no,false,4\n1,Yes,False,5\n,no,true,6\n")
        let p = try MultiLabelProcessor.fit(table, source: .columns(["a", "b", "c"]))
        XCTAssertEqual(p.labels, ["a", "b", "c"])
        let (y, unknown) = try p.encode(table)
        XCTAssertEqual(Array(y[0..<9]), [1, 1, 1, 0, 0, 0, 1, 1, 0])
        XCTAssertTrue(y[9..<12].allSatisfy(\.isNaN), "a row missing one label cell has no labels")
        XCTAssertEqual(unknown, [:])
    }

    func testNonBinaryColumnIsNamedWithItsValues() throws {
        let table = try readCSV("a,b\n1,red\n0,blue\n1,1\n")
        assertTableError(.problemTypeMismatch(column: "b", problem: "multilabel",
                                              detail: "it holds '1', 'blue', 'red', and the columns of a multi-label task must be binary (0/1, true/false, yes/no); "
                                                  + "use a problem mapping to make 'b' a task of its own, or write its cells as 0/1"),
                         ["'b'", "'red'", "'blue'"]) {
            try MultiLabelProcessor.fit(table, source: .columns(["a", "b"]))
        }
    }

    func testLabelSetsWithSeparatorAndJSONLists() throws {
        let table = try readCSV("g\ndrama;comedy\n\" action ; drama \"\n\"[\"\"comedy\"\"]\"\n[]\n")
        let p = try MultiLabelProcessor.fit(table, source: .labelSets(column: "g", separator: ";"))
        XCTAssertEqual(p.labels, ["action", "comedy", "drama"])
        let test = try readCSV("g\ncomedy;western;space\ndrama\n")
        let (y, unknown) = try p.encode(test)
        XCTAssertEqual(y, [0, 1, 0, 0, 0, 1])
        XCTAssertEqual(unknown, ["western": 1, "space": 1])
        XCTAssertEqual(p.decode([0.7, 0.2, 0.5], separator: "|"), "action|drama")
        // Round trip through Codable.
        XCTAssertEqual(try JSONDecoder().decode(MultiLabelProcessor.self, from: JSONEncoder().encode(p)), p)
    }

    func testEmptyVocabularyAndMalformedLists() throws {
        let empty = try readCSV("g\n[]\n\" ; \"\n")
        assertTableError(.nothingToFit(column: "g", path: "data/train.csv",
                                       detail: "no training row holds a label, so the vocabulary is empty; check data.label_separator (';') and the column's cells")) {
            try MultiLabelProcessor.fit(empty, source: .labelSets(column: "g", separator: ";"))
        }
        let bad = try readCSV("g\ndrama\n[1]\n")
        assertTableError(.malformedLabelSet(column: "g", path: "data/train.csv", line: 3, value: "[1]"), ["data/train.csv:3"]) {
            try MultiLabelProcessor.fit(bad, source: .labelSets(column: "g", separator: ";"))
        }
        assertTableError(.columnNotFound(column: "gg", role: "label", available: ["g"], suggestion: "g")) {
            try MultiLabelProcessor.fit(bad, source: .labelSets(column: "gg", separator: ";"))
        }
    }
}
