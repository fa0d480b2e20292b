import Foundation
import Training

/// Decides each column's modality from its values, in the spirit of AutoGluon-Multimodal's
/// `infer_column_types`, and the label's problem type.
///
/// The rules for a feature column, first match wins (n = non-missing values):
///
/// 1. `all-missing` → ignore: no value at all.
/// 2. `constant` → ignore: one distinct value.
/// 3. every value is a finite decimal number:
///    - `identifier` → ignore: integers, all distinct, n ≥ `identifierMinimumRows`, and either a
///      run of consecutive integers (any order) or strictly increasing/decreasing in file order;
///    - `all-numeric` → numeric otherwise.
/// 4. `image-paths` → image: at least `imageFractionThreshold` of the values are image
///    references (`ImageCell.looksLikeImage`: paths ending in a PNG/JPEG extension, several
///    joined by `;`, data URIs, or base64 of PNG/JPEG bytes); with `ImageSampling`, a few are
///    decoded and the result joins the evidence.
/// 5. `long-strings` → text: mean words ≥ `textMinimumMeanWords` or mean characters ≥
///    `textMinimumMeanLength`, with unique ratio ≥ `textMinimumUniqueRatio`.
/// 6. `identifier` → ignore: all values distinct, none containing whitespace,
///    n ≥ `identifierMinimumRows` (ids, hashes, keys).
/// 7. `few-unique` → categorical: distinct values ≤ max(`categoricalMinimumLimit`,
///    ⌊`categoricalSqrtFactor`·√n⌋) — 20 for up to 100 values, 63 for 1 000, 632 for 100 000.
/// 8. `many-unique` → text: anything else (many distinct short strings).
///
/// An override from the pipeline wins (rule `override`); the label column is not a feature and
/// is reported with the modality its problem type implies (rule `label`).
public enum ColumnDetector {
    /// Fraction of values that are image references for a column to be an image column.
    public static let imageFractionThreshold = 0.9
    /// Mean words per value from which strings count as text.
    public static let textMinimumMeanWords = 3.0
    /// Mean characters per value from which strings count as text.
    public static let textMinimumMeanLength = 20.0
    /// Unique ratio long strings need to count as text rather than repeated categories.
    public static let textMinimumUniqueRatio = 0.5
    /// Fewer values than this are never called identifiers (small tables are all-distinct by chance).
    public static let identifierMinimumRows = 20
    /// Distinct values always allowed in a categorical column.
    public static let categoricalMinimumLimit = 20
    /// Factor on √n for the categorical limit of larger columns.
    public static let categoricalSqrtFactor = 2.0

    /// The most distinct values a categorical column may have when it has `count` values.
    public static func categoricalLimit(nonMissing count: Int) -> Int {
        max(categoricalMinimumLimit, Int(categoricalSqrtFactor * Double(count).squareRoot()))
    }

    /// Infers every column of `table`.
    ///
    /// - Parameters:
    ///   - label: the label column, excluded from the features; `nil` to describe features only.
    ///   - overrides: modalities set in the pipeline, by column name.
    ///   - problemType: a problem type forced by the pipeline, validated against the label.
    /// - Throws: `TableError` for an unknown override or label column, a `numeric` override on a
    ///   column with non-numbers, an override on the label, or an unusable label.
    ///   - images: where image cells resolve; with it, every image column's evidence says how
    ///     many of a few sampled cells decode, their sizes and formats.
    public static func infer(table: Table, label: String?, overrides: [String: ColumnModality] = [:],
                             problemType: ProblemType? = nil, images: ImageSampling? = nil) throws -> ColumnSchema {
        for name in overrides.keys.sorted(by: CellText.scalarLess) {
            _ = try table.requireColumn(named: name, role: "override")
            if name == label { throw TableError.overrideOnLabel(column: name) }
        }
        var problem: ProblemInference?
        if let label {
            problem = try ProblemInference.infer(table: table, label: label, forced: problemType)
        }
        var inferences: [ColumnInference] = []
        for (index, name) in table.columnNames.enumerated() {
            let cells = table.columns[index]
            if name == label, let problem {
                let statistics = ColumnStatistics(cells)
                inferences.append(ColumnInference(
                    name: name, modality: problem.problem == .regression ? .numeric : .categorical,
                    rule: "label", evidence: statistics.evidence,
                    reason: "the label (\(problem.problem.rawValue)): \(problem.reason)", isLabel: true))
                continue
            }
            let detected = inferColumn(name: name, cells: cells)
            guard let forced = overrides[name] else {
                inferences.append(detected)
                continue
            }
            if forced == .numeric, let bad = cells.indices.first(where: { cells[$0].map { CellText.number($0) == nil } ?? false }) {
                throw TableError.nonNumericOverride(column: name, path: table.source,
                                                    line: table.lineNumbers[bad], value: cells[bad] ?? "")
            }
            inferences.append(ColumnInference(
                name: name, modality: forced, rule: "override", evidence: detected.evidence,
                reason: "set to \(forced.rawValue) in the pipeline (detection said \(detected.modality.rawValue) by rule \(detected.rule))"))
        }
        if let images {
            for i in inferences.indices where inferences[i].modality == .image && !inferences[i].isLabel {
                guard let cells = table.column(named: inferences[i].name) else { continue }
                let probe = images.evidence(cells)
                inferences[i].evidence += probe.evidence
                if probe.sampled > 0, probe.readable == 0 {
                    inferences[i].reason += "; none of \(probe.sampled) sampled images could be read"
                }
            }
        }
        return ColumnSchema(source: table.source, rowCount: table.rowCount, columns: inferences, label: label, problem: problem)
    }

