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
    /// Inputs a metric cannot be computed from (lengths differ, empty, a label out of range,
    /// non-finite values, a metric that does not apply to the problem).
    case invalidMetricInput(metric: String, detail: String)
    /// The training loss became NaN or infinite (epoch and step are 1-based).
    case nonFiniteLoss(epoch: Int, step: Int, globalStep: Int, value: Float)
    /// A callback monitors a key that the epoch records do not contain.
    case unknownMonitor(component: String, key: String, available: [String])
    /// A file a callback writes could not be written.
    case writeFailed(component: String, path: String, detail: String)

    public var description: String {
        switch self {
        case .invalidHyperparameter(let component, let field, let detail): return "\(component): \(field) \(detail)"
        case .invalidParameter(let component, let detail): return "\(component): \(detail)"
        case .invalidState(let component, let detail): return "\(component): state: \(detail)"
        case .invalidMetricInput(let metric, let detail): return "metric \(metric): \(detail)"
        case .nonFiniteLoss(let epoch, let step, let globalStep, let value):
            return "trainer: the loss is \(fmt(value)) at epoch \(epoch), step \(step) (global step \(globalStep)); "
                + "lower the learning rate or set gradClip to clip the gradients"
        case .unknownMonitor(let component, let key, let available):
            return "\(component): monitor '\(key)' is not among the validation's values (\(available.joined(separator: ", "))); "
                + "monitor one of those keys or make validation report '\(key)'"
        case .writeFailed(let component, let path, let detail):
            return "\(component): cannot write \(path): \(detail); check that its folder exists and is writable"
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
