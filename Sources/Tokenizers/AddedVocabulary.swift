import Foundation

/// A token of the `added_tokens` section: matched in the text before the model sees it.
public struct AddedToken: Equatable, Sendable {
    public var id: Int
    public var content: String
    /// Special tokens are left out by `decode(skipSpecialTokens: true)`.
    public var special: Bool
    /// Only match when not inside a word.
    public var singleWord: Bool
    /// Also take the whitespace on the left / right of a match.
    public var lstrip: Bool
    public var rstrip: Bool
    /// Match against normalized text (otherwise against the original text).
    public var normalized: Bool

    init(_ node: JSONNode) throws {
        id = try node["id"].tokenId()
        content = try node["content"].string()
        special = try node.bool("special", default: false)
        singleWord = try node.bool("single_word", default: false)
        lstrip = try node.bool("lstrip", default: false)
        rstrip = try node.bool("rstrip", default: false)
        normalized = try node.bool("normalized", default: !special)
    }

    public init(id: Int, content: String, special: Bool, singleWord: Bool = false, lstrip: Bool = false,
                rstrip: Bool = false, normalized: Bool? = nil) {
        self.id = id
        self.content = content
        self.special = special
        self.singleWord = singleWord
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.normalized = normalized ?? !special
    }
}

/// Finds added tokens in text: leftmost match, longest among those starting there.
struct AddedTokenMatcher: Sendable {
    /// (pattern scalars, token index), grouped by first scalar, longest first.
    private var byFirst: [UInt32: [([Unicode.Scalar], Int)]] = [:]
    let tokens: [AddedToken]

    init(tokens: [AddedToken], patterns: [[Unicode.Scalar]]) {
        self.tokens = tokens
        for (k, p) in patterns.enumerated() where !p.isEmpty {
            byFirst[p[0].value, default: []].append((p, k))
        }
        for key in byFirst.keys { byFirst[key]?.sort { $0.0.count > $1.0.count } }
    }

    var isEmpty: Bool { byFirst.isEmpty }

    /// Splits `s` into (token id or nil, range) parts covering it, applying single_word,
    /// lstrip and rstrip as the Rust crate does.
    func split(_ s: ArraySlice<Unicode.Scalar>) -> [(Int32?, Range<Int>)] {
        let n = s.count
        guard !byFirst.isEmpty, n > 0 else { return [(nil, 0..<n)] }
        let base = s.startIndex
        @inline(__always) func at(_ k: Int) -> Unicode.Scalar { s[base + k] }
        var out: [(Int32?, Range<Int>)] = []
        var startOffset = 0
        var k = 0
        while k < n {
            guard let candidates = byFirst[at(k).value] else { k += 1; continue }
            var found: ([Unicode.Scalar], Int)? = nil
            for c in candidates where c.0.count <= n - k {
                var ok = true
                for j in 1..<c.0.count where at(k + j) != c.0[j] { ok = false; break }
                if ok { found = c; break }
            }
            guard let (pattern, index) = found else { k += 1; continue }
            var start = k, stop = k + pattern.count
            let token = tokens[index]
            k = stop
            if token.singleWord {
                let startSpace = start == 0 || !isWordCharacter(at(start - 1))
                let stopSpace = stop == n || !isWordCharacter(at(stop))
                if !startSpace || !stopSpace { continue }
            }
            if token.lstrip {
                var ns = start
                while ns > 0, at(ns - 1).isWhitespaceChar { ns -= 1 }
                start = max(ns, startOffset)
            }
            if token.rstrip {
                while stop < n, at(stop).isWhitespaceChar { stop += 1 }
            }
            if startOffset < start { out.append((nil, startOffset..<start)) }
            out.append((Int32(token.id), start..<stop))
            startOffset = stop
            // The Rust crate's automaton keeps scanning after the pattern, not the stripped end.
        }
        if startOffset != n { out.append((nil, startOffset..<n)) }
        return out
    }

    private func isWordCharacter(_ c: Unicode.Scalar) -> Bool { c.isAlphanumericChar || c == "_" }
}
