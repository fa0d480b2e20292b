import Cache
import Foundation

/// The folder a `train` run leaves behind. It is assembled in a hidden sibling folder and renamed
/// into place only when everything is written, so a failed run leaves nothing behind and a
/// reader never sees half a run.
///
/// Layout (a contract later issues keep):
///
///     resolved.yaml          the pipeline with every default written out
///     lock.json              content hashes of the data, runpipe version, seed, threads
///     metrics.json           {"validation": {metric: value…}, "test": {…}}
///     history.csv            one row per epoch
///     model/                 weights (safetensors), model.json, processors.json, columns.json
///     validation_predictions.csv  the validation rows with the prediction (and class probabilities)
///     test_predictions.csv   when the pipeline names a test file
///     run.log                what each stage did, cached or not
public struct RunDirectory {
    public static let marker = "lock.json"

    public let url: URL

    public init(url: URL) { self.url = url }

    /// `runs/<name>-<yyyyMMdd-HHmmss>` under `base` (`folder` names another parent, e.g. `sweeps`).
    public static func defaultURL(name: String, base: URL, folder: String = "runs", now: Date = Date()) -> URL {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyyMMdd-HHmmss"
        return base.appendingPathComponent(folder).appendingPathComponent("\(name)-\(f.string(from: now))")
    }

    /// Whether `url` already holds something a user could lose: a run, or any file at all.
    public static func refuseExisting(_ url: URL, overwrite: Bool) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: url.path, isDirectory: &isDir) else { return }
        guard isDir.boolValue else {
            throw PipelineError("the run directory \(url.path) is a file", hint: "choose another --run-dir")
        }
        let contents = (try? fm.contentsOfDirectory(atPath: url.path)) ?? []
        if contents.isEmpty { return }
        let holdsRun = contents.contains(marker)
        if overwrite && holdsRun { return }
        if holdsRun {
            throw PipelineError("\(url.path) already holds a run", hint: "pass --overwrite to replace it, or choose another --run-dir")
        }
        throw PipelineError("\(url.path) is not empty and does not hold a run (\(contents.count) entr\(contents.count == 1 ? "y" : "ies"))",
                            hint: "runpipe only replaces folders that hold a run; choose another --run-dir")
    }

    /// Writes a run: `fill` writes files into a staging folder beside `url`, which then replaces
    /// `url` (an existing run is moved aside first and removed only after the new one is in place).
    public static func create(at url: URL, overwrite: Bool, fill: (URL) throws -> Void) throws -> RunDirectory {
        try refuseExisting(url, overwrite: overwrite)
        let fm = FileManager.default
        let parent = url.deletingLastPathComponent()
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        let token = UUID().uuidString.prefix(8)
        let staging = parent.appendingPathComponent(".\(url.lastPathComponent).staging-\(token)")
        try fm.createDirectory(at: staging, withIntermediateDirectories: false)
        do {
            try fill(staging)
        } catch {
            try? fm.removeItem(at: staging)
            throw error
        }
        var aside: URL?
        if fm.fileExists(atPath: url.path) {
            let old = parent.appendingPathComponent(".\(url.lastPathComponent).replaced-\(token)")
            try fm.moveItem(at: url, to: old)
            aside = old
        }
        do {
            try fm.moveItem(at: staging, to: url)
        } catch {
            if let aside { try? fm.moveItem(at: aside, to: url) }
            try? fm.removeItem(at: staging)
            throw PipelineError("could not move the finished run into \(url.path): \(error.localizedDescription)")
        }
        if let aside { try? fm.removeItem(at: aside) }
        return RunDirectory(url: url)
    }

    public var modelURL: URL { url.appendingPathComponent("model") }

    /// Checks that `url` holds a finished run (for predict / evaluate).
    public static func open(_ url: URL) throws -> RunDirectory {
        let fm = FileManager.default
        guard fm.fileExists(atPath: url.appendingPathComponent(marker).path),
              fm.fileExists(atPath: url.appendingPathComponent("model/model.json").path) else {
            throw PipelineError("\(url.path) does not hold a finished run (no lock.json or model/model.json)",
                                hint: "pass the folder `runpipe train` printed, e.g. runs/<name>-<time>")
        }
        return RunDirectory(url: url)
    }
}

/// Encodes a value as pretty, key-sorted JSON (what every JSON file of a run uses).
func prettyJSON<T: Encodable>(_ value: T) throws -> Data {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    var d = try e.encode(value)
    d.append(0x0A)
    return d
}
