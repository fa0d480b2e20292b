import Foundation

/// A Hugging Face tokenizer (the `tokenizers` library's pipeline) loaded from `tokenizer.json`
/// or from a BERT `vocab.txt`:
///
///     let tok = try Tokenizer.load(folder: URL(fileURLWithPath: "models/all-MiniLM-L6-v2"))
///     tok.truncation = Truncation(maxLength: 128)   // the file sets 128 and padding to 128
///     tok.padding = nil
///     let e = tok.encode("Hello world!")            // e.ids == [101, 7592, 2088, 999, 102]
///     tok.decode(e.ids)                             // "hello world!"
///
/// (`RealTokenizerTests.testDocumentedExample` runs this example.)
///
/// Text goes through the same steps as in the Python library: added tokens are found, the
/// rest is normalized, pre-tokenized into words, tokenized by the model, truncated, wrapped
/// in special tokens by the post-processor, and padded. Ids, type ids, offsets (in Unicode
/// scalars of the input, as Python reports them), attention and special-token masks agree
/// with the Python `tokenizers` library.
///
/// A `Tokenizer` is safe to use from several threads once configured; `truncation` and
/// `padding` should be set before sharing it.
public final class Tokenizer: @unchecked Sendable {
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let model: TokenizerModel
    let postProcessor: PostProcessor?
    let decoder: TokenDecoder?
    /// Tokens of the `added_tokens` section.
    public let addedTokens: [AddedToken]
    private let originalMatcher: AddedTokenMatcher
    private let normalizedMatcher: AddedTokenMatcher
    private let addedById: [Int: AddedToken]
    private let addedByContent: [String: Int]
    private let addedIdToString: [Int: String]

    /// Truncation applied by `encode` (from the file, or set by the caller; nil = none).
    public var truncation: Truncation?
    /// Padding applied by `encode` and `encodeBatch` (from the file, or set; nil = none).
    public var padding: Padding?

    init(normalizer: Normalizer?, preTokenizer: PreTokenizer?, model: TokenizerModel, postProcessor: PostProcessor?,
         decoder: TokenDecoder?, addedTokens: [AddedToken], truncation: Truncation?, padding: Padding?) {
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.model = model
        self.postProcessor = postProcessor
        self.decoder = decoder
        self.addedTokens = addedTokens
        self.truncation = truncation
        self.padding = padding
        var byId: [Int: AddedToken] = [:]
        var byContent: [String: Int] = [:]
        for t in addedTokens {
            byId[t.id] = t
            byContent[t.content] = t.id
        }
        addedById = byId
        addedByContent = byContent
        let original = addedTokens.filter { !$0.normalized }
        originalMatcher = AddedTokenMatcher(tokens: original, patterns: original.map { Array($0.content.unicodeScalars) })
        let normalized = addedTokens.filter { $0.normalized }
        let patterns = normalized.map { t -> [Unicode.Scalar] in
            let scalars = Array(t.content.unicodeScalars)
            var s = NormalizedString(original: scalars, range: 0..<scalars.count)
            normalizer?.normalize(&s)
            return Array(s.scalars)
        }
        normalizedMatcher = AddedTokenMatcher(tokens: normalized, patterns: patterns)
        // A normalized added token reads back as its normalized form, as in the Rust crate.
        var strings: [Int: String] = [:]
        for t in addedTokens { strings[t.id] = t.content }
        for (t, p) in zip(normalized, patterns) {
            var s = String()
            s.unicodeScalars.append(contentsOf: p)
            strings[t.id] = s
        }
        addedIdToString = strings
    }

    // MARK: - Loading

    /// Loads a `tokenizer.json`.
    public static func load(file url: URL) throws -> Tokenizer {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        return try load(json: data, name: url.path)
    }

