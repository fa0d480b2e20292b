import Foundation
import XCTest
@testable import Tokenizers

/// The package root: the nearest folder above this file holding Package.swift.
let packageRoot: URL = {
    var url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while url.path != "/" {
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url }
        url = url.deletingLastPathComponent()
    }
    return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
}()

let fixtures = packageRoot.appendingPathComponent("Tests/Fixtures/tokenizers")

/// Reads JSON with the module's own parser: Foundation's drops a leading U+FEFF from strings,
/// which some inputs start with on purpose.
func readJSON(_ url: URL) throws -> Any {
    func convert(_ v: JSONValue) -> Any {
        switch v {
        case .null: return NSNull()
        case .bool(let b): return b
        case .number(let d): return d.rounded() == d && abs(d) < 1e15 ? Int(d) as Any : d as Any
        case .string(let s): return s
        case .array(let xs): return xs.map(convert)
        case .object(let ms):
            var d: [String: Any] = [:]
            for m in ms { d[m.key] = convert(m.value) }
            return d
        }
    }
    return convert(try JSONParser.parse(Data(contentsOf: url)))
}

/// The shared inputs of the parity fixtures.
struct ParityInputs {
    let texts: [String]
    let pairs: [(String, String)]

    static let shared: ParityInputs? = {
        guard let root = try? readJSON(fixtures.appendingPathComponent("inputs.json")) as? [String: Any],
              let texts = root["texts"] as? [String], let pairs = root["pairs"] as? [[String]] else { return nil }
        return ParityInputs(texts: texts, pairs: pairs.map { ($0[0], $0[1]) })
    }()
}

/// One expected encoding from a fixture.
struct Expected {
    let ids: [Int]
    let offsets: [Offsets]?
    let typeIds: [Int]?
    let special: [Int]?
    let attention: [Int]?
    let tokens: [String]?

    init(_ d: [String: Any]) {
        ids = (d["ids"] as? [Int]) ?? []
        if let packed = d["offsets"] as? [Int] {
            var out: [Offsets] = []
            var prev = 0
            var k = 0
            while k + 1 < packed.count {
                let s = prev + packed[k], e = s + packed[k + 1]
                out.append(Offsets(s, e))
                prev = e
                k += 2
            }
            offsets = out
        } else {
            offsets = nil
        }
        func digits(_ key: String) -> [Int]? { (d[key] as? String).map { $0.compactMap { $0.wholeNumberValue } } }
        typeIds = digits("type_ids")
        special = digits("special")
        attention = digits("attention")
        tokens = d["tokens"] as? [String]
    }

    /// Differences from an actual encoding, described; nil when equal.
    func difference(_ e: Encoding) -> String? {
        if e.ids != ids { return "ids \(e.ids) != expected \(ids)" }
        if let offsets, e.offsets != offsets { return "offsets \(e.offsets) != expected \(offsets)" }
        let t = typeIds ?? Array(repeating: 0, count: ids.count)
        if e.typeIds != t { return "type ids \(e.typeIds) != expected \(t)" }
        if let special, e.specialTokensMask != special { return "special mask \(e.specialTokensMask) != expected \(special)" }
        let a = attention ?? Array(repeating: 1, count: ids.count)
        if e.attentionMask != a { return "attention \(e.attentionMask) != expected \(a)" }
        if let tokens, e.tokens != tokens { return "tokens \(e.tokens) != expected \(tokens)" }
        return nil
    }
}

/// Collects mismatches and fails once with the first few.
struct MismatchLog {
    let family: String
    var count = 0
    var checked = 0
    var samples: [String] = []

    mutating func check(_ what: String, _ diff: String?) {
        checked += 1
        guard let diff else { return }
        count += 1
        if samples.count < 6 { samples.append("\(what): \(diff)") }
    }

    func assertClean(file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(count, 0, "\(family): \(count) of \(checked) differ from the Python library:\n" + samples.joined(separator: "\n"),
                       file: file, line: line)
    }
}

func debugDescription(_ s: String) -> String {
    s.unicodeScalars.map { $0.value < 0x20 || $0.value > 0x7E ? String(format: "\\u{%X}", $0.value) : String($0) }.joined()
}
