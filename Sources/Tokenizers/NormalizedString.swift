import Foundation

// Text that normalizers and pre-tokenizers change, with every scalar remembering which range of
// the original text it came from, so tokens report offsets into what the user passed.
// The rules for which original range a new scalar gets follow `NormalizedString::transform` of
// the Rust `tokenizers` crate (a replaced scalar keeps its range; an inserted one takes the
// range of the scalar before it), so offsets agree with the Python library.

/// A range of original scalar (Python character) offsets.
struct Span: Equatable {
    var start: Int32
    var end: Int32

    @inline(__always) init(_ start: Int, _ end: Int) {
        self.start = Int32(truncatingIfNeeded: start)
        self.end = Int32(truncatingIfNeeded: end)
    }
}

struct NormalizedString {
    /// The current text.
    var scalars: ArraySlice<Unicode.Scalar>
    /// For each scalar of `scalars`, the original range it stands for (absolute offsets).
    var spans: ArraySlice<Span>
    /// The original range this string covers (where an insertion at its start is anchored).
    var originalStart: Int
    var originalEnd: Int

    /// A string taken from `original[range]`, each scalar aligned to itself.
    init(original: [Unicode.Scalar], range: Range<Int>) {
        scalars = original[range]
        var sp = [Span]()
        sp.reserveCapacity(range.count)
        for i in range { sp.append(Span(i, i + 1)) }
        spans = sp[...]
        originalStart = range.lowerBound
        originalEnd = range.upperBound
    }

    init(scalars: ArraySlice<Unicode.Scalar>, spans: ArraySlice<Span>, originalStart: Int, originalEnd: Int) {
        self.scalars = scalars
        self.spans = spans
        self.originalStart = originalStart
        self.originalEnd = originalEnd
    }

    var isEmpty: Bool { scalars.isEmpty }
    var count: Int { scalars.count }

    @inline(__always) func scalar(at k: Int) -> Unicode.Scalar { scalars[scalars.startIndex + k] }
    @inline(__always) func span(at k: Int) -> Span { spans[spans.startIndex + k] }

    var string: String {
        var s = String()
        s.unicodeScalars.append(contentsOf: scalars)
        return s
    }

    /// The original range covered by scalars `range` (first start, last end).
    func originalRange(_ range: Range<Int>) -> (Int, Int) {
        guard !range.isEmpty else {
            if range.lowerBound < count { let s = Int(span(at: range.lowerBound).start); return (s, s) }
            if count > 0 { let e = Int(span(at: count - 1).end); return (e, e) }
            return (originalStart, originalStart)
        }
        return (Int(span(at: range.lowerBound).start), Int(span(at: range.upperBound - 1).end))
    }

    /// A sub-string sharing storage.
    func slice(_ range: Range<Int>) -> NormalizedString {
        let a = scalars.startIndex, b = spans.startIndex
        let (os, oe) = range.isEmpty ? (originalStart, originalStart) : originalRange(range)
        return NormalizedString(scalars: scalars[(a + range.lowerBound)..<(a + range.upperBound)],
                                spans: spans[(b + range.lowerBound)..<(b + range.upperBound)],
                                originalStart: os, originalEnd: oe)
    }

    // MARK: - Transform

    /// Builds a new text from (scalar, change) pairs as the Rust crate's `transform` does:
    /// change 0 replaces the next old scalar, +1 inserts, -n replaces and also removes the n
    /// old scalars after it. `initialOffset` old scalars are removed before the first.
    struct Builder {
        fileprivate let oldSpans: ArraySlice<Span>
        fileprivate let anchor: Span
        fileprivate var offset: Int
        var scalars: [Unicode.Scalar] = []
        var spans: [Span] = []

        @inline(__always) mutating func emit(_ c: Unicode.Scalar, _ change: Int) {
            let n = oldSpans.count
            let span: Span
            if change > 0 {
                span = offset < 1 ? anchor : oldSpans[oldSpans.startIndex + min(offset - 1, n - 1)]
            } else {
                span = n == 0 ? anchor : oldSpans[oldSpans.startIndex + min(offset, n - 1)]
                offset += 1 - change
            }
            scalars.append(c)
            spans.append(span)
        }

        /// Appends a scalar with an explicit original range (for one-pass normalizers whose
        /// result equals a chain of transforms).
        @inline(__always) mutating func push(_ c: Unicode.Scalar, _ span: Span) {
            scalars.append(c)
            spans.append(span)
        }
    }

    func builder(initialOffset: Int = 0) -> Builder {
        var b = Builder(oldSpans: spans, anchor: Span(originalStart, originalStart), offset: initialOffset)
        b.scalars.reserveCapacity(count + 4)
        b.spans.reserveCapacity(count + 4)
        return b
    }

    mutating func apply(_ b: Builder) {
        scalars = b.scalars[...]
        spans = b.spans[...]
    }

    // MARK: - Operations used by normalizers and pre-tokenizers

    /// Keeps the scalars for which `keep` holds; each keeps its own original range.
    mutating func filter(_ keep: (Unicode.Scalar) -> Bool) {
        var b = builder()
        for k in 0..<count where keep(scalar(at: k)) { b.push(scalar(at: k), span(at: k)) }
        apply(b)
    }

    /// Replaces each scalar by one or more; all take the range of the scalar they came from.
    mutating func flatMap(_ f: (Unicode.Scalar, inout [Unicode.Scalar]) -> Void) {
        var b = builder()
        var tmp: [Unicode.Scalar] = []
        for k in 0..<count {
            tmp.removeAll(keepingCapacity: true)
            f(scalar(at: k), &tmp)
            let sp = span(at: k)
            for c in tmp { b.push(c, sp) }
        }
        apply(b)
    }

