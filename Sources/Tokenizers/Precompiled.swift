import Foundation

// sentencepiece's precompiled normalization rules, as stored in tokenizer.json by the
// converters of XLM-R, DeBERTa-v3, ALBERT, T5 and others (`precompiled_charsmap`, base64).
//
// Layout: a little-endian u32 giving the trie's size in bytes, the trie (a darts-clone double
// array of u32 units over UTF-8 bytes), then a blob of NUL-terminated replacement strings; a
// trie value is an offset into that blob. Matching follows the `tokenizers` crate: each
// grapheme cluster shorter than 6 bytes is looked up whole (the first, shortest prefix hit of
// the trie wins); otherwise, or without a hit, each of its scalars is looked up alone.

struct Precompiled: Normalizer {
    private let units: [UInt32]
    private let blob: [UInt8]
    /// The replacement strings of the blob by offset, decoded once.
    private let replacements: [Int: [Unicode.Scalar]]
    /// The replacement of each ASCII character looked up alone (nil = unchanged).
    private let asciiReplacements: [[Unicode.Scalar]?]

    init(_ node: JSONNode) throws {
        var u: [UInt32] = []
        var rest: [UInt8] = []
        if let mapNode = node.optional("precompiled_charsmap") {
            let text = try mapNode.string()
            guard let data = Data(base64Encoded: text) else { throw mapNode.error("not valid base64") }
            let bytes = [UInt8](data)
            if !bytes.isEmpty {
                guard bytes.count >= 4 else { throw mapNode.error("charsmap shorter than its 4-byte header") }
                let trieSize = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16 | Int(bytes[3]) << 24
                guard trieSize % 4 == 0, 4 + trieSize <= bytes.count, trieSize >= 4 else {
                    throw mapNode.error("charsmap trie size \(trieSize) does not fit its \(bytes.count) bytes")
                }
                u = [UInt32](repeating: 0, count: trieSize / 4)
                for k in 0..<u.count {
                    let o = 4 + 4 * k
                    u[k] = UInt32(bytes[o]) | UInt32(bytes[o + 1]) << 8 | UInt32(bytes[o + 2]) << 16 | UInt32(bytes[o + 3]) << 24
                }
                rest = Array(bytes[(4 + trieSize)...])
            }
        }
        units = u
        blob = rest
        var reps: [Int: [Unicode.Scalar]] = [:]
        var start = 0
        for (k, b) in rest.enumerated() where b == 0 {
            reps[start] = Array(String(decoding: rest[start..<k], as: UTF8.self).unicodeScalars)
            start = k + 1
        }
        replacements = reps
        var ascii: [[Unicode.Scalar]?] = []
        for b in 0..<128 {
            let key = [UInt8(b)]
            let offset = Self.lookup(units: u, blobCount: rest.count, key.withUnsafeBufferPointer { $0 })
            ascii.append(offset.map { Self.replacement(at: $0, blob: rest, decoded: reps) })
        }
        asciiReplacements = ascii
    }

    /// The blob offset of the shortest prefix of `key` found in the trie, if any.
    private static func lookup(units: [UInt32], blobCount: Int, _ key: UnsafeBufferPointer<UInt8>) -> Int? {
        guard !units.isEmpty else { return nil }
        @inline(__always) func offset(_ unit: UInt32) -> Int { Int((unit >> 10) << ((unit & (1 << 9)) >> 6)) }
        var pos = offset(units[0])
        for c in key {
            if c == 0 { return nil }
            pos ^= Int(c)
            guard pos >= 0, pos < units.count else { return nil }
            let unit = units[pos]
            if unit & ((1 << 31) | 0xFF) != UInt32(c) { return nil }
            pos ^= offset(unit)
            guard pos >= 0, pos < units.count else { return nil }
            if (unit >> 8) & 1 == 1 {
                let value = Int(units[pos] & ((1 << 31) - 1))
                return value < blobCount ? value : nil
            }
        }
        return nil
    }

