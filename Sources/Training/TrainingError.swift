import TensorEngine

/// Every failure the training utilities report. Messages name the component (`sgd`, `adam`,
/// `adamw`, `scheduler`, …) and the offending field, e.g. `adamw: beta2 must be in [0, 1), got 1.5`.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    /// A hyperparameter is out of its valid range.
    case invalidHyperparameter(component: String, field: String, detail: String)
    /// A parameter, its gradient or the parameter groups are not usable as given.
    case invalidParameter(component: String, detail: String)
    /// Saved optimizer or scheduler state does not fit the current parameters.
    case invalidState(component: String, detail: String)

    public var description: String {
        switch self {
        case .invalidHyperparameter(let component, let field, let detail): return "\(component): \(field) \(detail)"
        case .invalidParameter(let component, let detail): return "\(component): \(detail)"
        case .invalidState(let component, let detail): return "\(component): state: \(detail)"
        }
    }
}

/// Throws `invalidHyperparameter` unless `condition` holds. `detail` continues "<field> …".
@inline(__always)
func requireHyper(_ condition: Bool, _ component: String, _ field: String, _ detail: @autoclosure () -> String) throws {
    if !condition { throw TrainingError.invalidHyperparameter(component: component, field: field, detail: detail()) }
}

/// Renders a Float the way error messages show it.
func fmt(_ x: Float) -> String { String(x) }
func fmt(_ x: Double) -> String { String(x) }
