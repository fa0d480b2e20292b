import Foundation
import Images
import XCTest
@testable import Reports

/// Opens reports in headless Chromium, screenshots them at 1280 px wide and checks that every
/// figure's box (known from the fixed layout) holds a drawing and that the space between
/// figures stays blank. Set RUNPIPE_REPORT_SCREENSHOTS to a folder to keep the PNGs.
final class ScreenshotTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = try ReportFixtures.temporaryFolder("screenshot")
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    func testRunReportFiguresAreDrawn() throws {
        let browser = try Chromium.find()
        let run = folder.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        try ReportFixtures.binaryRun(in: run)
        let document = try RunReport.render(runFolder: run)
        let shot = try screenshot(document, name: "run-report", browser: browser)

        for f in document.figures { try checkDrawn(shot, f) }
        // The plotted lines are there in their colours, not just the frames.
        let blue = (0x4e, 0x79, 0xa7), orange = (0xf2, 0x8e, 0x2b)
        try XCTAssertGreaterThan(shot.count(near: blue, in: box(document, "fig-roc")), 150, "ROC curve")
        try XCTAssertGreaterThan(shot.count(near: blue, in: box(document, "fig-pr")), 150, "precision–recall curve")
        try XCTAssertGreaterThan(shot.count(near: blue, in: box(document, "fig-calibration")), 60, "calibration line")
        try XCTAssertGreaterThan(shot.count(near: blue, in: box(document, "fig-loss")), 100, "training loss")
        try XCTAssertGreaterThan(shot.count(near: orange, in: box(document, "fig-loss")), 100, "validation loss")
        try XCTAssertGreaterThan(shot.count(near: (0x08, 0x30, 0x6b), in: box(document, "fig-confusion"), tolerance: 60), 400,
                                 "the darkest confusion cell")
        try checkBlankBetween(shot, box(document, "fig-confusion"), box(document, "fig-roc"))
        try checkBlankBetween(shot, box(document, "fig-loss"), box(document, "fig-metric"))
    }

    func testSweepReportFiguresAreDrawn() throws {
        let browser = try Chromium.find()
        let sweep = folder.appendingPathComponent("sweep")
        try FileManager.default.createDirectory(at: sweep, withIntermediateDirectories: true)
        try ReportFixtures.sweep(in: sweep)
        let document = try SweepReport.render(sweepFolder: sweep)
        let shot = try screenshot(document, name: "sweep-report", browser: browser)

        for f in document.figures { try checkDrawn(shot, f) }
        // The best trial is the red point of each parameter plot.
        for f in document.figures where f.id.hasPrefix("fig-param-") {
            XCTAssertGreaterThan(shot.count(near: (0xe1, 0x57, 0x59), in: f), 40, "best point in \(f.id)")
        }
        // Parallel coordinates: lines in viridis colours from dark purple to yellow.
        let parallel = try box(document, "fig-parallel")
        XCTAssertGreaterThan(shot.count(near: (253, 231, 37), in: parallel, tolerance: 40), 60, "best line (yellow)")
        XCTAssertGreaterThan(shot.count(near: (68, 1, 84), in: parallel, tolerance: 40), 60, "worst line (purple)")
        try checkBlankBetween(shot, box(document, "fig-param-trainer-optimizer-lr"), box(document, "fig-param-fusion-dropout"))
    }

    // MARK: Helpers

    private func box(_ document: ReportDocument, _ id: String) throws -> FigureBox {
        try XCTUnwrap(document.figure(id), "no figure \(id)")
    }

    private func screenshot(_ document: ReportDocument, name: String, browser: URL) throws -> Screenshot {
        let html = folder.appendingPathComponent("\(name).html")
        try Data(document.html.utf8).write(to: html)
        let png = folder.appendingPathComponent("\(name).png")
        try Chromium.screenshot(browser: browser, page: html, output: png, width: 1280, height: document.height,
                                profile: folder.appendingPathComponent("profile-\(name)"))
        if let keep = ProcessInfo.processInfo.environment["RUNPIPE_REPORT_SCREENSHOTS"], !keep.isEmpty {
            let dir = URL(fileURLWithPath: keep)
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            for file in [png, html] {
                let target = dir.appendingPathComponent(file.lastPathComponent)
                try? FileManager.default.removeItem(at: target)
                try FileManager.default.copyItem(at: file, to: target)
            }
        }
        let image = try ImageDecoder.decode(file: png)
        XCTAssertEqual(image.width, 1280)
        XCTAssertEqual(image.height, document.height)
        return Screenshot(image: image)
    }

    /// A figure's box has a drawing: enough ink and several colours.
    private func checkDrawn(_ shot: Screenshot, _ f: FigureBox, file: StaticString = #filePath, line: UInt = #line) throws {
        let inner = FigureBox(id: f.id, x: f.x + 2, y: f.y + 2, width: f.width - 4, height: f.height - 4)
        let stats = shot.stats(in: inner)
        XCTAssertGreaterThan(Double(stats.ink) / Double(inner.width * inner.height), 0.02,
                             "\(f.id) is (nearly) blank", file: file, line: line)
        XCTAssertGreaterThanOrEqual(stats.colours, 4, "\(f.id) has too few colours", file: file, line: line)
    }

    /// The gutter between two figures side by side is white.
    private func checkBlankBetween(_ shot: Screenshot, _ a: FigureBox, _ b: FigureBox,
                                   file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.y, b.y, "figures on one line", file: file, line: line)
        let gap = FigureBox(id: "gap", x: a.x + a.width + 3, y: a.y, width: b.x - a.x - a.width - 6, height: min(a.height, b.height))
        XCTAssertGreaterThan(gap.width, 0, file: file, line: line)
        XCTAssertEqual(shot.stats(in: gap).ink, 0, "the gutter between \(a.id) and \(b.id) is not blank", file: file, line: line)
        let margin = FigureBox(id: "margin", x: 1244, y: 0, width: 36, height: shot.image.height)
        XCTAssertEqual(shot.stats(in: margin).ink, 0, "the right margin is not blank", file: file, line: line)
    }
}

