import Foundation

// Decoders: the `decoder` section. They turn token strings back into text; each works on the
// whole list of tokens and returns a new list, concatenated at the end.

protocol TokenDecoder: Sendable {
    func decode(_ tokens: [String]) -> [String]
}

enum Decoders {
    static let registry: [String: @Sendable (JSONNode) throws -> TokenDecoder] = [
        "WordPiece": { try WordPieceDecoder($0) },
        "ByteLevel": { _ in ByteLevelDecoder() },
        "Metaspace": { try MetaspaceDecoder($0) },
        "BPEDecoder": { try BPEDecoder($0) },
        "ByteFallback": { _ in ByteFallbackDecoder() },
        "Fuse": { _ in FuseDecoder() },
        "Strip": { try StripDecoder($0) },
        "Replace": { try ReplaceDecoder($0) },
        "CTC": { try CTCDecoder($0) },
        "Sequence": { try DecoderSequence($0) },
    ]

    static func make(_ node: JSONNode) throws -> TokenDecoder {
        try node.make("decoder", registry)
    }
}

/// Replaces every occurrence of `pattern` by `replacement`, comparing scalars exactly.
func replacingScalars(_ s: String, _ pattern: String, _ replacement: String) -> String {
    let p = Array(pattern.unicodeScalars)
    guard !p.isEmpty else { return s }
    let text = Array(s.unicodeScalars)
    var out = String.UnicodeScalarView()
    var i = 0
    while i < text.count {
        if i + p.count <= text.count, text[i] == p[0], Array(text[i..<(i + p.count)]) == p {
            out.append(contentsOf: replacement.unicodeScalars)
            i += p.count
        } else {
            out.append(text[i])
            i += 1
        }
    }
    return String(out)
}

/// The clean-up of WordPiece and CTC decoding: no space before punctuation and contractions.
func wordPieceCleanup(_ s: String) -> String {
    var t = s
    for (a, b) in [(" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                   (" 'm", "'m"), (" do not", " don't"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")] {
        t = replacingScalars(t, a, b)
    }
    return t
}

struct WordPieceDecoder: TokenDecoder {
    let prefix: String
    let cleanup: Bool

    init(prefix: String = "##", cleanup: Bool = true) {
        self.prefix = prefix
        self.cleanup = cleanup
    }

    init(_ node: JSONNode) throws {
        self.init(prefix: try node.string("prefix", default: "##"), cleanup: try node.bool("cleanup", default: true))
    }

    func decode(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { i, t0 in
            var t = t0
            if i != 0 {
                if !prefix.isEmpty, t.unicodeScalars.starts(with: prefix.unicodeScalars) {
                    t = String(String.UnicodeScalarView(t.unicodeScalars.dropFirst(prefix.unicodeScalars.count)))
                } else {
                    t = " " + t
                }
            }
            return cleanup ? wordPieceCleanup(t) : t
        }
    }
}

struct ByteLevelDecoder: TokenDecoder {
    func decode(_ tokens: [String]) -> [String] {
        var bytes: [UInt8] = []
        for t in tokens {
            var mapped: [UInt8] = []
            var ok = true
            for c in t.unicodeScalars {
                guard let b = ByteLevelAlphabet.byte(of: c) else { ok = false; break }
                mapped.append(b)
            }
            bytes.append(contentsOf: ok ? mapped : Array(t.utf8))
        }
        return [String(decoding: bytes, as: UTF8.self)]
    }
}

struct MetaspaceDecoder: TokenDecoder {
    let replacement: Unicode.Scalar
    let dropOnFirst: Bool

    init(_ node: JSONNode) throws {
        let r = try node.optional("replacement")?.string() ?? "\u{2581}"
        guard let c = r.unicodeScalars.first, r.unicodeScalars.count == 1 else {
            throw try node["replacement"].error("expected a single character")
        }
        replacement = c
        if let scheme = try node.optionalString("prepend_scheme") {
            dropOnFirst = scheme != "never"
        } else {
            dropOnFirst = try node.bool("add_prefix_space", default: true)
        }
    }

    func decode(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { i, t in
            var out = String.UnicodeScalarView()
            for c in t.unicodeScalars {
                if c == replacement {
                    if !(i == 0 && dropOnFirst) { out.append(" ") }
                } else {
                    out.append(c)
                }
            }
            return String(out)
        }
    }
}

struct BPEDecoder: TokenDecoder {
    let suffix: String

    init(_ node: JSONNode) throws { suffix = try node.string("suffix", default: "</w>") }

    func decode(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { i, t in replacingScalars(t, suffix, i == tokens.count - 1 ? "" : " ") }
    }
}

/// `<0xXX>` tokens back to bytes; bytes that are not valid UTF-8 become one U+FFFD each.
struct ByteFallbackDecoder: TokenDecoder {
    func decode(_ tokens: [String]) -> [String] {
        var out: [String] = []
        var pending: [UInt8] = []
        func flush() {
            guard !pending.isEmpty else { return }
            if let s = String(validating: pending, as: UTF8.self) {
                out.append(s)
            } else {
                out.append(contentsOf: Array(repeating: "\u{FFFD}", count: pending.count))
            }
            pending.removeAll()
        }
        for t in tokens {
            let u = Array(t.utf8)
            if u.count == 6, u.starts(with: Array("<0x".utf8)), u[5] == UInt8(ascii: ">"),
               let b = UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16) {
                pending.append(b)
            } else {
                flush()
                out.append(t)
            }
        }
        flush()
        return out
    }
}

