import Foundation

/// SentencePiece's unigram model: the segmentation of a word with the highest total
/// log-probability (Viterbi over the pieces found by a byte trie). A character no piece covers
/// is the unknown token, scored 10 below the lowest piece; consecutive unknowns are fused.
/// With `byte_fallback`, a piece outside the vocabulary becomes `<0xXX>` byte tokens.
struct Unigram: TokenizerModel {
    let vocab: VocabTable
    let pieces: [String]
    let scores: [Double]
    let unkId: Int32
    let byteFallback: Bool
    let minScore: Double
    let trie: ByteTrie
    let byteIds: [Int32]

    static let unknownPenalty = 10.0

    init(_ node: JSONNode) throws {
        let items = try node["vocab"].array()
        var table = VocabTable(capacity: items.count)
        var ps: [String] = [], ss: [Double] = []
        ps.reserveCapacity(items.count)
        ss.reserveCapacity(items.count)
        var trie = ByteTrie()
        var minS = Double.infinity
        for (i, item) in items.enumerated() {
            let pair = try item.array()
            guard pair.count == 2 else { throw item.error("expected [piece, score]") }
            let piece = try pair[0].string()
            let score = try pair[1].double()
            ps.append(piece)
            ss.append(score)
            table.insert(piece, id: i)
            trie.insert(Array(piece.utf8), id: Int32(i))
            minS = min(minS, score)
        }
        vocab = table
        pieces = ps
        scores = ss
        self.trie = trie
        minScore = minS
        if let u = node.optional("unk_id") {
            let id = try u.tokenId()
            guard id < items.count else { throw u.error("unk_id \(id) is outside the vocabulary of \(items.count)") }
            unkId = Int32(id)
        } else {
            unkId = -1
        }
        byteFallback = try node.bool("byte_fallback", default: false)
        var bytes = [Int32](repeating: -1, count: 256)
        for b in 0..<256 { bytes[b] = table.lookup(String(format: "<0x%02X>", b)) }
        byteIds = bytes
    }

    var vocabularySize: Int { pieces.count }
    var unknownToken: String? { unkId >= 0 ? pieces[Int(unkId)] : nil }
    func id(of token: String) -> Int? { let v = vocab.lookup(token); return v >= 0 ? Int(v) : nil }
    func token(of id: Int) -> String? { id >= 0 && id < pieces.count ? pieces[id] : nil }

    func tokenize(_ word: ArraySlice<Unicode.Scalar>, into out: inout [ModelToken], scratch: inout ModelScratch) {
        scratch.load(word)
        let bytes = scratch.bytes
        let size = bytes.count
        guard size > 0 else { return }
        // Best path ending at each byte: score, where it starts (-1 = none yet), piece id.
        var bestScore = [Double](repeating: 0, count: size + 1)
        var bestStart = [Int32](repeating: -1, count: size + 1)
        var bestId = [Int32](repeating: -1, count: size + 1)
        let unkScore = minScore - Self.unknownPenalty
        // Byte → scalar index (for scalar lengths and offsets).
        var scalarAt = [Int32](repeating: 0, count: size + 1)
        for k in 0..<word.count {
            let a = Int(scratch.boundaries[k]), b = Int(scratch.boundaries[k + 1])
            for x in a..<b { scalarAt[x] = Int32(k) }
        }
        scalarAt[size] = Int32(word.count)

        var startsAt = 0
        bytes.withUnsafeBufferPointer { buf in
            while startsAt < size {
                let here = bestScore[startsAt]
                let k = Int(scalarAt[startsAt])
                let charLength = Int(scratch.boundaries[k + 1]) - startsAt
                var hasSingle = false
                trie.forEachPrefix(of: buf, from: startsAt) { length, id in
                    let end = startsAt + length
                    let candidate = scores[Int(id)] + here
                    if bestStart[end] < 0 || candidate > bestScore[end] {
                        bestScore[end] = candidate
                        bestStart[end] = Int32(startsAt)
                        bestId[end] = id
                    }
                    if length == charLength { hasSingle = true }
                }
                if !hasSingle {
                    let end = startsAt + charLength
                    let candidate = unkScore + here
                    if bestStart[end] < 0 || candidate > bestScore[end] {
                        bestScore[end] = candidate
                        bestStart[end] = Int32(startsAt)
                        bestId[end] = unkId
                    }
                }
                startsAt += charLength
            }
        }
        // Walk back; fuse consecutive unknowns.
        var segments: [(start: Int, end: Int, id: Int32)] = []
        var end = size
        while end > 0 {
            let s = Int(bestStart[end])
            guard s >= 0, s < end else { break }
            let id = bestId[end]
            if id == unkId, unkId >= 0, let last = segments.last, last.id == unkId, last.start == end {
                segments[segments.count - 1] = (s, last.end, unkId)
            } else {
                segments.append((s, end, id))
            }
            end = s
        }
        for seg in segments.reversed() {
            let a = scalarAt[seg.start], b = scalarAt[seg.end]
            if seg.id == unkId {
                // The Rust crate looks the (possibly fused) piece up again by its text.
                let id = bytes.withUnsafeBufferPointer { vocab.lookup(UnsafeBufferPointer(rebasing: $0[seg.start..<seg.end])) }
                if id >= 0 { out.append(ModelToken(id: id, start: a, end: b)); continue }
            }
            if seg.id == unkId, byteFallback {
                // The piece's string is not in the vocabulary: its bytes, if all are.
                if (seg.start..<seg.end).allSatisfy({ byteIds[Int(bytes[$0])] >= 0 }) {
                    for x in seg.start..<seg.end { out.append(ModelToken(id: byteIds[Int(bytes[x])], start: a, end: b)) }
                    continue
                }
            }
            if seg.id >= 0 { out.append(ModelToken(id: seg.id, start: a, end: b, valueIsText: seg.id == unkId)) }
        }
    }
}

/// A byte trie for common-prefix search: transitions in one hash table keyed by
/// (node, byte).
struct ByteTrie: Sendable {
    private var transitions = PairTable(capacity: 1024)
    private var tokenIds: [Int32] = [-1]

    mutating func insert(_ key: [UInt8], id: Int32) {
        var node: UInt64 = 0
        for b in key {
            let k = node << 8 | UInt64(b)
            if let next = transitions.get(k) {
                node = next
            } else {
                let next = UInt64(tokenIds.count)
                tokenIds.append(-1)
                transitions.insert(k, next)
                node = next
            }
        }
        tokenIds[Int(node)] = id
    }

    /// Calls `f(length, id)` for every key that is a prefix of `bytes[from...]`, shortest first.
    @inline(__always)
    func forEachPrefix(of bytes: UnsafeBufferPointer<UInt8>, from: Int, _ f: (Int, Int32) -> Void) {
        var node: UInt64 = 0
        var i = from
        while i < bytes.count {
            guard let next = transitions.get(node << 8 | UInt64(bytes[i])) else { return }
            node = next
            i += 1
            let id = tokenIds[Int(node)]
            if id >= 0 { f(i - from, id) }
        }
    }
}
