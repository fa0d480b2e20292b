/// Maps one categorical column to vocabulary indices, fitted on training rows only.
///
/// The vocabulary holds the values seen at least `minCount` times, at most `maxCategories` of
/// them (the most frequent; equal counts ordered by Unicode scalars), in that order from index 1.
/// Index 0 is the bucket for unknown and missing values.
public struct CategoricalProcessor: Codable, Equatable, Sendable {
    /// The index of unknown and missing values.
    public static let unknownIndex: Int32 = 0

    /// The column this processor reads.
    public let column: String
    /// The vocabulary; value `categories[i]` has index `i + 1`.
    public let categories: [String]
    private let indexByValue: [String: Int32]

    /// Distinct indices `transform` can return, the unknown bucket included.
    public var cardinality: Int { categories.count + 1 }

    /// Creates a processor with a given vocabulary (index 1 onwards).
    public init(column: String, categories: [String]) {
        self.column = column
        self.categories = categories
        var index = [String: Int32]()
        for (position, value) in categories.enumerated() { index[value] = Int32(position + 1) }
        self.indexByValue = index
    }

    /// Fits the vocabulary on column `column` of `table` (the training rows).
    /// - Throws: `columnNotFound`, or `invalidOption` for `minCount < 1` or `maxCategories < 1`.
    public static func fit(_ table: Table, column: String, minCount: Int = 1, maxCategories: Int? = nil) throws -> CategoricalProcessor {
        try fit(table.requireColumn(named: column, role: "categorical"), minCount: minCount, maxCategories: maxCategories, column: column)
    }

    /// Fits the vocabulary on training cells. - Throws: `invalidOption` for `minCount < 1` or
    /// `maxCategories < 1`.
    public static func fit(_ cells: [String?], minCount: Int = 1, maxCategories: Int? = nil, column: String = "") throws -> CategoricalProcessor {
        guard minCount >= 1 else { throw TableError.invalidOption(column: column, option: "min_count", detail: "must be at least 1, got \(minCount)") }
        if let maxCategories, maxCategories < 1 {
            throw TableError.invalidOption(column: column, option: "max_categories", detail: "must be at least 1, got \(maxCategories)")
        }
        var counts = [String: Int]()
        for case let value? in cells { counts[value, default: 0] += 1 }
        var kept = counts.filter { $0.value >= minCount }.sorted { a, b in
            a.value != b.value ? a.value > b.value : CellText.scalarLess(a.key, b.key)
        }.map(\.key)
        if let maxCategories, kept.count > maxCategories { kept = Array(kept.prefix(maxCategories)) }
        return CategoricalProcessor(column: column, categories: kept)
    }

    /// The index of one cell: its vocabulary index, or `unknownIndex` for unknown or missing.
    public func index(of value: String?) -> Int32 {
        value.flatMap { indexByValue[$0] } ?? Self.unknownIndex
    }

    /// The indices of column `column` of `table`. - Throws: `columnNotFound`.
    public func transform(_ table: Table) throws -> [Int32] {
        try transform(table.requireColumn(named: column, role: "categorical"))
    }

    /// The indices of cells.
    public func transform(_ cells: [String?]) -> [Int32] {
        cells.map(index(of:))
    }

    private enum CodingKeys: String, CodingKey { case column, categories }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(column: try container.decode(String.self, forKey: .column),
                  categories: try container.decode([String].self, forKey: .categories))
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(column, forKey: .column)
        try container.encode(categories, forKey: .categories)
    }

    public static func == (lhs: CategoricalProcessor, rhs: CategoricalProcessor) -> Bool {
        lhs.column == rhs.column && lhs.categories == rhs.categories
    }
}