    /// Loads tokenizer.json content; `name` is used in error messages.
    public static func load(json data: Data, name: String = "tokenizer.json") throws -> Tokenizer {
        let root: JSONValue
        do { root = try JSONParser.parse(data) } catch let e as JSONSyntaxError {
            let (line, col) = JSONParser.lineColumn(data, offset: e.offset)
            throw TokenizerError.malformedJSON(file: name, line: line, column: col, reason: e.reason)
        }
        do {
            return try build(JSONNode(root))
        } catch let e as ConfigError {
            throw TokenizerError.invalid(file: name, path: e.path, reason: e.reason)
        }
    }

    private static func build(_ root: JSONNode) throws -> Tokenizer {
        _ = try root.members()
        let normalizer = try root.optional("normalizer").map(Normalizers.make)
        let preTokenizer = try root.optional("pre_tokenizer").map(PreTokenizers.make)
        let model = try Models.make(try root["model"])
        let postProcessor = try root.optional("post_processor").map(PostProcessors.make)
        let decoder = try root.optional("decoder").map(Decoders.make)
        let added = try root.optional("added_tokens")?.array().map(AddedToken.init) ?? []
        let truncation = try root.optional("truncation").map(Truncation.init)
        let padding = try root.optional("padding").map(Padding.init)
        return Tokenizer(normalizer: normalizer, preTokenizer: preTokenizer, model: model, postProcessor: postProcessor,
                         decoder: decoder, addedTokens: added, truncation: truncation, padding: padding)
    }

    /// Loads `tokenizer.json` from a folder, or else builds a BERT tokenizer from `vocab.txt`
    /// (lowercasing unless `tokenizer_config.json` says `"do_lower_case": false`), as
    /// `BertTokenizerFast(vocab_file=...)` does.
    public static func load(folder: URL) throws -> Tokenizer {
        let fm = FileManager.default
        let json = folder.appendingPathComponent("tokenizer.json")
        if fm.fileExists(atPath: json.path) { return try load(file: json) }
        let vocab = folder.appendingPathComponent("vocab.txt")
        guard fm.fileExists(atPath: vocab.path) else { throw TokenizerError.noTokenizer(folder: folder.path) }
        var lowercase = true
        var chinese = true
        var stripAccents: Bool? = nil
        let configURL = folder.appendingPathComponent("tokenizer_config.json")
        if fm.fileExists(atPath: configURL.path) {
            let data: Data
            do { data = try Data(contentsOf: configURL) } catch {
                throw TokenizerError.unreadable(file: configURL.path, reason: error.localizedDescription)
            }
            do {
                let root = JSONNode(try JSONParser.parse(data))
                lowercase = try root.bool("do_lower_case", default: true)
                chinese = try root.bool("tokenize_chinese_chars", default: true)
                stripAccents = try root.optionalBool("strip_accents")
            } catch let e as JSONSyntaxError {
                let (line, col) = JSONParser.lineColumn(data, offset: e.offset)
                throw TokenizerError.malformedJSON(file: configURL.path, line: line, column: col, reason: e.reason)
            } catch let e as ConfigError {
                throw TokenizerError.invalid(file: configURL.path, path: e.path, reason: e.reason)
            }
        }
        return try loadBert(vocab: vocab, lowercase: lowercase, handleChineseChars: chinese, stripAccents: stripAccents)
    }