struct FuseDecoder: TokenDecoder {
    func decode(_ tokens: [String]) -> [String] { [tokens.joined()] }
}

/// Removes up to `start` leading and `stop` trailing `content` characters from each token.
struct StripDecoder: TokenDecoder {
    let content: Unicode.Scalar
    let start: Int
    let stop: Int

    init(_ node: JSONNode) throws {
        let c = try node["content"]
        let s = try c.string()
        guard let f = s.unicodeScalars.first, s.unicodeScalars.count == 1 else { throw c.error("expected a single character") }
        content = f
        start = try node.int("start", default: 0)
        stop = try node.int("stop", default: 0)
    }

    func decode(_ tokens: [String]) -> [String] {
        tokens.map { t in
            let cs = Array(t.unicodeScalars)
            var a = 0
            while a < min(start, cs.count), cs[a] == content { a += 1 }
            var z = cs.count
            var taken = 0
            while taken < stop, z > a, cs[z - 1] == content { z -= 1; taken += 1 }
            return String(String.UnicodeScalarView(cs[a..<max(a, z)]))
        }
    }
}

struct ReplaceDecoder: TokenDecoder {
    let pattern: TextPattern
    let content: [Unicode.Scalar]

    init(_ node: JSONNode) throws {
        pattern = try TextPattern(try node["pattern"])
        content = Array(try node["content"].string().unicodeScalars)
    }

    func decode(_ tokens: [String]) -> [String] {
        tokens.map { t in
            let cs = Array(t.unicodeScalars)
            let ms = pattern.matches(in: cs[...])
            guard !ms.isEmpty else { return t }
            var out = String.UnicodeScalarView()
            var pos = 0
            for m in ms {
                out.append(contentsOf: cs[pos..<m.lowerBound])
                out.append(contentsOf: content)
                pos = m.upperBound
            }
            out.append(contentsOf: cs[pos...])
            return String(out)
        }
    }
}

/// Connectionist temporal classification output: repeated tokens collapsed, padding removed,
/// the word delimiter turned into a space.
struct CTCDecoder: TokenDecoder {
    let padToken: String
    let wordDelimiter: String
    let cleanup: Bool

    init(_ node: JSONNode) throws {
        padToken = try node.string("pad_token", default: "<pad>")
        wordDelimiter = try node.string("word_delimiter_token", default: "|")
        cleanup = try node.bool("cleanup", default: true)
    }

    func decode(_ tokens: [String]) -> [String] {
        var out: [String] = []
        var previous: String? = nil
        for t in tokens {
            if let p = previous, p.unicodeScalars.elementsEqual(t.unicodeScalars) { continue }
            previous = t
            var r = replacingScalars(t, padToken, "")
            if cleanup { r = replacingScalars(wordPieceCleanup(r), wordDelimiter, " ") }
            if !r.isEmpty { out.append(r) }
        }
        return out
    }
}

struct DecoderSequence: TokenDecoder {
    let steps: [TokenDecoder]

    init(_ node: JSONNode) throws { steps = try node["decoders"].array().map(Decoders.make) }

    func decode(_ tokens: [String]) -> [String] { steps.reduce(tokens) { $1.decode($0) } }
}
