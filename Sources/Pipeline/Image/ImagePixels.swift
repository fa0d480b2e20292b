import Checkpoints
import Foundation
import Images
import Spec
import Tables
import TensorEngine

// The `pixels.*` stages: image cells → decoded images → the deterministic transforms, stored
// once per part. Training with augmentation applies the random transforms to these on every
// step; frozen backbones turn them into cached features.

/// One image column's pixels for the rows of a part, images of varying size stored back to back.
struct PixelColumn {
    var name: String
    /// Images per row (0: none — the cell was missing or no image in it could be read).
    var counts: [Int32]
    /// Height and width of every image, in row order.
    var heights: [Int32]
    var widths: [Int32]
    /// Every image's planar RGB samples, concatenated.
    var pixels: Tensor
    /// Where each row's first image starts in `heights`/`widths`, and each image in `pixels`.
    private(set) var firstImage: [Int] = []
    private(set) var offsets: [Int] = []

    init(name: String, counts: [Int32], heights: [Int32], widths: [Int32], pixels: Tensor) throws {
        self.name = name
        self.counts = counts
        self.heights = heights
        self.widths = widths
        self.pixels = pixels
        var first = 0
        firstImage = counts.map { c in defer { first += Int(c) }; return first }
        var offset = 0
        offsets = zip(heights, widths).map { h, w in defer { offset += 3 * Int(h) * Int(w) }; return offset }
        guard first == heights.count, heights.count == widths.count, offset == pixels.count else {
            throw PipelineError("image pixels of column '\(name)' are inconsistent (\(first) images counted, \(heights.count) sizes, \(pixels.count) samples for \(offset))",
                                hint: "the cache entry is damaged; `runpipe cache verify` removes it")
        }
    }

    /// The images of row `position` (a position in the part).
    func images(ofRow position: Int) -> [RGBImage] {
        let first = firstImage[position]
        return (first..<(first + Int(counts[position]))).map { i in
            let n = 3 * Int(heights[i]) * Int(widths[i])
            let start = offsets[i]
            let samples = withExtendedLifetime(pixels) { Array(UnsafeBufferPointer(start: pixels.data + start, count: n)) }
            return RGBImage(width: Int(widths[i]), height: Int(heights[i]), pixels: samples)
        }
    }
}

/// What reading a part's image cells found.
struct ImageReadReport: Codable, Equatable {
    var images = 0
    var missingCells = 0
    var unreadable = 0
    /// The first few problems, `file:line: column 'c': message`.
    var examples: [String] = []

    func line(part: String, skipped: Int) -> String {
        var s = "  images: \(part): \(images) decoded"
        if missingCells > 0 { s += ", \(missingCells) empty cell\(missingCells == 1 ? "" : "s")" }
        if unreadable > 0 { s += ", \(unreadable) unreadable" }
        if skipped > 0 { s += "; \(skipped) row\(skipped == 1 ? "" : "s") left out (missing: skip_row)" }
        for e in examples { s += "\n    \(e)" }
        if unreadable > examples.count { s += "\n    … and \(unreadable - examples.count) more" }
        return s
    }
}

/// The `pixels.<part>` artifact: every image column of the part.
struct PixelSet {
    static let file = "pixels.safetensors"
    var columns: [PixelColumn]
    /// Positions (in the part) of rows left out because an image column had no readable image
    /// (`missing: skip_row`).
    var skipped: [Int]
    var report: ImageReadReport

    func save(to url: URL) throws {
        var tensors: [(String, Tensor)] = [("skipped", try Tensor(skipped.map { Float($0) }, shape: [skipped.count]))]
        for (i, c) in columns.enumerated() {
            tensors += [
                ("image.\(i).counts", try Tensor(c.counts.map { Float($0) }, shape: [c.counts.count])),
                ("image.\(i).heights", try Tensor(c.heights.map { Float($0) }, shape: [c.heights.count])),
                ("image.\(i).widths", try Tensor(c.widths.map { Float($0) }, shape: [c.widths.count])),
                ("image.\(i).pixels", c.pixels),
            ]
        }
        let report = String(decoding: try JSONEncoder().encode(report), as: UTF8.self)
        try SafetensorsWriter.write(tensors, metadata: ["format": "runpipe-pixels-1", "columns": columns.map(\.name).joined(separator: "\n"),
                                                        "report": report], to: url)
    }

