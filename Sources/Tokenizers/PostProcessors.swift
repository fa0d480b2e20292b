import Foundation

// Post-processors: the `post_processor` section. They add the model's special tokens around
// one text or a pair, and set type ids.

protocol PostProcessor: Sendable {
    /// Number of tokens added to a single text (`pair == false`) or a pair.
    func addedTokens(pair: Bool) -> Int
    /// Joins the encodings, adding special tokens when `addSpecialTokens`.
    func process(_ a: Encoding, _ b: Encoding?, addSpecialTokens: Bool) -> Encoding
}

enum PostProcessors {
    static let registry: [String: @Sendable (JSONNode) throws -> PostProcessor] = [
        "TemplateProcessing": { try TemplateProcessing($0) },
        "BertProcessing": { try BertProcessing($0) },
        "RobertaProcessing": { try RobertaProcessing($0) },
        "ByteLevel": { try ByteLevelProcessing($0) },
        "Sequence": { try PostProcessorSequence($0) },
    ]

    static func make(_ node: JSONNode) throws -> PostProcessor {
        try node.make("post-processor", registry)
    }

    /// Without special tokens: the texts one after the other, with the type ids encoding gave
    /// them (0 for the first text, 1 for the second).
    static func plainJoin(_ a: Encoding, _ b: Encoding?) -> Encoding {
        var out = a
        if let b { out.append(b) }
        return out
    }

    /// Reads `[token, id]`.
    static func tokenAndId(_ node: JSONNode) throws -> (String, Int) {
        let pair = try node.array()
        guard pair.count == 2 else { throw node.error("expected [token, id]") }
        return (try pair[0].string(), try pair[1].tokenId())
    }
}

/// Encodings with every type id set to `t`, tagged as sequence `seq`.
private func retyped(_ e: Encoding, _ t: Int, sequence: Int) -> Encoding {
    var e = e
    e.typeIds = Array(repeating: t, count: e.count)
    e.sequenceIds = Array(repeating: sequence, count: e.count)
    return e
}

/// `single` and `pair` templates of special tokens and the sequences A and B, each with a
/// type id; special tokens may stand for several ids.
struct TemplateProcessing: PostProcessor {
    enum Piece {
        case sequence(isB: Bool, typeId: Int)
        case special(name: String, typeId: Int)
    }

    let single: [Piece]
    let pair: [Piece]
    /// Special token name → (ids, tokens).
    let specials: [String: (ids: [Int], tokens: [String])]

    init(_ node: JSONNode) throws {
        var sp: [String: (ids: [Int], tokens: [String])] = [:]
        if let st = node.optional("special_tokens") {
            for m in try st.members() {
                let ids = try m.node["ids"].array().map { try $0.tokenId() }
                let tokens = try m.node["tokens"].array().map { try $0.string() }
                guard ids.count == tokens.count else {
                    throw m.node.error("special token \"\(m.key)\" has \(ids.count) ids but \(tokens.count) tokens")
                }
                sp[try m.node.string("id", default: m.key)] = (ids, tokens)
            }
        }
        specials = sp
        func template(_ n: JSONNode) throws -> [Piece] {
            try n.array().map { item in
                if let s = item.optional("Sequence") {
                    let id = try s["id"].string()
                    guard id == "A" || id == "B" else { throw try s["id"].error("sequence id must be \"A\" or \"B\", found \"\(id)\"") }
                    return .sequence(isB: id == "B", typeId: try s.int("type_id", default: 0))
                }
                if let s = item.optional("SpecialToken") {
                    let name = try s["id"].string()
                    guard sp[name] != nil else {
                        throw try s["id"].error("special token \"\(name)\" is not listed in special_tokens")
                    }
                    return .special(name: name, typeId: try s.int("type_id", default: 0))
                }
                throw item.error("expected {\"Sequence\": ...} or {\"SpecialToken\": ...}")
            }
        }
        single = try template(try node["single"])
        pair = try template(try node["pair"])
    }

    func addedTokens(pair isPair: Bool) -> Int {
        (isPair ? pair : single).reduce(0) { n, p in
            if case .special(let name, _) = p { return n + (specials[name]?.ids.count ?? 0) }
            return n
        }
    }

    /// Without special tokens the sequences still take the template's type ids.
    func process(_ a: Encoding, _ b: Encoding?, addSpecialTokens: Bool) -> Encoding {
        var out = Encoding()
        for p in (b == nil ? single : pair) {
            switch p {
            case .sequence(let isB, let typeId):
                if isB {
                    if let b { out.append(retyped(b, typeId, sequence: 1)) }
                } else {
                    out.append(retyped(a, typeId, sequence: 0))
                }
            case .special(let name, let typeId):
                guard addSpecialTokens, let s = specials[name] else { continue }
                for (id, tok) in zip(s.ids, s.tokens) {
                    out.append(id: id, token: tok, offsets: Offsets(0, 0), typeId: typeId, special: true, sequence: nil)
                }
            }
        }
        return out
    }
}

/// `[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]`, B with type id 1.
struct BertProcessing: PostProcessor {
    let cls: (String, Int)
    let sep: (String, Int)

    init(cls: (String, Int), sep: (String, Int)) {
        self.cls = cls
        self.sep = sep
    }

    init(_ node: JSONNode) throws {
        self.init(cls: try PostProcessors.tokenAndId(try node["cls"]), sep: try PostProcessors.tokenAndId(try node["sep"]))
    }

    func addedTokens(pair: Bool) -> Int { pair ? 3 : 2 }

