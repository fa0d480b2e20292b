import Foundation
import Images
import TensorEngine

// Image decoding and evaluation preprocessing against Pillow (benchmarks/reference/torch_image.py):
// read the file, decode to RGB, resize the shorter side to 224 (antialiased bilinear), center crop
// 224×224, float samples in [0, 1], planar [3, 224, 224]. The images are the two real photos of
// Tests/Fixtures/images/photos (427×640 JPEGs) alternating; the PNG workload reads the same photos
// re-encoded as PNG by Pillow, which `benchmarks/run` writes before the workload starts
// (`torch_image.py --prepare-png DIR`; DIR = $RUNPIPE_BENCH_IMAGES). The images of a batch are
// spread over the threads, each thread taking the next image when it is done with one (the two
// photos differ in size, so a fixed round-robin split would give one thread all the large ones),
// as the reference's thread pool of the same size does.

/// Images per timed unit.
let decodeBatchImages = 64
/// The photos both sides decode, in this order, repeated.
let decodePhotos = ["china", "flower"]

/// Where `benchmarks/run` writes the PNG copies: `$RUNPIPE_BENCH_IMAGES`, else
/// `<temporary directory>/runpipe-bench-images`.
func decodePNGFolder() -> URL {
    if let dir = ProcessInfo.processInfo.environment["RUNPIPE_BENCH_IMAGES"], !dir.isEmpty {
        return URL(fileURLWithPath: dir)
    }
    return URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("runpipe-bench-images")
}

/// The files of one batch: the photos alternating, `decodeBatchImages` in all.
func decodeFiles(format: String) throws -> [URL] {
    let folder = format == "png" ? decodePNGFolder() : URL(fileURLWithPath: "Tests/Fixtures/images/photos")
    let files = decodePhotos.map { folder.appendingPathComponent("\($0).\(format == "png" ? "png" : "jpg")") }
    for f in files where !FileManager.default.fileExists(atPath: f.path) {
        throw BenchError.unavailable(format == "png"
            ? "\(f.path) not found: benchmarks/run writes the PNG copies with Pillow (torch_image.py --prepare-png \(folder.path))"
            : "\(f.path) not found: run from the repository root")
    }
    return (0..<decodeBatchImages).map { files[$0 % files.count] }
}

/// Hands out image indices `0..<count` one at a time to whichever thread asks next.
final class ImageQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var issued = 0
    private let count: Int

    init(count: Int) { self.count = count }

    func next() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard issued < count else { return nil }
        issued += 1
        return issued - 1
    }
}

/// Decode + resize of the shorter side to 224 + center crop 224×224 of `decodeBatchImages` files
/// over the threads, through the pipeline's own evaluation transforms (which resample only the
/// pixels the crop keeps). One unit is the whole batch.
func decodeWorkload(format: String) -> Workload {
    let size = 224
    return Workload(name: "decode-\(format)-\(size)", unitName: "\(decodeBatchImages) images", flopsPerUnit: 0, unitsPerRun: 1,
                    notes: ["images": "\(decodeBatchImages): china and flower (427x640) alternating, \(format.uppercased())",
                            "steps": "ImageDecoder.decode(file:) -> ImageTransformPipeline.evaluation(size: 224) (resize shorter side 224 + center crop 224, one resample); Float32 planar [3,224,224] in [0,1]",
                            "parallel": "Parallel.threadCount threads, each taking the next image"]) {
        let files = try decodeFiles(format: format)
        let transforms = ImageTransformPipeline.evaluation(size: size)
        return {
            var failures = [String?](repeating: nil, count: files.count)
            var samples = [Int](repeating: 0, count: files.count)
            let queue = ImageQueue(count: files.count)
            failures.withUnsafeMutableBufferPointer { failed in
                samples.withUnsafeMutableBufferPointer { counts in
                    Parallel.run(chunks: Parallel.threadCount) { _ in
                        while let i = queue.next() {
                            do {
                                let image = try ImageDecoder.decode(file: files[i])
                                counts[i] = transforms.apply(image).pixels.count
                            } catch {
                                failed[i] = "\(files[i].lastPathComponent): \(error)"
                            }
                        }
                    }
                }
            }
            if let failure = failures.first(where: { $0 != nil }) ?? nil { throw BenchError.unavailable(failure) }
            guard samples.allSatisfy({ $0 == 3 * size * size }) else { throw BenchError.unavailable("a crop is not 3x\(size)x\(size)") }
        }
    }
}