/// Pixel counts in regions of a decoded screenshot.
struct Screenshot {
    let image: RGBImage

    func pixel(_ x: Int, _ y: Int) -> (Int, Int, Int) {
        let p = image.planeSize, i = y * image.width + x
        return (Int((image.pixels[i] * 255).rounded()), Int((image.pixels[p + i] * 255).rounded()),
                Int((image.pixels[2 * p + i] * 255).rounded()))
    }

    private func pixels(in b: FigureBox) -> [(Int, Int, Int)] {
        let x0 = max(b.x, 0), x1 = min(b.x + b.width, image.width)
        let y0 = max(b.y, 0), y1 = min(b.y + b.height, image.height)
        guard x0 < x1, y0 < y1 else { return [] }
        var out: [(Int, Int, Int)] = []
        out.reserveCapacity((x1 - x0) * (y1 - y0))
        for y in y0..<y1 { for x in x0..<x1 { out.append(pixel(x, y)) } }
        return out
    }

    /// Non-white pixels, and distinct colours (quantised to 32 levels a channel).
    func stats(in b: FigureBox) -> (ink: Int, colours: Int) {
        var ink = 0
        var colours = Set<Int>()
        for (r, g, bl) in pixels(in: b) {
            if r < 240 || g < 240 || bl < 240 { ink += 1 }
            colours.insert((r / 8) << 10 | (g / 8) << 5 | (bl / 8))
        }
        return (ink, colours.count)
    }

    /// Pixels within `tolerance` (per channel) of `colour`.
    func count(near colour: (Int, Int, Int), in b: FigureBox, tolerance: Int = 30) -> Int {
        pixels(in: b).filter { abs($0.0 - colour.0) <= tolerance && abs($0.1 - colour.1) <= tolerance && abs($0.2 - colour.2) <= tolerance }.count
    }
}

/// Finding and running headless Chromium (Debian's `chromium-headless-shell`).
enum Chromium {
    static func find() throws -> URL {
        let fm = FileManager.default
        var candidates: [String] = []
        if let override = ProcessInfo.processInfo.environment["RUNPIPE_CHROMIUM"], !override.isEmpty { candidates.append(override) }
        candidates.append("/usr/lib/chromium/chromium-headless-shell")
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for name in ["chromium-headless-shell", "chromium", "chromium-browser"] {
            for dir in path.split(separator: ":") { candidates.append("\(dir)/\(name)") }
        }
        for c in candidates where fm.isExecutableFile(atPath: c) { return URL(fileURLWithPath: c) }
        throw XCTSkip("chromium-headless-shell not installed; run ./scripts/setup --tests")
    }

    static func screenshot(browser: URL, page: URL, output: URL, width: Int, height: Int, profile: URL) throws {
        let process = Process()
        process.executableURL = browser
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                             "--force-device-scale-factor=1", "--user-data-dir=\(profile.path)",
                             "--screenshot=\(output.path)", "--window-size=\(width),\(height)", page.absoluteString]
        let log = Pipe()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        // A browser that hangs is stopped after 90 s.
        let deadline = Date().addingTimeInterval(90)
        DispatchQueue.global().async {
            while Date() < deadline && process.isRunning { Thread.sleep(forTimeInterval: 0.1) }
            if process.isRunning { process.terminate() }
        }
        // Reading to the end while it runs keeps the pipe from filling up.
        let messages = log.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, FileManager.default.fileExists(atPath: output.path) else {
            throw ScreenshotError(message: "\(browser.path) exited with status \(process.terminationStatus) and no screenshot: "
                                  + String(decoding: messages.suffix(2000), as: UTF8.self))
        }
    }
}

struct ScreenshotError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
