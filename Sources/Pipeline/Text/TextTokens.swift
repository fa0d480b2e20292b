import Foundation
import Models
import Tables
import TensorEngine
import Tokenizers

/// One text input of every row of a part, tokenized and padded to the longest row:
/// `[rows, tokens]` ids, type ids and attention mask. With `combine: join` a part has one; with
/// `separate`, one per text column.
struct TokenizedText {
    /// The text column, or the joined columns' names with `+`.
    var name: String
    /// Padded length (the longest row's).
    var tokens: Int
    var ids: [Int32]
    var typeIds: [Int32]
    var mask: [Int32]
    /// Real tokens per row.
    var lengths: [Int32]

    var rows: Int { lengths.count }

    /// The rows at `positions`, padded only to the longest of them (dynamic padding: a batch of
    /// short texts costs what short texts cost).
    func batch(_ positions: [Int]) -> TokenBatch {
        let t = max(1, positions.map { Int(lengths[$0]) }.max() ?? 1)
        var ids = [Int32](), types = [Int32](), mask = [Int32]()
        ids.reserveCapacity(positions.count * t)
        types.reserveCapacity(positions.count * t)
        mask.reserveCapacity(positions.count * t)
        for p in positions {
            let s = p * tokens
            ids.append(contentsOf: self.ids[s..<(s + t)])
            types.append(contentsOf: typeIds[s..<(s + t)])
            mask.append(contentsOf: self.mask[s..<(s + t)])
        }
        return TokenBatch(batch: positions.count, tokens: t, ids: ids, typeIds: types, attentionMask: mask)
    }

    func tensors(prefix: String) throws -> [(String, Tensor)] {
        [
            ("\(prefix).ids", try Tensor(ids.map { Float($0) }, shape: [rows, tokens])),
            ("\(prefix).type_ids", try Tensor(typeIds.map { Float($0) }, shape: [rows, tokens])),
            ("\(prefix).lengths", try Tensor(lengths.map { Float($0) }, shape: [rows])),
        ]
    }

    /// Rebuilds from stored tensors (the mask follows from the lengths).
    static func from(ids: Tensor, typeIds: Tensor, lengths: Tensor, name: String) -> TokenizedText {
        let rows = ids.shape[0], tokens = ids.shape.count > 1 ? ids.shape[1] : 0
        let lens = lengths.toArray().map { Int32($0) }
        var mask = [Int32](repeating: 0, count: rows * tokens)
        for r in 0..<rows { for j in 0..<Int(lens[r]) { mask[r * tokens + j] = 1 } }
        return TokenizedText(name: name, tokens: tokens, ids: ids.toArray().map { Int32($0) },
                             typeIds: typeIds.toArray().map { Int32($0) }, mask: mask, lengths: lens)
    }
}

/// What tokenizing a part counted, for the log.
struct TokenizationReport {
    var rows = 0
    var truncated = 0
    var empty = 0
    var longestBeforeTruncation = 0

    func line(part: String, maxLength: Int) -> String {
        var s = "  text: \(part): \(rows) rows"
        if truncated > 0 { s += ", \(truncated) truncated to \(maxLength) tokens (longest \(longestBeforeTruncation))" }
        if empty > 0 { s += ", \(empty) empty" }
        return s
    }
}

/// Turns text cells into token ids the way the checkpoint's tokenizer does, one column or
/// several joined with the separator token (AutoGluon-Multimodal's default), truncating the
/// longest column first so every row fits `maxLength`.
struct TextTokenizer {
    let tokenizer: Tokenizer
    let maxLength: Int
    let combine: TextCombineMode

    enum TextCombineMode: String, Codable { case join, separate }

    /// Takes `tokenizer` over: the file's own truncation and padding are switched off, since
    /// rows are truncated across columns here and padded per batch.
    init(tokenizer: Tokenizer, maxLength: Int, combine: TextCombineMode) {
        tokenizer.truncation = nil
        tokenizer.padding = nil
        self.tokenizer = tokenizer
        self.maxLength = maxLength
        self.combine = combine
    }

