import Foundation

// Pre-tokenizers: the `pre_tokenizer` section. They cut normalized text into words (and may
// rewrite them, as ByteLevel and Metaspace do); the model then tokenizes each word.

/// A word produced by pre-tokenization; `token` is set for added tokens, which the model skips.
struct PreToken {
    var text: NormalizedString
    var addedTokenId: Int32?
}

/// The words of one text, in order.
struct PreTokenizedString {
    var pieces: [PreToken]

    /// Replaces every word that is not an added token by the words `f` makes of it; empty
    /// words are dropped. `f` gets the word's index among all words.
    mutating func split(_ f: (Int, NormalizedString, inout [NormalizedString]) -> Void) {
        var out: [PreToken] = []
        out.reserveCapacity(pieces.count * 2)
        var produced: [NormalizedString] = []
        for (k, p) in pieces.enumerated() {
            if p.addedTokenId != nil { out.append(p); continue }
            produced.removeAll(keepingCapacity: true)
            f(k, p.text, &produced)
            for t in produced where !t.isEmpty { out.append(PreToken(text: t, addedTokenId: nil)) }
        }
        pieces = out
    }

    /// Rewrites every word that is not an added token in place.
    mutating func transform(_ f: (inout NormalizedString) -> Void) {
        for k in pieces.indices where pieces[k].addedTokenId == nil { f(&pieces[k].text) }
    }
}

protocol PreTokenizer: Sendable {
    func preTokenize(_ p: inout PreTokenizedString)
}

enum PreTokenizers {
    static let registry: [String: @Sendable (JSONNode) throws -> PreTokenizer] = [
        "BertPreTokenizer": { _ in BertPreTokenizer() },
        "Whitespace": { _ in WhitespacePreTokenizer() },
        "WhitespaceSplit": { _ in WhitespaceSplit() },
        "Punctuation": { try PunctuationPreTokenizer($0) },
        "ByteLevel": { try ByteLevelPreTokenizer($0) },
        "Metaspace": { try MetaspacePreTokenizer($0) },
        "Split": { try SplitPreTokenizer($0) },
        "Digits": { try DigitsPreTokenizer($0) },
        "CharDelimiterSplit": { try CharDelimiterSplit($0) },
        "Sequence": { try PreTokenizerSequence($0) },
    ]

    static func make(_ node: JSONNode) throws -> PreTokenizer {
        try node.make("pre-tokenizer", registry)
    }
}

/// Cuts `s` at the scalars for which `isDelimiter` holds, each such scalar being its own
/// match, with the given behaviour.
@inline(__always)
func splitEach(_ s: NormalizedString, behavior: SplitBehavior, into out: inout [NormalizedString],
               _ isDelimiter: (Unicode.Scalar) -> Bool) {
    var matches: [Range<Int>] = []
    for k in 0..<s.count where isDelimiter(s.scalar(at: k)) { matches.append(k..<(k + 1)) }
    if matches.isEmpty { out.append(s); return }
    for r in behavior.pieces(count: s.count, matches: matches) { out.append(s.slice(r)) }
}

/// BERT: split on whitespace (dropped) and isolate each punctuation character.
struct BertPreTokenizer: PreTokenizer {
    func preTokenize(_ p: inout PreTokenizedString) {
        p.split { _, s, out in
            var start = 0
            let n = s.count
            for k in 0..<n {
                let c = s.scalar(at: k)
                if c.isBertWhitespace {
                    if start < k { out.append(s.slice(start..<k)) }
                    start = k + 1
                } else if c.isBertPunctuation {
                    if start < k { out.append(s.slice(start..<k)) }
                    out.append(s.slice(k..<(k + 1)))
                    start = k + 1
                }
            }
            if start < n { out.append(n == s.count && start == 0 ? s : s.slice(start..<n)) }
        }
    }
}

/// `\w+|[^\w\s]+`: runs of word characters and runs of other non-space characters.
struct WhitespacePreTokenizer: PreTokenizer {
    func preTokenize(_ p: inout PreTokenizedString) {
        p.split { _, s, out in
            let n = s.count
            var k = 0
            while k < n {
                let c = s.scalar(at: k)
                if c.isWhitespaceChar { k += 1; continue }
                let word = c.isWordChar
                var e = k + 1
                while e < n {
                    let d = s.scalar(at: e)
                    if word ? !d.isWordChar : (d.isWordChar || d.isWhitespaceChar) { break }
                    e += 1
                }
                out.append(s.slice(k..<e))
                k = e
            }
        }
    }
}

/// Split on whitespace, which is dropped.
struct WhitespaceSplit: PreTokenizer {
    func preTokenize(_ p: inout PreTokenizedString) {
        p.split { _, s, out in splitEach(s, behavior: .removed, into: &out) { $0.isWhitespaceChar } }
    }
}

