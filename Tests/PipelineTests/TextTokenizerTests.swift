import Foundation
import Tokenizers
import XCTest
@testable import Pipeline

/// Cells → token ids: framing, joining, longest-first truncation, empty and missing cells.
final class TextTokenizerTests: XCTestCase {
    func tokenizer(maxLength: Int, combine: TextTokenizer.TextCombineMode = .join) throws -> TextTokenizer {
        let folder = TextPipelineTests.fixtures.appendingPathComponent("tiny-bert")
        return TextTokenizer(tokenizer: try Tokenizer.load(folder: folder), maxLength: maxLength, combine: combine)
    }

    func testEmptyAndMissingCellsBecomeJustTheFrameAndAreCounted() throws {
        let t = try tokenizer(maxLength: 16)
        let cls = Int32(t.tokenizer.clsTokenId ?? -1), sep = Int32(t.tokenizer.sepTokenId ?? -1)
        let (texts, report) = try t.tokenize([(name: "body", cells: ["", nil, "great lamp"])])
        XCTAssertEqual(report.empty, 2)
        XCTAssertEqual(texts.count, 1)
        let b = texts[0]
        XCTAssertEqual(Array(b.lengths), [2, 2, Int32(2 + t.tokenizer.encode("great lamp", addSpecialTokens: false).ids.count)])
        XCTAssertEqual(Array(b.ids[0..<2]), [cls, sep])
        XCTAssertEqual(Array(b.mask[0..<b.tokens]), [1, 1] + Array(repeating: 0, count: b.tokens - 2))
    }

    func testJoinedColumnsAreFramedAndTruncatedLongestFirst() throws {
        let t = try tokenizer(maxLength: 8)
        let long = "great lamp and excellent kettle and lovely chair"
        let (texts, report) = try t.tokenize([(name: "title", cells: ["awful mug"]), (name: "body", cells: [long])])
        let a = t.tokenizer.encode("awful mug", addSpecialTokens: false).ids.map { Int32($0) }
        let b = t.tokenizer.encode(long, addSpecialTokens: false).ids.map { Int32($0) }
        XCTAssertEqual(report.truncated, 1)
        let cls = Int32(t.tokenizer.clsTokenId ?? -1), sep = Int32(t.tokenizer.sepTokenId ?? -1)
        // 8 tokens: [CLS] a [SEP] b' [SEP], the longer column cut first.
        let keepB = 8 - 3 - a.count
        XCTAssertEqual(texts[0].ids, [cls] + a + [sep] + Array(b.prefix(keepB)) + [sep])
        XCTAssertEqual(texts[0].name, "title+body")
    }

    func testSeparateColumnsGiveOneSequenceEach() throws {
        let t = try tokenizer(maxLength: 32, combine: .separate)
        let (texts, _) = try t.tokenize([(name: "title", cells: ["a", "b"]), (name: "body", cells: ["c d", "e"])])
        XCTAssertEqual(texts.map(\.name), ["title", "body"])
        XCTAssertEqual(texts.map(\.rows), [2, 2])
    }

    func testTheFilesOwnTruncationAndPaddingAreSwitchedOff() throws {
        let folder = TextPipelineTests.fixtures.appendingPathComponent("tiny-bert")
        let raw = try Tokenizer.load(folder: folder)
        raw.truncation = Truncation(maxLength: 3)
        let t = TextTokenizer(tokenizer: raw, maxLength: 64, combine: .join)
        XCTAssertNil(t.tokenizer.truncation)
        XCTAssertNil(t.tokenizer.padding)
    }

    func testTruncateLongestFirst() {
        XCTAssertEqual(truncateLongestFirst([[1, 2, 3, 4], [5, 6]], to: 4), [[1, 2], [5, 6]])
        XCTAssertEqual(truncateLongestFirst([[1, 2, 3], [4, 5, 6]], to: 3), [[1, 2], [4]])
        XCTAssertEqual(truncateLongestFirst([[1], [2]], to: 5), [[1], [2]])
    }
}