    /// A BERT WordPiece tokenizer from a `vocab.txt` (one token per line).
    public static func loadBert(vocab url: URL, lowercase: Bool = true, handleChineseChars: Bool = true,
                                stripAccents: Bool? = nil) throws -> Tokenizer {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw TokenizerError.unreadable(file: url.path, reason: error.localizedDescription)
        }
        guard let text = String(validating: [UInt8](data), as: UTF8.self) else {
            throw TokenizerError.invalid(file: url.path, path: "", reason: "not valid UTF-8")
        }
        // One token per line, lines ended by \n, \r\n or \r (Python's universal newlines).
        var lines: [String] = []
        var current = String.UnicodeScalarView()
        var previousCR = false
        for c in text.unicodeScalars {
            if c == "\n" && previousCR { previousCR = false; continue }
            previousCR = c == "\r"
            if c == "\n" || c == "\r" {
                lines.append(String(current))
                current = String.UnicodeScalarView()
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { lines.append(String(current)) }
        let model = WordPiece(vocabLines: lines)
        guard model.unkId >= 0 else {
            throw TokenizerError.invalid(file: url.path, path: "", reason: "the unknown token [UNK] is not in the vocabulary")
        }
        var added: [AddedToken] = []
        for name in ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] {
            if let id = model.id(of: name) { added.append(AddedToken(id: id, content: name, special: true)) }
        }
        added.sort { $0.id < $1.id }
        guard let cls = model.id(of: "[CLS]"), let sep = model.id(of: "[SEP]") else {
            throw TokenizerError.invalid(file: url.path, path: "", reason: "[CLS] and [SEP] must be in the vocabulary")
        }
        return Tokenizer(normalizer: BertNormalizer(cleanText: true, handleChineseChars: handleChineseChars,
                                                    stripAccents: stripAccents, lowercase: lowercase),
                         preTokenizer: BertPreTokenizer(), model: model,
                         postProcessor: BertProcessing(cls: ("[CLS]", cls), sep: ("[SEP]", sep)),
                         decoder: WordPieceDecoder(), addedTokens: added, truncation: nil, padding: nil)
    }

    /// An independent tokenizer with the same pipeline, to set other truncation or padding.
    public func copy() -> Tokenizer {
        let t = Tokenizer(normalizer: normalizer, preTokenizer: preTokenizer, model: model, postProcessor: postProcessor,
                          decoder: decoder, addedTokens: addedTokens, truncation: truncation, padding: padding)
        return t
    }

    // MARK: - Vocabulary

    /// The id of a token (added tokens first, then the model's vocabulary).
    public func id(of token: String) -> Int? {
        if let id = addedByContent[token] { return id }
        return model.id(of: token)
    }

    /// The token of an id.
    public func token(of id: Int) -> String? {
        if let t = addedIdToString[id] { return t }
        return model.token(of: id)
    }

    /// Number of ids: the model's vocabulary plus added tokens outside it.
    public var vocabularySize: Int {
        model.vocabularySize + addedTokens.filter { model.token(of: $0.id) == nil }.count
    }

    /// Well-known special tokens, when this tokenizer has them.
    public var clsTokenId: Int? { firstId(["[CLS]", "<s>"]) }
    public var sepTokenId: Int? { firstId(["[SEP]", "</s>"]) }
    public var padTokenId: Int? { padding?.padId ?? firstId(["[PAD]", "<pad>"]) }
    public var maskTokenId: Int? { firstId(["[MASK]", "<mask>"]) }
    public var unkTokenId: Int? { model.unknownToken.flatMap { id(of: $0) } }

    private func firstId(_ names: [String]) -> Int? {
        for n in names { if let id = id(of: n) { return id } }
        return nil
    }

    /// Number of special tokens the post-processor adds to a single text or a pair.
    public func specialTokenCount(pair: Bool) -> Int { postProcessor?.addedTokens(pair: pair) ?? 0 }

    // MARK: - Encoding

    /// Encodes one text, or a pair (`pair`), with truncation, special tokens and padding as
    /// configured.
    public func encode(_ text: String, pair: String? = nil, addSpecialTokens: Bool = true) -> Encoding {
        var e = encodeUnpadded(text, pair: pair, addSpecialTokens: addSpecialTokens)
        if let p = padding {
            var batch = [e]
            p.apply(to: &batch)
            e = batch[0]
        }
        return e
    }