/// Split on punctuation characters, each its own delimiter.
struct PunctuationPreTokenizer: PreTokenizer {
    let behavior: SplitBehavior

    init(_ node: JSONNode) throws {
        behavior = try node.optional("behavior").map(SplitBehavior.init) ?? .isolated
    }

    func preTokenize(_ p: inout PreTokenizedString) {
        p.split { _, s, out in splitEach(s, behavior: behavior, into: &out) { $0.isBertPunctuation } }
    }
}

/// Split on a single delimiter character, which is dropped.
struct CharDelimiterSplit: PreTokenizer {
    let delimiter: Unicode.Scalar

    init(_ node: JSONNode) throws {
        let d = try node["delimiter"]
        let scalars = Array(try d.string().unicodeScalars)
        guard scalars.count == 1 else { throw d.error("expected a single character") }
        delimiter = scalars[0]
    }

    func preTokenize(_ p: inout PreTokenizedString) {
        p.split { _, s, out in splitEach(s, behavior: .removed, into: &out) { $0 == delimiter } }
    }
}

/// Separate digits from the rest: each digit alone, or runs of digits.
struct DigitsPreTokenizer: PreTokenizer {
    let individualDigits: Bool

    init(_ node: JSONNode) throws {
        individualDigits = try node.bool("individual_digits", default: false)
    }

    func preTokenize(_ p: inout PreTokenizedString) {
        p.split { _, s, out in
            splitEach(s, behavior: individualDigits ? .isolated : .contiguous, into: &out) { $0.isNumber }
        }
    }
}

/// Split on a string or regex with a delimiter behaviour, optionally inverted (the matches
/// are the words).
struct SplitPreTokenizer: PreTokenizer {
    let pattern: TextPattern
    let behavior: SplitBehavior
    let invert: Bool

    init(_ node: JSONNode) throws {
        pattern = try TextPattern(try node["pattern"])
        behavior = try SplitBehavior(try node["behavior"])
        invert = try node.bool("invert", default: false)
    }

    func preTokenize(_ p: inout PreTokenizedString) {
        p.split { _, s, out in
            let matches = pattern.matches(in: s.scalars)
            for r in behavior.pieces(count: s.count, matches: matches, invert: invert) { out.append(s.slice(r)) }
        }
    }
}

/// SentencePiece-style words: spaces become `replacement` (▁), a ▁ is put in front (always,
/// for the first word only, or never), and the text is cut before each ▁.
struct MetaspacePreTokenizer: PreTokenizer {
    enum PrependScheme: String { case always, first, never }

    let replacement: Unicode.Scalar
    let prependScheme: PrependScheme
    let split: Bool

    init(_ node: JSONNode) throws {
        let r = node.optional("replacement")
        let rs = Array(try r?.string().unicodeScalars ?? "\u{2581}".unicodeScalars)
        guard rs.count == 1 else { throw (r ?? node).error("expected a single character") }
        replacement = rs[0]
        if let scheme = node.optional("prepend_scheme") {
            let s = try scheme.string()
            guard let v = PrependScheme(rawValue: s) else {
                throw scheme.error("unknown prepend_scheme \"\(s)\"; supported: always, first, never")
            }
            prependScheme = v
        } else {
            prependScheme = try node.bool("add_prefix_space", default: true) ? .always : .never
        }
        split = try node.bool("split", default: true)
    }

    func preTokenize(_ p: inout PreTokenizedString) {
        let rep = replacement
        p.split { _, s0, out in
            var s = s0
            var spaces: [Range<Int>] = []
            for k in 0..<s.count where s.scalar(at: k) == " " { spaces.append(k..<(k + 1)) }
            s.replace(matches: spaces, with: [rep])
            switch prependScheme {
            case .always:
                if s.count > 0, s.scalar(at: 0) != rep { s.prepend([rep]) }
            case .first:
                if s.count > 0, s.scalar(at: 0) != rep, s.originalStart == 0 { s.prepend([rep]) }
            case .never:
                break
            }
            if split {
                splitEach(s, behavior: .mergedWithNext, into: &out) { $0 == rep }
            } else {
                out.append(s)
            }
        }
    }
}

/// Pre-tokenizers applied in order.
struct PreTokenizerSequence: PreTokenizer {
    let steps: [PreTokenizer]

    init(_ node: JSONNode) throws {
        steps = try node["pretokenizers"].array().map(PreTokenizers.make)
    }

    func preTokenize(_ p: inout PreTokenizedString) {
        for s in steps { s.preTokenize(&p) }
    }
}
