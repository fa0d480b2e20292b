// Evidence for image columns: a column whose cells look like image references is confirmed by
// decoding a few of them, and what that found (sizes, formats, failures) goes into the column's
// evidence, which `runpipe inspect` prints.
import Foundation
import Images

/// Where an image column's cells are resolved and the limits they are read under.
public struct ImageSampling: Sendable {
    /// The folder relative paths in cells are resolved against (the data file's folder).
    public var baseFolder: URL
    public var allowOutside: Bool
    public var limits: ImageDecodeLimits
    /// How many non-missing cells are decoded per column.
    public var sampleSize: Int

    public init(baseFolder: URL, allowOutside: Bool = false, limits: ImageDecodeLimits = ImageDecodeLimits(), sampleSize: Int = 5) {
        self.baseFolder = baseFolder
        self.allowOutside = allowOutside
        self.limits = limits
        self.sampleSize = sampleSize
    }

    /// Decodes the first `sampleSize` non-missing cells' first images (headers only: `probe`
    /// reads dimensions without decoding pixels) and describes what it found.
    func evidence(_ cells: [String?]) -> (evidence: [Evidence], readable: Int, sampled: Int, firstProblem: String?) {
        var sampled = 0, readable = 0
        var sizes: [String] = [], formats: Set<String> = []
        var firstProblem: String?
        for cell in cells {
            guard sampled < sampleSize else { break }
            guard let cell, !cell.isEmpty else { continue }
            sampled += 1
            do {
                guard let source = try ImageCell.sources(of: cell, baseFolder: baseFolder, allowOutside: allowOutside).first else {
                    if firstProblem == nil { firstProblem = "an empty cell" }
                    continue
                }
                let image = try ImageDecoder.decode(source, limits: limits)
                readable += 1
                sizes.append("\(image.width)×\(image.height)")
                formats.insert(Self.formatName(source))
            } catch {
                if firstProblem == nil { firstProblem = "\(error)" }
            }
        }
        var evidence = [Evidence("images decoded", "\(readable)/\(sampled) sampled")]
        if !sizes.isEmpty { evidence.append(Evidence("sampled sizes", Array(Set(sizes)).sorted().prefix(4).joined(separator: ", "))) }
        if !formats.isEmpty { evidence.append(Evidence("formats", formats.sorted().joined(separator: ", "))) }
        if let firstProblem { evidence.append(Evidence("first unreadable", firstProblem)) }
        return (evidence, readable, sampled, firstProblem)
    }

    private static func formatName(_ source: ImageSource) -> String {
        switch source {
        case .file(let url):
            let bytes = (try? FileHandle(forReadingFrom: url)).flatMap { h -> [UInt8]? in
                defer { try? h.close() }
                return (try? h.read(upToCount: 16)).map { Array($0) }
            }
            return bytes.flatMap { ImageDecoder.format(of: $0)?.rawValue } ?? "?"
        case .bytes(let b):
            return ImageDecoder.format(of: b)?.rawValue ?? "?"
        }
    }
}