    static func load(from url: URL) throws -> PixelSet {
        let f = try SafetensorsFile(url: url)
        let names = (f.metadata["columns"] ?? "").split(separator: "\n").map(String.init)
        var columns: [PixelColumn] = []
        for (i, name) in names.enumerated() {
            func ints(_ key: String) throws -> [Int32] { try f.tensor(named: "image.\(i).\(key)").toArray().map { Int32($0) } }
            columns.append(try PixelColumn(name: name, counts: try ints("counts"), heights: try ints("heights"), widths: try ints("widths"),
                                           pixels: try f.tensor(named: "image.\(i).pixels")))
        }
        let report = (f.metadata["report"]).flatMap { try? JSONDecoder().decode(ImageReadReport.self, from: Data($0.utf8)) } ?? ImageReadReport()
        return PixelSet(columns: columns, skipped: try f.tensor(named: "skipped").toArray().map { Int($0) }, report: report)
    }
}

/// Reads image cells into pixels: resolves each cell (paths relative to the data file's folder,
/// `;`-joined paths, bytes, base64), decodes under the pixel limit, applies deterministic
/// transforms, and handles missing or broken images by `processors.image.missing`.
struct ImagePixelReader {
    let reading: ImageReading
    /// Deterministic transforms applied before storing.
    let transforms: ImageTransformPipeline
    /// Where relative paths in cells resolve: the data file's folder.
    let baseFolder: URL
    /// The pipeline key errors about missing images point at.
    var location: SourceLocation? = nil

    func read(_ table: Table, rows: [Int], columns: [String]) throws -> PixelSet {
        var report = ImageReadReport()
        var skipped = Set<Int>()
        var result: [PixelColumn] = []
        for name in columns {
            let cells = try located(location) { try table.requireColumn(named: name) }
            // Decoding runs on the workers in fixed chunks; each row's result has its own slot, so
            // the output does not depend on scheduling.
            guard !rows.isEmpty else {
                result.append(try PixelColumn(name: name, counts: [], heights: [], widths: [], pixels: try Tensor([], shape: [0])))
                continue
            }
            var decoded = [[RGBImage]](repeating: [], count: rows.count)
            var problems = [[String]](repeating: [], count: rows.count)
            var empty = [Bool](repeating: false, count: rows.count)
            decoded.withUnsafeMutableBufferPointer { out in
                problems.withUnsafeMutableBufferPointer { prob in
                    empty.withUnsafeMutableBufferPointer { emp in
                        let outBase = out.baseAddress!, probBase = prob.baseAddress!, empBase = emp.baseAddress!
                        Parallel.forFixedChunks(rows.count, chunk: 16) { _, range in
                            for i in range {
                                let row = rows[i]
                                let where_ = "\(table.source):\(table.lineNumbers[row]): column '\(name)'"
                                guard let cell = cells[row], !cell.trimmingCharacters(in: .whitespaces).isEmpty else {
                                    empBase[i] = true
                                    continue
                                }
                                let sources: [ImageSource]
                                do {
                                    sources = try ImageCell.sources(of: cell, baseFolder: baseFolder, allowOutside: reading.allowOutside)
                                } catch {
                                    probBase[i].append("\(where_): \(error)")
                                    continue
                                }
                                if sources.isEmpty { empBase[i] = true }
                                for source in sources.prefix(reading.maxImagesPerCell) {
                                    do {
                                        let image = try ImageDecoder.decode(source, limits: reading.limits)
                                        var random = AugmentationRandom(seed: 0, epoch: 0, row: 0)
                                        outBase[i].append(transforms.apply(image, random: &random))
                                    } catch {
                                        probBase[i].append("\(where_): \(Self.describe(source, base: baseFolder)): \(error)")
                                    }
                                }
                            }
                        }
                    }
                }
            }
            var counts: [Int32] = [], heights: [Int32] = [], widths: [Int32] = []
            var total = 0
            for i in rows.indices {
                if empty[i] { report.missingCells += 1 }
                report.unreadable += problems[i].count
                for p in problems[i] where report.examples.count < 5 { report.examples.append(p) }
                if reading.missing == .error {
                    if let p = problems[i].first {
                        throw PipelineError("image \(p)", at: location,
                                            hint: "fix or remove the file, or set processors.image.missing to zero (a black image) or skip_row")
                    }
                    if empty[i] {
                        throw PipelineError("\(table.source):\(table.lineNumbers[rows[i]]): column '\(name)' has no image", at: location,
                                            hint: "fill the cell, or set processors.image.missing to zero (a black image) or skip_row")
                    }
                }
                if decoded[i].isEmpty, reading.missing == .skipRow { skipped.insert(i) }
                counts.append(Int32(decoded[i].count))
                for image in decoded[i] {
                    heights.append(Int32(image.height))
                    widths.append(Int32(image.width))
                    total += image.pixels.count
                }
                report.images += decoded[i].count
            }
            var flat = [Float]()
            flat.reserveCapacity(total)
            for images in decoded { for image in images { flat.append(contentsOf: image.pixels) } }
            result.append(try PixelColumn(name: name, counts: counts, heights: heights, widths: widths,
                                          pixels: try Tensor(flat, shape: [flat.count])))
        }
        return PixelSet(columns: result, skipped: skipped.sorted(), report: report)
    }

