import Foundation
import XCTest
@testable import Tables

/// Parses CSV text held in memory, as if read from `source`.
func readCSV(_ text: String, source: String = "data/train.csv", markers: Set<String> = TableReader.defaultMissingMarkers) throws -> Table {
    try TableReader(format: .csv, missingMarkers: markers).read(data: Data(text.utf8), format: .csv, source: source)
}

/// Parses JSON Lines text held in memory.
func readJSONL(_ text: String, source: String = "data/train.jsonl") throws -> Table {
    try TableReader().read(data: Data(text.utf8), format: .jsonl, source: source)
}

/// Asserts that `body` throws exactly `expected`, and that its message contains `fragments`.
func assertTableError<T>(_ expected: TableError, _ fragments: [String] = [], file: StaticString = #filePath, line: UInt = #line,
                         _ body: () throws -> T) {
    do {
        _ = try body()
        XCTFail("expected \(expected)", file: file, line: line)
    } catch let error as TableError {
        XCTAssertEqual(error, expected, file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(error.description.contains(fragment), "'\(error.description)' lacks '\(fragment)'", file: file, line: line)
        }
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
}

/// A one-column table (header on line 1, rows from line 2).
func singleColumn(_ name: String, _ cells: [String?], source: String = "t.csv") -> Table {
    Table(source: source, columnNames: [name], columns: [cells])
}

/// A temporary directory removed by the caller.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("tables-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
