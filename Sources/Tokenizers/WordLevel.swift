import Foundation

/// Whole words looked up in a vocabulary, or the unknown token.
struct WordLevel: TokenizerModel {
    let vocab: VocabTable
    let reverse: [String?]
    let unkToken: String?
    let unkId: Int32

    init(_ node: JSONNode) throws {
        let (table, r) = try Models.readVocab(try node["vocab"])
        vocab = table
        reverse = r
        unkToken = try node.optionalString("unk_token")
        unkId = unkToken.map { table.lookup($0) } ?? -1
    }

    var vocabularySize: Int { vocab.count }
    var unknownToken: String? { unkToken }
    func id(of token: String) -> Int? { let v = vocab.lookup(token); return v >= 0 ? Int(v) : nil }
    func token(of id: Int) -> String? { id >= 0 && id < reverse.count ? reverse[id] : nil }

    func tokenize(_ word: ArraySlice<Unicode.Scalar>, into out: inout [ModelToken], scratch: inout ModelScratch) {
        scratch.load(word)
        let id = scratch.bytes.withUnsafeBufferPointer { vocab.lookup($0) }
        if id >= 0 {
            out.append(ModelToken(id: id, start: 0, end: Int32(word.count)))
        } else if unkId >= 0 {
            out.append(ModelToken(id: unkId, start: 0, end: Int32(word.count)))
        }
    }
}
