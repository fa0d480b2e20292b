import Foundation
import XCTest
@testable import Tables

final class CSVReaderTests: XCTestCase {
    func testPlainRowsAndMissingMarkers() throws {
        let table = try readCSV("a,b,c\n1,x,\nNA,y z,null\n")
        XCTAssertEqual(table.columnNames, ["a", "b", "c"])
        XCTAssertEqual(table.rowCount, 2)
        XCTAssertEqual(table.column(named: "a"), ["1", nil])
        XCTAssertEqual(table.column(named: "b"), ["x", "y z"])
        XCTAssertEqual(table.column(named: "c"), [nil, nil])
        XCTAssertEqual(table.lineNumbers, [2, 3])
        XCTAssertEqual(table.source, "data/train.csv")
    }

    func testNothingIsTrimmed() throws {
        let table = try readCSV("a,b\n x , NA\n")
        XCTAssertEqual(table.column(named: "a"), [" x "])
        XCTAssertEqual(table.column(named: "b"), [" NA"], "only an exact marker is missing")
    }

    func testCustomMarkers() throws {
        let table = try readCSV("a\n?\nNA\n", markers: ["?"])
        XCTAssertEqual(table.column(named: "a"), [nil, "NA"])
    }

    func testQuotedFieldsAndDoubledQuotes() throws {
        let table = try readCSV("name,quote\n\"Smith, J\",\"he said \"\"hi\"\"\"\n")
        XCTAssertEqual(table.column(named: "name"), ["Smith, J"])
        XCTAssertEqual(table.column(named: "quote"), ["he said \"hi\""])
    }

    func testEmbeddedNewlinesKeepLineNumbers() throws {
        let text = "id,text\n1,\"first\nsecond\nthird\"\n2,plain\n3,\"a\r\nb\"\n4,last\n"
        let table = try readCSV(text)
        XCTAssertEqual(table.column(named: "text"), ["first\nsecond\nthird", "plain", "a\r\nb", "last"])
        XCTAssertEqual(table.lineNumbers, [2, 5, 6, 8])
    }

    func testRaggedRowAfterEmbeddedNewlineNamesItsLine() {
        assertTableError(.raggedRow(path: "data/train.csv", line: 5, expected: 2, found: 3), ["data/train.csv:5", "3 fields", "has 2"]) {
            try readCSV("id,text\n1,\"two\nlines\"\n2,ok\n3,a,b\n")
        }
    }

    func testCRLFLineEndings() throws {
        let table = try readCSV("a,b\r\n1,2\r\n3,4\r\n")
        XCTAssertEqual(table.column(named: "b"), ["2", "4"])
        XCTAssertEqual(table.lineNumbers, [2, 3])
    }

    func testByteOrderMarkIsSkipped() throws {
        var data = Data([0xEF, 0xBB, 0xBF])
        data.append(Data("label,x\nyes,1\n".utf8))
        let table = try TableReader().read(data: data, format: .auto, source: "bom.csv")
        XCTAssertEqual(table.columnNames, ["label", "x"])
    }

    func testBlankLinesAreSkippedButCounted() throws {
        let table = try readCSV("a,b\n1,2\n\n3,4")
        XCTAssertEqual(table.column(named: "a"), ["1", "3"])
        XCTAssertEqual(table.lineNumbers, [2, 4])
    }

    func testMultilineHeaderShiftsLines() throws {
        let table = try readCSV("\"a\nb\",c\n1,2\n")
        XCTAssertEqual(table.columnNames, ["a\nb", "c"])
        XCTAssertEqual(table.lineNumbers, [3])
    }

    func testEmptyFile() {
        assertTableError(.emptyFile(path: "data/train.csv"), ["empty"]) { try readCSV("") }
    }

    func testHeaderOnly() {
        assertTableError(.noRows(path: "data/train.csv"), ["no data rows"]) { try readCSV("a,b\n") }
    }

    func testDuplicateHeader() {
        assertTableError(.duplicateHeader(path: "data/train.csv", name: "x", positions: [1, 3]), ["'x'", "1, 3"]) {
            try readCSV("x,y,x\n1,2,3\n")
        }
    }

    func testEmptyHeaderName() {
        assertTableError(.emptyHeader(path: "data/train.csv", positions: [2]), ["column 2"]) { try readCSV("x,,z\n1,2,3\n") }
    }

    func testShortRow() {
        assertTableError(.raggedRow(path: "data/train.csv", line: 3, expected: 3, found: 2)) { try readCSV("a,b,c\n1,2,3\n4,5\n") }
    }

    func testInvalidUTF8IsReplacedAndItsLinesReported() throws {
        var data = Data("a,b\n1,2\n".utf8)
        data.append(contentsOf: [0x33, 0x2C, 0xFF, 0x0A, 0x34, 0x2C, 0x35, 0x0A])
        let table = try TableReader().read(data: data, format: .csv, source: "x.csv")
        XCTAssertEqual(table.column(named: "b"), ["2", "\u{FFFD}", "5"])
        XCTAssertEqual(table.invalidUTF8Lines, [3])
    }

    func testFilesByExtensionAndMissingFile() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let csv = directory.appendingPathComponent("t.CSV")
        try Data("a\n1\n".utf8).write(to: csv)
        XCTAssertEqual(try TableReader().read(csv, displayPath: "t.CSV").column(named: "a"), ["1"])
        let jsonl = directory.appendingPathComponent("t.ndjson")
        try Data("{\"a\": 2}\n".utf8).write(to: jsonl)
        XCTAssertEqual(try TableReader().read(jsonl).column(named: "a"), ["2"])
        let tsv = directory.appendingPathComponent("t.tsv")
        try Data("a\n1\n".utf8).write(to: tsv)
        assertTableError(.unknownFormat(path: "t.tsv", fileExtension: "tsv"), [".csv", ".jsonl"]) {
            try TableReader().read(tsv, displayPath: "t.tsv")
        }
        XCTAssertEqual(try TableReader(format: .csv).read(tsv).column(named: "a"), ["1"], "an explicit format wins")
        assertTableError(.fileNotFound(path: "missing.csv"), ["missing.csv", "relative to the pipeline file"]) {
            try TableReader().read(directory.appendingPathComponent("missing.csv"), displayPath: "missing.csv")
        }
    }

    func testSelectingRowsKeepsLineNumbers() throws {
        let table = try readCSV("a\n\"x\ny\"\n2\n3\n")
        let picked = table.selectingRows([2, 0])
        XCTAssertEqual(picked.column(named: "a"), ["3", "x\ny"])
        XCTAssertEqual(picked.lineNumbers, [5, 2])
    }

    func testColumnLookupSuggestsNearMiss() {
        let table = singleColumn("label", ["a"])
        assertTableError(.columnNotFound(column: "lable", role: "label", available: ["label"], suggestion: "label"), ["did you mean 'label'"]) {
            try table.requireColumn(named: "lable", role: "label")
        }
    }
}
