import Foundation
import Testing
import Training
import XCTest
@testable import Tables

/// One synthetic column and the modality and rule detection must give it.
struct DetectionCase: CustomStringConvertible, Sendable {
    let name: String
    let cells: [String?]
    let modality: ColumnModality
    let rule: String
    var description: String { name }
}

let detectionCases: [DetectionCase] = {
    let words = ["red", "green", "blue", "cyan", "teal"]
    var shuffled = (1...30).map(String.init)
    shuffled.swapAt(0, 17)
    shuffled.swapAt(5, 29)
    return [
        DetectionCase(name: "all missing", cells: [nil, nil, nil], modality: .ignore, rule: "all-missing"),
        DetectionCase(name: "constant", cells: ["a", nil, "a", "a"], modality: .ignore, rule: "constant"),
        DetectionCase(name: "numbers", cells: ["1.5", "2", nil, "-3e2", " 4 "], modality: .numeric, rule: "all-numeric"),
        DetectionCase(name: "few unique integers stay numeric", cells: (0..<40).map { String($0 % 3) }, modality: .numeric, rule: "all-numeric"),
        DetectionCase(name: "row id", cells: (1...30).map(String.init), modality: .ignore, rule: "identifier"),
        DetectionCase(name: "shuffled row id", cells: shuffled, modality: .ignore, rule: "identifier"),
        DetectionCase(name: "increasing ids with gaps", cells: (1...30).map { String($0 * 7) }, modality: .ignore, rule: "identifier"),
        DetectionCase(name: "distinct unordered integers", cells: (1...30).map { String(($0 * 7919) % 1000) }, modality: .numeric, rule: "all-numeric"),
        DetectionCase(name: "short row id is numeric", cells: (1...10).map(String.init), modality: .numeric, rule: "all-numeric"),
        DetectionCase(name: "image paths", cells: (0..<9).map { "img/\($0).JPG" } + ["notes.txt"], modality: .image, rule: "image-paths"),
        DetectionCase(name: "sentences", cells: (0..<30).map { "review number \($0) was quite good" }, modality: .text, rule: "long-strings"),
        DetectionCase(name: "long single words", cells: (0..<30).map { "supercalifragilistic\($0)" }, modality: .text, rule: "long-strings"),
        DetectionCase(name: "hashes", cells: (0..<30).map { "h\(String($0 * 2654435761 % 4294967296, radix: 16))" }, modality: .ignore, rule: "identifier"),
        DetectionCase(name: "categories", cells: (0..<100).map { words[$0 % 5] }, modality: .categorical, rule: "few-unique"),
        DetectionCase(name: "repeated long strings", cells: (0..<100).map { "a long repeated phrase \($0 % 4)" }, modality: .categorical, rule: "few-unique"),
        DetectionCase(name: "many short values", cells: (0..<100).map { "w\($0 % 50)" }, modality: .text, rule: "many-unique"),
    ]
}()

@Test("modality detection per rule", arguments: detectionCases)
func detectsModality(_ testCase: DetectionCase) {
    let inference = ColumnDetector.inferColumn(name: "c", cells: testCase.cells)
    #expect(inference.modality == testCase.modality, "\(inference.reason)")
    #expect(inference.rule == testCase.rule, "\(inference.reason)")
    #expect(inference.evidence.first?.label == "non-missing")
    #expect(!inference.reason.isEmpty)
}

@Test("decimal number parsing", arguments: [
    ("12", 12.0), ("-3.5", -3.5), (".5", 0.5), ("5.", 5.0), ("1e-3", 0.001), ("+2E2", 200.0), (" 7\t", 7.0),
    ("inf", nil), ("nan", nil), ("0x10", nil), ("1,5", nil), ("", nil), ("-", nil), ("1e", nil), ("1e400", nil), ("abc", nil),
] as [(String, Double?)])
func parsesNumbers(_ text: String, _ expected: Double?) {
    #expect(CellText.number(text) == expected)
}

final class DetectionTests: XCTestCase {
    private func table() -> Table {
        Table(source: "train.csv", columnNames: ["id", "city", "size", "label"],
              columns: [(1...30).map(String.init),
                        (0..<30).map { ["Oslo", "Rome", "Lima"][$0 % 3] },
                        (0..<30).map { $0 == 7 ? "large" : String($0 % 4) },
                        (0..<30).map { $0 % 2 == 0 ? "yes" : "no" }])
    }

    func testSchemaExcludesLabelAndKeepsOrder() throws {
        let schema = try ColumnDetector.infer(table: table(), label: "label")
        XCTAssertEqual(schema.columns.map(\.name), ["id", "city", "size", "label"])
        XCTAssertEqual(schema.columns.map(\.modality), [.ignore, .categorical, .categorical, .categorical])
        XCTAssertEqual(schema.features.map(\.name), ["city", "size"])
        XCTAssertEqual(schema.problem?.problem, .binary)
        let label = try XCTUnwrap(schema.column(named: "label"))
        XCTAssertTrue(label.isLabel)
        XCTAssertEqual(label.rule, "label")
    }

    func testOverrideWins() throws {
        let schema = try ColumnDetector.infer(table: table(), label: "label", overrides: ["city": .text, "id": .numeric])
        let city = try XCTUnwrap(schema.column(named: "city"))
        XCTAssertEqual(city.modality, .text)
        XCTAssertEqual(city.rule, "override")
        XCTAssertTrue(city.reason.contains("detection said categorical"))
        XCTAssertEqual(schema.column(named: "id")?.modality, .numeric)
    }

    func testNumericOverrideOnWordsNamesTheRow() {
        assertTableError(.nonNumericOverride(column: "size", path: "train.csv", line: 9, value: "large"), ["train.csv:9", "'size'", "'large'"]) {
            try ColumnDetector.infer(table: table(), label: "label", overrides: ["size": .numeric])
        }
    }

    func testOverrideOfUnknownColumnListsColumns() {
        assertTableError(.columnNotFound(column: "sise", role: "override", available: ["id", "city", "size", "label"], suggestion: "size"),
                         ["id, city, size, label"]) {
            try ColumnDetector.infer(table: table(), label: "label", overrides: ["sise": .categorical])
        }
    }

    func testOverrideOnLabelIsRejected() {
        assertTableError(.overrideOnLabel(column: "label")) {
            try ColumnDetector.infer(table: table(), label: "label", overrides: ["label": .text])
        }
    }

    func testSchemaRoundTripsAndRenders() throws {
        let schema = try ColumnDetector.infer(table: table(), label: "label", overrides: ["city": .text])
        let data = try JSONEncoder().encode(schema)
        XCTAssertEqual(try JSONDecoder().decode(ColumnSchema.self, from: data), schema)
        let text = schema.rendered()
        XCTAssertTrue(text.contains("label: label → binary [two-classes, 2 classes]"), text)
        XCTAssertTrue(text.contains("column"), text)
        let idLine = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix("id ") })
        XCTAssertTrue(idLine.contains("ignore") && idLine.contains("identifier") && idLine.contains("non-missing 30/30"), String(idLine))
    }

    func testSchemaWithoutLabel() throws {
        let schema = try ColumnDetector.infer(table: table(), label: nil)
        XCTAssertNil(schema.problem)
        XCTAssertEqual(schema.features.map(\.name), ["city", "size", "label"])
    }
}
