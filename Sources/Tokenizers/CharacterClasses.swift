import Foundation

// Character classes as the Rust `tokenizers` crate defines them, on Unicode scalars.

extension Unicode.Scalar {
    /// Rust's `char::is_whitespace` (the White_Space property).
    @inline(__always) var isWhitespaceChar: Bool {
        let v = value
        if v < 0x80 { return v == 0x20 || (v >= 0x09 && v <= 0x0D) }
        return properties.isWhitespace
    }

    /// Letters (`\p{L}`).
    @inline(__always) var isLetter: Bool {
        let v = value
        if v < 0x80 { return (v | 0x20) >= 0x61 && (v | 0x20) <= 0x7A }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    /// Numbers (`\p{N}`, Rust's `char::is_numeric`).
    @inline(__always) var isNumber: Bool {
        let v = value
        if v < 0x80 { return v >= 0x30 && v <= 0x39 }
        switch properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    /// Rust's `char::is_alphanumeric`.
    @inline(__always) var isAlphanumericChar: Bool { isLetter || isNumber }

    // BERT's classes (also the Punctuation pre-tokenizer's) and GPT-2's come from tables probed
    // from the `tokenizers` library itself (CharacterTables.swift), not from Swift's Unicode
    // data, which is newer than the library's.

    /// `\p{L}` of GPT-2's split pattern.
    @inline(__always) var isGPT2Letter: Bool {
        let v = value
        if v < 0x80 { return (v | 0x20) >= 0x61 && (v | 0x20) <= 0x7A }
        return inRanges(v, gpt2LetterRanges)
    }

    /// `\p{N}` of GPT-2's split pattern.
    @inline(__always) var isGPT2Number: Bool {
        let v = value
        if v < 0x80 { return v >= 0x30 && v <= 0x39 }
        return inRanges(v, gpt2NumberRanges)
    }

    /// `\s` of GPT-2's split pattern.
    @inline(__always) var isGPT2Whitespace: Bool {
        let v = value
        if v < 0x80 { return v == 0x20 || (v >= 0x09 && v <= 0x0D) }
        return inRanges(v, gpt2WhitespaceRanges)
    }

    /// BERT's punctuation: ASCII punctuation (which includes `$+<=>^`|~`) or Unicode punctuation.
    @inline(__always) var isBertPunctuation: Bool {
        let v = value
        if v < 0x80 {
            return (v >= 0x21 && v <= 0x2F) || (v >= 0x3A && v <= 0x40) || (v >= 0x5B && v <= 0x60) || (v >= 0x7B && v <= 0x7E)
        }
        return inRanges(v, bertPunctuationRanges)
    }

    /// What BERT's `clean_text` removes: NUL, U+FFFD, and control, format and private-use
    /// characters except tab, newline and carriage return.
    @inline(__always) var isBertControl: Bool {
        let v = value
        if v < 0x80 { return (v < 0x20 && v != 0x09 && v != 0x0A && v != 0x0D) || v == 0x7F }
        return inRanges(v, bertControlRanges)
    }

    /// BERT's whitespace: tab, newline, carriage return, or White_Space.
    @inline(__always) var isBertWhitespace: Bool {
        let v = value
        if v < 0x80 { return v == 0x20 || (v >= 0x09 && v <= 0x0D) }
        return inRanges(v, bertWhitespaceRanges)
    }

    /// The non-spacing marks BERT's `strip_accents` removes.
    @inline(__always) var isBertNonspacingMark: Bool {
        value >= 0x300 && inRanges(value, bertNonspacingMarkRanges)
    }

    /// CJK ideographs that BERT surrounds with spaces.
    @inline(__always) var isChineseChar: Bool {
        let v = value
        return (0x4E00...0x9FFF).contains(v) || (0x3400...0x4DBF).contains(v) || (0x20000...0x2A6DF).contains(v)
            || (0x2A700...0x2B73F).contains(v) || (0x2B740...0x2B81F).contains(v) || (0x2B920...0x2CEAF).contains(v)
            || (0xF900...0xFAFF).contains(v) || (0x2F800...0x2FA1F).contains(v)
    }

    /// Any mark (Mn, Mc, Me).
    @inline(__always) var isMark: Bool {
        guard value >= 0x300 else { return false }
        switch properties.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark: return true
        default: return false
        }
    }

    /// `\w` of the regex engines tokenizers use: letters, marks, numbers, connector punctuation.
    @inline(__always) var isWordChar: Bool {
        let v = value
        if v < 0x80 { return ((v | 0x20) >= 0x61 && (v | 0x20) <= 0x7A) || (v >= 0x30 && v <= 0x39) || v == 0x5F }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .nonspacingMark, .spacingMark, .enclosingMark,
             .decimalNumber, .letterNumber, .otherNumber, .connectorPunctuation: return true
        default: return false
        }
    }
}

/// Whether `v` lies in one of the sorted, disjoint `ranges`.
@inline(__always) func inRanges(_ v: UInt32, _ ranges: [ClosedRange<UInt32>]) -> Bool {
    var lo = 0, hi = ranges.count - 1
    while lo <= hi {
        let mid = (lo + hi) >> 1
        let r = ranges[mid]
        if v < r.lowerBound { hi = mid - 1 } else if v > r.upperBound { lo = mid + 1 } else { return true }
    }
    return false
}

/// Per-scalar results of Foundation's normalization and case mapping, computed once per scalar
/// and shared by all tokenizers (guarded by a lock; ASCII never reaches it).
final class ScalarMappingCache: @unchecked Sendable {
    enum Kind: Int { case nfd = 0, nfkd, nfc, nfkc, lower }

    static let shared = ScalarMappingCache()
    private let lock = NSLock()
    private var tables: [[UInt32: [Unicode.Scalar]]] = Array(repeating: [:], count: 5)

    func map(_ s: Unicode.Scalar, _ kind: Kind) -> [Unicode.Scalar] {
        lock.lock()
        if let hit = tables[kind.rawValue][s.value] { lock.unlock(); return hit }
        lock.unlock()
        let r = Self.compute(s, kind)
        lock.lock()
        tables[kind.rawValue][s.value] = r
        lock.unlock()
        return r
    }

    static func compute(_ s: Unicode.Scalar, _ kind: Kind) -> [Unicode.Scalar] {
        let str = String(Character(s))
        switch kind {
        case .nfd: return Array(str.decomposedStringWithCanonicalMapping.unicodeScalars)
        case .nfkd: return Array(str.decomposedStringWithCompatibilityMapping.unicodeScalars)
        case .nfc: return Array(str.precomposedStringWithCanonicalMapping.unicodeScalars)
        case .nfkc: return Array(str.precomposedStringWithCompatibilityMapping.unicodeScalars)
        case .lower: return Array(s.properties.lowercaseMapping.unicodeScalars)
        }
    }
}

/// Full lowercase mapping of one scalar (Rust's `char::to_lowercase`).
@inline(__always) func lowercased(_ s: Unicode.Scalar, into out: inout [Unicode.Scalar]) {
    let v = s.value
    if v < 0x80 {
        out.append(v >= 0x41 && v <= 0x5A ? Unicode.Scalar(UInt8(v + 32)) : s)
        return
    }
    out.append(contentsOf: ScalarMappingCache.shared.map(s, .lower))
}
