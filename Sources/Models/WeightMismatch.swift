// The messages every backbone family gives when a checkpoint's tensors do not fit its model, so
// text and image encoders word them alike.
import TensorEngine

enum WeightMismatch {
    static func missing(_ keys: [String]) -> String {
        "the checkpoint has no tensor for \(keys.count) parameter(s): \(list(keys))"
    }

    static func unexpected(_ keys: [String]) -> String {
        "\(keys.count) checkpoint tensor(s) match no parameter: \(list(keys))"
    }

    static func shape(key: String, model: [Int], checkpoint: [Int]) -> String {
        "'\(key)': the model expects \(shapeString(model)) but the checkpoint holds \(shapeString(checkpoint))"
    }

    /// At most eight keys, then an ellipsis.
    static func list(_ keys: [String]) -> String {
        keys.prefix(8).joined(separator: ", ") + (keys.count > 8 ? ", …" : "")
    }
}
