import Foundation

// The `pattern` of Split, Replace and Split-like components: `{"String": "..."}` or
// `{"Regex": "..."}`. Strings match literally (scalar by scalar, never by canonical
// equivalence); regexes go through NSRegularExpression, except GPT-2's pattern, which has a
// hand-written matcher.

enum TextPattern {
    case literal([Unicode.Scalar])
    case regex(ScalarRegex)
    case gpt2

    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    init(_ node: JSONNode) throws {
        if let s = node.optional("String") {
            self = .literal(Array(try s.string().unicodeScalars))
        } else if let r = node.optional("Regex") {
            let text = try r.string()
            if text == Self.gpt2Pattern {
                self = .gpt2
            } else {
                do { self = .regex(try ScalarRegex(text)) } catch {
                    throw r.error("invalid regular expression: \(error)")
                }
            }
        } else {
            throw node.error("expected {\"String\": ...} or {\"Regex\": ...}")
        }
    }

    /// Non-overlapping matches, left to right, as scalar ranges.
    func matches(in s: ArraySlice<Unicode.Scalar>) -> [Range<Int>] {
        switch self {
        case .literal(let p):
            guard !p.isEmpty, s.count >= p.count else { return [] }
            var out: [Range<Int>] = []
            let base = s.startIndex
            var i = 0
            let last = s.count - p.count
            while i <= last {
                var ok = true
                for j in 0..<p.count where s[base + i + j] != p[j] { ok = false; break }
                if ok { out.append(i..<(i + p.count)); i += p.count } else { i += 1 }
            }
            return out
        case .regex(let r):
            return r.matches(in: s)
        case .gpt2:
            return GPT2Splitter.matches(in: s)
        }
    }
}

/// A user-given regular expression run over scalar arrays (NSRegularExpression works on UTF-16;
/// offsets are converted back).
final class ScalarRegex: @unchecked Sendable {
    let regex: NSRegularExpression

    init(_ pattern: String) throws {
        regex = try NSRegularExpression(pattern: pattern, options: [])
    }

    func matches(in s: ArraySlice<Unicode.Scalar>) -> [Range<Int>] {
        if s.isEmpty { return [] }
        var str = String()
        str.unicodeScalars.append(contentsOf: s)
        // UTF-16 offset -> scalar index.
        var u16ToScalar = [Int](repeating: 0, count: 0)
        u16ToScalar.reserveCapacity(s.count * 2 + 1)
        for (k, c) in s.enumerated() {
            u16ToScalar.append(k)
            if c.value > 0xFFFF { u16ToScalar.append(k) }
        }
        u16ToScalar.append(s.count)
        let ns = NSRange(location: 0, length: u16ToScalar.count - 1)
        return regex.matches(in: str, options: [], range: ns).compactMap { m in
            let a = m.range.location, b = m.range.location + m.range.length
            guard a != NSNotFound, a >= 0, b < u16ToScalar.count else { return nil }
            return u16ToScalar[a]..<u16ToScalar[b]
        }
    }
}

/// How a split keeps the delimiters it found (Rust `SplitDelimiterBehavior`).
enum SplitBehavior: String {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"

    init(_ node: JSONNode) throws {
        let s = try node.string()
        guard let b = SplitBehavior(rawValue: s) else {
            throw node.error("unknown split behavior \"\(s)\"; supported: Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous")
        }
        self = b
    }

    /// The pieces of a string of length `n` cut by `matches` (sorted, non-overlapping).
    /// Empty pieces are dropped.
    func pieces(count n: Int, matches: [Range<Int>], invert: Bool = false) -> [Range<Int>] {
        // All parts, each flagged whether it is a match.
        var parts: [(Range<Int>, Bool)] = []
        parts.reserveCapacity(matches.count * 2 + 1)
        var prev = 0
        for m in matches {
            if prev != m.lowerBound { parts.append((prev..<m.lowerBound, invert)) }
            parts.append((m, !invert))
            prev = m.upperBound
        }
        if prev != n { parts.append((prev..<n, invert)) }
        if n == 0 && parts.isEmpty { return [] }

        var out: [(Range<Int>, Bool)] = []   // (range, removed)
        switch self {
        case .isolated:
            out = parts.map { ($0.0, false) }
        case .removed:
            out = parts
        case .contiguous:
            var previousMatch = false
            for (r, isMatch) in parts {
                if isMatch == previousMatch, let last = out.last {
                    out[out.count - 1] = (last.0.lowerBound..<r.upperBound, false)
                } else {
                    out.append((r, false))
                }
                previousMatch = isMatch
            }
        case .mergedWithPrevious:
            var previousMatch = false
            for (r, isMatch) in parts {
                if isMatch && !previousMatch, let last = out.last {
                    out[out.count - 1] = (last.0.lowerBound..<r.upperBound, false)
                } else {
                    out.append((r, false))
                }
                previousMatch = isMatch
            }
        case .mergedWithNext:
            var previousMatch = false
            for (r, isMatch) in parts.reversed() {
                if isMatch && !previousMatch, let last = out.last {
                    out[out.count - 1] = (r.lowerBound..<last.0.upperBound, false)
                } else {
                    out.append((r, false))
                }
                previousMatch = isMatch
            }
            out.reverse()
        }
        return out.compactMap { $0.1 || $0.0.isEmpty ? nil : $0.0 }
    }
}
