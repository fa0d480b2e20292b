import Foundation
import XCTest
import Checkpoints
import Images
import TensorEngine
@testable import Models

/// The real MobileNetV2 (torchvision) and EfficientNet-Lite0 weights against PyTorch on two
/// photos (scripts/fixtures/make_photo_reference.py): the same top-5 ImageNet classes and logits.
/// Skipped when scripts/fetch-models has not put the weights under models/.
final class ImageRealWeightsTests: XCTestCase {
    struct Reference: Decodable {
        struct Photo: Decodable { var sum: Double; var samples: [[Double]] }
        struct Prediction: Decodable {
            var top5: [Int]
            /// On the float16-rounded crops (photos_input.safetensors), and on the float crops.
            var logits: [Float]
            var floatLogits: [Float]
            enum CodingKeys: String, CodingKey { case top5, logits, floatLogits = "float_logits" }
        }
        struct Model: Decodable { var mean: [Float]; var std: [Float]; var photos: [String: Prediction] }
        var photos: [String: Photo]
        var models: [String: Model]
    }

    /// (registry architecture or nil to recognise by keys, reference name, weights under models/).
    static let models: [(architecture: String?, name: String, path: String)] = [
        ("mobilenet_v2", "mobilenet_v2", "models/mobilenet_v2/mobilenet_v2-b0353104.pth"),
        (nil, "efficientnet_lite0", "models/efficientnet_lite0/efficientnet-lite0-57934424.pth"),
    ]
    static let photos = ["china.jpg", "flower.jpg"]

    static func fixtures() throws -> URL { try ImageCNNTests.root().deletingLastPathComponent() }

    static func repositoryRoot() throws -> URL {
        try fixtures().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func reference() throws -> Reference {
        try JSONDecoder().decode(Reference.self, from: Data(contentsOf: try fixtures().appendingPathComponent("photos_reference.json")))
    }

    static func weights(_ path: String) throws -> URL {
        let url = try repositoryRoot().appendingPathComponent(path)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw XCTSkip("\(path) is absent; run scripts/fetch-models to fetch the real image weights")
        }
        return url
    }

    /// [batch, 3, h, w] in [0, 1] → (x − mean) / std per channel.
    static func normalised(_ x: Tensor, mean: [Float], std: [Float]) throws -> Tensor {
        let m = try Tensor(mean, shape: [1, 3, 1, 1]), s = try Tensor(std, shape: [1, 3, 1, 1])
        return try div(try sub(x, m), s)
    }

    /// Checks top-5 classes (order included) and their logits; returns the largest logit difference.
    static func check(_ logits: Tensor, row: Int, against expected: Reference.Prediction, float: Bool = false, tolerance: Float,
                      _ what: String, file: StaticString = #filePath, line: UInt = #line) throws -> Float {
        let classes = logits.shape[1]
        let values = Array(logits.toArray()[(row * classes)..<((row + 1) * classes)])
        let top5 = values.indices.sorted { values[$0] > values[$1] }.prefix(5)
        XCTAssertEqual(Array(top5), expected.top5, "\(what): top-5 classes", file: file, line: line)
        var worst: Float = 0
        for (cls, logit) in zip(expected.top5, float ? expected.floatLogits : expected.logits) {
            let diff = Swift.abs(values[cls] - logit)
            worst = Swift.max(worst, diff)
            XCTAssertLessThanOrEqual(diff, tolerance, "\(what): class \(cls) logit \(values[cls]) vs \(logit)", file: file, line: line)
        }
        return worst
    }

    /// The preprocessed crops PyTorch ran on (float16-rounded), so only the networks are compared.
    func testTopFiveOnPreprocessedPhotosMatchPyTorch() throws {
        let reference = try Self.reference()
        let input = try SafetensorsFile(url: try Self.fixtures().appendingPathComponent("photos_input.safetensors")).tensor(named: "input")
        XCTAssertEqual(input.shape, [2, 3, 224, 224])
        for model in Self.models {
            let expected = try XCTUnwrap(reference.models[model.name])
            let loaded = try ImageEncoders.load(checkpoint: try Self.weights(model.path), architecture: model.architecture,
                                                rng: RandomSource(seed: 0))
            XCTAssertEqual(loaded.encoder.shape.mean, expected.mean, model.name)
            XCTAssertEqual(loaded.encoder.shape.std, expected.std, model.name)
            XCTAssertEqual(loaded.encoder.shape.inputSize, 224)
            let x = try Self.normalised(input, mean: expected.mean, std: expected.std)
            let logits = try XCTUnwrap(try withNoGrad { try loaded.encoder.logits(x) })
            XCTAssertEqual(logits.shape, [2, 1000])
            var worst: Float = 0
            for (row, photo) in Self.photos.enumerated() {
                let prediction = try XCTUnwrap(expected.photos[photo])
                worst = Swift.max(worst, try Self.check(logits, row: row, against: prediction, tolerance: 1e-3, "\(model.name) \(photo)"))
            }
            print("\(model.name): top-5 equal, max logit |Δ| \(worst)")
        }
    }

    /// End to end through runpipe's own decoding and transforms (libjpeg-turbo, antialiased
    /// resize, crop, normalise): the crop's checksum against PyTorch's float pipeline, then the same
    /// top-5 and logits (against PyTorch on the float crops).
    func testTopFiveFromJPEGMatchPyTorch() throws {
        let reference = try Self.reference()
        let photoFolder = try Self.fixtures().deletingLastPathComponent().appendingPathComponent("images/photos")
        guard FileManager.default.fileExists(atPath: photoFolder.appendingPathComponent(Self.photos[0]).path) else {
            throw XCTSkip("\(photoFolder.path) holds no photos")
        }
        var crops: [RGBImage] = []
        for photo in Self.photos {
            let decoded = try ImageDecoder.decode(file: photoFolder.appendingPathComponent(photo))
            let crop = ImageTransforms.centerCrop(ImageTransforms.resizeShorterSide(decoded, to: 256), height: 224, width: 224)
            let expected = try XCTUnwrap(reference.photos[photo])
            let sum = crop.pixels.reduce(0.0) { $0 + Double($1) }
            XCTAssertEqual(sum, expected.sum, accuracy: 1e-5 * Double(crop.pixels.count), "\(photo): sum of the crop")
            for sample in expected.samples {
                let (c, y, x) = (Int(sample[0]), Int(sample[1]), Int(sample[2]))
                XCTAssertEqual(Double(crop[c, y, x]), sample[3], accuracy: 1e-4, "\(photo): sample (\(c), \(y), \(x))")
            }
            crops.append(crop)
        }
        for model in Self.models {
            let expected = try XCTUnwrap(reference.models[model.name])
            let loaded = try ImageEncoders.load(checkpoint: try Self.weights(model.path), architecture: model.architecture,
                                                rng: RandomSource(seed: 0))
            let shape = loaded.encoder.shape
            let pixels = crops.flatMap { ImageTransforms.normalize($0, mean: shape.mean, std: shape.std).pixels }
            let x = try Tensor(pixels, shape: [crops.count, 3, 224, 224])
            let logits = try XCTUnwrap(try withNoGrad { try loaded.encoder.logits(x) })
            var worst: Float = 0
            for (row, photo) in Self.photos.enumerated() {
                let prediction = try XCTUnwrap(expected.photos[photo])
                worst = Swift.max(worst, try Self.check(logits, row: row, against: prediction, float: true, tolerance: 1e-3,
                                                        "\(model.name) \(photo) from JPEG"))
            }
            print("\(model.name) from JPEG: top-5 equal, max logit |Δ| \(worst)")
        }
    }
}