    /// Encodes many texts (or pairs, `pairs[i]` going with `texts[i]`), on several threads when
    /// `parallel`; padding (if set) then pads them to a common length.
    public func encodeBatch(_ texts: [String], pairs: [String]? = nil, addSpecialTokens: Bool = true,
                            parallel: Bool = true) -> [Encoding] {
        let n = texts.count
        guard n > 0 else { return [] }
        var out = [Encoding](repeating: Encoding(), count: n)
        let threads = parallel ? min(ProcessInfo.processInfo.activeProcessorCount, max(1, n / 64)) : 1
        out.withUnsafeMutableBufferPointer { buf in
            guard let base = buf.baseAddress else { return }
            if threads <= 1 {
                for i in 0..<n { base[i] = encodeUnpadded(texts[i], pair: pairs.flatMap { i < $0.count ? $0[i] : nil }, addSpecialTokens: addSpecialTokens) }
            } else {
                let chunks = threads * 4
                DispatchQueue.concurrentPerform(iterations: chunks) { c in
                    let lo = n * c / chunks, hi = n * (c + 1) / chunks
                    for i in lo..<hi {
                        base[i] = encodeUnpadded(texts[i], pair: pairs.flatMap { i < $0.count ? $0[i] : nil }, addSpecialTokens: addSpecialTokens)
                    }
                }
            }
        }
        padding?.apply(to: &out)
        return out
    }

    private func encodeUnpadded(_ text: String, pair: String?, addSpecialTokens: Bool) -> Encoding {
        var a = encodeSequence(text, typeId: 0, sequence: 0)
        var b = pair.map { encodeSequence($0, typeId: 1, sequence: 1) }
        if let t = truncation {
            let added = addSpecialTokens ? (postProcessor?.addedTokens(pair: b != nil) ?? 0) : 0
            t.apply(&a, &b, maxLength: max(0, t.maxLength - added))
        }
        if let p = postProcessor { return p.process(a, b, addSpecialTokens: addSpecialTokens) }
        return PostProcessors.plainJoin(a, b)
    }

    /// The tokens of one text without special tokens, truncation or padding.
    func encodeSequence(_ text: String, typeId: Int, sequence: Int) -> Encoding {
        let original = Array(text.unicodeScalars)
        var pre = PreTokenizedString(pieces: [])
        for (id, range) in originalMatcher.split(original[...]) {
            if let id {
                pre.pieces.append(PreToken(text: NormalizedString(original: original, range: range), addedTokenId: id))
                continue
            }
            var s = NormalizedString(original: original, range: range)
            normalizer?.normalize(&s)
            if normalizedMatcher.isEmpty {
                if !s.isEmpty { pre.pieces.append(PreToken(text: s, addedTokenId: nil)) }
            } else {
                for (nid, r) in normalizedMatcher.split(s.scalars) {
                    let piece = s.slice(r)
                    if nid != nil || !piece.isEmpty { pre.pieces.append(PreToken(text: piece, addedTokenId: nid)) }
                }
            }
        }
        preTokenizer?.preTokenize(&pre)

        var e = Encoding()
        var produced: [ModelToken] = []
        var scratch = ModelScratch()
        for p in pre.pieces {
            if let id = p.addedTokenId {
                // The token's string is the matched text (with any stripped whitespace).
                let (s, t) = p.text.originalRange(0..<p.text.count)
                e.append(id: Int(id), token: p.text.string, offsets: Offsets(s, t),
                         typeId: typeId, special: false, sequence: sequence)
                continue
            }
            produced.removeAll(keepingCapacity: true)
            model.tokenize(p.text.scalars, into: &produced, scratch: &scratch)
            for m in produced {
                let (s, t) = p.text.originalRange(Int(m.start)..<Int(m.end))
                let value = m.valueIsText ? p.text.slice(Int(m.start)..<Int(m.end)).string : (model.token(of: Int(m.id)) ?? "")
                e.append(id: Int(m.id), token: value, offsets: Offsets(s, t),
                         typeId: typeId, special: false, sequence: sequence)
            }
        }
        return e
    }

    // MARK: - Decoding

    /// Turns ids back into text through the decoder (tokens joined by spaces without one);
    /// special added tokens are left out when `skipSpecialTokens`. Unknown ids are skipped.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            if let a = addedById[id] {
                if skipSpecialTokens && a.special { continue }
                tokens.append(addedIdToString[id] ?? a.content)
            } else if let t = model.token(of: id) {
                tokens.append(t)
            }
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decode(tokens).joined()
    }
}
