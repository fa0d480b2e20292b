import Foundation

/// Greedy longest-match-first sub-words; later pieces carry `continuing_subword_prefix` (##).
/// A word with any unmatched part, or longer than `max_input_chars_per_word`, becomes the
/// unknown token.
struct WordPiece: TokenizerModel {
    let vocab: VocabTable
    let reverse: [String?]
    let unkToken: String
    let unkId: Int32
    let prefix: [UInt8]
    let maxInputCharsPerWord: Int

    init(_ node: JSONNode) throws {
        (vocab, reverse) = try Models.readVocab(try node["vocab"])
        let unkNode = node.optional("unk_token")
        unkToken = try unkNode?.string() ?? "[UNK]"
        prefix = Array(try node.string("continuing_subword_prefix", default: "##").utf8)
        maxInputCharsPerWord = try node.int("max_input_chars_per_word", default: 100)
        let u = vocab.lookup(unkToken)
        guard u >= 0 else {
            throw (unkNode ?? node).error("unknown token \"\(unkToken)\" is not in the vocabulary")
        }
        unkId = u
    }

    /// A WordPiece model from a `vocab.txt` (one token per line, id = line number).
    init(vocabLines: [String], unkToken: String = "[UNK]") {
        var t = VocabTable(capacity: vocabLines.count)
        var r = [String?]()
        for (i, line) in vocabLines.enumerated() { t.insert(line, id: i); r.append(line) }
        vocab = t
        reverse = r
        self.unkToken = unkToken
        unkId = t.lookup(unkToken)
        prefix = Array("##".utf8)
        maxInputCharsPerWord = 100
    }

    var vocabularySize: Int { vocab.count }
    var unknownToken: String? { unkToken }
    func id(of token: String) -> Int? { let v = vocab.lookup(token); return v >= 0 ? Int(v) : nil }
    func token(of id: Int) -> String? { id >= 0 && id < reverse.count ? reverse[id] : nil }

    func tokenize(_ word: ArraySlice<Unicode.Scalar>, into out: inout [ModelToken], scratch: inout ModelScratch) {
        let n = word.count
        if n > maxInputCharsPerWord {
            out.append(ModelToken(id: unkId, start: 0, end: Int32(n)))
            return
        }
        scratch.load(word)
        let firstOut = out.count
        let p = prefix.count
        var start = 0
        // candidate = prefix + bytes[start...]
        while start < n {
            let byteStart = Int(scratch.boundaries[start])
            scratch.candidate.removeAll(keepingCapacity: true)
            if start > 0 { scratch.candidate.append(contentsOf: prefix) }
            let head = start > 0 ? p : 0
            scratch.candidate.append(contentsOf: scratch.bytes[byteStart...])
            var end = n
            var found: Int32 = -1
            scratch.candidate.withUnsafeBufferPointer { cand in
                while end > start {
                    let len = head + Int(scratch.boundaries[end]) - byteStart
                    let id = vocab.lookup(UnsafeBufferPointer(rebasing: cand[0..<len]))
                    if id >= 0 { found = id; return }
                    end -= 1
                }
            }
            if found < 0 {
                out.removeSubrange(firstOut...)
                out.append(ModelToken(id: unkId, start: 0, end: Int32(n)))
                return
            }
            out.append(ModelToken(id: found, start: Int32(start), end: Int32(end)))
            start = end
        }
    }
}
