// torchvision parity for the deterministic transforms: resize (antialias on/off, up, down,
// non-uniform), resize shorter side, center crop (with padding), crop, flip, normalize. Reference
// outputs come from scripts/fixtures/make_transform_fixtures.py (Tests/Fixtures/transforms/).

import Foundation
import Images
import XCTest

// MARK: - Fixture reader

/// Tests/Fixtures/transforms: `manifest.json` plus raw little-endian float32 files.
struct TransformFixtures {
    struct Tensor: Decodable {
        let file: String
        let shape: [Int]
    }

    /// A parameter value: a number, a bool or a list of numbers.
    enum Param: Decodable {
        case number(Double)
        case bool(Bool)
        case numbers([Double])

        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let d = try? c.decode(Double.self) { self = .number(d) }
            else { self = .numbers(try c.decode([Double].self)) }
        }
    }

    struct Case: Decodable {
        let name: String
        let op: String
        let input: String
        let params: [String: Param]
        let file: String
        let shape: [Int]

        func number(_ key: String) throws -> Double {
            guard case .number(let v)? = params[key] else { throw FixtureError.missing("\(name).\(key)") }
            return v
        }
        func int(_ key: String) throws -> Int { Int(try number(key)) }
        func bool(_ key: String) throws -> Bool {
            guard case .bool(let v)? = params[key] else { throw FixtureError.missing("\(name).\(key)") }
            return v
        }
        func floats(_ key: String) throws -> [Float] {
            guard case .numbers(let v)? = params[key] else { throw FixtureError.missing("\(name).\(key)") }
            return v.map(Float.init)
        }
    }

    struct Manifest: Decodable {
        let inputs: [String: Tensor]
        let cases: [Case]
    }

    enum FixtureError: Error { case missing(String), badShape(String), badSize(String) }

    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/transforms")

    let manifest: Manifest

    init() throws {
        let data = try Data(contentsOf: Self.directory.appendingPathComponent("manifest.json"))
        manifest = try JSONDecoder().decode(Manifest.self, from: data)
    }

    /// Cases of the given ops.
    func cases(_ ops: String...) -> [Case] { manifest.cases.filter { ops.contains($0.op) } }

    static func image(file: String, shape: [Int]) throws -> RGBImage {
        guard shape.count == 3, shape[0] == 3 else { throw FixtureError.badShape(file) }
        let data = try Data(contentsOf: directory.appendingPathComponent(file))
        guard data.count == 4 * shape.reduce(1, *) else { throw FixtureError.badSize(file) }
        let pixels: [Float] = data.withUnsafeBytes { raw in
            (0..<(data.count / 4)).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
        return RGBImage(width: shape[2], height: shape[1], pixels: pixels)
    }

    func input(_ name: String) throws -> RGBImage {
        guard let t = manifest.inputs[name] else { throw FixtureError.missing(name) }
        return try Self.image(file: t.file, shape: t.shape)
    }

    func expected(_ c: Case) throws -> RGBImage { try Self.image(file: c.file, shape: c.shape) }
}

/// Largest absolute difference; infinity when the shapes differ.
func maxAbsDifference(_ a: RGBImage, _ b: RGBImage) -> Float {
    guard a.width == b.width, a.height == b.height else { return .infinity }
    var m: Float = 0
    for i in 0..<a.pixels.count { m = max(m, abs(a.pixels[i] - b.pixels[i])) }
    return m
}

// MARK: - Tests

final class TransformParityTests: XCTestCase {
    /// Runs `transform` on every case of `ops`, checks each within `tolerance`, returns the worst error.
    @discardableResult
    func check(_ ops: String..., tolerance: Float = 1e-5,
               _ transform: (RGBImage, TransformFixtures.Case) throws -> RGBImage) throws -> Float {
        let fixtures = try TransformFixtures()
        var worst: Float = 0
        var count = 0
        for c in fixtures.manifest.cases where ops.contains(c.op) {
            let out = try transform(try fixtures.input(c.input), c)
            let expected = try fixtures.expected(c)
            XCTAssertEqual(out.height, expected.height, c.name)
            XCTAssertEqual(out.width, expected.width, c.name)
            let err = maxAbsDifference(out, expected)
            XCTAssertLessThanOrEqual(err, tolerance, c.name)
            worst = max(worst, err)
            count += 1
        }
        XCTAssertGreaterThan(count, 0, "no fixture cases for \(ops)")
        print("parity \(ops.joined(separator: ",")): \(count) cases, max abs error \(worst)")
        return worst
    }

