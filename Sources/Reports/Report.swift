import Cache
import Foundation

/// Writes a report for a run or a sweep folder, telling them apart by their marker file
/// (`lock.json` for a run, `sweep.json` for a sweep).
///
///     let url = try Report.write(folder: URL(fileURLWithPath: "runs/penguins-20261130-051500"))
///     // runs/penguins-20261130-051500/report.html
///
/// The page is one HTML file with inline SVG and CSS: no scripts, no fonts or images fetched,
/// nothing that needs a network. The same folder always gives the same bytes.
public enum Report {
    /// The default file name inside the folder.
    public static let fileName = "report.html"

    /// The marker in every page runpipe writes; a file without it is never replaced.
    static let generatorMarker = #"<meta name="generator" content="runpipe report">"#

    public enum Kind: Equatable, Sendable { case run, sweep }

    /// Which kind of folder `folder` is, or an error that says what was expected.
    public static func kind(of folder: URL) throws -> Kind {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: folder.path, isDirectory: &isDirectory) else {
            throw ReportError.notAReportFolder(path: folder.path, reason: "it does not exist")
        }
        guard isDirectory.boolValue else {
            throw ReportError.notAReportFolder(path: folder.path, reason: "it is a file, not a folder")
        }
        let run = fm.fileExists(atPath: folder.appendingPathComponent(RunFolder.marker).path)
        let sweep = fm.fileExists(atPath: folder.appendingPathComponent(SweepFolder.marker).path)
        switch (run, sweep) {
        case (true, false): return .run
        case (false, true): return .sweep
        case (true, true):
            throw ReportError.notAReportFolder(path: folder.path, reason: "it holds both lock.json and sweep.json")
        case (false, false):
            throw ReportError.notAReportFolder(path: folder.path, reason: "it holds neither lock.json (a run) nor sweep.json (a sweep)")
        }
    }

    /// Renders the report of `folder` (a run or a sweep) and writes it to `output`
    /// (default `<folder>/report.html`). Returns where it went.
    @discardableResult
    public static func write(folder: URL, output: URL? = nil) throws -> URL {
        switch try kind(of: folder) {
        case .run: return try RunReport.write(runFolder: folder, output: output)
        case .sweep: return try SweepReport.write(sweepFolder: folder, output: output)
        }
    }

    /// Writes `html` to `url` atomically (temporary file, then rename). An existing file is
    /// replaced only when it is a report runpipe wrote.
    static func save(_ html: String, to url: URL) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        if fm.fileExists(atPath: url.path, isDirectory: &isDirectory) {
            if isDirectory.boolValue {
                throw ReportError.refusedOverwrite(path: url.path, reason: "it is a folder")
            }
            guard let handle = FileHandle(forReadingAtPath: url.path) else {
                throw ReportError.refusedOverwrite(path: url.path, reason: "it cannot be read to check what it is")
            }
            let head = handle.readData(ofLength: 4096)
            try? handle.close()
            guard String(decoding: head, as: UTF8.self).contains(generatorMarker) else {
                throw ReportError.refusedOverwrite(path: url.path, reason: "it is not a runpipe report")
            }
        }
        do {
            try AtomicFile.write(Data(html.utf8), to: url)
        } catch {
            throw ReportError.unwritable(path: url.path, reason: String(describing: error))
        }
    }
}

/// What can go wrong reading a folder or writing its report. Each message names the file.
public enum ReportError: Error, Equatable, CustomStringConvertible {
    case notAReportFolder(path: String, reason: String)
    case missingFile(path: String)
    case unreadable(path: String, reason: String)
    case malformed(path: String, detail: String)
    case refusedOverwrite(path: String, reason: String)
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case .notAReportFolder(let path, let reason):
            return "\(path) is not a run or sweep folder: \(reason)\n  hint: pass the folder `runpipe train` or `runpipe sweep` printed"
        case .missingFile(let path):
            return "\(path) is missing"
        case .unreadable(let path, let reason):
            return "cannot read \(path): \(reason)"
        case .malformed(let path, let detail):
            return "\(path): \(detail)"
        case .refusedOverwrite(let path, let reason):
            return "will not overwrite \(path): \(reason)\n  hint: choose another --output, or move that file away"
        case .unwritable(let path, let reason):
            return "cannot write \(path): \(reason)"
        }
    }
}
