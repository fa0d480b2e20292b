import Foundation

/// One problem in a pipeline file or a `--set` flag.
public struct SpecError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Where in a file (nil for `--set` flags and file-level problems).
    public var location: SourceLocation?
    /// The `--set KEY=VALUE` text when a flag caused the error.
    public var flag: String?
    /// The dotted key path concerned (`trainer.optimizer.lr`; empty for the whole file).
    public var path: String
    /// What is wrong.
    public var message: String
    /// How to fix it, when there is something specific to say.
    public var hint: String?

    public init(location: SourceLocation?, flag: String? = nil, path: String, message: String, hint: String? = nil) {
        self.location = location
        self.flag = flag
        self.path = path
        self.message = message
        self.hint = hint
    }

    /// `FILE:LINE:COL: error: MESSAGE` or `--set KEY=VALUE: error: MESSAGE`, plus `    hint: …`.
    public var description: String {
        let head: String
        if let flag { head = "--set \(flag): error: " } else if let location { head = "\(location): error: " } else { head = "error: " }
        return head + message + (hint.map { "\n    hint: " + $0 } ?? "")
    }
}

/// Every error found while loading a pipeline, sorted by file, line and column (flag errors
/// last, in flag order).
public struct SpecErrors: Error, Equatable, Sendable, CustomStringConvertible {
    /// The errors, sorted.
    public var errors: [SpecError]

    public init(_ errors: [SpecError]) {
        self.errors = errors.enumerated().sorted { a, b in
            let ka = SpecErrors.sortKey(a.element, a.offset), kb = SpecErrors.sortKey(b.element, b.offset)
            return ka < kb
        }.map(\.element)
    }

    private static func sortKey(_ e: SpecError, _ index: Int) -> (Int, String, Int, Int, Int) {
        if let l = e.location { return (0, l.file, l.line, l.column, index) }
        if e.flag != nil { return (2, "", 0, 0, index) }
        return (1, "", 0, 0, index)
    }

    /// One error per line (hints on their own indented lines).
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}

// MARK: - Suggestions

enum Suggest {
    /// The candidate closest to `word` when it is within edit distance 2, or one is a prefix of
    /// the other (ties go to the earlier candidate).
    static func closest(_ word: String, in candidates: [String]) -> String? {
        var best: (String, Int)?
        for c in candidates where c != word {
            let d = distance(word.lowercased(), c.lowercased())
            let prefix = !word.isEmpty && (c.hasPrefix(word) || word.hasPrefix(c))
            guard d <= 2 || prefix else { continue }
            let score = prefix ? Swift.min(d, 2) : d
            if best == nil || score < best!.1 { best = (c, score) }
        }
        return best?.0
    }

    /// Levenshtein distance.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev = Array(0...b.count), cur = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            cur[0] = i
            for j in 1...b.count {
                cur[j] = Swift.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            swap(&prev, &cur)
        }
        return prev[b.count]
    }

    /// "; did you mean 'x'?" or "".
    static func didYouMean(_ word: String, _ candidates: [String]) -> String {
        closest(word, in: candidates).map { "; did you mean '\($0)'?" } ?? ""
    }
}
