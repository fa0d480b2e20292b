import Foundation
import XCTest
@testable import Tokenizers

final class APITests: XCTestCase {
    func testDocumentedExample() throws {
        let tok = try Tokenizer.load(file: fixtures.appendingPathComponent("bert-uncased.tokenizer.json"))
        let e = tok.encode("Hello world!")
        XCTAssertEqual(e.tokens.first, "[CLS]")
        XCTAssertEqual(e.tokens.last, "[SEP]")
        XCTAssertEqual(e.specialTokensMask.first, 1)
        XCTAssertEqual(tok.decode(e.ids), "hello world!")
        XCTAssertEqual(tok.clsTokenId, tok.id(of: "[CLS]"))
        XCTAssertEqual(tok.sepTokenId, tok.id(of: "[SEP]"))
        XCTAssertEqual(tok.padTokenId, tok.id(of: "[PAD]"))
        XCTAssertEqual(tok.maskTokenId, tok.id(of: "[MASK]"))
        XCTAssertEqual(tok.unkTokenId, tok.id(of: "[UNK]"))
        XCTAssertEqual(tok.specialTokenCount(pair: false), 2)
        XCTAssertEqual(tok.specialTokenCount(pair: true), 3)
    }

    func testTruncationCountsSpecialTokens() throws {
        let tok = try Tokenizer.load(file: fixtures.appendingPathComponent("bert-uncased.tokenizer.json"))
        tok.truncation = Truncation(maxLength: 6)
        let e = tok.encode(String(repeating: "word ", count: 50))
        XCTAssertEqual(e.count, 6)
        XCTAssertEqual(e.tokens.last, "[SEP]")
        tok.padding = Padding(length: .fixed(10), padId: 0, padToken: "[PAD]")
        let p = tok.encodeBatch(["a", String(repeating: "word ", count: 50)])
        XCTAssertEqual(p.map(\.count), [10, 10])
        XCTAssertEqual(p[0].attentionMask, [1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    }

    func testBatchMatchesSingle() throws {
        let tok = try Tokenizer.load(file: fixtures.appendingPathComponent("xlm-roberta.tokenizer.json"))
        let texts = (0..<300).map { "Sentence number \($0): naïve café 東京 \($0 * 7)" }
        XCTAssertEqual(tok.encodeBatch(texts), texts.map { tok.encode($0) })
        XCTAssertEqual(tok.encodeBatch(texts, parallel: false), tok.encodeBatch(texts))
    }
}

/// Pairs without special tokens: type ids come from the post-processor's template (XLM-R's and
/// RoBERTa's are all 0, BERT's second text 1). Expected values recorded with tokenizers 0.23.3.
final class PairWithoutSpecialTokensTests: XCTestCase {
    func check(_ family: String, ids: [Int], typeIds: [Int], offsets: [(Int, Int)]) throws {
        let tok = try Tokenizer.load(file: fixtures.appendingPathComponent(family + ".tokenizer.json"))
        let e = tok.encode("hello there", pair: "general kenobi", addSpecialTokens: false)
        XCTAssertEqual(e.ids, ids, family)
        XCTAssertEqual(e.typeIds, typeIds, family)
        XCTAssertEqual(e.offsets, offsets.map { Offsets($0.0, $0.1) }, family)
        XCTAssertEqual(e.specialTokensMask, Array(repeating: 0, count: ids.count), family)
    }

    func testFamilies() throws {
        try check("xlm-roberta",
                  ids: [8, 1990, 165, 1997, 1997, 1998, 143, 166, 8, 1994, 165, 160, 165, 1999, 90, 1997, 8, 1988, 165, 160, 1998, 1989, 2000],
                  typeIds: Array(repeating: 0, count: 23),
                  offsets: [(0, 1), (0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (6, 9), (9, 11), (0, 1), (0, 1), (1, 2), (2, 3),
                            (3, 4), (4, 5), (5, 6), (6, 7), (8, 9), (8, 9), (9, 10), (10, 11), (11, 12), (12, 13), (13, 14)])
        try check("roberta",
                  ids: [76, 354, 80, 83, 308, 76, 282, 73, 75, 500, 282, 499, 225, 1138, 83, 70, 77],
                  typeIds: Array(repeating: 0, count: 17),
                  offsets: [(0, 1), (1, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 10), (10, 11), (0, 1), (1, 3), (3, 5), (5, 7),
                            (8, 8), (8, 11), (11, 12), (12, 13), (13, 14)])
        try check("bert-uncased",
                  ids: [50, 396, 257, 252, 437, 251, 261, 49, 386, 385, 519, 53, 386, 252, 260, 265],
                  typeIds: Array(repeating: 0, count: 7) + Array(repeating: 1, count: 9),
                  offsets: [(0, 1), (1, 3), (3, 4), (4, 5), (6, 9), (9, 10), (10, 11), (0, 1), (1, 3), (3, 5), (5, 7), (8, 9),
                            (9, 11), (11, 12), (12, 13), (13, 14)])
        try check("misc-bytelevel",
                  ids: [73, 352, 77, 80, 306, 73, 279, 70, 72, 495, 279, 494, 222, 1131, 80, 67, 74],
                  typeIds: Array(repeating: 0, count: 8) + Array(repeating: 1, count: 9),
                  offsets: [(0, 1), (1, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 10), (10, 11), (0, 1), (1, 3), (3, 5), (5, 7),
                            (8, 8), (8, 11), (11, 12), (12, 13), (13, 14)])
    }
}

/// BERT's character classes follow the `tokenizers` library's own (older) Unicode tables
/// (CharacterTables.swift), not Swift's: probed over every code point, the two agree except
/// U+11938, whose canonical decomposition the library's NFD does not know.
final class BertCharacterClassTests: XCTestCase {
    func normalize(_ text: String, lowercase: Bool = true) -> String {
        let scalars = Array(text.unicodeScalars)
        var s = NormalizedString(original: scalars, range: 0..<scalars.count)
        BertNormalizer(lowercase: lowercase).normalize(&s)
        return s.string
    }

    func testClassesAsTheLibraryDefinesThem() {
        XCTAssertEqual(normalize("a\u{378}b"), "a\u{378}b")        // unassigned: kept
        XCTAssertEqual(normalize("a\u{200B}\u{E000}\u{AD}b"), "ab")  // format, private use: removed
        XCTAssertEqual(normalize("a\u{13430}b"), "a\u{13430}b")    // format since Unicode 12: kept by the library
        XCTAssertEqual(normalize("a\u{897}b"), "a\u{897}b")        // mark since Unicode 16: not stripped
        XCTAssertEqual(normalize("Éa\u{301}\u{3000}中"), "ea  中 ")
        XCTAssertTrue(("\u{2E41}" as Unicode.Scalar).isBertPunctuation)
        XCTAssertFalse(("\u{2E43}" as Unicode.Scalar).isBertPunctuation)   // punctuation since Unicode 10: not split
        XCTAssertTrue(("\u{166D}" as Unicode.Scalar).isBertPunctuation)    // punctuation for the library
    }
}
