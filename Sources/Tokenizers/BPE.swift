import Foundation

/// Byte-pair encoding: a word starts as characters (the first plain, later ones with
/// `continuing_subword_prefix`, the last with `end_of_word_suffix`) and pairs are merged by
/// rank (lowest first, leftmost among equals) until no merge applies. Characters outside the
/// vocabulary become `<0xXX>` byte tokens (`byte_fallback`) or the unknown token (consecutive
/// ones fused with `fuse_unk`). Merge dropout is not supported (inference only).
struct BPE: TokenizerModel {
    let vocab: VocabTable
    let reverse: [String?]
    /// (left id << 32 | right id) → (rank << 32 | merged id).
    let merges: PairTable
    let unkToken: String?
    let unkId: Int32
    let prefix: [UInt8]?
    let suffix: [UInt8]?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    /// Ids of `<0x00>`…`<0xFF>` (-1 when absent).
    let byteIds: [Int32]
    private let cache: WordCache

    init(_ node: JSONNode) throws {
        let (vocabTable, reverseTable) = try Models.readVocab(try node["vocab"])
        vocab = vocabTable
        reverse = reverseTable
        unkToken = try node.optionalString("unk_token")
        prefix = try node.optionalString("continuing_subword_prefix").map { Array($0.utf8) }
        suffix = try node.optionalString("end_of_word_suffix").map { Array($0.utf8) }
        fuseUnk = try node.bool("fuse_unk", default: false)
        byteFallback = try node.bool("byte_fallback", default: false)
        ignoreMerges = try node.bool("ignore_merges", default: false)
        if let d = node.optional("dropout") {
            let p = try d.double()
            if p > 0 { throw d.error("BPE dropout \(p) is not supported (runpipe tokenizes for inference; use null)") }
        }
        if let u = unkToken {
            unkId = vocab.lookup(u)
        } else {
            unkId = -1
        }
        var bytes = [Int32](repeating: -1, count: 256)
        for b in 0..<256 { bytes[b] = vocabTable.lookup(String(format: "<0x%02X>", b)) }
        byteIds = bytes

        let mergeNodes = try node["merges"].array()
        var table = PairTable(capacity: mergeNodes.count)
        let prefixLength = prefix?.count ?? 0
        for (rank, m) in mergeNodes.enumerated() {
            let a: String, b: String
            switch m.value {
            case .string(let s):
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw m.error("merge \"\(s)\" is not two tokens separated by a space") }
                a = String(parts[0]); b = String(parts[1])
            case .array(let items):
                guard items.count == 2, case .string(let x) = items[0], case .string(let y) = items[1] else {
                    throw m.error("merge must be two strings")
                }
                a = x; b = y
            default:
                throw m.error("expected a merge as \"a b\" or [\"a\", \"b\"], found \(m.value.typeName)")
            }
            let ia = vocab.lookup(a), ib = vocab.lookup(b)
            guard ia >= 0 else { throw m.error("merge token \"\(a)\" is not in the vocabulary") }
            guard ib >= 0 else { throw m.error("merge token \"\(b)\" is not in the vocabulary") }
            let bBytes = Array(b.utf8)
            let tail = prefixLength > 0 && bBytes.count >= prefixLength && bBytes.starts(with: prefix ?? []) ? Array(bBytes[prefixLength...]) : bBytes
            let merged = Array(a.utf8) + tail
            let id = merged.withUnsafeBufferPointer { vocabTable.lookup($0) }
            guard id >= 0 else {
                throw m.error("merged token \"\(String(decoding: merged, as: UTF8.self))\" is not in the vocabulary")
            }
            table.insert(UInt64(UInt32(ia)) << 32 | UInt64(UInt32(ib)), UInt64(rank) << 32 | UInt64(UInt32(id)))
        }
        merges = table
        cache = WordCache()
    }

    var vocabularySize: Int { vocab.count }
    var unknownToken: String? { unkToken }
    func id(of token: String) -> Int? { let v = vocab.lookup(token); return v >= 0 ? Int(v) : nil }
    func token(of id: Int) -> String? { id >= 0 && id < reverse.count ? reverse[id] : nil }

    /// A symbol of the word being merged: id, byte length, linked-list neighbours.
    private struct Symbol {
        var id: Int32
        var start: Int32   // byte offset in the word
        var length: Int32  // bytes; 0 = merged away
        var prev: Int32
        var next: Int32
    }

    func tokenize(_ word: ArraySlice<Unicode.Scalar>, into out: inout [ModelToken], scratch: inout ModelScratch) {
        scratch.load(word)
        let key = scratch.bytes
        if let hit = cache.get(key) {
            out.append(contentsOf: hit)
            return
        }
        let first = out.count
        tokenizeUncached(word, into: &out, scratch: &scratch)
        cache.put(key, Array(out[first...]))
    }

    private func tokenizeUncached(_ word: ArraySlice<Unicode.Scalar>, into out: inout [ModelToken], scratch: inout ModelScratch) {
        let n = word.count
        if ignoreMerges {
            let id = scratch.bytes.withUnsafeBufferPointer { vocab.lookup($0) }
            if id >= 0 { out.append(ModelToken(id: id, start: 0, end: Int32(n))); return }
        }
        var symbols: [Symbol] = []
        symbols.reserveCapacity(n + 2)
        var pendingUnk: (id: Int32, start: Int32, length: Int32)? = nil
        func add(_ id: Int32, _ start: Int32, _ length: Int32) {
            let k = Int32(symbols.count)
            symbols.append(Symbol(id: id, start: start, length: length, prev: k - 1, next: k + 1))
        }
        for k in 0..<n {
            let a = Int(scratch.boundaries[k]), b = Int(scratch.boundaries[k + 1])
            scratch.candidate.removeAll(keepingCapacity: true)
            if k > 0, let p = prefix { scratch.candidate.append(contentsOf: p) }
            scratch.candidate.append(contentsOf: scratch.bytes[a..<b])
            if k == n - 1, let s = suffix { scratch.candidate.append(contentsOf: s) }
            let id = scratch.candidate.withUnsafeBufferPointer { vocab.lookup($0) }
            let byteLength = Int32(b - a)
            if id >= 0 {
                if let u = pendingUnk { add(u.id, u.start, u.length); pendingUnk = nil }
                add(id, Int32(a), byteLength)
                continue
            }
            if byteFallback, scratch.candidate.allSatisfy({ byteIds[Int($0)] >= 0 }) {
                // Each byte of the piece (prefix included) is one symbol of length 1.
                var pos = Int32(a)
                for x in scratch.candidate {
                    add(byteIds[Int(x)], min(pos, Int32(scratch.bytes.count - 1)), 1)
                    pos += 1
                }
                continue
            }
            guard unkId >= 0 else { continue }
            if let u = pendingUnk {
                if fuseUnk {
                    pendingUnk = (u.id, u.start, u.length + byteLength)
                } else {
                    add(u.id, u.start, u.length)
                    pendingUnk = (unkId, Int32(a), byteLength)
                }
            } else {
                pendingUnk = (unkId, Int32(a), byteLength)
            }
        }
        if let u = pendingUnk { add(u.id, u.start, u.length) }
        guard !symbols.isEmpty else { return }
        symbols[symbols.count - 1].next = -1

        mergeAll(&symbols)

        // Byte offsets → scalar offsets (a symbol inside one scalar covers that scalar).
        let bounds = scratch.boundaries
        func scalarIndex(ofByte x: Int32) -> Int {
            var lo = 0, hi = n
            while lo < hi {
                let mid = (lo + hi + 1) / 2
                if bounds[mid] <= x { lo = mid } else { hi = mid - 1 }
            }
            return lo
        }
        // Offsets are cumulative symbol lengths, as the Rust crate computes them.
        var pos: Int32 = 0
        let total = Int32(scratch.bytes.count)
        for s in symbols where s.length > 0 {
            let startByte = min(pos, total - 1)
            let lastByte = min(max(pos, pos + s.length - 1), total - 1)
            out.append(ModelToken(id: s.id, start: Int32(scalarIndex(ofByte: startByte)),
                                  end: Int32(min(scalarIndex(ofByte: lastByte) + 1, n))))
            pos += s.length
        }
    }

    private func mergeAll(_ symbols: inout [Symbol]) {
        // Min-heap of (rank << 32 | position), with the expected merged id alongside.
        var heap: [(key: UInt64, newId: Int32)] = []
        heap.reserveCapacity(symbols.count)
        func push(_ key: UInt64, _ id: Int32) {
            heap.append((key, id))
            var i = heap.count - 1
            while i > 0 {
                let p = (i - 1) / 2
                if heap[p].key <= heap[i].key { break }
                heap.swapAt(p, i)
                i = p
            }
        }
        func pop() -> (key: UInt64, newId: Int32)? {
            guard let top = heap.first else { return nil }
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var i = 0
                while true {
                    let l = 2 * i + 1, r = l + 1
                    var m = i
                    if l < heap.count, heap[l].key < heap[m].key { m = l }
                    if r < heap.count, heap[r].key < heap[m].key { m = r }
                    if m == i { break }
                    heap.swapAt(i, m)
                    i = m
                }
            }
            return top
        }
        @inline(__always) func pairKey(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(a)) << 32 | UInt64(UInt32(b)) }

        for i in 0..<(symbols.count - 1) {
            if let m = merges.get(pairKey(symbols[i].id, symbols[i + 1].id)) {
                push((m >> 32) << 32 | UInt64(i), Int32(truncatingIfNeeded: m & 0xFFFF_FFFF))
            }
        }
        while let top = pop() {
            let pos = Int(top.key & 0xFFFF_FFFF)
            if symbols[pos].length == 0 || symbols[pos].next == -1 { continue }
            let nextPos = Int(symbols[pos].next)
            let right = symbols[nextPos]
            guard let m = merges.get(pairKey(symbols[pos].id, right.id)),
                  Int32(truncatingIfNeeded: m & 0xFFFF_FFFF) == top.newId else { continue }
            symbols[pos].id = top.newId
            symbols[pos].length += right.length
            symbols[pos].next = right.next
            symbols[nextPos].length = 0
            if right.next >= 0, Int(right.next) < symbols.count { symbols[Int(right.next)].prev = Int32(pos) }
            let current = symbols[pos]
            if current.prev >= 0 {
                let prev = Int(current.prev)
                if let m2 = merges.get(pairKey(symbols[prev].id, current.id)) {
                    push((m2 >> 32) << 32 | UInt64(prev), Int32(truncatingIfNeeded: m2 & 0xFFFF_FFFF))
                }
            }
            if current.next >= 0, Int(current.next) < symbols.count {
                if let m2 = merges.get(pairKey(current.id, symbols[Int(current.next)].id)) {
                    push((m2 >> 32) << 32 | UInt64(pos), Int32(truncatingIfNeeded: m2 & 0xFFFF_FFFF))
                }
            }
        }
    }
}

/// A bounded word → tokens cache shared by concurrent encoders (like the Rust crate's BPE
/// cache: once full, new words are no longer added).
final class WordCache: @unchecked Sendable {
    private let lock = NSLock()
    private var map: [ByteKey: [ModelToken]] = [:]
    private let capacity: Int

    init(capacity: Int = 10_000) { self.capacity = capacity }

    func get(_ key: [UInt8]) -> [ModelToken]? {
        lock.lock()
        defer { lock.unlock() }
        return map[ByteKey(bytes: key)]
    }

    func put(_ key: [UInt8], _ value: [ModelToken]) {
        lock.lock()
        defer { lock.unlock() }
        if map.count < capacity { map[ByteKey(bytes: key)] = value }
    }
}

/// Bytes hashed and compared as bytes.
struct ByteKey: Hashable {
    let bytes: [UInt8]
    func hash(into h: inout Hasher) { bytes.withUnsafeBytes { h.combine(bytes: $0) } }
}
