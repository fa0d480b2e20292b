/// Every failure the engine can report about its inputs. Messages name the operation and,
/// where known, the tensor, so a user can tell which value was wrong and why.
public enum TensorError: Error, CustomStringConvertible, Equatable {
    case shapeMismatch(op: String, detail: String)
    case invalidArgument(op: String, detail: String)
    case noGradient(detail: String)

    public var description: String {
        switch self {
        case .shapeMismatch(let op, let detail): return "\(op): shape mismatch: \(detail)"
        case .invalidArgument(let op, let detail): return "\(op): invalid argument: \(detail)"
        case .noGradient(let detail): return "backward: \(detail)"
        }
    }
}

@inline(__always)
func check(_ condition: Bool, _ op: String, _ detail: @autoclosure () -> String) throws {
    if !condition { throw TensorError.shapeMismatch(op: op, detail: detail()) }
}

@inline(__always)
func require(_ condition: Bool, _ op: String, _ detail: @autoclosure () -> String) throws {
    if !condition { throw TensorError.invalidArgument(op: op, detail: detail()) }
}

/// Renders a shape the way error messages show it: `[32, 128, 384]`.
public func shapeString(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
