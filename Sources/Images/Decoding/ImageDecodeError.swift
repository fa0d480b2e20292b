// Every way decoding an image can fail, as typed cases whose descriptions say what was found and,
// where there is one, what to change.

/// Why an image could not be decoded.
public enum ImageDecodeError: Error, CustomStringConvertible, Equatable {
    /// Zero bytes.
    case emptyData
    /// Neither PNG nor JPEG; `firstBytes` holds up to 16 leading bytes for the message.
    case unknownFormat(firstBytes: [UInt8])
    /// The data ends before the image does.
    case truncated(ImageFormat)
    /// libpng or libjpeg rejected the data; `message` is the library's.
    case corrupt(ImageFormat, message: String)
    /// The header's `width · height` exceeds `ImageDecodeLimits.maxPixels` (`limit`).
    case tooManyPixels(width: Int, height: Int, limit: Int)
    /// A valid file of a kind runpipe does not decode (12-bit or lossless JPEG, …).
    case unsupported(ImageFormat, reason: String)
    /// No file at `path`.
    case fileNotFound(path: String)
    /// The file exists but could not be read.
    case unreadable(path: String, reason: String)

    public var description: String {
        switch self {
        case .emptyData:
            return "the image data is empty (0 bytes)"
        case .unknownFormat(let firstBytes):
            return "not a PNG or JPEG image: \(ImageSniffer.describe(firstBytes))"
        case .truncated(let format):
            return "the \(format.displayName) data ends before the image does (truncated file?)"
        case .corrupt(let format, let message):
            let library = format == .png ? "libpng" : "libjpeg"
            return "corrupt \(format.displayName) data: \(library) says \"\(message)\""
        case .tooManyPixels(let width, let height, let limit):
            return "the image is \(width)×\(height) = \(width * height) pixels, more than the limit of "
                + "\(limit); raise processors.image.max_pixels if the image is legitimate"
        case .unsupported(let format, let reason):
            return "unsupported \(format.displayName) image: \(reason)"
        case .fileNotFound(let path):
            return "image file not found: \(path)"
        case .unreadable(let path, let reason):
            return "cannot read image file \(path): \(reason)"
        }
    }
}

/// Names what some leading bytes look like, for `unknownFormat` messages.
enum ImageSniffer {
    static func describe(_ bytes: [UInt8]) -> String {
        let hex = bytes.prefix(8).map { byte in
            let digits = String(byte, radix: 16, uppercase: true)
            return digits.count == 1 ? "0" + digits : digits
        }.joined(separator: " ")
        if let kind = otherFormat(bytes) {
            return "the data looks like \(kind) (first bytes \(hex))"
        }
        if looksLikeText(bytes) {
            let text = String(decoding: bytes, as: UTF8.self)
                .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r")
            return "the data looks like text (\"\(text)…\")"
        }
        return "the first bytes are \(hex)"
    }

    private static func otherFormat(_ b: [UInt8]) -> String? {
        func starts(_ prefix: [UInt8], at offset: Int = 0) -> Bool {
            b.count >= offset + prefix.count && Array(b[offset..<offset + prefix.count]) == prefix
        }
        if starts(Array("GIF8".utf8)) { return "a GIF image" }
        if starts(Array("RIFF".utf8)) && starts(Array("WEBP".utf8), at: 8) { return "a WebP image" }
        if starts(Array("BM".utf8)) { return "a BMP image" }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) { return "a TIFF image" }
        if starts(Array("ftyp".utf8), at: 4) { return "an ISO media file (HEIC/AVIF/MP4)" }
        if starts(Array("%PDF".utf8)) { return "a PDF document" }
        if starts([0x50, 0x4B, 0x03, 0x04]) { return "a ZIP archive" }
        if starts([0x1F, 0x8B]) { return "gzip-compressed data" }
        let lowered = String(decoding: b, as: UTF8.self).lowercased()
        if lowered.hasPrefix("<!doctype html") || lowered.hasPrefix("<html") { return "an HTML page" }
        if lowered.hasPrefix("<svg") || lowered.hasPrefix("<?xml") { return "XML/SVG text" }
        return nil
    }

    private static func looksLikeText(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty else { return false }
        return bytes.allSatisfy { $0 == 0x09 || $0 == 0x0A || $0 == 0x0D || (0x20...0x7E).contains($0) || $0 >= 0x80 }
            && isUTF8(bytes)
    }

    /// Whether `bytes` is UTF-8, allowing a character cut at the end.
    private static func isUTF8(_ bytes: [UInt8]) -> Bool {
        (0...min(3, bytes.count)).contains { cut in String(validating: bytes.dropLast(cut), as: UTF8.self) != nil }
    }
}
