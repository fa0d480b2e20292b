// What the image backbone families share: reading config.json (Hugging Face and timm hub
// formats) with errors that name the dotted key, timm's `model_args` checks, and the input and
// pooling helpers every CNN uses.
import Foundation
import TensorEngine

/// What recognition needs from a config.json, read without throwing.
struct ImageConfigProbe: Decodable {
    /// Hugging Face's `model_type`.
    var modelType: String?
    /// timm hub configs' `architecture`.
    var timmArchitecture: String?

    enum CodingKeys: String, CodingKey {
        case modelType = "model_type"
        case timmArchitecture = "architecture"
    }

    static func read(_ data: Data) -> ImageConfigProbe? { try? JSONDecoder().decode(ImageConfigProbe.self, from: data) }
}

extension ImageCheckpointDescription {
    /// Whether config.json names this family — Hugging Face's `model_type` or a timm
    /// `architecture` starting with `timmPrefix` — or nil when it has no say (no config.json, or
    /// neither key).
    func configSays(modelType: String, timmPrefix: String) -> Bool? {
        guard let probe = configJSON.flatMap(ImageConfigProbe.read) else { return nil }
        if probe.modelType == modelType { return true }
        if let arch = probe.timmArchitecture { return arch.hasPrefix(timmPrefix) }
        return probe.modelType == nil ? nil : false
    }
}

/// A timm hub config.json: `architecture`, `num_classes`, `global_pool`, `pretrained_cfg`
/// (preprocessing) and the optional `model_args` the model was created with.
struct TimmHubConfiguration<Arguments: Decodable>: Decodable {
    var architecture: String
    var numClasses: Int?
    var globalPool: String?
    var pretrainedConfig: TimmPretrainedConfiguration?
    var modelArgs: Arguments?

    enum CodingKeys: String, CodingKey {
        case architecture
        case numClasses = "num_classes"
        case globalPool = "global_pool"
        case pretrainedConfig = "pretrained_cfg"
        case modelArgs = "model_args"
    }
}

/// The parts of timm's `pretrained_cfg` runpipe reads.
struct TimmPretrainedConfiguration: Decodable {
    var mean: [Float]?
    var std: [Float]?
    /// [channels, height, width].
    var inputSize: [Int]?

    enum CodingKeys: String, CodingKey {
        case mean, std
        case inputSize = "input_size"
    }
}

/// A JSON scalar, for comparing timm arguments with their defaults.
enum JSONScalar: Decodable, Equatable {
    case bool(Bool), number(Double), string(String), null

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else { throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "is not a scalar")) }
    }
}

/// A size written as `n` or `[n, n]` (Hugging Face `image_size`, timm `img_size`); non-square
/// sizes are rejected.
struct SquareSize: Decodable {
    var value: Int

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Int.self) { value = n; return }
        let pair = try c.decode([Int].self)
        guard pair.count == 2, pair[0] == pair[1] else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "must be square (n or [n, n]), got \(pair)"))
        }
        value = pair[0]
    }
}

/// A coding key for any string.
struct AnyImageConfigKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

enum TimmArguments {
    /// Rejects `model_args` keys runpipe does not implement: unknown keys, and `fixed` keys holding
    /// anything but their default. `ignored` keys (initialisation only) pass.
    static func check(_ decoder: Decoder, known: Set<String>, fixed: [String: JSONScalar], ignored: Set<String>,
                      family: String) throws {
        let c = try decoder.container(keyedBy: AnyImageConfigKey.self)
        for key in c.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) {
            let name = key.stringValue
            if known.contains(name) || ignored.contains(name) { continue }
            if let expected = fixed[name] {
                let actual = try c.decode(JSONScalar.self, forKey: key)
                if actual == expected || actual == .null { continue }
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + [key],
                                                        debugDescription: "is not supported by runpipe's \(family) except at timm's default (\(expected))"))
            }
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath + [key],
                                                    debugDescription: "is not a \(family) argument runpipe implements"))
        }
    }
}

