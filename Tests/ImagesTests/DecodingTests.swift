// Decoding against Pillow: every PNG/JPEG fixture variant, the photos' checksums, probing, the
// pixel limit, and the typed error each bad file must give.

import Foundation
import Images
import XCTest

final class DecodingTests: XCTestCase {
    // MARK: - Pixels equal Pillow's

    func testEveryFixtureVariantEqualsPillow() throws {
        let manifest = try ImageFixtures.manifest()
        XCTAssertGreaterThanOrEqual(manifest.images.count, 40)
        for fixture in manifest.images {
            let image = try ImageDecoder.decode(file: ImageFixtures.url(fixture.file))
            XCTAssertEqual(image.width, fixture.width, fixture.name)
            XCTAssertEqual(image.height, fixture.height, fixture.name)
            let expected = try ImageFixtures.expectedPixels(fixture)
            XCTAssertEqual(image.pixels.count, expected.count, fixture.name)
            let mismatches = zip(image.pixels, expected).filter { $0 != $1 }.count
            XCTAssertEqual(mismatches, 0, "\(fixture.name): \(mismatches) samples differ from Pillow")
        }
    }

    func testPhotosMatchPillowChecksums() throws {
        for photo in try ImageFixtures.manifest().photos {
            let image = try ImageDecoder.decode(file: ImageFixtures.url(photo.file))
            XCTAssertEqual([image.width, image.height], [photo.width, photo.height], photo.file)
            let plane = image.planeSize
            for c in 0..<3 {
                let sum = image.pixels[c * plane..<(c + 1) * plane].reduce(0) { $0 + Int(($1 * 255).rounded()) }
                XCTAssertEqual(sum, photo.sums[c], "\(photo.file) channel \(c)")
            }
            for sample in photo.samples {
                XCTAssertEqual(image[sample.c, sample.y, sample.x], Float(sample.value) / 255, "\(photo.file) \(sample)")
            }
        }
    }

    func testDataAndArrayOverloadsAgree() throws {
        let bytes = try ImageFixtures.bytes("jpeg_baseline420.jpg")
        XCTAssertEqual(try ImageDecoder.decode(bytes), try ImageDecoder.decode(Data(bytes)))
        XCTAssertEqual(try ImageDecoder.decode(.bytes(bytes)), try ImageDecoder.decode(.file(ImageFixtures.url("jpeg_baseline420.jpg"))))
    }

