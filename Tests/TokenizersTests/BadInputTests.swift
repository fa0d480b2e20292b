import Foundation
import XCTest
@testable import Tokenizers

/// Broken tokenizer files fail with messages that name the file and the JSON path.
final class BadInputTests: XCTestCase {
    func message(_ json: String) -> String {
        do {
            _ = try Tokenizer.load(json: Data(json.utf8), name: "tokenizer.json")
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    let wordPiece = #""model": {"type": "WordPiece", "vocab": {"[UNK]": 0, "a": 1}, "unk_token": "[UNK]"}"#

    func testUnknownComponentTypesAreNamed() {
        let m = message(#"{"normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Lowercase"}, {"type": "Foo"}]}, "# + wordPiece + "}")
        XCTAssertTrue(m.hasPrefix(#"tokenizer.json: normalizer.normalizers[2].type: unknown normalizer "Foo"; supported: "#), m)
        XCTAssertTrue(m.contains("BertNormalizer") && m.contains("Precompiled"), m)
        XCTAssertTrue(message(#"{"pre_tokenizer": {"type": "Bar"}, "# + wordPiece + "}").contains(#"pre_tokenizer.type: unknown pre-tokenizer "Bar""#))
        XCTAssertTrue(message(#"{"model": {"type": "Baz", "vocab": {}}}"#).contains(#"model.type: unknown model "Baz""#))
        XCTAssertTrue(message(#"{"decoder": {"type": "Qux"}, "# + wordPiece + "}").contains(#"decoder.type: unknown decoder "Qux""#))
        XCTAssertTrue(message(#"{"post_processor": {"type": "Quux"}, "# + wordPiece + "}").contains(#"post_processor.type: unknown post-processor "Quux""#))
    }

    func testMalformedJSONHasALocation() {
        let m = message("{\n  \"model\": {\"type\": \"WordPiece\",,}\n}")
        XCTAssertTrue(m.hasPrefix("tokenizer.json:2:"), m)
        XCTAssertTrue(m.contains("malformed JSON"), m)
        XCTAssertTrue(message("").contains("malformed JSON"))
        XCTAssertTrue(message("[1, 2").contains("malformed JSON"))
    }

    func testMissingOrWrongValues() {
        XCTAssertEqual(message("{}"), "tokenizer.json: model: missing")
        XCTAssertEqual(message(#"{"model": {"type": "WordPiece", "unk_token": "[UNK]"}}"#), "tokenizer.json: model.vocab: missing")
        XCTAssertEqual(message(#"{"model": {"type": "WordPiece", "vocab": {"a": "one"}}}"#),
                       "tokenizer.json: model.vocab.a: expected an integer, found a string")
        XCTAssertEqual(message(#"{"model": {"type": "WordPiece", "vocab": {"a": 0}}}"#),
                       #"tokenizer.json: model: unknown token "[UNK]" is not in the vocabulary"#)
        XCTAssertTrue(message(#"{"normalizer": {"type": "BertNormalizer", "lowercase": "yes"}, "# + wordPiece + "}")
            .contains("normalizer.lowercase: expected true or false, found a string"))
        XCTAssertTrue(message(#"{"normalizer": {"type": "Precompiled", "precompiled_charsmap": "!!!"}, "# + wordPiece + "}")
            .contains("normalizer.precompiled_charsmap: not valid base64"))
    }

    func testBadMerges() {
        let vocab = #""vocab": {"a": 0, "b": 1, "ab": 2}"#
        XCTAssertEqual(message(#"{"model": {"type": "BPE", "# + vocab + #", "merges": ["a c"]}}"#),
                       #"tokenizer.json: model.merges[0]: merge token "c" is not in the vocabulary"#)
        XCTAssertEqual(message(#"{"model": {"type": "BPE", "# + vocab + #", "merges": ["a b", "ab"]}}"#),
                       #"tokenizer.json: model.merges[1]: merge "ab" is not two tokens separated by a space"#)
        XCTAssertEqual(message(#"{"model": {"type": "BPE", "# + vocab + #", "merges": [["b", "a"]]}}"#),
                       #"tokenizer.json: model.merges[0]: merged token "ba" is not in the vocabulary"#)
        // Both merge forms load.
        XCTAssertEqual(message(#"{"model": {"type": "BPE", "# + vocab + #", "merges": ["a b"]}}"#), "no error")
        XCTAssertEqual(message(#"{"model": {"type": "BPE", "# + vocab + #", "merges": [["a", "b"]]}}"#), "no error")
    }

    func testFolders() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tok-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertThrowsError(try Tokenizer.load(folder: dir)) { error in
            XCTAssertEqual(error as? TokenizerError, .noTokenizer(folder: dir.path))
        }
        try "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n".write(to: dir.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
        try "{\"do_lower_case\": tru}".write(to: dir.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Tokenizer.load(folder: dir)) { error in
            XCTAssertTrue("\(error)".contains("tokenizer_config.json:1:"), "\(error)")
        }
        try "{\"do_lower_case\": false}".write(to: dir.appendingPathComponent("tokenizer_config.json"), atomically: true, encoding: .utf8)
        let tok = try Tokenizer.load(folder: dir)
        XCTAssertEqual(tok.encode("hello Hello").ids, [2, 4, 1, 3])
    }

    /// Odd text never crashes and always yields well-formed encodings.
    func testAnyTextEncodes() throws {
        let tok = try Tokenizer.load(file: fixtures.appendingPathComponent("roberta.tokenizer.json"))
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            var s = String.UnicodeScalarView()
            for _ in 0..<Int.random(in: 0..<40, using: &rng) {
                let v = UInt32.random(in: 0..<0x30000, using: &rng)
                if let c = Unicode.Scalar(v) { s.append(c) }
            }
            let text = String(s)
            let e = tok.encode(text, pair: text)
            XCTAssertEqual(Set([e.ids.count, e.typeIds.count, e.offsets.count, e.tokens.count, e.attentionMask.count]).count, 1)
            let n = text.unicodeScalars.count
            XCTAssertTrue(e.offsets.allSatisfy { $0.start >= 0 && $0.start <= $0.end && $0.end <= n })
            _ = tok.decode(e.ids)
        }
    }
}