    /// Infers the modality of one feature column from its cells, by the rules above.
    public static func inferColumn(name: String, cells: [String?]) -> ColumnInference {
        let s = ColumnStatistics(cells)
        let evidence = s.evidence
        func result(_ modality: ColumnModality, _ rule: String, _ reason: String, extra: [Evidence] = []) -> ColumnInference {
            ColumnInference(name: name, modality: modality, rule: rule, evidence: evidence + extra, reason: reason)
        }
        let n = s.nonMissingCount
        if n == 0 { return result(.ignore, "all-missing", "every value is missing") }
        if s.uniqueCount == 1 {
            return result(.ignore, "constant", "every value is '\(s.values[0])', so it cannot tell rows apart")
        }
        if let numbers = s.numbers {
            let extra = [Evidence("min", CellText.format(numbers.min() ?? 0)), Evidence("max", CellText.format(numbers.max() ?? 0))]
            if let shape = rowIdShape(numbers, uniqueCount: s.uniqueCount) {
                return result(.ignore, "identifier", "all \(n) values are distinct integers \(shape), like a row id", extra: extra)
            }
            return result(.numeric, "all-numeric", "all \(n) values are finite numbers", extra: extra)
        }
        if s.imageFraction >= imageFractionThreshold {
            return result(.image, "image-paths",
                          "\(percent(s.imageFraction)) of the values are image paths or encoded images (threshold \(percent(imageFractionThreshold)))")
        }
        let long = s.meanWords >= textMinimumMeanWords || s.meanLength >= textMinimumMeanLength
        if long, s.uniqueRatio >= textMinimumUniqueRatio {
            return result(.text, "long-strings",
                          "values average \(CellText.format(s.meanWords)) words and \(CellText.format(s.meanLength)) characters and \(percent(s.uniqueRatio)) are distinct")
        }
        if s.uniqueCount == n, n >= identifierMinimumRows, !s.anyWhitespace {
            return result(.ignore, "identifier", "all \(n) values are distinct strings without spaces, like ids or hashes")
        }
        let limit = categoricalLimit(nonMissing: n)
        if s.uniqueCount <= limit {
            return result(.categorical, "few-unique",
                          "\(s.uniqueCount) distinct values among \(n), within the categorical limit of \(limit)",
                          extra: [Evidence("categorical limit", "\(limit)")])
        }
        return result(.text, "many-unique",
                      "\(s.uniqueCount) distinct values among \(n), above the categorical limit of \(limit)",
                      extra: [Evidence("categorical limit", "\(limit)")])
    }

    /// Describes how distinct integers look like a row id ("consecutive", "increasing", …), or
    /// `nil` when they do not.
    static func rowIdShape(_ numbers: [Double], uniqueCount: Int) -> String? {
        guard numbers.count >= identifierMinimumRows, uniqueCount == numbers.count,
              numbers.allSatisfy({ $0 == $0.rounded() && abs($0) < 9e15 }),
              let low = numbers.min(), let high = numbers.max() else { return nil }
        if high - low == Double(numbers.count - 1) { return "forming the consecutive run \(CellText.format(low))…\(CellText.format(high))" }
        if zip(numbers, numbers.dropFirst()).allSatisfy({ $0 < $1 }) { return "increasing in file order" }
        if zip(numbers, numbers.dropFirst()).allSatisfy({ $0 > $1 }) { return "decreasing in file order" }
        return nil
    }
}

/// `0.93` → `"93%"`.
func percent(_ fraction: Double) -> String {
    CellText.format((fraction * 1000).rounded() / 10) + "%"
}
