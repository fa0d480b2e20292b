// ImageTransformPipeline: AutoMM defaults, names from config strings, validation, Codable round
// trip, and the speed of the evaluation path on a typical photo size.

import Foundation
import Images
import XCTest

final class TransformPipelineTests: XCTestCase {
    func testDefaults() {
        XCTAssertEqual(ImageTransformPipeline.evaluation(size: 224).steps, [.resizeShorterSide(224), .centerCrop(224, 224)])
        XCTAssertEqual(ImageTransformPipeline.training(size: 224).steps,
                       [.resizeShorterSide(224), .centerCrop(224, 224), .trivialAugment])
        XCTAssertFalse(ImageTransformPipeline.evaluation(size: 224).isRandom)
        XCTAssertTrue(ImageTransformPipeline.training(size: 224).isRandom)
    }

    func testNamed() throws {
        let p = try ImageTransformPipeline.named(["resize_shorter_side", "center_crop", "trivial_augment"], size: 224)
        XCTAssertEqual(p, .training(size: 224))
        let q = try ImageTransformPipeline.named(["random_resize_crop", "random_horizontal_flip", "color_jitter"], size: 64)
        XCTAssertEqual(q.steps, [.randomResizedCrop(RandomResizedCrop(height: 64, width: 64)), .horizontalFlip(p: 0.5),
                                 .colorJitter(ColorJitter(brightness: 0.1, contrast: 0.1, saturation: 0.1))])
        XCTAssertNoThrow(try q.validate())
        for name in ImageTransformPipeline.knownNames {
            XCTAssertNoThrow(try ImageTransformPipeline.named([name], size: 8).validate(), name)
        }
    }

    func testUnknownNameListsKnownNames() {
        XCTAssertThrowsError(try ImageTransformPipeline.named(["center_crop", "randaug"], size: 224)) { error in
            guard case ImageTransformError.unknownTransform(let name, let known) = error else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(name, "randaug")
            XCTAssertEqual(known, ImageTransformPipeline.knownNames)
            XCTAssertTrue("\(error)".contains("trivial_augment"))
        }
        XCTAssertThrowsError(try ImageTransformPipeline.named(["center_crop"], size: 0))
    }

    func testValidation() {
        XCTAssertThrowsError(try ImageTransformPipeline([.centerCrop(0, 3)]).validate())
        XCTAssertThrowsError(try ImageTransformPipeline([.horizontalFlip(p: 1.5)]).validate())
        XCTAssertThrowsError(try ImageTransformPipeline([.colorJitter(ColorJitter(hue: 0.7))]).validate())
        XCTAssertThrowsError(try ImageTransformPipeline([.colorJitter(ColorJitter(brightness: -1))]).validate())
        XCTAssertThrowsError(try ImageTransformPipeline([.randomResizedCrop(RandomResizedCrop(height: 8, width: 8, scale: (0.9, 0.1)))]).validate())
        XCTAssertThrowsError(try ImageTransformPipeline([.normalize(mean: [0.5, 0.5], std: [1, 1, 1])]).validate())
        XCTAssertThrowsError(try ImageTransformPipeline([.normalize(mean: [0.5], std: [0])]).validate())
        XCTAssertNoThrow(try ImageTransformPipeline([.normalize(mean: [0.5], std: [0.5, 0.5, 0.5])]).validate())
    }

    func testCodableRoundTrip() throws {
        let p = ImageTransformPipeline([
            .resizeShorterSide(256), .resize(10, 20), .centerCrop(224, 224),
            .randomResizedCrop(RandomResizedCrop(height: 224, width: 224, scale: (0.5, 1))),
            .horizontalFlip(p: 0.25), .colorJitter(ColorJitter(brightness: 0.2, hue: 0.05)), .trivialAugment,
            .normalize(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]),
        ])
        let data = try JSONEncoder().encode(p)
        XCTAssertEqual(try JSONDecoder().decode(ImageTransformPipeline.self, from: data), p)
    }

    /// Resize 500×375 → shorter side 224 + center crop 224, the evaluation path.
    func testEvaluationSpeed() {
        let width = 500, height = 375
        let image = RGBImage(width: width, height: height,
                             pixels: (0..<(3 * width * height)).map { Float($0 % 251) / 251 })
        let pipeline = ImageTransformPipeline.evaluation(size: 224)
        var out = pipeline.apply(image)
        let runs = 10
        let start = Date()
        for _ in 0..<runs { out = pipeline.apply(image) }
        let fused = Date().timeIntervalSince(start) / Double(runs)
        let start2 = Date()
        for _ in 0..<runs {
            out = ImageTransforms.centerCrop(ImageTransforms.resizeShorterSide(image, to: 224), height: 224, width: 224)
        }
        let twoSteps = Date().timeIntervalSince(start2) / Double(runs)
        XCTAssertEqual(out.width, 224)
        XCTAssertEqual(out.height, 224)
        print(String(format: "timing 500x375 -> 224 shorter side + center crop: pipeline (fused) %.2f ms, two steps %.2f ms",
                     fused * 1000, twoSteps * 1000))
    }
}
