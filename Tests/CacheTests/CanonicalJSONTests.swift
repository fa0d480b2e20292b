import Foundation
import Testing
import XCTest
@testable import Cache

final class CanonicalJSONTests: XCTestCase {
    func testKeyOrderDoesNotMatter() throws {
        let a: JSONValue = ["b": 1, "a": ["y": true, "x": nil], "é": "e", "Z": 2]
        var members: [String: JSONValue] = [:]
        members["Z"] = 2
        members["é"] = "e"
        members["a"] = ["x": nil, "y": true]
        members["b"] = 1
        let b = JSONValue.object(members)
        XCTAssertEqual(try a.canonicalString(), #"{"Z":2,"a":{"x":null,"y":true},"b":1,"é":"e"}"#)
        XCTAssertEqual(try a.canonicalData(), try b.canonicalData())
        XCTAssertEqual(try a.digest(), try b.digest())
    }

    func testNumbers() throws {
        XCTAssertEqual(try JSONValue.int(-12).canonicalString(), "-12")
        XCTAssertEqual(try JSONValue.int(.max).canonicalString(), "9223372036854775807")
        XCTAssertEqual(try JSONValue.double(1).canonicalString(), "1.0")
        XCTAssertEqual(try JSONValue.double(-0.0).canonicalString(), "0.0")
        XCTAssertEqual(try JSONValue.double(0.1).canonicalString(), "0.1")
        XCTAssertEqual(try JSONValue.double(1e-5).canonicalString(), "1e-05")
        XCTAssertEqual(try JSONValue.double(1e16).canonicalString(), "1e+16")
        XCTAssertNotEqual(try JSONValue.int(1).digest(), try JSONValue.double(1).digest())
        XCTAssertThrowsError(try (["a": [.double(.nan)]] as JSONValue).canonicalData()) { error in
            XCTAssertEqual(error as? CacheError, .nonFiniteNumber(path: "a[0]"))
        }
        XCTAssertThrowsError(try JSONValue.double(.infinity).digest())
    }

    func testEscaping() throws {
        let value = JSONValue.string("q\"b\\s/\n\t\u{01}\u{1F}é😀")
        XCTAssertEqual(try value.canonicalString(), #""q\"b\\s/\n\t\u0001\u001fé😀""#)
        XCTAssertEqual(try JSONValue(parsing: try value.canonicalData()), value)
    }

    func testRoundTripThroughParser() throws {
        let value: JSONValue = ["a": [1, 1.0, 2.5, -0.25, 1e300, "x", nil, false], "n": ["deep": [[]]], "o": [:]]
        let parsed = try JSONValue(parsing: try value.canonicalData())
        XCTAssertEqual(parsed, value)
        XCTAssertEqual(try parsed.canonicalData(), try value.canonicalData())
    }

    func testParserIsStrict() {
        for text in [#"{"a":1,"a":2}"#, "[1,]", "01", "1.", #""\x""#, "{\"a\" 1}", "[1] x", #""\ud800""#, "nan"] {
            XCTAssertThrowsError(try JSONValue(parsing: Data(text.utf8), source: "t.json"), text) { error in
                XCTAssertTrue("\(error)".hasPrefix("t.json: invalid JSON"), "\(error)")
            }
        }
        XCTAssertEqual(try JSONValue(parsing: Data(#" {"s":"\ud83d\ude00\u00e9"} "#.utf8)), ["s": "😀é"])
    }

    func testEncodable() throws {
        struct Optimizer: Encodable { var name = "adamw"; var lr = 0.001; var betas = [0.9, 0.999]; var steps = 10 }
        struct Trainer: Encodable { var optimizer = Optimizer(); var epochs = 3; var tag: String? = nil }
        let value = try JSONValue(encoding: Trainer())
        XCTAssertEqual(value, ["optimizer": ["name": "adamw", "lr": 0.001, "betas": [0.9, 0.999], "steps": 10], "epochs": 3])
    }

    func testDifferencesUseDottedPaths() {
        let old: JSONValue = ["trainer": ["epochs": 10, "optimizer": ["lr": 0.001, "name": "adam"]],
                              "layers": [64, 32], "data": ["train.csv": .string(String(repeating: "a", count: 64))]]
        let new: JSONValue = ["trainer": ["epochs": 20, "optimizer": ["lr": 0.01, "name": "adam"], "warmup": 5],
                              "layers": [64], "data": ["train.csv": .string(String(repeating: "b", count: 64))]]
        let descriptions = new.differences(from: old).map(\.description)
        XCTAssertEqual(descriptions, [
            #"data["train.csv"] changed "aaaaaaaaaaaa…" → "bbbbbbbbbbbb…""#,
            "layers[1] removed (was 32)",
            "trainer.epochs changed 10 → 20",
            "trainer.optimizer.lr changed 0.001 → 0.01",
            "trainer.warmup added: 5",
        ])
        XCTAssertEqual(new.differences(from: new), [])
        XCTAssertEqual(JSONValue.int(1).differences(from: .double(1)).first?.path, "")
    }

    func testJSONDecoderRoundTrip() throws {
        let value: JSONValue = ["a": [1, "x", true, nil], "b": 2.5]
        let data = try JSONEncoder().encode(value)
        XCTAssertEqual(try JSONDecoder().decode(JSONValue.self, from: data), value)
    }
}

struct CanonicalNumberTable {
    @Test(arguments: [
        (JSONValue.double(100), "100.0"), (.double(1.5e-7), "1.5e-07"), (.double(123456789012.0), "123456789012.0"),
        (.double(-2.5), "-2.5"), (.int(0), "0"), (.int(-9223372036854775808), "-9223372036854775808"),
    ])
    func canonicalNumber(value: JSONValue, expected: String) throws {
        #expect(try value.canonicalString() == expected)
        #expect(try JSONValue(parsing: Data(expected.utf8)) == value)
    }

    @Test func abcDigest() {
        #expect(ContentHash.sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
