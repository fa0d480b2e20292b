import Foundation

// Models: the `model` section. A model turns one pre-tokenized word into tokens.

/// A token a model produced: its id and the range of scalars of the word it covers.
struct ModelToken {
    var id: Int32
    var start: Int32
    var end: Int32
    /// The token's string is the text it covers rather than the vocabulary entry (Unigram's
    /// unknown pieces).
    var valueIsText = false
}

/// Per-call working memory, so tokenizing a word allocates as little as possible.
struct ModelScratch {
    var bytes: [UInt8] = []
    /// Byte offset of each scalar of the word (plus the end).
    var boundaries: [Int32] = []
    var candidate: [UInt8] = []
    var ints: [Int32] = []

    /// Fills `bytes` and `boundaries` from a word.
    mutating func load(_ scalars: ArraySlice<Unicode.Scalar>) {
        bytes.removeAll(keepingCapacity: true)
        boundaries.removeAll(keepingCapacity: true)
        for c in scalars {
            boundaries.append(Int32(bytes.count))
            appendUTF8(c, to: &bytes)
        }
        boundaries.append(Int32(bytes.count))
    }
}

protocol TokenizerModel: Sendable {
    /// Appends the tokens of one word (scalar offsets relative to the word).
    func tokenize(_ word: ArraySlice<Unicode.Scalar>, into out: inout [ModelToken], scratch: inout ModelScratch)
    func id(of token: String) -> Int?
    func token(of id: Int) -> String?
    var vocabularySize: Int { get }
    /// The unknown token, when the model has one.
    var unknownToken: String? { get }
}

enum Models {
    static let registry: [String: @Sendable (JSONNode) throws -> TokenizerModel] = [
        "WordPiece": { try WordPiece($0) },
        "BPE": { try BPE($0) },
        "Unigram": { try Unigram($0) },
        "WordLevel": { try WordLevel($0) },
    ]

    static func make(_ node: JSONNode) throws -> TokenizerModel {
        // Files written by old versions may lack `type`; infer it from the fields as the Rust
        // crate does (merges → BPE, continuing_subword_prefix → WordPiece, else WordLevel)
        // only when it is absent.
        if !node.has("type") {
            if node.has("merges") { return try BPE(node) }
            if node.has("continuing_subword_prefix") { return try WordPiece(node) }
            if case .array = try node["vocab"].value { return try Unigram(node) }
            return try WordLevel(node)
        }
        return try node.make("model", registry)
    }

    /// Reads a `{token: id}` vocabulary into a table and an id → token array.
    static func readVocab(_ node: JSONNode) throws -> (VocabTable, [String?]) {
        let members = try node.members()
        var table = VocabTable(capacity: members.count)
        var maxId = -1
        var pairs: [(String, Int)] = []
        pairs.reserveCapacity(members.count)
        for m in members {
            let id = try m.node.tokenId()
            pairs.append((m.key, id))
            maxId = max(maxId, id)
        }
        var reverse = [String?](repeating: nil, count: maxId + 1)
        for (t, id) in pairs {
            table.insert(t, id: id)
            reverse[id] = t
        }
        return (table, reverse)
    }
}