    mutating func lowercase() {
        if scalars.allSatisfy({ $0.value < 0x41 || ($0.value > 0x5A && $0.value < 0x80) }) { return }
        flatMap { c, out in lowercased(c, into: &out) }
    }

    /// Inserts `text` before the first scalar (nothing when empty): every new scalar takes the
    /// first scalar's range.
    mutating func prepend(_ text: [Unicode.Scalar]) {
        guard count > 0, !text.isEmpty else { return }
        var b = builder()
        let first = span(at: 0)
        for c in text { b.push(c, first) }
        for k in 0..<count { b.push(scalar(at: k), span(at: k)) }
        apply(b)
    }

    /// Appends `text` after the last scalar, taking its range.
    mutating func append(_ text: [Unicode.Scalar]) {
        guard count > 0, !text.isEmpty else { return }
        let last = span(at: count - 1)
        var s = Array(scalars), sp = Array(spans)
        for c in text { s.append(c); sp.append(last) }
        scalars = s[...]
        spans = sp[...]
    }

    /// Replaces every match by `content`; the new scalars take the range of the last matched scalar.
    mutating func replace(matches: [Range<Int>], with content: [Unicode.Scalar]) {
        guard !matches.isEmpty else { return }
        var b = builder()
        var pos = 0
        for m in matches {
            while pos < m.lowerBound { b.push(scalar(at: pos), span(at: pos)); pos += 1 }
            let sp: Span = m.isEmpty ? (m.lowerBound > 0 ? span(at: m.lowerBound - 1) : Span(originalStart, originalStart))
                                     : span(at: m.upperBound - 1)
            for c in content { b.push(c, sp) }
            pos = m.upperBound
        }
        while pos < count { b.push(scalar(at: pos), span(at: pos)); pos += 1 }
        apply(b)
    }

    /// Removes leading and/or trailing whitespace.
    mutating func strip(left: Bool, right: Bool) {
        var a = 0, z = count
        if left { while a < z, scalar(at: a).isWhitespaceChar { a += 1 } }
        if right { while z > a, scalar(at: z - 1).isWhitespaceChar { z -= 1 } }
        if a == 0 && z == count { return }
        let s = scalars.startIndex, p = spans.startIndex
        scalars = scalars[(s + a)..<(s + z)]
        spans = spans[(p + a)..<(p + z)]
    }

    // MARK: - Unicode normalization forms

    enum Form { case nfd, nfkd, nfc, nfkc }

    /// Applies a normalization form. Text is cut into segments that normalize independently
    /// (a boundary before each starter that cannot combine with what precedes it); within a
    /// segment of n scalars becoming m, the first min(n, m) replace one to one and the rest
    /// are inserted (or, when shorter, the first absorbs the removed ones).
    mutating func normalize(_ form: Form) {
        let threshold: UInt32
        switch form {
        case .nfd: threshold = 0xC0
        case .nfc: threshold = 0x300
        case .nfkd, .nfkc: threshold = 0xA0
        }
        if scalars.allSatisfy({ $0.value < threshold }) { return }
        var b = builder()
        var k = 0
        let n = count
        while k < n {
            let c = scalar(at: k)
            if c.value < threshold && (k + 1 == n || scalar(at: k + 1).value < 0x300) {
                b.emit(c, 0)
                k += 1
                continue
            }
            var e = k + 1
            while e < n, !Self.isSegmentStart(scalar(at: e)) { e += 1 }
            let out: [Unicode.Scalar]
            if e == k + 1 {
                let kind: ScalarMappingCache.Kind
                switch form {
                case .nfd: kind = .nfd
                case .nfkd: kind = .nfkd
                case .nfc: kind = .nfc
                case .nfkc: kind = .nfkc
                }
                out = ScalarMappingCache.shared.map(c, kind)
            } else {
                var str = String()
                str.unicodeScalars.append(contentsOf: (k..<e).map { scalar(at: $0) })
                switch form {
                case .nfd: str = str.decomposedStringWithCanonicalMapping
                case .nfkd: str = str.decomposedStringWithCompatibilityMapping
                case .nfc: str = str.precomposedStringWithCanonicalMapping
                case .nfkc: str = str.precomposedStringWithCompatibilityMapping
                }
                out = Array(str.unicodeScalars)
            }
            let inCount = e - k
            if out.count >= inCount {
                for (j, o) in out.enumerated() { b.emit(o, j < inCount ? 0 : 1) }
            } else if out.isEmpty {
                b.offset += inCount
            } else {
                // Composition: the first output absorbs the scalars that disappeared.
                for (j, o) in out.enumerated() { b.emit(o, j == 0 ? -(inCount - out.count) : 0) }
            }
            k = e
        }
        apply(b)
    }

    /// Whether a normalization segment can start at `c`: a starter (combining class 0) that
    /// does not compose with a preceding starter (Hangul vowels and trailing consonants, and
    /// the few two-part vowel signs).
    static func isSegmentStart(_ c: Unicode.Scalar) -> Bool {
        let v = c.value
        if v < 0x300 { return true }
        if c.properties.canonicalCombiningClass.rawValue != 0 { return false }
        if (0x1161...0x1175).contains(v) || (0x11A8...0x11C2).contains(v) { return false }
        switch v {
        case 0x09BE, 0x09D7, 0x0B3E, 0x0B56, 0x0B57, 0x0BBE, 0x0BD7, 0x0C56, 0x0CC2, 0x0CD5, 0x0CD6,
             0x0D3E, 0x0D57, 0x0DCF, 0x0DDF, 0x102E, 0x1B35, 0x3099, 0x309A:
            return false
        default:
            return true
        }
    }
}
