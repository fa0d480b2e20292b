import Foundation

// Normalizers: the `normalizer` section of tokenizer.json. One small type per HF `"type"`,
// built from its JSON by the registry below.

/// Rewrites text before it is split into words, keeping track of original offsets.
protocol Normalizer: Sendable {
    func normalize(_ s: inout NormalizedString)
}

enum Normalizers {
    /// Every supported normalizer type and how its JSON becomes one.
    static let registry: [String: @Sendable (JSONNode) throws -> Normalizer] = [
        "BertNormalizer": { try BertNormalizer($0) },
        "Lowercase": { _ in Lowercase() },
        "StripAccents": { _ in StripAccents() },
        "Strip": { try Strip($0) },
        "NFC": { _ in UnicodeForm(form: .nfc) },
        "NFD": { _ in UnicodeForm(form: .nfd) },
        "NFKC": { _ in UnicodeForm(form: .nfkc) },
        "NFKD": { _ in UnicodeForm(form: .nfkd) },
        "Nmt": { _ in Nmt() },
        "Replace": { try ReplaceNormalizer($0) },
        "Prepend": { try PrependNormalizer($0) },
        "Sequence": { try NormalizerSequence($0) },
        "Precompiled": { try Precompiled($0) },
        "ByteLevel": { _ in ByteLevelNormalizer() },
    ]

    static func make(_ node: JSONNode) throws -> Normalizer {
        try node.make("normalizer", registry)
    }
}

/// BERT's cleanup: drop control characters, turn whitespace into spaces, surround CJK
/// ideographs with spaces, optionally strip accents (NFD, then drop non-spacing marks) and
/// lowercase. Done in one pass; every output scalar keeps the original range of the scalar it
/// came from, which is what the chain of separate transforms produces.
struct BertNormalizer: Normalizer {
    let cleanText: Bool
    let handleChineseChars: Bool
    let stripAccents: Bool
    let lowercase: Bool

    init(cleanText: Bool = true, handleChineseChars: Bool = true, stripAccents: Bool? = nil, lowercase: Bool = true) {
        self.cleanText = cleanText
        self.handleChineseChars = handleChineseChars
        self.stripAccents = stripAccents ?? lowercase
        self.lowercase = lowercase
    }

    init(_ node: JSONNode) throws {
        self.init(cleanText: try node.bool("clean_text", default: true),
                  handleChineseChars: try node.bool("handle_chinese_chars", default: true),
                  stripAccents: try node.optionalBool("strip_accents"),
                  lowercase: try node.bool("lowercase", default: true))
    }

    func normalize(_ s: inout NormalizedString) {
        var b = s.builder()
        var decomposed: [Unicode.Scalar] = []
        let cache = ScalarMappingCache.shared
        for k in 0..<s.count {
            var c = s.scalar(at: k)
            let sp = s.span(at: k)
            let v = c.value
            if v < 0x80 {
                if cleanText {
                    if v == 0 || ((v < 0x20 || v == 0x7F) && v != 0x09 && v != 0x0A && v != 0x0D) { continue }
                    if v == 0x09 || v == 0x0A || v == 0x0D || (v >= 0x0B && v <= 0x0C) { c = " " }
                }
                if lowercase, v >= 0x41, v <= 0x5A { c = Unicode.Scalar(UInt8(v + 32)) }
                b.push(c, sp)
                continue
            }
            if cleanText {
                if c.isBertControl { continue }
                if c.isBertWhitespace { c = " " }
            }
            let chinese = handleChineseChars && c.isChineseChar
            if chinese { b.push(" ", sp) }
            decomposed.removeAll(keepingCapacity: true)
            if stripAccents && c.value >= 0xC0 {
                for d in cache.map(c, .nfd) where !d.isBertNonspacingMark { decomposed.append(d) }
            } else {
                decomposed.append(c)
            }
            for d in decomposed {
                if lowercase { 
                    if d.value < 0x80 {
                        b.push(d.value >= 0x41 && d.value <= 0x5A ? Unicode.Scalar(UInt8(d.value + 32)) : d, sp)
                    } else {
                        for l in cache.map(d, .lower) { b.push(l, sp) }
                    }
                } else {
                    b.push(d, sp)
                }
            }
            if chinese { b.push(" ", sp) }
        }
        s.apply(b)
    }
}

/// Full Unicode lowercase mapping.
struct Lowercase: Normalizer {
    func normalize(_ s: inout NormalizedString) { s.lowercase() }
}

/// Removes combining marks (Mn, Mc, Me); usually after NFD/NFKD.
struct StripAccents: Normalizer {
    func normalize(_ s: inout NormalizedString) {
        if s.scalars.allSatisfy({ $0.value < 0x300 }) { return }
        s.filter { !$0.isMark }
    }
}

/// Removes leading and/or trailing whitespace.
struct Strip: Normalizer {
    let left: Bool
    let right: Bool

    init(_ node: JSONNode) throws {
        left = try node.bool("strip_left", default: true)
        right = try node.bool("strip_right", default: true)
    }

    func normalize(_ s: inout NormalizedString) { s.strip(left: left, right: right) }
}

/// NFC, NFD, NFKC or NFKD.
struct UnicodeForm: Normalizer {
    let form: NormalizedString.Form
    func normalize(_ s: inout NormalizedString) { s.normalize(form) }
}

/// The NMT normalizer of sentencepiece: drops ASCII controls, maps other whitespace-like
/// code points to a space.
struct Nmt: Normalizer {
    func normalize(_ s: inout NormalizedString) {
        s.filter { c in
            switch c.value {
            case 0x0001...0x0008, 0x000B, 0x000E...0x001F, 0x007F, 0x008F, 0x009F: return false
            default: return true
            }
        }
        s.flatMap { c, out in
            switch c.value {
            case 0x0009, 0x000A, 0x000C, 0x000D, 0x1680, 0x200B...0x200F, 0x2028, 0x2029, 0x2581, 0xFEFF, 0xFFFD:
                out.append(" ")
            default:
                out.append(c)
            }
        }
    }
}

/// Replaces every match of a string or regex by `content`.
struct ReplaceNormalizer: Normalizer {
    let pattern: TextPattern
    let content: [Unicode.Scalar]

    init(_ node: JSONNode) throws {
        pattern = try TextPattern(try node["pattern"])
        content = Array(try node["content"].string().unicodeScalars)
    }

    func normalize(_ s: inout NormalizedString) {
        s.replace(matches: pattern.matches(in: s.scalars), with: content)
    }
}

/// Puts a fixed string in front of non-empty text.
struct PrependNormalizer: Normalizer {
    let prefix: [Unicode.Scalar]

    init(_ node: JSONNode) throws {
        prefix = Array(try node["prepend"].string().unicodeScalars)
    }

    func normalize(_ s: inout NormalizedString) { s.prepend(prefix) }
}

/// Normalizers applied in order.
struct NormalizerSequence: Normalizer {
    let normalizers: [Normalizer]

    init(_ node: JSONNode) throws {
        normalizers = try node["normalizers"].array().map(Normalizers.make)
    }

    func normalize(_ s: inout NormalizedString) {
        for n in normalizers { n.normalize(&s) }
    }
}

/// Maps every scalar to the byte-level alphabet of its UTF-8 bytes (GPT-2's normalizer form).
struct ByteLevelNormalizer: Normalizer {
    func normalize(_ s: inout NormalizedString) { ByteLevelAlphabet.transform(&s) }
}
