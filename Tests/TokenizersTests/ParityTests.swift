import Foundation
import XCTest
@testable import Tokenizers

/// Parity with the Python `tokenizers` library on the fixtures written by
/// scripts/fixtures/make_tokenizer_fixtures.py: ≥1000 texts per family (accents, CJK, emoji,
/// URLs, numbers, long words, whitespace runs, control characters, the empty string), pairs,
/// truncation, padding, encoding without special tokens, and decoding.
final class ParityTests: XCTestCase {
    func testBertUncased() throws { try checkFamily("bert-uncased") }
    func testBertCased() throws { try checkFamily("bert-cased") }
    func testMPNet() throws { try checkFamily("mpnet") }
    func testRoberta() throws { try checkFamily("roberta") }
    func testXLMRoberta() throws { try checkFamily("xlm-roberta") }
    func testDebertaV3() throws { try checkFamily("deberta-v3") }
    func testLlamaByteFallback() throws { try checkFamily("llama") }
    func testMiscComponents() throws { try checkFamily("misc") }
    func testMiscWordLevel() throws { try checkFamily("misc-wordlevel") }
    func testMiscByteLevelSequence() throws { try checkFamily("misc-bytelevel") }

    /// `vocab.txt` alone (plus tokenizer_config.json's do_lower_case) gives what
    /// BertTokenizerFast(vocab=…) gives.
    func testVocabTxtOnly() throws {
        for family in ["bert-uncased", "bert-cased"] {
            let tok = try Tokenizer.load(folder: fixtures.appendingPathComponent(family + "-vocab"))
            XCTAssertNil(tok.truncation)
            try checkSingles(tok, family: family + " (vocab.txt)", decode: true)
        }
    }

    // MARK: -

    func checkFamily(_ family: String) throws {
        let tok = try Tokenizer.load(file: fixtures.appendingPathComponent(family + ".tokenizer.json"))
        try checkSingles(tok, family: family, decode: true)
        try checkRest(tok, family: family)
    }

    func expected(_ family: String) throws -> [String: Any] {
        let url = fixtures.appendingPathComponent(family.split(separator: " ")[0] + ".expected.json")
        return try XCTUnwrap(try readJSON(url) as? [String: Any])
    }

    func checkSingles(_ tok: Tokenizer, family: String, decode: Bool) throws {
        let inputs = try XCTUnwrap(ParityInputs.shared, "Tests/Fixtures/tokenizers/inputs.json missing")
        let exp = try expected(family)
        let singles = try XCTUnwrap(exp["single"] as? [[String: Any]])
        var log = MismatchLog(family: family)
        let encodings = tok.encodeBatch(Array(inputs.texts.prefix(singles.count)))
        for (k, d) in singles.enumerated() {
            let e = Expected(d)
            log.check("text \(k) \"\(debugDescription(inputs.texts[k]))\"", e.difference(encodings[k]))
            // One at a time gives the same as the batch.
            if k % 97 == 0 { XCTAssertEqual(tok.encode(inputs.texts[k]), encodings[k]) }
        }
        if singles.count >= 1000 { XCTAssertGreaterThanOrEqual(log.checked, 1000) }
        if decode, let decodes = exp["decode"] as? [[String: String]] {
            for (k, d) in decodes.enumerated() {
                let ids = encodings[k].ids
                log.check("decode \(k)", tok.decode(ids, skipSpecialTokens: true) == d["skip"] ? nil
                          : "skip: \"\(debugDescription(tok.decode(ids)))\" != \"\(debugDescription(d["skip"] ?? ""))\"")
                log.check("decode \(k) keeping special", tok.decode(ids, skipSpecialTokens: false) == d["keep"] ? nil
                          : "keep: \"\(debugDescription(tok.decode(ids, skipSpecialTokens: false)))\" != \"\(debugDescription(d["keep"] ?? ""))\"")
            }
        }
        log.assertClean()
    }

