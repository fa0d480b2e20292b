import Foundation

// `lock.json`, the file that pins a run down and marks it finished. It lives here, below every
// module that reads or writes run folders — Pipeline writes it; Registry, Reports and
// reproduction read it — so they all decode one type.

/// Content hashes and settings that pin a run down.
public struct RunLock: Codable, Sendable {
    public struct DataFile: Codable, Sendable {
        public var role: String
        public var path: String
        public var sha256: String
        public var bytes: Int64

        public init(role: String, path: String, sha256: String, bytes: Int64) {
            self.role = role
            self.path = path
            self.sha256 = sha256
            self.bytes = bytes
        }
    }
    /// A pretrained checkpoint a run read, by content.
    public struct CheckpointFile: Codable, Sendable {
        public var role: String
        public var path: String
        public var weightsSHA256: String
        public var tokenizerSHA256: String?

        public init(role: String, path: String, weightsSHA256: String, tokenizerSHA256: String?) {
            self.role = role
            self.path = path
            self.weightsSHA256 = weightsSHA256
            self.tokenizerSHA256 = tokenizerSHA256
        }

        enum CodingKeys: String, CodingKey {
            case role, path
            case weightsSHA256 = "weights_sha256"
            case tokenizerSHA256 = "tokenizer_sha256"
        }
    }
    public var runpipe: String
    public var pipeline: String
    public var pipelineSHA256: String
    public var seed: UInt64
    public var threads: Int
    public var data: [DataFile]
    public var checkpoints: [CheckpointFile]
    public var stages: [String: String]
    public var created: String

    public init(runpipe: String, pipeline: String, pipelineSHA256: String, seed: UInt64, threads: Int,
                data: [DataFile], checkpoints: [CheckpointFile], stages: [String: String], created: String) {
        self.runpipe = runpipe
        self.pipeline = pipeline
        self.pipelineSHA256 = pipelineSHA256
        self.seed = seed
        self.threads = threads
        self.data = data
        self.checkpoints = checkpoints
        self.stages = stages
        self.created = created
    }

    enum CodingKeys: String, CodingKey {
        case runpipe, pipeline, seed, threads, data, checkpoints, stages, created
        case pipelineSHA256 = "pipeline_sha256"
    }
}
