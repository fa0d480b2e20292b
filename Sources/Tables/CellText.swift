/// Reading cell text as numbers and ordering it, the same way everywhere in the module.
enum CellText {
    /// The finite number a cell spells in plain decimal notation (`12`, `-3.5`, `.5`, `1e-3`),
    /// ignoring surrounding spaces and tabs; `nil` for anything else (words, `inf`, hex, `1,5`).
    static func number(_ text: String) -> Double? {
        var bytes = Substring(text).utf8[...]
        while let first = bytes.first, first == 0x20 || first == 0x09 { bytes = bytes.dropFirst() }
        while let last = bytes.last, last == 0x20 || last == 0x09 { bytes = bytes.dropLast() }
        guard isDecimal(bytes) else { return nil }
        guard let value = Double(String(decoding: bytes, as: UTF8.self)), value.isFinite else { return nil }
        return value
    }

    /// Whether `bytes` match `[+-]? (d+ (. d*)? | . d+) ([eE] [+-]? d+)?`.
    private static func isDecimal(_ bytes: Substring.UTF8View.SubSequence) -> Bool {
        var index = bytes.startIndex
        func peek() -> UInt8? { index < bytes.endIndex ? bytes[index] : nil }
        func digits() -> Int {
            var count = 0
            while let byte = peek(), byte >= 0x30, byte <= 0x39 { index = bytes.index(after: index); count += 1 }
            return count
        }
        if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index = bytes.index(after: index) }
        var mantissa = digits()
        if peek() == UInt8(ascii: ".") {
            index = bytes.index(after: index)
            mantissa += digits()
        }
        guard mantissa > 0 else { return false }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index = bytes.index(after: index)
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index = bytes.index(after: index) }
            guard digits() > 0 else { return false }
        }
        return index == bytes.endIndex
    }

    /// Whether `a` sorts before `b` comparing Unicode scalar values one by one (no locale, no
    /// normalisation), so the order is the same on every platform.
    static func scalarLess(_ a: String, _ b: String) -> Bool {
        var left = a.unicodeScalars.makeIterator()
        var right = b.unicodeScalars.makeIterator()
        while true {
            switch (left.next(), right.next()) {
            case (nil, nil): return false
            case (nil, _): return true
            case (_, nil): return false
            case let (l?, r?): if l != r { return l.value < r.value }
            }
        }
    }

    /// Whether the text contains a space, tab or line break.
    static func containsWhitespace(_ text: String) -> Bool {
        text.utf8.contains { $0 == 0x20 || $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
    }

    /// The number of whitespace-separated words.
    static func wordCount(_ text: String) -> Int {
        text.split(whereSeparator: { $0.isWhitespace }).count
    }

    /// A number for evidence tables: integers plainly, others with up to 4 significant decimals.
    static func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        var text = String(format4: value)
        if text.contains(".") {
            while text.hasSuffix("0") { text.removeLast() }
            if text.hasSuffix(".") { text.removeLast() }
        }
        return text
    }
}

extension String {
    /// `value` with four digits after the point, without Foundation.
    init(format4 value: Double) {
        let scaled = (value * 10_000).rounded()
        let negative = scaled < 0
        let magnitude = abs(scaled)
        let whole = Int64(magnitude / 10_000)
        let fraction = Int64(magnitude - Double(whole) * 10_000)
        let fractionText = String(fraction)
        self = (negative ? "-" : "") + String(whole) + "." + String(repeating: "0", count: 4 - fractionText.count) + fractionText
    }
}