    func checkRest(_ tok: Tokenizer, family: String) throws {
        let inputs = try XCTUnwrap(ParityInputs.shared)
        let exp = try expected(family)
        var log = MismatchLog(family: family)
        for (k, d) in (try XCTUnwrap(exp["pairs"] as? [[String: Any]])).enumerated() {
            let (a, b) = inputs.pairs[k]
            log.check("pair \(k)", Expected(d).difference(tok.encode(a, pair: b)))
        }
        for (k, d) in (try XCTUnwrap(exp["no_special"] as? [[String: Any]])).enumerated() {
            log.check("no special \(k)", Expected(d).difference(tok.encode(inputs.texts[k], addSpecialTokens: false)))
        }
        for (k, d) in (try XCTUnwrap(exp["truncated"] as? [[String: Any]])).enumerated() where d["error"] == nil {
            let t = try XCTUnwrap(tok.copy())
            let strategy: Truncation.Strategy
            switch d["strategy"] as? String {
            case "only_first": strategy = .onlyFirst
            case "only_second": strategy = .onlySecond
            default: strategy = .longestFirst
            }
            t.truncation = Truncation(maxLength: try XCTUnwrap(d["max_length"] as? Int), strategy: strategy,
                                      fromLeft: d["direction"] as? String == "left")
            let a = try XCTUnwrap(d["a"] as? String)
            log.check("truncated \(k) (\(strategy), \(d["max_length"]!), \(d["direction"]!))",
                      Expected(d).difference(t.encode(a, pair: d["b"] as? String)))
        }
        let padded = try XCTUnwrap(exp["padded"] as? [String: Any])
        let batch = try XCTUnwrap(padded["texts"] as? [String])
        let t = tok.copy()
        t.padding = Padding(length: .longest, padId: try XCTUnwrap(padded["pad_id"] as? Int),
                            padToken: try XCTUnwrap(padded["pad_token"] as? String))
        for (k, (e, d)) in zip(t.encodeBatch(batch), try XCTUnwrap(padded["longest"] as? [[String: Any]])).enumerated() {
            log.check("padded longest \(k)", Expected(d).difference(e))
        }
        t.padding?.length = .fixed(40)
        t.padding?.left = true
        for (k, (e, d)) in zip(t.encodeBatch(batch), try XCTUnwrap(padded["fixed_left_40"] as? [[String: Any]])).enumerated() {
            log.check("padded fixed left \(k)", Expected(d).difference(e))
        }
        log.assertClean()
    }
}

/// The real tokenizers of all-MiniLM-L6-v2 and all-mpnet-base-v2 (fetched by
/// scripts/fetch-models into models/, not committed) against ids recorded by the generator.
final class RealTokenizerTests: XCTestCase {
    func testAllMiniLM() throws { try check("all-MiniLM-L6-v2") }
    func testAllMPNet() throws { try check("all-mpnet-base-v2") }

    /// The example in `Tokenizer`'s documentation.
    func testDocumentedExample() throws {
        let folder = packageRoot.appendingPathComponent("models/all-MiniLM-L6-v2")
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("tokenizer.json").path) else {
            throw XCTSkip("models/all-MiniLM-L6-v2/tokenizer.json is absent; run scripts/fetch-models to fetch it")
        }
        let tok = try Tokenizer.load(folder: folder)
        tok.truncation = Truncation(maxLength: 128)
        tok.padding = nil
        let e = tok.encode("Hello world!")
        XCTAssertEqual(e.ids, [101, 7592, 2088, 999, 102])
        XCTAssertEqual(tok.decode(e.ids), "hello world!")
    }

    func check(_ name: String) throws {
        let folder = packageRoot.appendingPathComponent("models/\(name)")
        guard FileManager.default.fileExists(atPath: folder.appendingPathComponent("tokenizer.json").path) else {
            throw XCTSkip("models/\(name)/tokenizer.json is absent; run scripts/fetch-models to fetch it")
        }
        let configured = try Tokenizer.load(folder: folder)
        let tok = configured.copy()
        tok.truncation = nil
        tok.padding = nil
        let inputs = try XCTUnwrap(ParityInputs.shared)
        let exp = try XCTUnwrap(try readJSON(fixtures.appendingPathComponent("real-\(name).expected.json")) as? [String: Any])
        var log = MismatchLog(family: name)
        let encodings = tok.encodeBatch(inputs.texts)
        for (k, d) in (try XCTUnwrap(exp["single"] as? [[String: Any]])).enumerated() {
            log.check("text \(k) \"\(debugDescription(inputs.texts[k]))\"", Expected(d).difference(encodings[k]))
        }
        XCTAssertGreaterThanOrEqual(log.checked, 1000)
        for (k, d) in (try XCTUnwrap(exp["pairs"] as? [[String: Any]])).enumerated() {
            log.check("pair \(k)", Expected(d).difference(tok.encode(inputs.pairs[k].0, pair: inputs.pairs[k].1)))
        }
        // As the file configures it: truncation to 128 and padding to 128.
        for (k, d) in (try XCTUnwrap(exp["as_configured"] as? [[String: Any]])).enumerated() {
            log.check("configured \(k)", Expected(d).difference(configured.encode(inputs.texts[k * 25])))
        }
        log.assertClean()
    }
}