    func testResize() throws {
        try check("resize") { image, c in
            ImageTransforms.resize(image, height: try c.int("height"), width: try c.int("width"),
                                   antialias: try c.bool("antialias"))
        }
    }

    func testResizeShorterSide() throws {
        try check("resizeShorterSide") { image, c in
            let maxSize = c.params["maxSize"] == nil ? nil : try c.int("maxSize")
            return ImageTransforms.resizeShorterSide(image, to: try c.int("size"), maxSize: maxSize)
        }
    }

    func testCenterCrop() throws {
        try check("centerCrop", tolerance: 0) { image, c in
            ImageTransforms.centerCrop(image, height: try c.int("height"), width: try c.int("width"))
        }
    }

    func testCrop() throws {
        try check("crop", tolerance: 0) { image, c in
            ImageTransforms.crop(image, top: try c.int("top"), left: try c.int("left"),
                                 height: try c.int("height"), width: try c.int("width"))
        }
    }

    func testHorizontalFlip() throws {
        try check("horizontalFlip", tolerance: 0) { image, _ in ImageTransforms.horizontalFlip(image) }
    }

    func testNormalize() throws {
        try check("normalize") { image, c in
            ImageTransforms.normalize(image, mean: try c.floats("mean"), std: try c.floats("std"))
        }
    }

    func testNormalizeIntoBufferMatchesNormalize() throws {
        let image = try TransformFixtures().input("b")
        let mean: [Float] = [0.5, 0.4, 0.3], std: [Float] = [0.2, 0.25, 0.3]
        var batch = [Float](repeating: -1, count: 2 * image.pixels.count)
        batch.withUnsafeMutableBufferPointer { buffer in
            if let base = buffer.baseAddress {
                ImageTransforms.normalize(image, mean: mean, std: std, into: base + image.pixels.count)
            }
        }
        XCTAssertEqual(Array(batch[..<image.pixels.count]), [Float](repeating: -1, count: image.pixels.count))
        XCTAssertEqual(Array(batch[image.pixels.count...]), ImageTransforms.normalize(image, mean: mean, std: std).pixels)
    }

    /// The fused resize + center crop gives exactly the two-step result.
    func testFusedResizeAndCenterCropMatchesTwoSteps() throws {
        let image = try TransformFixtures().input("a")
        for (size, crop) in [(16, 16), (20, 13), (45, 45), (30, 31)] {
            let twoSteps = ImageTransforms.centerCrop(ImageTransforms.resizeShorterSide(image, to: size),
                                                      height: crop, width: crop)
            let fused = ImageTransformPipeline([.resizeShorterSide(size), .centerCrop(crop, crop)]).apply(image)
            XCTAssertEqual(fused, twoSteps, "size \(size) crop \(crop)")
        }
        let viaResize = ImageTransformPipeline([.resize(30, 40), .centerCrop(21, 33)]).apply(image)
        XCTAssertEqual(viaResize, ImageTransforms.centerCrop(ImageTransforms.resize(image, height: 30, width: 40),
                                                             height: 21, width: 33))
    }

    func testShorterSideOutputSize() {
        // int(224 * 500 / 375) = 298.
        XCTAssertTrue(ImageTransforms.shorterSideOutputSize(height: 375, width: 500, size: 224) == (224, 298))
        XCTAssertTrue(ImageTransforms.shorterSideOutputSize(height: 500, width: 375, size: 224) == (298, 224))
        XCTAssertTrue(ImageTransforms.shorterSideOutputSize(height: 375, width: 500, size: 224, maxSize: 250) == (187, 250))
    }

    func testEmptyAndDegenerateSizes() {
        let empty = RGBImage(width: 0, height: 0)
        XCTAssertEqual(ImageTransforms.resize(empty, height: 4, width: 5), RGBImage(width: 5, height: 4))
        let image = RGBImage(width: 3, height: 2, pixels: (0..<18).map { Float($0) / 18 })
        XCTAssertEqual(ImageTransforms.resize(image, height: 0, width: 5).pixels.count, 0)
        XCTAssertEqual(ImageTransforms.crop(image, top: 10, left: 10, height: 2, width: 2), RGBImage(width: 2, height: 2))
    }
}
