import Checkpoints
import Foundation
import Layers
import Models
import TensorEngine
import Training

/// A trained network with its history: what the `train` stage stores and a run's `model/`
/// folder holds (`model.safetensors`, `model.json`, plus `history.csv` and `summary.json`; with
/// text columns also `text/`: the checkpoint's config.json and tokenizer files, so a fine-tuned
/// model predicts without its checkpoint folder).
final class TrainedModel {
    static let weightsFile = "model.safetensors"
    static let configFile = "model.json"
    static let historyFile = "history.csv"
    static let summaryFile = "summary.json"
    /// Every optimizer step's learning rate per parameter group (with the `lr_monitor` callback).
    static let learningRatesFile = "lr.csv"
    /// The text checkpoint's config and tokenizer files, copied.
    static let textFolder = "text"

    let network: FusionNetwork
    let historyCSV: String
    let summary: TrainSummaryRecord
    let learningRatesCSV: String?

    init(network: FusionNetwork, historyCSV: String, summary: TrainSummaryRecord, learningRatesCSV: String? = nil) {
        self.network = network
        self.historyCSV = historyCSV
        self.summary = summary
        self.learningRatesCSV = learningRatesCSV
    }

    func save(to dir: URL) throws {
        try SafetensorsWriter.write(network.stateDict().map { ($0.key, $0.tensor) },
                                    metadata: ["format": "runpipe-tabular-1"],
                                    to: dir.appendingPathComponent(Self.weightsFile))
        try writeJSON(network.config, to: dir.appendingPathComponent(Self.configFile))
        try Data(historyCSV.utf8).write(to: dir.appendingPathComponent(Self.historyFile))
        try writeJSON(summary, to: dir.appendingPathComponent(Self.summaryFile))
        if let learningRatesCSV { try Data(learningRatesCSV.utf8).write(to: dir.appendingPathComponent(Self.learningRatesFile)) }
        if let text = network.config.text {
            let folder = dir.appendingPathComponent(Self.textFolder, isDirectory: true)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for name in ["config.json"] + TextCheckpoint.tokenizerFiles.sorted() {
                let src = text.checkpoint.url.appendingPathComponent(name)
                guard FileManager.default.fileExists(atPath: src.path) else { continue }
                try FileManager.default.copyItem(at: src, to: folder.appendingPathComponent(name))
            }
        }
    }

    /// Rebuilds the network from `model.json` and loads its weights strictly.
    static func load(from dir: URL) throws -> TrainedModel {
        let config = try readJSON(NetworkConfig.self, from: dir.appendingPathComponent(configFile))
        var encoder: (any TextEncoder)?
        if let text = config.text, text.mode != .frozen {
            // The architecture from the copied config; the weights come from model.safetensors.
            let url = dir.appendingPathComponent("\(textFolder)/config.json")
            encoder = try TextEncoders.build(configJSON: try Data(contentsOf: url), rng: RandomSource(seed: config.seed))
        }
        var imageEncoder: (any ImageEncoder)?
        if let image = config.image, image.mode != .frozen {
            // The module from the stored description; the weights come from model.safetensors.
            imageEncoder = try ImageEncoders.build(image.description.description, rng: RandomSource(seed: config.seed))
        }
        let network = try FusionNetwork(config, encoder: encoder, imageEncoder: imageEncoder)
        let weightsURL = dir.appendingPathComponent(weightsFile)
        let file = try SafetensorsFile(url: weightsURL)
        do {
            try network.load(try file.tensors(), strict: true)
        } catch {
            throw PipelineError("the weights in \(weightsURL.path) do not fit the model in \(configFile): \(error)",
                                hint: "the run folder was changed by hand or written by another runpipe version")
        }
        network.eval()
        let history = (try? String(contentsOf: dir.appendingPathComponent(historyFile), encoding: .utf8)) ?? ""
        let summary = try readJSON(TrainSummaryRecord.self, from: dir.appendingPathComponent(summaryFile))
        let rates = try? String(contentsOf: dir.appendingPathComponent(learningRatesFile), encoding: .utf8)
        return TrainedModel(network: network, historyCSV: history, summary: summary, learningRatesCSV: rates)
    }
}

/// The end of training, as stored beside the weights.
struct TrainSummaryRecord: Codable {
    var epochs: Int
    var steps: Int
    var bestEpoch: Int?
    var monitor: String?
    var bestValue: Double?
    var stoppedEarly: String?
    var seconds: Double
    var parameters: Int
    var trainRows: Int
    var validationRows: Int

    enum CodingKeys: String, CodingKey {
        case epochs, steps, monitor, seconds, parameters
        case bestEpoch = "best_epoch"
        case bestValue = "best_value"
        case stoppedEarly = "stopped_early"
        case trainRows = "train_rows"
        case validationRows = "validation_rows"
    }
}
