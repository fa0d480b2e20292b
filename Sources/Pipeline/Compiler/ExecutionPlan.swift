import Cache
import Foundation

/// For each stage of a compiled pipeline: is its result in the cache, and if not, why must it
/// run — a changed input or parameter (named, with old and new value), or never run before.
public struct ExecutionPlan {
    public enum Status: Equatable {
        /// A data file: read, never stored; `changed` when its content differs from the last run.
        case source(changed: Bool)
        case cached
        case run(reasons: [String])
    }

    public struct Line {
        public let node: StageNode
        public let status: Status
    }

    public let lines: [Line]
    /// Lines shown before the stages: what a preset chose and could not find, how the
    /// pretrained backbones are fine-tuned.
    public let header: [String]

    init(compiled: CompiledPipeline, store: ContentStore, pipelineID: String) throws {
        header = (compiled.spec.presetReport?.lines ?? []) + compiled.notes + PEFTPlan.parameterLines(compiled)
        var lines: [Line] = []
        var willRun = Set<String>()
        for node in compiled.graph.nodes {
            let last = store.records.last(pipeline: pipelineID, stage: node.id)
            if !node.stored {
                let changed = last.map { $0.key != node.key } ?? false
                lines.append(Line(node: node, status: .source(changed: changed)))
                continue
            }
            if try store.entry(for: node.key) != nil {
                lines.append(Line(node: node, status: .cached))
                continue
            }
            willRun.insert(node.id)
            lines.append(Line(node: node, status: .run(reasons: Self.reasons(node, last: last, graph: compiled.graph, store: store, pipelineID: pipelineID))))
        }
        self.lines = lines
    }

    /// Why `node` is not in the cache: what differs from the key recorded at its last run.
    static func reasons(_ node: StageNode, last: StageRecord?, graph: StageGraph, store: ContentStore, pipelineID: String) -> [String] {
        guard let last else { return ["never run for this pipeline"] }
        if last.key == node.key { return ["its cache entry was removed (cache gc, verify, or another cache folder)"] }
        var out: [String] = []
        for d in node.keyMaterial.differences(from: last.components) {
            // Input keys change when an upstream stage changed; name that stage instead of two hashes.
            if d.path.hasPrefix("inputs") {
                continue
            }
            out.append(d.description.replacingOccurrences(of: "components.", with: ""))
        }
        for input in node.inputs {
            guard let upstream = graph.node(input) else { continue }
            let previous = store.records.last(pipeline: pipelineID, stage: input)
            if previous?.key != upstream.key {
                out.append(upstream.stored ? "upstream stage \(input) changed" : "\(upstream.summary.replacingOccurrences(of: "read ", with: "")): content changed")
            }
        }
        return out.isEmpty ? ["inputs changed"] : out
    }

    /// Stage ids that would run.
    public var toRun: [String] {
        lines.compactMap { if case .run = $0.status { return $0.node.id } else { return nil } }
    }

    /// One line per stage, then indented reasons for the stages that run.
    public func render() -> String {
        let width = lines.map(\.node.id.count).max() ?? 0
        var out: [String] = header
        for l in lines {
            let pad = String(repeating: " ", count: width - l.node.id.count)
            switch l.status {
            case .source(let changed):
                out.append("  source  \(l.node.id)\(pad)  \(l.node.summary)\(changed ? "  (content changed since last run)" : "")")
            case .cached:
                out.append("  cached  \(l.node.id)\(pad)  \(l.node.summary)")
            case .run(let reasons):
                out.append("  run     \(l.node.id)\(pad)  \(l.node.summary)")
                for r in reasons { out.append("          \(String(repeating: " ", count: width))  because \(r)") }
            }
            if let note = l.node.note { out.append("          \(String(repeating: " ", count: width))  note: \(note)") }
        }
        let n = toRun.count
        out.append(n == 0 ? "everything is cached: a train run only writes the run folder"
                          : "\(n) stage(s) to run")
        return out.joined(separator: "\n") + "\n"
    }
}
