/// The kind of supervised problem a label column defines.
///
/// The raw values are the names the pipeline file uses (`problem_type: binary`).
public enum ProblemType: String, Codable, Sendable, CaseIterable {
    /// Two classes.
    case binary
    /// Three or more classes.
    case multiclass
    /// A real-valued target.
    case regression
    /// Several labels per row, each present or absent: one logit per label, binary
    /// cross-entropy. Never inferred; the pipeline says `problem: multilabel`.
    case multilabel
}
