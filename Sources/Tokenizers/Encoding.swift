import Foundation

/// A character range of the text a token came from (Unicode scalar offsets, as the Python
/// `tokenizers` library reports them). Special and padding tokens have `0..<0`.
public struct Offsets: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var start: Int
    public var end: Int

    public init(_ start: Int, _ end: Int) {
        self.start = start
        self.end = end
    }

    public var description: String { "(\(start), \(end))" }
}

/// The result of encoding one text or one pair of texts; all arrays have the same length.
public struct Encoding: Equatable, Sendable {
    /// Token ids.
    public var ids: [Int]
    /// Segment (token type) ids: 0 for the first text, 1 for the second, as the
    /// post-processor assigns them.
    public var typeIds: [Int]
    /// Token strings.
    public var tokens: [String]
    /// Where each token came from in its text.
    public var offsets: [Offsets]
    /// 1 for real tokens, 0 for padding.
    public var attentionMask: [Int]
    /// 1 for tokens added by the post-processor or padding, 0 for tokens from the text.
    public var specialTokensMask: [Int]
    /// Which text of a pair each token came from (0 or 1), nil for added special tokens.
    public var sequenceIds: [Int?]

    public init() {
        ids = []; typeIds = []; tokens = []; offsets = []; attentionMask = []; specialTokensMask = []; sequenceIds = []
    }

    /// Number of tokens.
    public var count: Int { ids.count }

    mutating func append(id: Int, token: String, offsets o: Offsets, typeId: Int, special: Bool, sequence: Int?) {
        ids.append(id)
        tokens.append(token)
        offsets.append(o)
        typeIds.append(typeId)
        attentionMask.append(1)
        specialTokensMask.append(special ? 1 : 0)
        sequenceIds.append(sequence)
    }

    mutating func append(_ other: Encoding) {
        ids += other.ids; typeIds += other.typeIds; tokens += other.tokens; offsets += other.offsets
        attentionMask += other.attentionMask; specialTokensMask += other.specialTokensMask
        sequenceIds += other.sequenceIds
    }

    /// Keeps `length` tokens from the start (`fromLeft == false`) or the end.
    mutating func truncate(to length: Int, fromLeft: Bool) {
        guard length < count else { return }
        let r = fromLeft ? (count - length)..<count : 0..<length
        ids = Array(ids[r]); typeIds = Array(typeIds[r]); tokens = Array(tokens[r]); offsets = Array(offsets[r])
        attentionMask = Array(attentionMask[r]); specialTokensMask = Array(specialTokensMask[r])
        sequenceIds = Array(sequenceIds[r])
    }

    /// Pads to `length` with the given token.
    mutating func pad(to length: Int, id: Int, typeId: Int, token: String, left: Bool) {
        let n = length - count
        guard n > 0 else { return }
        func extend<T>(_ a: inout [T], _ v: T) { a = left ? Array(repeating: v, count: n) + a : a + Array(repeating: v, count: n) }
        extend(&ids, id); extend(&typeIds, typeId); extend(&tokens, token); extend(&offsets, Offsets(0, 0))
        extend(&attentionMask, 0); extend(&specialTokensMask, 1); extend(&sequenceIds, nil)
    }
}

/// How long encodings are cut (the `truncation` section; `Tokenizer.truncation`).
public struct Truncation: Equatable, Sendable {
    /// Which text of a pair loses tokens.
    public enum Strategy: String, Sendable {
        /// Remove from the longer text, one token at a time (both when equal).
        case longestFirst = "LongestFirst"
        case onlyFirst = "OnlyFirst"
        case onlySecond = "OnlySecond"
    }

    /// Maximum length including the special tokens the post-processor adds.
    public var maxLength: Int
    public var strategy: Strategy
    /// Tokens kept from the end (`left`) instead of the start.
    public var fromLeft: Bool
    /// Overlap for overflowing pieces; recorded for compatibility (runpipe keeps no overflow).
    public var stride: Int

    public init(maxLength: Int, strategy: Strategy = .longestFirst, fromLeft: Bool = false, stride: Int = 0) {
        self.maxLength = maxLength
        self.strategy = strategy
        self.fromLeft = fromLeft
        self.stride = stride
    }

