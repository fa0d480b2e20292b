import Cache
import Foundation
import Spec

/// Fills a run folder from a finished execution (every artifact comes from the cache entries,
/// so a cached re-run writes the same files without recomputing anything).
struct RunWriter {
    let compiled: CompiledPipeline
    let outcome: Executor.Outcome
    let executor: Executor
    let pipelineSHA256: String

    func write(into dir: URL) throws {
        let fm = FileManager.default
        let spec = compiled.spec
        try Data(spec.resolvedYAML().utf8).write(to: dir.appendingPathComponent("resolved.yaml"))

        let (model, processors, columns) = try executor.modelArtifacts()
        let modelDir = dir.appendingPathComponent("model")
        try fm.createDirectory(at: modelDir, withIntermediateDirectories: false)
        try model.save(to: modelDir)
        try writeJSON(processors, to: modelDir.appendingPathComponent(FittedProcessors.file))
        try writeJSON(columns, to: modelDir.appendingPathComponent(ColumnsArtifact.file))
        try Data(model.historyCSV.utf8).write(to: dir.appendingPathComponent("history.csv"))

        try writeJSON(outcome.metrics, to: dir.appendingPathComponent("metrics.json"))
        for part in ["validation", "test"] where compiled.graph.node("predict.\(part)") != nil {
            let predictions = try executor.predictionFile("predict.\(part)")
            try Data(contentsOf: predictions).write(to: dir.appendingPathComponent("\(part)_predictions.csv"))
        }

        let data = ["train", "validation", "test"].compactMap { compiled.sources[$0] }.map {
            RunLock.DataFile(role: $0.role, path: $0.declared, sha256: $0.sha256, bytes: $0.byteCount)
        }
        var checkpoints = compiled.text.map {
            [RunLock.CheckpointFile(role: "text", path: spec.backbones.text?.checkpoint ?? $0.folder,
                                    weightsSHA256: $0.weightsHash, tokenizerSHA256: $0.tokenizerHash)]
        } ?? []
        if let image = compiled.image {
            checkpoints.append(RunLock.CheckpointFile(role: "image", path: spec.backbones.image?.checkpoint ?? image.checkpoint.path,
                                                      weightsSHA256: image.checkpoint.weightsHash, tokenizerSHA256: nil))
        }
        var stages: [String: String] = [:]
        for n in compiled.graph.nodes { stages[n.id] = n.key }
        let lock = RunLock(runpipe: Compiler.runpipeVersion, pipeline: spec.file.path, pipelineSHA256: pipelineSHA256,
                           seed: spec.seed, threads: compiled.threads, data: data, checkpoints: checkpoints, stages: stages,
                           created: ISO8601DateFormatter().string(from: Date()))
        // Written last: its presence marks a finished run.
        try writeJSON(lock, to: dir.appendingPathComponent(RunDirectory.marker))
    }
}
