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
}