    /// A file as the cell named it (relative to the data folder when inside it), or the size
    /// of inline bytes.
    static func describe(_ source: ImageSource, base: URL) -> String {
        switch source {
        case .file(let url):
            let path = url.standardizedFileURL.path
            let root = base.standardizedFileURL.path.hasSuffix("/") ? base.standardizedFileURL.path : base.standardizedFileURL.path + "/"
            return path.hasPrefix(root) ? String(path.dropFirst(root.count)) : path
        case .bytes(let b):
            return "inline image (\(b.count) bytes)"
        }
    }
}

/// Packs images into a normalised NCHW batch: each image, resized to `size`×`size` when the
/// transforms left it at another size, then normalised with the backbone's mean and std. Rows
/// without an image get one all-zero (already normalised) image, as AutoMM feeds.
struct ImageBatcher {
    let size: Int
    let mean: [Float]
    let std: [Float]

    /// The batch tensor [images, 3, size, size] and, per image, the batch row it belongs to.
    func pack(_ rowsImages: [[RGBImage]]) throws -> (images: Tensor, owners: [Int]) {
        var owners: [Int] = []
        for (r, images) in rowsImages.enumerated() { owners += Array(repeating: r, count: max(1, images.count)) }
        let plane = 3 * size * size
        let out = Tensor.zeros([owners.count, 3, size, size])
        var slot = 0
        for images in rowsImages {
            if images.isEmpty { slot += 1; continue }
            for image in images {
                let fitted = image.width == size && image.height == size
                    ? image : ImageTransforms.resize(image, height: size, width: size)
                ImageTransforms.normalize(fitted, mean: mean, std: std, into: out.data + slot * plane)
                slot += 1
            }
        }
        return (out, owners)
    }

    /// [rows, images] averaging matrix: row r has 1/count at the columns of its images.
    static func averaging(owners: [Int], rows: Int) throws -> Tensor {
        var counts = [Float](repeating: 0, count: rows)
        for o in owners { counts[o] += 1 }
        var m = [Float](repeating: 0, count: rows * owners.count)
        for (j, o) in owners.enumerated() { m[o * owners.count + j] = 1 / counts[o] }
        return try Tensor(m, shape: [rows, owners.count])
    }
}

/// How a batch's images are prepared: the branch's mode, the packing, and — while training with
/// augmentation — the random transforms with the epoch that seeds them.
struct ImageBatchSource {
    let mode: ImageTrainMode
    let batcher: ImageBatcher
    /// Random transforms applied to every image (training only), keyed by seed, epoch and row id.
    var augmentation: (pipeline: ImageTransformPipeline, seed: UInt64, epoch: Int)? = nil

    /// One column's images of the rows at `positions`, augmented when training, packed.
    func input(_ column: PixelColumn, columnIndex: Int, positions: [Int], rowIds: [Int]) throws -> ImageInput {
        var rowsImages = positions.map { column.images(ofRow: $0) }
        if let augmentation, !augmentation.pipeline.steps.isEmpty {
            rowsImages.withUnsafeMutableBufferPointer { buffer in
                guard let base = buffer.baseAddress else { return }
                // Each row's randomness comes from (seed, epoch, row id, column, image), so the
                // pixels do not depend on batch composition or threads.
                Parallel.forFixedChunks(buffer.count, chunk: 4) { _, range in
                    for i in range {
                        for k in base[i].indices {
                            var random = AugmentationRandom(seed: augmentation.seed &+ UInt64(columnIndex) &* 0x9E37_79B9,
                                                            epoch: augmentation.epoch,
                                                            row: rowIds[positions[i]] &* 64 &+ k)
                            base[i][k] = augmentation.pipeline.apply(base[i][k], random: &random)
                        }
                    }
                }
            }
        }
        let (images, owners) = try batcher.pack(rowsImages)
        return .pixels(images, owners: owners, rows: positions.count)
    }
}
