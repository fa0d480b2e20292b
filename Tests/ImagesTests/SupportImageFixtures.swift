// Finds the decoding fixtures written by scripts/fixtures/make_image_fixtures.py and reads their
// manifest and expected pixels.

import Foundation
import Images
import XCTest

enum ImageFixtures {
    static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/images")

    static func url(_ name: String) -> URL { folder.appendingPathComponent(name) }

    static func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: url(name))) }

    struct Manifest: Decodable {
        struct Image: Decodable {
            var name: String
            var file: String
            var format: String
            var width: Int
            var height: Int
            var expected: String
            var expectedBits: Int
            var note: String
        }
        struct Bad: Decodable {
            var file: String
            var error: String
        }
        struct Photo: Decodable {
            struct Sample: Decodable { var c: Int; var y: Int; var x: Int; var value: Int }
            var file: String
            var width: Int
            var height: Int
            var sums: [Int]
            var samples: [Sample]
        }
        var images: [Image]
        var bad: [Bad]
        var photos: [Photo]
    }

    static func manifest() throws -> Manifest {
        try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: url("manifest.json")))
    }

    /// Expected planar samples as Float32, computed as torchvision does: v / 255 or v / 65535.
    static func expectedPixels(_ image: Manifest.Image) throws -> [Float] {
        let raw = try bytes(image.expected)
        if image.expectedBits == 16 {
            return stride(from: 0, to: raw.count, by: 2).map { Float(UInt16(raw[$0]) | UInt16(raw[$0 + 1]) << 8) / 65535 }
        }
        return raw.map { Float($0) / 255 }
    }
}
