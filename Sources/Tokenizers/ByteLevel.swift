import Foundation

// GPT-2's byte-level scheme: every UTF-8 byte is shown as one printable character (bytes that
// are printable Latin-1 stand for themselves, the rest are shifted past U+0100), so a BPE
// vocabulary over those characters covers any text.

enum ByteLevelAlphabet {
    /// Byte → its character.
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt8(b))
            } else {
                table[b] = Unicode.Scalar(next) ?? " "
                next += 1
            }
        }
        return table
    }()

    /// Character value → byte, or -1 for characters outside the alphabet (indexed up to 0x143).
    static let scalarToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (b, s) in byteToScalar.enumerated() { table[Int(s.value)] = Int16(b) }
        return table
    }()

    static func byte(of s: Unicode.Scalar) -> UInt8? {
        let v = Int(s.value)
        guard v < scalarToByte.count, scalarToByte[v] >= 0 else { return nil }
        return UInt8(scalarToByte[v])
    }

    /// Replaces every scalar by the characters of its UTF-8 bytes, all keeping its range.
    static func transform(_ s: inout NormalizedString) {
        var b = s.builder()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4)
        for k in 0..<s.count {
            let c = s.scalar(at: k), sp = s.span(at: k)
            if c.value < 0x80 {
                b.push(byteToScalar[Int(c.value)], sp)
                continue
            }
            bytes.removeAll(keepingCapacity: true)
            appendUTF8(c, to: &bytes)
            for x in bytes { b.push(byteToScalar[Int(x)], sp) }
        }
        s.apply(b)
    }
}

/// GPT-2's split pattern, hand-written:
/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
enum GPT2Splitter {
    static func matches(in s: ArraySlice<Unicode.Scalar>) -> [Range<Int>] {
        let base = s.startIndex
        let n = s.count
        @inline(__always) func at(_ k: Int) -> Unicode.Scalar { s[base + k] }
        @inline(__always) func isOther(_ c: Unicode.Scalar) -> Bool { !c.isGPT2Whitespace && !c.isGPT2Letter && !c.isGPT2Number }
        var out: [Range<Int>] = []
        out.reserveCapacity(n / 4 + 1)
        var k = 0
        while k < n {
            let c = at(k)
            // Contractions.
            if c == "'" && k + 1 < n {
                let d = at(k + 1)
                if d == "s" || d == "t" || d == "m" || d == "d" { out.append(k..<(k + 2)); k += 2; continue }
                if k + 2 < n {
                    let e = at(k + 2)
                    if (d == "r" && e == "e") || (d == "v" && e == "e") || (d == "l" && e == "l") {
                        out.append(k..<(k + 3)); k += 3; continue
                    }
                }
            }
            // ` ?` followed by letters, numbers or other symbols.
            let start = k
            var j = k
            if c == " " && k + 1 < n { j = k + 1 }
            let first = at(j)
            if j < n && (j == k + 1 || c != " ") {
                var e = j
                if first.isGPT2Letter {
                    while e < n, at(e).isGPT2Letter { e += 1 }
                } else if first.isGPT2Number {
                    while e < n, at(e).isGPT2Number { e += 1 }
                } else if isOther(first) {
                    while e < n, isOther(at(e)) { e += 1 }
                }
                if e > j { out.append(start..<e); k = e; continue }
            }
            // Whitespace runs: all of it if it ends the text or is followed by whitespace only;
            // otherwise all but the last one (which then leads the next word), or the single one.
            var e = k
            while e < n, at(e).isGPT2Whitespace { e += 1 }
            if e > k {
                if e == n || e - k == 1 {
                    out.append(k..<e); k = e
                } else {
                    out.append(k..<(e - 1)); k = e - 1
                }
                continue
            }
            // Unreachable for well-formed scalars; advance to stay safe.
            out.append(k..<(k + 1))
            k += 1
        }
        return out
    }
}

/// Byte-level pre-tokenization: optional leading space, GPT-2 split, bytes as characters.
struct ByteLevelPreTokenizer: PreTokenizer {
    let addPrefixSpace: Bool
    let useRegex: Bool

    init(_ node: JSONNode) throws {
        addPrefixSpace = try node.bool("add_prefix_space", default: true)
        useRegex = try node.bool("use_regex", default: true)
    }

    func preTokenize(_ p: inout PreTokenizedString) {
        p.split { _, s0, out in
            var s = s0
            if addPrefixSpace, s.count > 0, s.scalar(at: 0) != " " { s.prepend([" "]) }
            if useRegex {
                for r in GPT2Splitter.matches(in: s.scalars) { out.append(s.slice(r)) }
            } else {
                out.append(s)
            }
        }
        p.transform { ByteLevelAlphabet.transform(&$0) }
    }
}
