// Image cells: ';'-joined relative paths, the data-folder boundary (absolute paths, `..`,
// symlinks, allow_outside), data URIs, bare base64, and the cheap `looksLikeImage` test.

import Foundation
import Images
import XCTest

final class ImageCellTests: XCTestCase {
    var folder: URL!
    var outside: URL!

    override func setUpWithError() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("runpipe-imagecell-\(UUID().uuidString)")
        folder = root.appendingPathComponent("data")
        outside = root.appendingPathComponent("elsewhere")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("imgs"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        let png = try ImageFixtures.bytes("png_rgb8.png")
        try Data(png).write(to: folder.appendingPathComponent("imgs/a.png"))
        try Data(png).write(to: outside.appendingPathComponent("b.png"))
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder.deletingLastPathComponent())
    }

    private func sources(_ cell: String, allowOutside: Bool = false) throws -> [ImageSource] {
        try ImageCell.sources(of: cell, baseFolder: folder, allowOutside: allowOutside)
    }

    private func assertCellError(_ cell: String, _ expected: ImageCellError, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try sources(cell), file: file, line: line) { error in
            XCTAssertEqual(error as? ImageCellError, expected, file: file, line: line)
        }
    }

    // MARK: - Paths

    func testRelativePathsResolveAgainstTheFolder() throws {
        XCTAssertEqual(try sources("imgs/a.png"), [.file(folder.appendingPathComponent("imgs/a.png"))])
        XCTAssertEqual(try sources("  ./imgs/../imgs/a.png \n"), [.file(folder.appendingPathComponent("imgs/a.png"))])
        // Existence is the decoder's business.
        XCTAssertEqual(try sources("imgs/missing.jpg"), [.file(folder.appendingPathComponent("imgs/missing.jpg"))])
    }

    func testSemicolonJoinedPaths() throws {
        XCTAssertEqual(try sources("imgs/a.png; imgs/c.JPG ;;  "), [
            .file(folder.appendingPathComponent("imgs/a.png")),
            .file(folder.appendingPathComponent("imgs/c.JPG")),
        ])
    }

    func testEmptyCells() {
        assertCellError("", .emptyCell)
        assertCellError("   ", .emptyCell)
        assertCellError(" ; ;", .emptyCell)
    }

    func testPathsOutsideTheFolderAreRefused() throws {
        let outsidePath = outside.appendingPathComponent("b.png").path
        let folderPath = folder.resolvingSymlinksInPath().path
        assertCellError(outsidePath, .outsideFolder(path: outsidePath, folder: folderPath))
        assertCellError("../elsewhere/b.png", .outsideFolder(path: "../elsewhere/b.png", folder: folderPath))
        assertCellError("imgs/../../elsewhere/b.png", .outsideFolder(path: "imgs/../../elsewhere/b.png", folder: folderPath))
        assertCellError("imgs/a.png;../elsewhere/b.png", .outsideFolder(path: "../elsewhere/b.png", folder: folderPath))
        XCTAssertThrowsError(try sources("../elsewhere/b.png")) { error in
            XCTAssertTrue("\(error)".contains("set processors.image.allow_outside: true to allow it"), "\(error)")
        }
        // An absolute path that stays inside the folder is fine.
        let inside = folder.appendingPathComponent("imgs/a.png")
        XCTAssertEqual(try sources(inside.path), [.file(inside)])
    }

    func testSymlinksEscapingTheFolderAreRefused() throws {
        let link = folder.appendingPathComponent("imgs/link.png")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: outside.appendingPathComponent("b.png"))
        XCTAssertThrowsError(try sources("imgs/link.png")) { error in
            guard case .outsideFolder = error as? ImageCellError else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try sources("imgs/link.png", allowOutside: true), [.file(link)])
    }

    func testAllowOutside() throws {
        let outsideFile = outside.appendingPathComponent("b.png")
        XCTAssertEqual(try sources(outsideFile.path, allowOutside: true), [.file(outsideFile)])
        XCTAssertEqual(try sources("../elsewhere/b.png", allowOutside: true), [.file(outsideFile)])
        let image = try ImageDecoder.decode(try sources("../elsewhere/b.png", allowOutside: true)[0])
        XCTAssertEqual([image.width, image.height], [13, 9])
    }

    func testRemoteURLsAndInvalidPaths() {
        assertCellError("https://example.com/a.jpg", .remoteURL("https://example.com/a.jpg"))
        assertCellError("s3://bucket/a.jpg", .remoteURL("s3://bucket/a.jpg"))
        assertCellError("a\u{0}.png", .invalidPath("a\u{0}.png"))
    }

    // MARK: - Bytes in the cell

    func testDataURI() throws {
        let png = try ImageFixtures.bytes("png_rgb8.png")
        let base64 = Data(png).base64EncodedString()
        XCTAssertEqual(try sources("data:image/png;base64," + base64), [.bytes(png)])
        XCTAssertEqual(try sources("  DATA:image/png;charset=x;BASE64," + base64 + "\n"), [.bytes(png)])
        let wrapped = Data(png).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        XCTAssertEqual(try sources("data:image/png;base64," + wrapped), [.bytes(png)])
        XCTAssertEqual(try ImageDecoder.decode(try sources("data:image/png;base64," + base64)[0]),
                       try ImageDecoder.decode(png))
    }

    func testBadDataURIs() {
        XCTAssertThrowsError(try sources("data:image/png;base64,@@@not base64@@@")) { error in
            guard case .badBase64 = error as? ImageCellError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try sources("data:text/plain;base64,aGVsbG8=")) { error in
            guard case .badDataURI(let detail) = error as? ImageCellError else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("text/plain"), detail)
        }
        XCTAssertThrowsError(try sources("data:image/png,rawbytes")) { error in
            guard case .badDataURI = error as? ImageCellError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try sources("data:image/png;base64")) { error in
            guard case .badDataURI = error as? ImageCellError else { return XCTFail("\(error)") }
        }
    }

    func testBareBase64() throws {
        for name in ["png_rgb8.png", "jpeg_baseline420.jpg"] {
            let bytes = try ImageFixtures.bytes(name)
            XCTAssertEqual(try sources(Data(bytes).base64EncodedString()), [.bytes(bytes)], name)
            // URL-safe alphabet without padding.
            let urlSafe = Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            XCTAssertEqual(try sources(urlSafe), [.bytes(bytes)], name)
        }
        // Base64 of something that is not an image is read as a path.
        let text = Data("hello world, not an image".utf8).base64EncodedString()
        XCTAssertEqual(try sources(text), [.file(folder.appendingPathComponent(text))])
    }

    func testBase64ThatIsAlsoAnExistingPathPrefersTheFile() throws {
        // "iVBORw0KGgoAAAAN" decodes to the PNG signature and is also a valid file name.
        let name = "iVBORw0KGgoAAAAN"
        XCTAssertEqual(try sources(name), [.bytes([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 0x0D])])
        try Data(try ImageFixtures.bytes("png_rgb8.png")).write(to: folder.appendingPathComponent(name))
        XCTAssertEqual(try sources(name), [.file(folder.appendingPathComponent(name))])
    }

    func testGarbageIsAPathThatFailsToDecode() throws {
        let result = try sources("%%% not an image %%%")
        XCTAssertEqual(result.count, 1)
        XCTAssertThrowsError(try ImageDecoder.decode(result[0])) { error in
            guard case .fileNotFound = error as? ImageDecodeError else { return XCTFail("\(error)") }
        }
    }

    // MARK: - looksLikeImage

    func testLooksLikeImage() throws {
        let png = Data(try ImageFixtures.bytes("png_rgb8.png")).base64EncodedString()
        let jpeg = Data(try ImageFixtures.bytes("jpeg_gray.jpg")).base64EncodedString()
        for cell in ["a.png", "dir/B.JPG", "x.jpeg;y.jpe; z.JFIF ", " photo.Png ", "data:image/png;base64," + png,
                     "data:image/jpeg;base64," + jpeg, png, jpeg] {
            XCTAssertTrue(ImageCell.looksLikeImage(cell), cell)
        }
        for cell in ["", "  ", "a.png;b.txt", "cat", "3.5", "a.gif", "png", "dir.png/file", "data:text/plain;base64,aGVsbG8=",
                     Data("not an image at all".utf8).base64EncodedString(), "data:image/png;base64,AAAA", ";"] {
            XCTAssertFalse(ImageCell.looksLikeImage(cell), cell)
        }
    }
}
