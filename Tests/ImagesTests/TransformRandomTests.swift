// Determinism and bounds of the seeded random transforms: the same (seed, epoch, row) gives the
// same pixels on every run and thread; other rows/epochs/seeds give other draws; RandomResizedCrop
// windows always lie inside the image and respect the scale bounds when not falling back.

import Foundation
import Images
import XCTest

final class TransformRandomTests: XCTestCase {
    private func sampleImage(width: Int = 53, height: Int = 37) -> RGBImage {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let pixels = (0..<(3 * width * height)).map { _ -> Float in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) / Float(1 << 24)
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    private let augmenting = ImageTransformPipeline([
        .randomResizedCrop(RandomResizedCrop(height: 24, width: 24)),
        .horizontalFlip(p: 0.5),
        .colorJitter(ColorJitter(brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1)),
        .trivialAugment,
    ])

    func testSameKeyGivesSamePixels() {
        let image = sampleImage()
        for row in 0..<20 {
            var r1 = AugmentationRandom(seed: 42, epoch: 3, row: row)
            var r2 = AugmentationRandom(seed: 42, epoch: 3, row: row)
            XCTAssertEqual(augmenting.apply(image, random: &r1), augmenting.apply(image, random: &r2), "row \(row)")
        }
    }

    func testSameKeyOnManyThreads() {
        let image = sampleImage()
        let pipeline = augmenting
        let reference = (0..<16).map { row -> RGBImage in
            var r = AugmentationRandom(seed: 7, epoch: 1, row: row)
            return pipeline.apply(image, random: &r)
        }
        let results = UnsafeMutableBufferPointer<RGBImage>.allocate(capacity: 16)
        results.initialize(repeating: RGBImage(width: 0, height: 0))
        defer { results.deallocate() }
        // Rows in reverse order on several threads.
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            let row = 15 - i
            var r = AugmentationRandom(seed: 7, epoch: 1, row: row)
            results[row] = pipeline.apply(image, random: &r)
        }
        XCTAssertEqual(Array(results), reference)
    }

    func testDifferentRowsEpochsAndSeedsDiffer() {
        let image = sampleImage()
        func run(_ seed: UInt64, _ epoch: Int, _ row: Int) -> RGBImage {
            var r = AugmentationRandom(seed: seed, epoch: epoch, row: row)
            return augmenting.apply(image, random: &r)
        }
        let base = run(1, 0, 0)
        XCTAssertNotEqual(run(1, 0, 1), base)
        XCTAssertNotEqual(run(1, 1, 0), base)
        XCTAssertNotEqual(run(2, 0, 0), base)
        // Over many rows the draws are not all the same.
        var streams = Set<UInt32>()
        for row in 0..<100 {
            var r = AugmentationRandom(seed: 1, epoch: 0, row: row)
            streams.insert(r.nextBits())
        }
        XCTAssertEqual(streams.count, 100)
    }

    func testUniformAndIntRanges() {
        var r = AugmentationRandom(seed: 5, epoch: 0, row: 0)
        var sum = 0.0
        for _ in 0..<10_000 {
            let u = r.uniform()
            XCTAssertTrue(u >= 0 && u < 1)
            sum += Double(u)
            let k = r.int(below: 7)
            XCTAssertTrue((0..<7).contains(k))
            let d = r.uniform(-2, 3)
            XCTAssertTrue(d >= -2 && d < 3)
        }
        XCTAssertEqual(sum / 10_000, 0.5, accuracy: 0.02)
        XCTAssertEqual(r.int(below: 1), 0)
        XCTAssertEqual(Set(r.permutation(4)), [0, 1, 2, 3])
    }

    func testRandomResizedCropParametersInBounds() {
        let crop = RandomResizedCrop(height: 16, width: 16)
        for (h, w) in [(37, 53), (224, 224), (10, 300), (300, 10), (1, 1), (2, 5)] {
            var fallbacks = 0
            for row in 0..<2_000 {
                var r = AugmentationRandom(seed: 11, epoch: 0, row: row)
                let p = crop.parameters(imageHeight: h, imageWidth: w, random: &r)
                XCTAssertTrue(p.top >= 0 && p.left >= 0 && p.height > 0 && p.width > 0, "\(p) for \(h)×\(w)")
                XCTAssertTrue(p.top + p.height <= h && p.left + p.width <= w, "\(p) for \(h)×\(w)")
                let area = Double(p.height * p.width) / Double(h * w)
                let ratio = Double(p.width) / Double(p.height)
                let central = p.top == (h - p.height) / 2 && p.left == (w - p.width) / 2
                if !(area <= 1.0 + 1e-9) { XCTFail("area \(area)") }
                if !central && h * w >= 1000 {
                    // A successful attempt: rounding to whole pixels moves area and ratio slightly.
                    XCTAssertGreaterThanOrEqual(area, 0.08 * 0.8, "\(p) for \(h)×\(w)")
                    XCTAssertTrue(ratio > 0.75 * 0.8 && ratio < 4.0 / 3 * 1.25, "\(p) for \(h)×\(w)")
                } else if central {
                    fallbacks += 1
                }
            }
            if h == 224 { XCTAssertLessThan(fallbacks, 200) }
        }
    }