    /// Tokenizes `columns` (each a column's cells for the part's rows).
    func tokenize(_ columns: [(name: String, cells: [String?])]) throws -> (texts: [TokenizedText], report: TokenizationReport) {
        var report = TokenizationReport()
        report.rows = columns.first?.cells.count ?? 0
        switch combine {
        case .separate:
            var out: [TokenizedText] = []
            for c in columns {
                let (t, r) = try tokenizeJoined([c])
                out.append(t)
                report.truncated += r.truncated
                report.empty += r.empty
                report.longestBeforeTruncation = max(report.longestBeforeTruncation, r.longestBeforeTruncation)
            }
            return (out, report)
        case .join:
            let (t, r) = try tokenizeJoined(columns)
            report.truncated = r.truncated
            report.empty = r.empty
            report.longestBeforeTruncation = r.longestBeforeTruncation
            return ([t], report)
        }
    }

    private func tokenizeJoined(_ columns: [(name: String, cells: [String?])]) throws -> (TokenizedText, TokenizationReport) {
        var report = TokenizationReport()
        let rows = columns.first?.cells.count ?? 0
        report.rows = rows
        guard let first = tokenizer.clsTokenId, let separator = tokenizer.sepTokenId else {
            throw PipelineError("the text checkpoint's tokenizer has no [CLS]/<s> or [SEP]/</s> token, which runpipe needs to frame a text",
                                hint: "use a BERT-, RoBERTa-, MPNet- or DeBERTa-style checkpoint whose tokenizer defines them")
        }
        let padding = tokenizer.padTokenId ?? 0
        let k = columns.count
        // One leading token, then a separator after every column: [CLS] a [SEP] b [SEP].
        let budget = max(0, maxLength - (k + 1))
        var sequences: [[Int32]] = []
        sequences.reserveCapacity(rows)
        // Every column's cells at once: batch encoding spreads rows over the cores.
        let encoded = columns.map { c in
            tokenizer.encodeBatch(c.cells.map { $0 ?? "" }, addSpecialTokens: false).map { $0.ids.map { Int32($0) } }
        }
        for r in 0..<rows {
            var pieces = encoded.map { $0[r] }
            if columns.allSatisfy({ ($0.cells[r] ?? "").isEmpty }) { report.empty += 1 }
            let total = pieces.reduce(0) { $0 + $1.count }
            if total > budget {
                report.truncated += 1
                report.longestBeforeTruncation = max(report.longestBeforeTruncation, total + k + 1)
                pieces = truncateLongestFirst(pieces, to: budget)
            }
            var seq: [Int32] = [Int32(first)]
            for p in pieces {
                seq += p
                seq.append(Int32(separator))
            }
            sequences.append(seq)
        }
        let tokens = max(1, sequences.map(\.count).max() ?? 1)
        var ids = [Int32](repeating: Int32(padding), count: rows * tokens)
        var mask = [Int32](repeating: 0, count: rows * tokens)
        var lengths = [Int32](repeating: 0, count: rows)
        for (r, seq) in sequences.enumerated() {
            for (j, id) in seq.enumerated() {
                ids[r * tokens + j] = id
                mask[r * tokens + j] = 1
            }
            lengths[r] = Int32(seq.count)
        }
        let name = columns.map(\.name).joined(separator: "+")
        return (TokenizedText(name: name, tokens: tokens, ids: ids, typeIds: [Int32](repeating: 0, count: rows * tokens),
                              mask: mask, lengths: lengths), report)
    }
}

/// Drops tokens from the end of the currently longest piece until the pieces fit `budget`
/// (Hugging Face's `longest_first`, generalised to several pieces; on a tie the later piece
/// loses the token, so earlier columns keep the odd one as the library's pairs do).
func truncateLongestFirst(_ pieces: [[Int32]], to budget: Int) -> [[Int32]] {
    var lengths = pieces.map(\.count)
    var excess = lengths.reduce(0, +) - budget
    while excess > 0 {
        var longest = 0
        for i in lengths.indices where lengths[i] >= lengths[longest] { longest = i }
        lengths[longest] -= 1
        excess -= 1
    }
    return zip(pieces, lengths).map { Array($0.0.prefix($0.1)) }
}