    /// Median of 20 decodes of flower.jpg (640×427), printed for the record; the bound only
    /// catches a decoder that fell off the fast path (the pixel loops run in C at -O2 even in debug).
    func testFlowerDecodeSpeed() throws {
        let bytes = try ImageFixtures.bytes("photos/flower.jpg")
        var times: [Double] = []
        for _ in 0..<20 {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try ImageDecoder.decode(bytes)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        let median = times.sorted()[times.count / 2]
        print("flower.jpg decode median: \(String(format: "%.2f", median)) ms")
        XCTAssertLessThan(median, 250)
    }

    // MARK: - Probe

    func testProbeReadsHeadersOnly() throws {
        XCTAssertEqual(ImageDecoder.probe(try ImageFixtures.bytes("png_rgb8_67x51.png")),
                       ImageHeader(format: .png, width: 67, height: 51))
        XCTAssertEqual(ImageDecoder.probe(Data(try ImageFixtures.bytes("jpeg_67x51_420.jpg"))),
                       ImageHeader(format: .jpeg, width: 67, height: 51))
        // EXIF orientations 5–8 are quarter turns: the decoded image is 9×13.
        XCTAssertEqual(ImageDecoder.probe(try ImageFixtures.bytes("jpeg_orientation6.jpg")),
                       ImageHeader(format: .jpeg, width: 9, height: 13))
        XCTAssertEqual(ImageDecoder.probe(try ImageFixtures.bytes("jpeg_orientation3.jpg")),
                       ImageHeader(format: .jpeg, width: 13, height: 9))
        XCTAssertEqual(ImageDecoder.probe(try ImageFixtures.bytes("jpeg_xmp_orientation6.jpg")),
                       ImageHeader(format: .jpeg, width: 9, height: 13))
        XCTAssertEqual(ImageDecoder.probe(try ImageFixtures.bytes("png_exif_orientation6.png")),
                       ImageHeader(format: .png, width: 9, height: 13))
        // Headers of images too large to decode are still readable.
        XCTAssertEqual(ImageDecoder.probe(try ImageFixtures.bytes("bad_huge.png")),
                       ImageHeader(format: .png, width: 100_000, height: 100_000))
        XCTAssertEqual(ImageDecoder.probe(try ImageFixtures.bytes("bad_huge.jpg")),
                       ImageHeader(format: .jpeg, width: 65_000, height: 65_000))
        // The format alone needs only the magic bytes.
        let jpeg = try ImageFixtures.bytes("jpeg_orientation6.jpg")
        XCTAssertNil(ImageDecoder.probe(Array(jpeg.prefix(64))))
        XCTAssertEqual(ImageDecoder.format(of: jpeg.prefix(64)), .jpeg)
        XCTAssertEqual(ImageDecoder.format(of: try ImageFixtures.bytes("png_gray1.png").prefix(8)), .png)
        XCTAssertNil(ImageDecoder.format(of: try ImageFixtures.bytes("bad_text.jpg")))
        for name in ["bad_empty.jpg", "bad_text.jpg", "bad_random.bin", "bad_truncated_header.png"] {
            XCTAssertNil(ImageDecoder.probe(try ImageFixtures.bytes(name)), name)
        }
    }

    // MARK: - Limits and bad files

    func testPixelLimitIsCheckedBeforeDecoding() throws {
        let bytes = try ImageFixtures.bytes("png_rgb8_67x51.png")
        XCTAssertThrowsError(try ImageDecoder.decode(bytes, limits: ImageDecodeLimits(maxPixels: 67 * 51 - 1))) { error in
            XCTAssertEqual(error as? ImageDecodeError, .tooManyPixels(width: 67, height: 51, limit: 67 * 51 - 1))
        }
        XCTAssertNoThrow(try ImageDecoder.decode(bytes, limits: ImageDecodeLimits(maxPixels: 67 * 51)))
        XCTAssertEqual(ImageDecodeLimits().maxPixels, 89_478_485)
    }

    func testHugeHeadersFailFast() throws {
        let start = Date()
        for (name, size) in [("bad_huge.png", 100_000), ("bad_huge.jpg", 65_000)] {
            XCTAssertThrowsError(try ImageDecoder.decode(file: ImageFixtures.url(name))) { error in
                XCTAssertEqual(error as? ImageDecodeError, .tooManyPixels(width: size, height: size, limit: 89_478_485))
                XCTAssertTrue("\(error)".contains("processors.image.max_pixels"), "\(error)")
            }
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
    }

    func testEveryBadFileGivesItsTypedError() throws {
        let manifest = try ImageFixtures.manifest()
        XCTAssertGreaterThanOrEqual(manifest.bad.count, 10)
        for bad in manifest.bad {
            XCTAssertThrowsError(try ImageDecoder.decode(file: ImageFixtures.url(bad.file)), bad.file) { error in
                guard let error = error as? ImageDecodeError else { return XCTFail("\(bad.file): \(error)") }
                XCTAssertEqual(Self.kind(error), bad.error, "\(bad.file): \(error)")
                XCTAssertFalse(error.description.isEmpty)
            }
        }
    }

    func testErrorDescriptionsSayWhatWasFound() throws {
        func message(_ name: String) -> String {
            do {
                _ = try ImageDecoder.decode(file: ImageFixtures.url(name))
                return "decoded"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertTrue(message("bad_text.jpg").contains("looks like text"), message("bad_text.jpg"))
        XCTAssertTrue(message("bad_12bit.jpg").contains("12-bit"), message("bad_12bit.jpg"))
        XCTAssertTrue(message("bad_crc.png").contains("libpng says"), message("bad_crc.png"))
        XCTAssertTrue(message("bad_truncated.jpg").contains("truncated"), message("bad_truncated.jpg"))
        XCTAssertEqual(message("no_such_file.png"),
                       ImageDecodeError.fileNotFound(path: ImageFixtures.url("no_such_file.png").path).description)
        XCTAssertTrue(message("photos").contains("directory"), message("photos"))
        let gif = ImageDecodeError.unknownFormat(firstBytes: Array("GIF89a".utf8)).description
        XCTAssertTrue(gif.contains("GIF"), gif)
    }

    func testMissingAndUnreadableFiles() {
        let missing = ImageFixtures.url("missing.png")
        XCTAssertThrowsError(try ImageDecoder.decode(file: missing)) { error in
            XCTAssertEqual(error as? ImageDecodeError, .fileNotFound(path: missing.path))
        }
        XCTAssertThrowsError(try ImageDecoder.decode(file: ImageFixtures.url("photos"))) { error in
            XCTAssertEqual(error as? ImageDecodeError, .unreadable(path: ImageFixtures.url("photos").path, reason: "it is a directory"))
        }
    }

    static func kind(_ error: ImageDecodeError) -> String {
        switch error {
        case .emptyData: return "empty"
        case .unknownFormat: return "unknownFormat"
        case .truncated: return "truncated"
        case .corrupt: return "corrupt"
        case .tooManyPixels: return "tooManyPixels"
        case .unsupported: return "unsupported"
        case .fileNotFound: return "fileNotFound"
        case .unreadable: return "unreadable"
        }
    }
}