    private static func replacement(at offset: Int, blob: [UInt8], decoded: [Int: [Unicode.Scalar]]) -> [Unicode.Scalar] {
        if let r = decoded[offset] { return r }
        var end = offset
        while end < blob.count, blob[end] != 0 { end += 1 }
        return Array(String(decoding: blob[offset..<end], as: UTF8.self).unicodeScalars)
    }

    private func lookup(_ scalars: ArraySlice<Unicode.Scalar>, utf8 buffer: inout [UInt8]) -> [Unicode.Scalar]? {
        buffer.removeAll(keepingCapacity: true)
        for c in scalars { appendUTF8(c, to: &buffer) }
        guard let offset = buffer.withUnsafeBufferPointer({ Self.lookup(units: units, blobCount: blob.count, $0) }) else { return nil }
        return Self.replacement(at: offset, blob: blob, decoded: replacements)
    }

    func normalize(_ s: inout NormalizedString) {
        guard !units.isEmpty, !s.isEmpty else { return }
        // The transformation list as the Rust crate builds it (its quirks included: a
        // replacement by nothing lowers the change of the previous entry).
        var changes: [(Unicode.Scalar, Int)] = []
        changes.reserveCapacity(s.count)
        var modified = false
        var buffer: [UInt8] = []
        let all = Array(s.scalars)
        let n = all.count
        func replace(_ oldCount: Int, _ new: [Unicode.Scalar]) {
            let diff = new.count - oldCount
            for c in new { changes.append((c, 0)) }
            if diff > 0 {
                for j in (changes.count - diff)..<changes.count { changes[j].1 = 1 }
            } else if diff < 0, !changes.isEmpty {
                changes[changes.count - 1].1 += diff
            }
        }
        func cluster(_ cluster: ArraySlice<Unicode.Scalar>) {
            var utf8Length = 0
            for c in cluster { utf8Length += c.utf8Length }
            if utf8Length < 6, let rep = lookup(cluster, utf8: &buffer) {
                modified = true
                replace(cluster.count, rep)
                return
            }
            for j in cluster.indices {
                if let rep = lookup(cluster[j...j], utf8: &buffer) {
                    modified = true
                    replace(1, rep)
                } else {
                    changes.append((cluster[j], 0))
                }
            }
        }
        // Grapheme clusters. Two ASCII characters always have a boundary between them (except
        // CR LF), so ASCII text is handled a character at a time and only the stretches around
        // other characters go through Swift's grapheme breaking.
        @inline(__always) func boundary(_ j: Int) -> Bool {
            j >= n || (all[j - 1].value < 0x80 && all[j].value < 0x80 && !(all[j - 1] == "\r" && all[j] == "\n"))
        }
        var k = 0
        while k < n {
            let c = all[k]
            if c.value < 0x80 && boundary(k + 1) {
                if let rep = asciiReplacements[Int(c.value)] {
                    modified = true
                    replace(1, rep)
                } else {
                    changes.append((c, 0))
                }
                k += 1
                continue
            }
            var r = k + 1
            while !boundary(r) { r += 1 }
            var str = String()
            str.unicodeScalars.append(contentsOf: all[k..<r])
            var p = k
            for ch in str {
                let m = ch.unicodeScalars.count
                cluster(all[p..<(p + m)])
                p += m
            }
            k = r
        }
        guard modified else { return }
        var b = s.builder()
        for (c, change) in changes { b.emit(c, change) }
        s.apply(b)
    }
}

extension Unicode.Scalar {
    @inline(__always) var utf8Length: Int {
        let v = value
        return v < 0x80 ? 1 : v < 0x800 ? 2 : v < 0x10000 ? 3 : 4
    }
}

@inline(__always) func appendUTF8(_ c: Unicode.Scalar, to out: inout [UInt8]) {
    let v = c.value
    if v < 0x80 {
        out.append(UInt8(v))
    } else if v < 0x800 {
        out.append(UInt8(0xC0 | (v >> 6)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    } else if v < 0x10000 {
        out.append(UInt8(0xE0 | (v >> 12)))
        out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    } else {
        out.append(UInt8(0xF0 | (v >> 18)))
        out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
        out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
        out.append(UInt8(0x80 | (v & 0x3F)))
    }
}