    func process(_ a: Encoding, _ b: Encoding?, addSpecialTokens: Bool) -> Encoding {
        guard addSpecialTokens else { return PostProcessors.plainJoin(a, b) }
        var out = Encoding()
        out.append(id: cls.1, token: cls.0, offsets: Offsets(0, 0), typeId: 0, special: true, sequence: nil)
        out.append(retyped(a, 0, sequence: 0))
        out.append(id: sep.1, token: sep.0, offsets: Offsets(0, 0), typeId: 0, special: true, sequence: nil)
        if let b {
            out.append(retyped(b, 1, sequence: 1))
            out.append(id: sep.1, token: sep.0, offsets: Offsets(0, 0), typeId: 1, special: true, sequence: nil)
        }
        return out
    }
}

/// `<s> A </s>` and `<s> A </s> </s> B </s>`, optionally trimming whitespace from offsets
/// as the ByteLevel post-processor does.
struct RobertaProcessing: PostProcessor {
    let cls: (String, Int)
    let sep: (String, Int)
    let trimOffsets: Bool
    let addPrefixSpace: Bool

    init(_ node: JSONNode) throws {
        sep = try PostProcessors.tokenAndId(try node["sep"])
        cls = try PostProcessors.tokenAndId(try node["cls"])
        trimOffsets = try node.bool("trim_offsets", default: true)
        addPrefixSpace = try node.bool("add_prefix_space", default: true)
    }

    func addedTokens(pair: Bool) -> Int { pair ? 4 : 2 }

    func process(_ a0: Encoding, _ b0: Encoding?, addSpecialTokens: Bool) -> Encoding {
        var a = a0, b = b0
        if trimOffsets {
            ByteLevelProcessing.trim(&a, addPrefixSpace: addPrefixSpace)
            if var bb = b { ByteLevelProcessing.trim(&bb, addPrefixSpace: addPrefixSpace); b = bb }
        }
        guard addSpecialTokens else { return PostProcessors.plainJoin(retyped(a, 0, sequence: 0), b.map { retyped($0, 0, sequence: 1) }) }
        var out = Encoding()
        out.append(id: cls.1, token: cls.0, offsets: Offsets(0, 0), typeId: 0, special: true, sequence: nil)
        out.append(retyped(a, 0, sequence: 0))
        out.append(id: sep.1, token: sep.0, offsets: Offsets(0, 0), typeId: 0, special: true, sequence: nil)
        if let b {
            // RoBERTa has no segment embeddings to speak of: the second text keeps type id 0.
            out.append(id: sep.1, token: sep.0, offsets: Offsets(0, 0), typeId: 0, special: true, sequence: nil)
            out.append(retyped(b, 0, sequence: 1))
            out.append(id: sep.1, token: sep.0, offsets: Offsets(0, 0), typeId: 0, special: true, sequence: nil)
        }
        return out
    }
}

/// Byte-level post-processing: trims the whitespace (Ġ) that leads or ends a token out of its
/// offsets; adds no tokens.
struct ByteLevelProcessing: PostProcessor {
    let trimOffsets: Bool
    let addPrefixSpace: Bool

    init(_ node: JSONNode) throws {
        trimOffsets = try node.bool("trim_offsets", default: true)
        addPrefixSpace = try node.bool("add_prefix_space", default: true)
    }

    func addedTokens(pair: Bool) -> Int { 0 }

    func process(_ a0: Encoding, _ b0: Encoding?, addSpecialTokens: Bool) -> Encoding {
        var a = a0, b = b0
        if trimOffsets {
            Self.trim(&a, addPrefixSpace: addPrefixSpace)
            if var bb = b { Self.trim(&bb, addPrefixSpace: addPrefixSpace); b = bb }
        }
        return PostProcessors.plainJoin(a, b)
    }

    static func trim(_ e: inout Encoding, addPrefixSpace: Bool) {
        let space = ByteLevelAlphabet.byteToScalar[0x20]
        for i in 0..<e.count {
            let scalars = Array(e.tokens[i].unicodeScalars)
            var leading = 0
            while leading < scalars.count, scalars[leading] == space || scalars[leading].isWhitespaceChar { leading += 1 }
            var trailing = 0
            while trailing < scalars.count, scalars[scalars.count - 1 - trailing] == space || scalars[scalars.count - 1 - trailing].isWhitespaceChar { trailing += 1 }
            guard leading > 0 || trailing > 0 else { continue }
            var o = e.offsets[i]
            if leading > 0 {
                let isFirst = i == 0 || o.start == 0
                if isFirst && addPrefixSpace && leading == 1 { leading = 0 }
                o.start = min(o.start + leading, o.end)
            }
            if trailing > 0, o.end >= trailing {
                o.end = max(o.end - trailing, o.start)
            }
            e.offsets[i] = o
        }
    }
}

/// Post-processors applied in order.
struct PostProcessorSequence: PostProcessor {
    let steps: [PostProcessor]

    init(_ node: JSONNode) throws {
        steps = try node["processors"].array().map(PostProcessors.make)
    }

    func addedTokens(pair: Bool) -> Int { steps.reduce(0) { $0 + $1.addedTokens(pair: pair) } }

    func process(_ a: Encoding, _ b: Encoding?, addSpecialTokens: Bool) -> Encoding {
        // Offset trimming applies to each text; the first joining step joins them, later
        // steps see the joined result.
        var first = a
        var second = b
        var joined = false
        for s in steps {
            if !joined, let bl = s as? ByteLevelProcessing {
                if bl.trimOffsets {
                    ByteLevelProcessing.trim(&first, addPrefixSpace: bl.addPrefixSpace)
                    if var bb = second { ByteLevelProcessing.trim(&bb, addPrefixSpace: bl.addPrefixSpace); second = bb }
                }
                continue
            }
            first = s.process(first, joined ? nil : second, addSpecialTokens: addSpecialTokens)
            second = nil
            joined = true
        }
        return joined ? first : PostProcessors.plainJoin(first, second)
    }
}