enum ImageConfigDecoding {
    /// Decodes config.json into `C`, turning decoding failures into
    /// `ImageEncoderError.invalidConfiguration` naming the dotted key.
    static func decode<C: Decodable>(_ type: C.Type, from data: Data, architecture: String) throws -> C {
        func fail(_ keys: [CodingKey], _ reason: String) -> ImageEncoderError {
            let path = keys.map(\.stringValue).joined(separator: ".")
            return .invalidConfiguration(architecture: architecture, key: path.isEmpty ? "config.json" : path, reason: reason)
        }
        do {
            return try JSONDecoder().decode(C.self, from: data)
        } catch let error as ImageEncoderError {
            throw error
        } catch let DecodingError.keyNotFound(key, context) {
            throw fail(context.codingPath + [key], "is required but missing")
        } catch let DecodingError.typeMismatch(expected, context) {
            throw fail(context.codingPath, "must be \(describe(expected))")
        } catch let DecodingError.valueNotFound(expected, context) {
            throw fail(context.codingPath, "must be \(describe(expected)), not null")
        } catch let DecodingError.dataCorrupted(context) {
            throw fail(context.codingPath, context.debugDescription)
        } catch {
            throw fail([], "could not be read: \(error)")
        }
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is Float.Type, is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        default: return "\(type)"
        }
    }
}

/// `model_args` of a family that implements none: any entry is an error naming it (the builder
/// would have to honour it), instead of being ignored.
struct NoTimmArguments: Decodable {
    init(from decoder: Decoder) throws {
        try TimmArguments.check(decoder, known: [], fixed: [:], ignored: [], family: "model")
    }
}

extension TimmPretrainedConfiguration {
    /// Overwrites input size, mean and std with the configuration's when given, checking them.
    func apply(to inputSize: inout Int, mean: inout [Float], std: inout [Float], architecture: String) throws {
        if let size = self.inputSize {
            guard size.count == 3, size[0] == 3, size[1] == size[2], size[1] > 0 else {
                throw ImageEncoderError.invalidConfiguration(architecture: architecture, key: "pretrained_cfg.input_size", reason: "must be [3, n, n], got \(size)")
            }
            inputSize = size[1]
        }
        try applyNormalisation(mean: &mean, std: &std, architecture: architecture)
    }

    /// Overwrites mean and std with the configuration's when given: 3 (or 1) finite numbers,
    /// std above 0 — anything else would normalise every image wrongly.
    func applyNormalisation(mean: inout [Float], std: inout [Float], architecture: String) throws {
        for (key, values) in [("mean", self.mean), ("std", self.std)] {
            guard let values else { continue }
            guard values.count == 3 || values.count == 1, values.allSatisfy({ $0.isFinite }), key == "mean" || values.allSatisfy({ $0 > 0 }) else {
                throw ImageEncoderError.invalidConfiguration(architecture: architecture, key: "pretrained_cfg.\(key)",
                                                             reason: "must be 3 (or 1) finite numbers\(key == "std" ? " above 0" : ""), got \(values)")
            }
        }
        if let m = self.mean { mean = m.count == 1 ? Array(repeating: m[0], count: 3) : m }
        if let s = self.std { std = s.count == 1 ? Array(repeating: s[0], count: 3) : s }
    }
}

extension ImageEncoderShape {
    /// Throws `invalidInput` unless `images` is [batch, 3, h, w] with h, w ≥ `minimumSize`
    /// (and equal to `inputSize` when the size is fixed).
    func checkInput(_ images: Tensor) throws {
        guard images.rank == 4, images.shape[1] == 3 else {
            throw ImageEncoderError.invalidInput("\(architecture) expects [batch, 3, height, width], got \(shapeString(images.shape))")
        }
        let h = images.shape[2], w = images.shape[3]
        guard h >= minimumSize, w >= minimumSize else {
            throw ImageEncoderError.invalidInput("\(architecture) needs images of at least \(minimumSize)×\(minimumSize), got \(h)×\(w)")
        }
        if fixedSize, h != inputSize || w != inputSize {
            throw ImageEncoderError.invalidInput("\(architecture) needs \(inputSize)×\(inputSize) images, got \(h)×\(w)")
        }
    }
}

/// [batch, channels, h, w] → [batch, channels], the mean over each plane.
func globalAveragePool(_ x: Tensor) throws -> Tensor {
    let pooled = try adaptiveAvgPool2d(x, outputSize: (1, 1))
    return try pooled.reshaped([pooled.shape[0], pooled.shape[1]])
}
