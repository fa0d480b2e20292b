// PNG and JPEG bytes → RGBImage, through libpng and libjpeg-turbo (the same library Pillow uses),
// matching Pillow's `ImageOps.exif_transpose(Image.open(f)).convert("RGB")` sample for sample.
//
// The header is parsed in Swift first, so a decompression bomb is refused before any allocation;
// the C shim (CImageSupport) then decodes row by row straight into the planar Float32 buffer.
//
// Differences from Pillow, on purpose:
// - 16-bit PNG samples become v / 65535 (Pillow keeps only the high byte: (v >> 8) / 255).
// - 16-bit grayscale PNGs are gray v / 65535 (Pillow's "I;16" → "RGB" clips to 255).
// - XMP orientation inside a zlib-compressed PNG iTXt chunk is not read (Pillow inflates it).
//
// Orientation (EXIF tag 0x0112, else XMP `tiff:Orientation`, in JPEGs and PNGs) is applied as
// `ImageOps.exif_transpose` does, by writing each decoded pixel straight to its turned position.

import CImageSupport
import Foundation

/// Decodes PNG and JPEG images into `RGBImage`s.
public enum ImageDecoder {
    /// Format from the magic bytes and dimensions from the header only (no pixel decoding); nil when
    /// the bytes are neither PNG nor JPEG or the header is unreadable.
    public static func probe(_ bytes: UnsafeRawBufferPointer) -> ImageHeader? {
        (try? ImageHeaderParser.parse(bytes))?.header
    }

    /// `probe` of a byte array.
    public static func probe(_ bytes: [UInt8]) -> ImageHeader? {
        bytes.withUnsafeBytes { probe($0) }
    }

    /// `probe` of a `Data`.
    public static func probe(_ data: Data) -> ImageHeader? {
        data.withUnsafeBytes { probe($0) }
    }

    /// The format named by the magic bytes alone (8 bytes are enough): cheaper than `probe`, which
    /// needs the bytes up to the IHDR/SOF (after any EXIF segment) to give the size.
    public static func format<C: Collection>(of bytes: C) -> ImageFormat? where C.Element == UInt8 {
        if bytes.starts(with: ImageHeaderParser.pngSignature) { return .png }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        return nil
    }

    /// Decodes PNG or JPEG bytes. Throws `ImageDecodeError` (never traps) on anything else.
    public static func decode(_ data: [UInt8], limits: ImageDecodeLimits = .init()) throws -> RGBImage {
        try data.withUnsafeBytes { try decode(bytes: $0, limits: limits) }
    }

    /// Decodes PNG or JPEG bytes held in a `Data`.
    public static func decode(_ data: Data, limits: ImageDecodeLimits = .init()) throws -> RGBImage {
        try data.withUnsafeBytes { try decode(bytes: $0, limits: limits) }
    }

    /// Reads and decodes an image file.
    public static func decode(file: URL, limits: ImageDecodeLimits = .init()) throws -> RGBImage {
        try decode(readFile(file), limits: limits)
    }

    /// Decodes one image of a cell (see `ImageCell.sources(of:baseFolder:allowOutside:)`).
    public static func decode(_ source: ImageSource, limits: ImageDecodeLimits = .init()) throws -> RGBImage {
        switch source {
        case .file(let url): return try decode(file: url, limits: limits)
        case .bytes(let bytes): return try decode(bytes, limits: limits)
        }
    }

    // MARK: - Internals

    static func readFile(_ url: URL) throws -> Data {
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ImageDecodeError.fileNotFound(path: path)
        }
        guard !isDirectory.boolValue else { throw ImageDecodeError.unreadable(path: path, reason: "it is a directory") }
        do {
            return try Data(contentsOf: url)
        } catch {
            throw ImageDecodeError.unreadable(path: path, reason: error.localizedDescription)
        }
    }

    static func decode(bytes: UnsafeRawBufferPointer, limits: ImageDecodeLimits) throws -> RGBImage {
        let layout = try ImageHeaderParser.parse(bytes)
        let (width, height) = (layout.storedWidth, layout.storedHeight)
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, pixels <= limits.maxPixels else {
            throw ImageDecodeError.tooManyPixels(width: layout.width, height: layout.height, limit: limits.maxPixels)
        }
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            throw ImageDecodeError.emptyData
        }
        let placement = self.placement(layout)
        var result = rp_result()
        let samples = [Float](unsafeUninitializedCapacity: 3 * pixels) { buffer, initialized in
            guard let out = buffer.baseAddress else { return }
            switch layout.format {
            case .png:
                rp_decode_png(base, bytes.count, Int32(width), Int32(height), out, placement, &result)
            case .jpeg:
                rp_decode_jpeg(base, bytes.count, Int32(width), Int32(height), out, placement, &result)
            }
            initialized = result.status == Int32(RP_OK.rawValue) ? 3 * pixels : 0
        }
        if let error = error(from: &result, format: layout.format) { throw error }
        return RGBImage(width: layout.width, height: layout.height, pixels: samples)
    }

    /// Where the C decoder puts source pixel (x, y) in each plane so that the image comes out as
    /// `ImageOps.exif_transpose` turns it.
    static func placement(_ layout: ImageLayout) -> rp_placement {
        let w = layout.storedWidth, h = layout.storedHeight
        let (base, stepX, stepY): (Int, Int, Int)
        switch layout.orientation {
        case 2: (base, stepX, stepY) = (w - 1, -1, w)                   // mirror left-right
        case 3: (base, stepX, stepY) = ((h - 1) * w + w - 1, -1, -w)    // rotate 180°
        case 4: (base, stepX, stepY) = ((h - 1) * w, 1, -w)             // mirror top-bottom
        case 5: (base, stepX, stepY) = (0, h, 1)                        // transpose
        case 6: (base, stepX, stepY) = (h - 1, h, -1)                   // rotate 90° clockwise
        case 7: (base, stepX, stepY) = ((w - 1) * h + h - 1, -h, -1)    // transverse
        case 8: (base, stepX, stepY) = ((w - 1) * h, -h, 1)             // rotate 90° counter-clockwise
        default: (base, stepX, stepY) = (0, 1, w)
        }
        return rp_placement(base: base, step_x: stepX, step_y: stepY)
    }

    private static func error(from result: inout rp_result, format: ImageFormat) -> ImageDecodeError? {
        let message = withUnsafeBytes(of: &result.message) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        switch result.status {
        case Int32(RP_OK.rawValue): return nil
        case Int32(RP_TRUNCATED.rawValue): return .truncated(format)
        case Int32(RP_UNSUPPORTED.rawValue): return .unsupported(format, reason: message)
        default: return .corrupt(format, message: message)
        }
    }
}
