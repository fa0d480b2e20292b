import Images

/// The figures modality detection looks at, gathered in one pass over a column's cells.
struct ColumnStatistics {
    /// Rows in the column.
    let rowCount: Int
    /// Non-missing cells, in row order.
    let values: [String]
    /// Row positions (in the table) of `values`.
    let rowIndices: [Int]
    /// Distinct non-missing values.
    let uniqueCount: Int
    /// The parsed numbers when every value is one, else `nil`.
    let numbers: [Double]?
    /// How many values parse as finite numbers.
    let numericCount: Int
    /// How many values are image references (paths, data URIs, base64).
    let imagePathCount: Int
    /// Mean whitespace-separated words per value.
    let meanWords: Double
    /// Mean characters per value.
    let meanLength: Double
    /// Whether any value contains whitespace.
    let anyWhitespace: Bool

    init(_ cells: [String?]) {
        rowCount = cells.count
        var values: [String] = []
        var rows: [Int] = []
        for (row, cell) in cells.enumerated() {
            if let cell { values.append(cell); rows.append(row) }
        }
        self.values = values
        rowIndices = rows
        uniqueCount = Set(values).count
        var numbers: [Double] = []
        var numericCount = 0
        var imageCount = 0
        var words = 0
        var length = 0
        var whitespace = false
        for value in values {
            if let number = CellText.number(value) { numbers.append(number); numericCount += 1 }
            if ImageCell.looksLikeImage(value) { imageCount += 1 }
            words += CellText.wordCount(value)
            length += value.count
            if !whitespace, CellText.containsWhitespace(value) { whitespace = true }
        }
        self.numbers = numericCount == values.count ? numbers : nil
        self.numericCount = numericCount
        imagePathCount = imageCount
        let n = Double(max(values.count, 1))
        meanWords = Double(words) / n
        meanLength = Double(length) / n
        anyWhitespace = whitespace
    }

    var nonMissingCount: Int { values.count }
    var uniqueRatio: Double { values.isEmpty ? 0 : Double(uniqueCount) / Double(values.count) }
    var numericFraction: Double { values.isEmpty ? 0 : Double(numericCount) / Double(values.count) }
    var imageFraction: Double { values.isEmpty ? 0 : Double(imagePathCount) / Double(values.count) }

    /// The standard figures, in the order `runpipe inspect` shows them.
    var evidence: [Evidence] {
        [
            Evidence("non-missing", "\(nonMissingCount)/\(rowCount)"),
            Evidence("unique", "\(uniqueCount)"),
            Evidence("unique ratio", CellText.format(uniqueRatio)),
            Evidence("numeric fraction", CellText.format(numericFraction)),
            Evidence("mean words", CellText.format(meanWords)),
            Evidence("mean chars", CellText.format(meanLength)),
            Evidence("image fraction", CellText.format(imageFraction)),
        ]
    }
}
