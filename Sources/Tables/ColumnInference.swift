import Training

/// What a column holds, as the model will use it. The raw values are the names the pipeline
/// file uses for overrides (`columns: {title: text}`).
public enum ColumnModality: String, Codable, Sendable, CaseIterable {
    /// Finite numbers: imputed and scaled by a `NumericProcessor`.
    case numeric
    /// A small set of repeated values: indexed by a `CategoricalProcessor`.
    case categorical
    /// Free text for a text backbone.
    case text
    /// Paths of image files for an image backbone.
    case image
    /// Not used as a feature (missing, constant, or an identifier).
    case ignore
}

/// One figure supporting a decision, e.g. `("unique ratio", "0.98")`.
public struct Evidence: Codable, Equatable, Sendable {
    /// What was measured.
    public var label: String
    /// The measured value, formatted for people.
    public var value: String

    /// Creates a figure.
    public init(_ label: String, _ value: String) {
        self.label = label
        self.value = value
    }
}

/// The modality decided for one column, with the rule that decided it and the figures it used.
public struct ColumnInference: Codable, Equatable, Sendable {
    /// The column name.
    public var name: String
    /// The decided modality (for the label: categorical for classification, numeric for regression).
    public var modality: ColumnModality
    /// A short rule id: `all-missing`, `constant`, `all-numeric`, `identifier`, `image-paths`,
    /// `long-strings`, `few-unique`, `many-unique`, `override` or `label`.
    public var rule: String
    /// The figures the rule looked at, in a fixed order.
    public var evidence: [Evidence]
    /// One human sentence saying why.
    public var reason: String
    /// Whether this column is the label (and so not a feature).
    public var isLabel: Bool

    /// Creates an inference.
    public init(name: String, modality: ColumnModality, rule: String, evidence: [Evidence], reason: String, isLabel: Bool = false) {
        self.name = name
        self.modality = modality
        self.rule = rule
        self.evidence = evidence
        self.reason = reason
        self.isLabel = isLabel
    }
}

/// The problem type inferred (or forced) for a label column.
public struct ProblemInference: Codable, Equatable, Sendable {
    /// The problem type.
    public var problem: ProblemType
    /// A short rule id: `two-classes`, `non-numeric-classes`, `few-integer-values`,
    /// `continuous` or `forced`.
    public var rule: String
    /// One human sentence saying why.
    public var reason: String
    /// The number of classes (`nil` for regression).
    public var classCount: Int?
    /// The figures the rule looked at.
    public var evidence: [Evidence]

    /// Creates a problem inference.
    public init(problem: ProblemType, rule: String, reason: String, classCount: Int?, evidence: [Evidence] = []) {
        self.problem = problem
        self.rule = rule
        self.reason = reason
        self.classCount = classCount
        self.evidence = evidence
    }
}
