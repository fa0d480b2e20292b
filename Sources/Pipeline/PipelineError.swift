import Foundation
import Spec

/// An error found while compiling or running a pipeline, rendered like a compiler diagnostic:
/// `FILE:LINE:COL: error: MESSAGE` when it belongs to a key of the pipeline file, with a hint
/// saying how to fix it.
public struct PipelineError: Error, CustomStringConvertible, Sendable {
    /// The pipeline key the error belongs to, if any (e.g. the `data.train` line for a missing file).
    public var location: SourceLocation?
    public var message: String
    public var hint: String?

    public init(_ message: String, at location: SourceLocation? = nil, hint: String? = nil) {
        self.location = location
        self.message = message
        self.hint = hint
    }

    public var description: String {
        var s = ""
        if let l = location { s += "\(l.file):\(l.line):\(l.column): " }
        s += "error: \(message)"
        if let hint { s += "\n    hint: \(hint)" }
        return s
    }

    /// A broken invariant of runpipe itself, not of the user's input.
    static func internalInconsistency(_ what: String) -> PipelineError {
        PipelineError("internal error: \(what)", hint: "this is a bug in runpipe; please report it with the pipeline file")
    }
}

/// Wraps an error from a lower module (tables, checkpoints, engine) with the pipeline key it
/// concerns, keeping the original message.
func located<T>(_ location: SourceLocation?, _ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as PipelineError {
        throw e
    } catch {
        throw PipelineError(String(describing: error), at: location)
    }
}
