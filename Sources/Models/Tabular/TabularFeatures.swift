// The inputs every tabular backbone reads: a numeric block [B, numericCount] (already imputed
// and scaled) and categorical indices [B, cardinalities.count] (row-major, index 0 = the
// unknown bucket of each column), with their validation and errors.
import Layers
import TensorEngine

// MARK: - Schema

/// The columns a tabular backbone reads: how many numeric features, and the cardinality of each
/// categorical column. A column of cardinality `k` accepts indices `0..<k`; index 0 is the
/// bucket for unknown or missing categories, so `k` counts it.
public struct TabularSchema: Codable, Sendable, Equatable {
    public var numericCount: Int
    public var cardinalities: [Int]

    public init(numericCount: Int, cardinalities: [Int]) {
        self.numericCount = numericCount
        self.cardinalities = cardinalities
    }

    public var categoricalCount: Int { cardinalities.count }

    enum CodingKeys: String, CodingKey {
        case numericCount = "numeric_count"
        case cardinalities
    }

    /// Throws unless there is at least one column, no negative count and every cardinality ≥ 1.
    public func validate() throws {
        guard numericCount >= 0 else {
            throw TabularModelError.invalidSchema("numeric_count is \(numericCount); it must be 0 or more")
        }
        for (column, k) in cardinalities.enumerated() where k < 1 {
            throw TabularModelError.invalidSchema(
                "categorical column \(column) has cardinality \(k); it must be at least 1 (index 0 is the unknown bucket)")
        }
        guard numericCount > 0 || !cardinalities.isEmpty else { throw TabularModelError.noFeatures }
    }
}

// MARK: - Errors

/// What can be wrong with a tabular model's configuration or inputs.
public enum TabularModelError: Error, CustomStringConvertible, Equatable {
    /// Neither numeric nor categorical columns.
    case noFeatures
    case invalidSchema(String)
    /// A configuration field (snake_case, as in the pipeline file) holds an unusable value.
    case invalidConfig(model: String, field: String, detail: String)
    /// The numeric block has the wrong shape (or is missing / present when it should not be).
    case numericInput(String)
    /// The categorical index array does not have `batch × columns` entries.
    case categoricalCount(count: Int, columns: Int, batch: Int?)
    case categoricalIndexOutOfRange(row: Int, column: Int, index: Int, cardinality: Int)
    case emptyBatch
    /// Logits or targets that do not fit the head (wrong shape, kind or class index).
    case targets(String)

    public var description: String {
        switch self {
        case .noFeatures:
            return "a tabular model needs at least one numeric or categorical column; both are empty"
        case .invalidSchema(let detail):
            return "invalid tabular schema: \(detail)"
        case .invalidConfig(let model, let field, let detail):
            return "\(model): invalid `\(field)`: \(detail)"
        case .numericInput(let detail):
            return "numeric features: \(detail)"
        case .categoricalCount(let count, let columns, let batch):
            if let batch {
                return "categorical indices: \(count) values for a batch of \(batch) rows × \(columns) columns (expected \(batch * columns))"
            }
            return "categorical indices: \(count) values is not a whole number of rows of \(columns) columns"
        case .categoricalIndexOutOfRange(let row, let column, let index, let cardinality):
            return "categorical column \(column): index \(index) in row \(row) is outside 0..<\(cardinality) (the column's cardinality, unknown bucket 0 included)"
        case .emptyBatch:
            return "the batch has no rows"
        case .targets(let detail):
            return "task head: \(detail)"
        }
    }
}

// MARK: - Backbone protocol

/// A module mapping a batch of tabular rows to features `[B, outputDim]`.
public protocol TabularBackbone: Module {
    var schema: TabularSchema { get }
    /// Width of the features `forward` returns.
    var outputDim: Int { get }
    /// Features `[B, outputDim]` for numeric features `[B, schema.numericCount]` (nil or
    /// `[B, 0]` when there are none) and row-major categorical indices `[B · categoricalCount]`.
    func forward(numeric: Tensor?, categorical: [Int]) throws -> Tensor
}

extension TabularBackbone {
    /// `forward` with 32-bit categorical indices (the layout column processors store).
    public func forward(numeric: Tensor?, categorical: [Int32]) throws -> Tensor {
        try forward(numeric: numeric, categorical: categorical.map { Int($0) })
    }
}

// MARK: - Validated batch

/// A batch whose shapes and indices have been checked against a schema.
struct TabularBatch {
    let size: Int
    /// `[size, numericCount]`, or nil when the schema has no numeric columns.
    let numeric: Tensor?
    /// Row-major `[size, categoricalCount]` indices, each within its column's cardinality.
    let categorical: [Int]

    /// The indices of categorical column `column`, one per row.
    func column(_ column: Int, of columns: Int) -> [Int] {
        (0..<size).map { categorical[$0 * columns + column] }
    }
}

extension TabularSchema {
    /// Checks `numeric` and `categorical` against the schema and works out the batch size.
    func batch(numeric: Tensor?, categorical: [Int]) throws -> TabularBatch {
        var size: Int? = nil
        var numericPart: Tensor? = nil
        if let numeric {
            guard numeric.rank == 2, numeric.shape[1] == numericCount else {
                throw TabularModelError.numericInput("expected [batch, \(numericCount)], got \(shapeString(numeric.shape))")
            }
            size = numeric.shape[0]
            if numericCount > 0 { numericPart = numeric }
        } else if numericCount > 0 {
            throw TabularModelError.numericInput("the model has \(numericCount) numeric column(s) but no numeric tensor was given")
        }
        let columns = categoricalCount
        if columns == 0 {
            guard categorical.isEmpty else {
                throw TabularModelError.categoricalCount(count: categorical.count, columns: 0, batch: size)
            }
        } else if let b = size {
            guard categorical.count == b * columns else {
                throw TabularModelError.categoricalCount(count: categorical.count, columns: columns, batch: b)
            }
        } else {
            guard categorical.count % columns == 0 else {
                throw TabularModelError.categoricalCount(count: categorical.count, columns: columns, batch: nil)
            }
            size = categorical.count / columns
        }
        guard let b = size, b > 0 else { throw TabularModelError.emptyBatch }
        for row in 0..<b {
            for column in 0..<columns {
                let index = categorical[row * columns + column], k = cardinalities[column]
                guard index >= 0 && index < k else {
                    throw TabularModelError.categoricalIndexOutOfRange(row: row, column: column, index: index, cardinality: k)
                }
            }
        }
        return TabularBatch(size: b, numeric: numericPart, categorical: categorical)
    }
}
