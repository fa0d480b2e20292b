import Foundation
import Tokenizers

// MARK: - Tokenization

// Mirrored by `tokenize_workload` in benchmarks/reference/torch_bench.py: the same generated
// sentences (an identical LCG over the same word list), the same tokenizer file, truncation to
// 128 tokens, no padding, one thread. One unit is encoding all the sentences.

/// The sentences both sides tokenize.
enum BenchSentences {
    static let words = """
        the a of and to in is was for on that with as by at from it this be are have has not but or an \
        they we you he she his her their our will would can could should about after before more most \
        other some such only also than then when where which while who very just over into through \
        product review quality price delivery service customer order package battery screen camera \
        sound color size weight design material fabric shoes jacket phone laptop coffee kitchen garden \
        excellent terrible amazing disappointing comfortable expensive cheap reliable broken perfect \
        recommend returned arrived works worked stopped charging loves hated bought ordered received \
        days weeks months years hours minutes first second third last again never always sometimes \
        really quite extremely slightly absolutely definitely probably unfortunately honestly overall \
        Amazon Samsung iPhone USB-C Wi-Fi 4K HDMI Bluetooth café naïve résumé Zürich São Paulo \
        don't isn't wasn't can't won't I've I'm it's that's customer-service half-price e-mail \
        12 3.5 100% $49.99 2x 24/7 5-star 10/10 #1 @home :) ...
        """.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)

    /// `count` sentences of 8 to 45 words; deterministic.
    static func make(count: Int) -> [String] {
        var state: UInt64 = 0x2545_F491_4F6C_DD1D
        func next(_ n: Int) -> Int {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Int((state >> 33) % UInt64(n))
        }
        var out: [String] = []
        out.reserveCapacity(count)
        for _ in 0..<count {
            let n = 8 + next(38)
            var s = ""
            for k in 0..<n {
                var w = words[next(words.count)]
                if k == 0 || next(10) == 0 { w = w.prefix(1).uppercased() + w.dropFirst() }
                if k > 0 { s += " " }
                s += w
                if k < n - 1 && next(12) == 0 { s += "," }
            }
            s += [".", "!", "?", "."][next(4)]
            out.append(s)
        }
        return out
    }
}

/// The tokenizer the benchmark uses: the real all-MiniLM-L6-v2 one when fetched
/// (scripts/fetch-models), else the BERT fixture.
func benchTokenizerFile() -> (URL, String) {
    let real = URL(fileURLWithPath: "models/all-MiniLM-L6-v2/tokenizer.json")
    if FileManager.default.fileExists(atPath: real.path) { return (real, "all-MiniLM-L6-v2") }
    return (URL(fileURLWithPath: "Tests/Fixtures/tokenizers/bert-uncased.tokenizer.json"), "bert-uncased fixture")
}

/// Encodes 10 000 generated sentences with `encodeBatch` on one thread (truncation 128, no
/// padding). One unit is the whole batch.
func tokenizeWorkload(count: Int = 10_000) -> Workload {
    let (file, name) = benchTokenizerFile()
    var notes = ["strings": "\(count)", "tokenizer": name, "threads": "1 (encodeBatch parallel: false)",
                 "truncation": "128, no padding"]
    let texts = BenchSentences.make(count: count)
    // A checksum of the ids, so both sides can be seen to do the same work.
    if let tok = try? Tokenizer.load(file: file) {
        tok.truncation = Truncation(maxLength: 128)
        tok.padding = nil
        var sum = 0, tokens = 0
        for (i, e) in tok.encodeBatch(texts, parallel: false).enumerated() {
            tokens += e.count
            for (j, id) in e.ids.enumerated() { sum = (sum &+ id &* (i + j + 1)) % 1_000_000_007 }
        }
        notes["ids_checksum"] = "\(sum)"
        notes["tokens"] = "\(tokens)"
    }
    return Workload(name: "tokenize", unitName: "batch", flopsPerUnit: 0, unitsPerRun: 1, notes: notes) {
        let tok = try Tokenizer.load(file: file)
        tok.truncation = Truncation(maxLength: 128)
        tok.padding = nil
        return { _ = tok.encodeBatch(texts, parallel: false) }
    }
}