    func testRandomResizedCropOutputSize() {
        let image = sampleImage()
        var r = AugmentationRandom(seed: 3, epoch: 0, row: 0)
        let out = RandomResizedCrop(height: 20, width: 30).apply(image, random: &r)
        XCTAssertEqual(out.height, 20)
        XCTAssertEqual(out.width, 30)
        XCTAssertTrue(out.pixels.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    /// The fused crop+resize equals crop then resize.
    func testResizedCropMatchesCropThenResize() {
        let image = sampleImage()
        let fused = ImageTransforms.resizedCrop(image, top: 3, left: 7, height: 20, width: 31,
                                                outputHeight: 11, outputWidth: 17)
        let twoSteps = ImageTransforms.resize(ImageTransforms.crop(image, top: 3, left: 7, height: 20, width: 31),
                                              height: 11, width: 17)
        XCTAssertEqual(fused, twoSteps)
    }

    func testHorizontalFlipProbability() {
        let image = sampleImage(width: 5, height: 3)
        let flipped = ImageTransforms.horizontalFlip(image)
        var flips = 0
        for row in 0..<1_000 {
            var r = AugmentationRandom(seed: 9, epoch: 0, row: row)
            let out = RandomHorizontalFlip(p: 0.5).apply(image, random: &r)
            if out == flipped { flips += 1 } else { XCTAssertEqual(out, image) }
        }
        XCTAssertTrue((400...600).contains(flips), "\(flips) flips")
        var r = AugmentationRandom(seed: 9, epoch: 0, row: 0)
        XCTAssertEqual(RandomHorizontalFlip(p: 0).apply(image, random: &r), image)
        XCTAssertEqual(RandomHorizontalFlip(p: 1).apply(image, random: &r), flipped)
    }

    func testColorJitterFactorsInRange() {
        let jitter = ColorJitter(brightness: 0.4, contrast: 1.5, saturation: 0.2, hue: 0.1)
        var orders = Set<[Int]>()
        for row in 0..<500 {
            var r = AugmentationRandom(seed: 2, epoch: 0, row: row)
            let p = jitter.parameters(random: &r)
            orders.insert(p.order)
            XCTAssertTrue((0.6...1.4).contains(p.brightness ?? -1))
            XCTAssertTrue((0...2.5).contains(p.contrast ?? -1))
            XCTAssertTrue((0.8...1.2).contains(p.saturation ?? -1))
            XCTAssertTrue((-0.1...0.1).contains(p.hue ?? -1))
        }
        XCTAssertEqual(orders.count, 24, "all orders of the four ops occur")
        var r = AugmentationRandom(seed: 2, epoch: 0, row: 0)
        let off = ColorJitter(brightness: 0.3).parameters(random: &r)
        XCTAssertNil(off.contrast)
        XCTAssertNil(off.hue)
    }

    /// ColorJitter applies the drawn factors in the drawn order with the functional ops.
    func testColorJitterComposesFunctionalOps() {
        let image = sampleImage(width: 12, height: 9)
        let jitter = ColorJitter(brightness: 0.5, contrast: 0.5, saturation: 0.5, hue: 0.2)
        var r1 = AugmentationRandom(seed: 4, epoch: 2, row: 8)
        var r2 = r1
        let p = jitter.parameters(random: &r1)
        var expected = image
        for op in p.order {
            switch op {
            case 0: expected = ImageTransforms.adjustBrightness(expected, factor: p.brightness ?? 1)
            case 1: expected = ImageTransforms.adjustContrast(expected, factor: p.contrast ?? 1)
            case 2: expected = ImageTransforms.adjustSaturation(expected, factor: p.saturation ?? 1)
            default: expected = ImageTransforms.adjustHue(expected, factor: p.hue ?? 0)
            }
        }
        XCTAssertEqual(jitter.apply(image, random: &r2), expected)
    }

    func testTrivialAugmentDrawsEveryOpAndStaysInRange() {
        let image = sampleImage(width: 20, height: 16)
        let augment = TrivialAugmentWide()
        var seen = Set<String>()
        var negative = 0
        for row in 0..<2_000 {
            var r = AugmentationRandom(seed: 8, epoch: 0, row: row)
            let p = augment.parameters(random: &r)
            seen.insert(p.operation.rawValue)
            if p.magnitude < 0 { negative += 1; XCTAssertTrue(p.operation.isSigned) }
            if let m = p.operation.magnitudes() { XCTAssertTrue(m.contains(abs(p.magnitude))) }
        }
        XCTAssertEqual(seen.count, 14)
        XCTAssertGreaterThan(negative, 300)
        for row in 0..<200 {
            var r = AugmentationRandom(seed: 8, epoch: 1, row: row)
            let out = augment.apply(image, random: &r)
            XCTAssertEqual(out.width, 20)
            XCTAssertEqual(out.height, 16)
            XCTAssertTrue(out.pixels.allSatisfy { $0 >= 0 && $0 <= 1 })
        }
    }
}
