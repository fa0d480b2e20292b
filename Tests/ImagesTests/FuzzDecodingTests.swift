// Seeded mutations of real PNG and JPEG files (byte flips, truncations, inserted junk, copied
// ranges) through both decoders: every outcome is an image or a typed ImageDecodeError.

import Foundation
import Images
import XCTest

final class FuzzDecodingTests: XCTestCase {
    /// SplitMix64: deterministic across platforms and runs.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static func mutate(_ bytes: [UInt8], using rng: inout SeededGenerator) -> [UInt8] {
        var data = bytes
        let rounds = Int.random(in: 1...4, using: &rng)
        for _ in 0..<rounds where !data.isEmpty {
            switch Int.random(in: 0..<5, using: &rng) {
            case 0:  // flip a few bits, mostly in the header
                let limit = Bool.random(using: &rng) ? min(data.count, 200) : data.count
                for _ in 0..<Int.random(in: 1...8, using: &rng) {
                    data[Int.random(in: 0..<limit, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                }
            case 1:  // truncate
                data.removeLast(Int.random(in: 0..<data.count, using: &rng))
            case 2:  // insert junk
                let at = Int.random(in: 0...data.count, using: &rng)
                data.insert(contentsOf: (0..<Int.random(in: 1...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: at)
            case 3:  // overwrite with 0xFF / 0x00 runs (marker-like noise)
                let at = Int.random(in: 0..<data.count, using: &rng)
                let count = min(data.count - at, Int.random(in: 1...16, using: &rng))
                let value: UInt8 = Bool.random(using: &rng) ? 0xFF : 0x00
                for k in at..<at + count { data[k] = value }
            default:  // copy a range over another
                let from = Int.random(in: 0..<data.count, using: &rng)
                let to = Int.random(in: 0..<data.count, using: &rng)
                let count = min(data.count - max(from, to), Int.random(in: 1...128, using: &rng))
                let slice = Array(data[from..<from + count])
                data.replaceSubrange(to..<to + count, with: slice)
            }
        }
        return data
    }

    func testMutatedFilesDecodeOrThrowTypedErrors() throws {
        let seeds = ["jpeg_67x51_420.jpg", "jpeg_progressive.jpg", "jpeg_cmyk_adobe.jpg", "jpeg_orientation6.jpg",
                     "png_rgb8_67x51.png", "png_rgba8_interlaced.png", "png_pal4_trns.png", "png_rgb16.png", "png_exif_orientation6.png", "jpeg_xmp_orientation6.jpg",
                     "photos/flower.jpg"]
        var rng = SeededGenerator(state: 20_261_129)
        var outcomes: [String: Int] = [:]
        let start = Date()
        let limits = ImageDecodeLimits(maxPixels: 4_000_000)
        for name in seeds {
            let original = try ImageFixtures.bytes(name)
            for _ in 0..<(name.hasPrefix("photos/") ? 40 : 50) {
                let mutated = Self.mutate(original, using: &rng)
                do {
                    let image = try ImageDecoder.decode(mutated, limits: limits)
                    XCTAssertEqual(image.pixels.count, 3 * image.width * image.height)
                    XCTAssertTrue(image.pixels.allSatisfy { $0 >= 0 && $0 <= 1 }, name)
                    outcomes["image", default: 0] += 1
                } catch let error as ImageDecodeError {
                    outcomes[DecodingTests.kind(error), default: 0] += 1
                } catch {
                    XCTFail("\(name): untyped error \(error)")
                }
                _ = ImageDecoder.probe(mutated)
            }
        }
        XCTAssertEqual(outcomes.values.reduce(0, +), (seeds.count - 1) * 50 + 40)
        XCTAssertGreaterThan(outcomes["image", default: 0], 0, "\(outcomes)")
        XCTAssertGreaterThan(outcomes.count, 2, "\(outcomes)")
        XCTAssertLessThan(Date().timeIntervalSince(start), 10)
    }

    func testRandomBytesAndTinyInputs() {
        var rng = SeededGenerator(state: 7)
        for length in [0, 1, 2, 3, 7, 8, 23, 24, 25, 100, 1000] {
            for prefix in [[UInt8](), [0xFF, 0xD8, 0xFF], [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]] {
                let bytes = Array((prefix + (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }).prefix(max(length, 0)))
                XCTAssertThrowsError(try ImageDecoder.decode(bytes)) { error in
                    XCTAssertNotNil(error as? ImageDecodeError, "\(error)")
                }
            }
        }
    }
}