    init(_ node: JSONNode) throws {
        maxLength = try node["max_length"].int()
        let s = try node.string("strategy", default: "LongestFirst")
        guard let st = Strategy(rawValue: s) else {
            throw try node["strategy"].error("unknown truncation strategy \"\(s)\"; supported: LongestFirst, OnlyFirst, OnlySecond")
        }
        strategy = st
        fromLeft = try node.string("direction", default: "Right") == "Left"
        stride = try node.int("stride", default: 0)
    }
}

/// How encodings are padded (the `padding` section; `Tokenizer.padding`).
public struct Padding: Equatable, Sendable {
    public enum Length: Equatable, Sendable {
        /// To the longest encoding of the batch.
        case longest
        /// To a fixed length (longer encodings are left as they are).
        case fixed(Int)
    }

    public var length: Length
    /// Pad on the left instead of the right.
    public var left: Bool
    /// Round the padded length up to a multiple of this.
    public var multipleOf: Int?
    public var padId: Int
    public var padTypeId: Int
    public var padToken: String

    public init(length: Length = .longest, left: Bool = false, multipleOf: Int? = nil,
                padId: Int = 0, padTypeId: Int = 0, padToken: String = "[PAD]") {
        self.length = length
        self.left = left
        self.multipleOf = multipleOf
        self.padId = padId
        self.padTypeId = padTypeId
        self.padToken = padToken
    }

    init(_ node: JSONNode) throws {
        let strategy = try node["strategy"]
        switch strategy.value {
        case .string(let s) where s == "BatchLongest":
            length = .longest
        case .object:
            length = .fixed(try strategy["Fixed"].int())
        default:
            throw strategy.error("expected \"BatchLongest\" or {\"Fixed\": n}")
        }
        left = try node.string("direction", default: "Right") == "Left"
        multipleOf = try node.optional("pad_to_multiple_of")?.int()
        padId = try node.int("pad_id", default: 0)
        padTypeId = try node.int("pad_type_id", default: 0)
        padToken = try node.string("pad_token", default: "[PAD]")
    }

    /// Pads a batch in place.
    func apply(to encodings: inout [Encoding]) {
        var target: Int
        switch length {
        case .longest: target = encodings.map(\.count).max() ?? 0
        case .fixed(let n): target = n
        }
        if let m = multipleOf, m > 0, target % m != 0 { target += m - target % m }
        for k in encodings.indices {
            encodings[k].pad(to: target, id: padId, typeId: padTypeId, token: padToken, left: left)
        }
    }
}

extension Truncation {
    /// Cuts a single or pair encoding to `maxLength` tokens in total (`maxLength` here already
    /// excludes the special tokens to be added).
    func apply(_ a: inout Encoding, _ b: inout Encoding?, maxLength: Int) {
        let total = a.count + (b?.count ?? 0)
        guard total > maxLength else { return }
        if maxLength == 0 {
            a.truncate(to: 0, fromLeft: fromLeft)
            b?.truncate(to: 0, fromLeft: fromLeft)
            return
        }
        let toRemove = total - maxLength
        switch strategy {
        case .longestFirst:
            guard var second = b else {
                a.truncate(to: a.count - min(toRemove, a.count), fromLeft: fromLeft)
                return
            }
            // The shorter text keeps its length if it fits in half, else half (rounded down);
            // the longer one gets the rest.
            let swap = a.count > second.count
            var short = swap ? second.count : a.count
            var long: Int
            if short > maxLength / 2 {
                short = maxLength / 2
                long = short + maxLength % 2
            } else {
                long = maxLength - short
            }
            let (n1, n2) = swap ? (long, short) : (short, long)
            a.truncate(to: n1, fromLeft: fromLeft)
            second.truncate(to: n2, fromLeft: fromLeft)
            b = second
        case .onlyFirst:
            if a.count > toRemove { a.truncate(to: a.count - toRemove, fromLeft: fromLeft) }
        case .onlySecond:
            if var second = b, second.count > toRemove {
                second.truncate(to: second.count - toRemove, fromLeft: fromLeft)
                b = second
            }
        }
    }
}
