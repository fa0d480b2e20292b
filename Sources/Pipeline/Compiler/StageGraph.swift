import Cache
import Foundation

/// What a stage does. The raw value is the first part of a stage id (`encode.validation`).
public enum StageKind: String, Codable, Sendable, CaseIterable {
    /// Read a data file (CSV / JSON Lines) into a table. Not stored: the file is its own cache,
    /// keyed by its content hash.
    case load
    /// Decide each column's modality (with evidence) and the problem type.
    case inferColumns = "infer"
    /// Choose training and validation rows.
    case split
    /// Fit column processors and the label encoder on the training rows only.
    case fitProcessors = "fit"
    /// Turn one part's rows into model inputs with the fitted processors (text: token ids).
    case encode
    /// Run the text encoder's layers that do not train over one part's rows, once: pooled
    /// features (frozen encoder) or the hidden states entering the top trainable layers.
    case embed
    /// Decode one part's image cells and apply the deterministic transforms.
    case pixels
    /// Run a frozen image backbone over one part's pixels, once: pooled features.
    case embedImage = "embed_image"
    /// Train the model; keeps weights and history.
    case train
    /// Score the trained model on one part.
    case evaluate
    /// Predict one part's rows.
    case predict

    /// Bumped when a stage's code changes what it produces, so old cache entries stop matching.
    var codeVersion: Int {
        switch self {
        case .load, .inferColumns, .split, .evaluate, .predict, .embed, .pixels, .embedImage: return 1
        case .encode, .train: return 2
        case .fitProcessors: return 3
        }
    }
}

/// One node of the compiled graph: a stage, the stages it reads, and the content-derived key
/// under which its result is cached.
public struct StageNode: Sendable {
    /// Unique within a graph: `kind` or `kind.part` (`load.train`, `encode.test`).
    public let id: String
    public let kind: StageKind
    /// Ids of the stages whose results this one reads, in a fixed order.
    public let inputs: [String]
    /// One line for people: what the stage does, on what.
    public let summary: String
    /// Exactly what affects the result besides the inputs (spec sections, file hashes, seed…).
    public let components: JSONValue
    /// SHA-256 of the canonical JSON of kind, code version, components and the inputs' keys.
    public let key: String
    /// Whether the result is kept in the content store (loads are not: the file is the source).
    public let stored: Bool

    /// The full description hashed into `key` (kept so `plan` can say what changed).
    public let keyMaterial: JSONValue
    /// Something `plan` should say about the stage beyond its status (e.g. work inside it that
    /// is never cached).
    public var note: String? = nil
}

/// A typed DAG of stages in topological order (every node after its inputs).
public struct StageGraph: Sendable {
    public private(set) var nodes: [StageNode] = []
    private var index: [String: Int] = [:]

    public init() {}

    /// Adds a node whose key is derived from its components and its inputs' keys.
    /// Inputs must already be in the graph (so the order stays topological).
    @discardableResult
    mutating func add(_ kind: StageKind, part: String? = nil, inputs: [String], summary: String,
                      components: JSONValue, stored: Bool = true, note: String? = nil) throws -> StageNode {
        let id = part.map { "\(kind.rawValue).\($0)" } ?? kind.rawValue
        var inputKeys: [JSONValue] = []
        for input in inputs {
            guard let i = index[input] else { throw PipelineError.internalInconsistency("stage \(id) reads unknown stage \(input)") }
            inputKeys.append(.object(["stage": .string(input), "key": .string(nodes[i].key)]))
        }
        let material = JSONValue.object([
            "stage": .string(kind.rawValue),
            "code_version": .int(Int64(kind.codeVersion)),
            "components": components,
            "inputs": .array(inputKeys),
        ])
        let node = StageNode(id: id, kind: kind, inputs: inputs, summary: summary, components: components,
                             key: try material.digest(), stored: stored, keyMaterial: material, note: note)
        index[id] = nodes.count
        nodes.append(node)
        return node
    }

    public func node(_ id: String) -> StageNode? { index[id].map { nodes[$0] } }

    public func contains(_ id: String) -> Bool { index[id] != nil }

    /// Every stage that `id` depends on, directly or not, plus `id` itself, in graph order.
    public func closure(of ids: [String]) -> [StageNode] {
        var wanted = Set<String>()
        var stack = ids
        while let id = stack.popLast() {
            guard wanted.insert(id).inserted, let n = node(id) else { continue }
            stack += n.inputs
        }
        return nodes.filter { wanted.contains($0.id) }
    }
}

// MARK: - Rendering

/// Output formats of `runpipe graph`.
public enum GraphFormat: String, CaseIterable, Sendable {
    case text, dot, mermaid
}

extension StageGraph {
    /// The graph as text, Graphviz dot, or a Mermaid flowchart. Deterministic.
    public func render(_ format: GraphFormat) -> String {
        switch format {
        case .text:
            let width = nodes.map(\.id.count).max() ?? 0
            return nodes.map { n in
                let pad = String(repeating: " ", count: width - n.id.count)
                let from = n.inputs.isEmpty ? "" : "  ← " + n.inputs.joined(separator: ", ")
                return "\(n.id)\(pad)  \(n.key.prefix(12))  \(n.summary)\(from)"
            }.joined(separator: "\n") + "\n"
        case .dot:
            var lines = ["digraph pipeline {", "  rankdir=LR;", "  node [shape=box, fontname=\"monospace\"];"]
            for n in nodes {
                lines.append("  \"\(n.id)\" [label=\"\(n.id)\\n\(dotEscape(n.summary))\"];")
            }
            for n in nodes { for i in n.inputs { lines.append("  \"\(i)\" -> \"\(n.id)\";") } }
            lines.append("}")
            return lines.joined(separator: "\n") + "\n"
        case .mermaid:
            var lines = ["flowchart LR"]
            func mid(_ id: String) -> String { id.replacingOccurrences(of: ".", with: "_") }
            for n in nodes {
                lines.append("  \(mid(n.id))[\"\(n.id)<br/>\(mermaidEscape(n.summary))\"]")
            }
            for n in nodes { for i in n.inputs { lines.append("  \(mid(i)) --> \(mid(n.id))") } }
            return lines.joined(separator: "\n") + "\n"
        }
    }
}

private func dotEscape(_ s: String) -> String {
    s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
}

private func mermaidEscape(_ s: String) -> String {
    s.replacingOccurrences(of: "\"", with: "#quot;")
}
