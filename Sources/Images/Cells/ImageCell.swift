// Table cells that refer to images: ';'-joined paths relative to the data folder (AutoMM's
// convention), `data:image/…;base64,` URIs, and bare base64 of PNG/JPEG bytes.

import Foundation

/// Parsing of image cells.
public enum ImageCell {
    /// File extensions (lowercased, without the dot) that mark a path as an image.
    public static let imageExtensions: Set<String> = ["png", "jpg", "jpeg", "jpe", "jfif"]

    /// A cell's images: several paths joined by ';' (AutoMM's convention; whitespace around parts
    /// trimmed, empty parts ignored), a path relative to `baseFolder` (absolute paths and `..`
    /// that escape `baseFolder` — after standardizing and resolving symlinks — are refused unless
    /// `allowOutside`; an absolute path inside `baseFolder` is accepted), a
    /// `data:image/...;base64,` URI, or bare base64 of PNG/JPEG bytes (recognised by decoding the
    /// base64 and checking the magic bytes; when the cell also names an existing file, the file
    /// wins). File existence is not checked for paths: decoding reports `fileNotFound`.
    public static func sources(of cell: String, baseFolder: URL, allowOutside: Bool) throws -> [ImageSource] {
        let text = cell.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw ImageCellError.emptyCell }
        if text.utf8.count > 5, text.prefix(5).lowercased() == "data:" {
            return [.bytes(try dataURIBytes(text))]
        }
        if let bytes = base64ImageBytes(text) {
            if let url = try? resolve(text, baseFolder: baseFolder, allowOutside: allowOutside),
               FileManager.default.fileExists(atPath: url.path) {
                return [.file(url)]
            }
            return [.bytes(bytes)]
        }
        let parts = text.split(separator: ";")
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { !$0.isEmpty }
        guard !parts.isEmpty else { throw ImageCellError.emptyCell }
        return try parts.map { .file(try resolve($0, baseFolder: baseFolder, allowOutside: allowOutside)) }
    }

    /// Cheap test used by column detection: does this cell look like image reference(s) — an image
    /// file extension (.png/.jpg/.jpeg/.jpe/.jfif, any case) on every ';' part, or a data URI /
    /// bare base64 whose first decoded bytes are PNG or JPEG magic?
    public static func looksLikeImage(_ cell: String) -> Bool {
        let text = cell.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { return false }
        if text.utf8.count > 5, text.prefix(5).lowercased() == "data:" {
            guard let comma = text.firstIndex(of: ","),
                  text[..<comma].lowercased().hasSuffix(";base64") else { return false }
            return base64PrefixIsImage(text[text.index(after: comma)...])
        }
        let parts = text.split(separator: ";")
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            .filter { !$0.isEmpty }
        if !parts.isEmpty, parts.allSatisfy(hasImageExtension) { return true }
        return isBase64Text(text) && base64PrefixIsImage(Substring(text))
    }

    // MARK: - Paths

    static func hasImageExtension(_ path: String) -> Bool {
        guard let dot = path.lastIndex(of: "."), !path[dot...].contains("/") else { return false }
        return imageExtensions.contains(path[path.index(after: dot)...].lowercased())
    }

    static func resolve(_ part: String, baseFolder: URL, allowOutside: Bool) throws -> URL {
        guard !part.contains("\0") else { throw ImageCellError.invalidPath(part) }
        let lowered = part.lowercased()
        for scheme in ["http://", "https://", "s3://", "gs://", "ftp://"] where lowered.hasPrefix(scheme) {
            throw ImageCellError.remoteURL(part)
        }
        var path = part
        if lowered.hasPrefix("file://") { path = String(part.dropFirst(7)) }
        let url = path.hasPrefix("/")
            ? URL(fileURLWithPath: path)
            : baseFolder.appendingPathComponent(path)
        let standardized = url.standardizedFileURL
        if !allowOutside {
            let folder = baseFolder.standardizedFileURL.resolvingSymlinksInPath()
            let resolved = standardized.resolvingSymlinksInPath()
            guard isInside(resolved, folder: folder) else {
                throw ImageCellError.outsideFolder(path: part, folder: folder.path)
            }
        }
        return standardized
    }

    private static func isInside(_ url: URL, folder: URL) -> Bool {
        let inner = url.pathComponents, outer = folder.pathComponents
        return inner.count > outer.count && inner.starts(with: outer)
    }

    // MARK: - Base64

    private static func dataURIBytes(_ text: String) throws -> [UInt8] {
        guard let comma = text.firstIndex(of: ",") else {
            throw ImageCellError.badDataURI("no ',' after the media type")
        }
        let header = text[text.index(text.startIndex, offsetBy: 5)..<comma].lowercased()
        let parameters = header.split(separator: ";", omittingEmptySubsequences: false)
        let mediaType = parameters.first.map(String.init) ?? ""
        guard parameters.dropFirst().contains("base64") else {
            throw ImageCellError.badDataURI("\"\(abbreviated(text))\" is not base64-encoded (no ;base64)")
        }
        guard mediaType.isEmpty || mediaType.hasPrefix("image/") else {
            throw ImageCellError.badDataURI("media type \(mediaType) is not an image")
        }
        let payload = text[text.index(after: comma)...]
        guard let bytes = decodeBase64(payload) else {
            throw ImageCellError.badBase64("\(payload.utf8.count) characters starting \"\(abbreviated(String(payload)))\"")
        }
        return bytes
    }

    /// The decoded bytes when `text` is base64 (standard or URL-safe alphabet, whitespace
    /// allowed) of PNG or JPEG data.
    private static func base64ImageBytes(_ text: String) -> [UInt8]? {
        guard text.utf8.count >= 12, isBase64Text(text), base64PrefixIsImage(Substring(text)),
              let bytes = decodeBase64(Substring(text)) else { return nil }
        return bytes
    }

    private static func isBase64Character(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "+"), UInt8(ascii: "/"),
             UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "="):
            return true
        default:
            return false
        }
    }

    private static func isWhitespace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 }

    private static func isBase64Text(_ text: String) -> Bool {
        text.utf8.allSatisfy { isBase64Character($0) || isWhitespace($0) }
    }

    /// Decodes the first 16 base64 characters only and checks for PNG/JPEG magic.
    private static func base64PrefixIsImage(_ text: Substring) -> Bool {
        var head: [UInt8] = []
        for c in text.utf8 where !isWhitespace(c) {
            guard isBase64Character(c), c != UInt8(ascii: "=") else { break }
            head.append(c)
            if head.count == 16 { break }
        }
        head.removeLast(head.count % 4)
        guard let bytes = decodeBase64(Substring(decoding: head, as: UTF8.self)) else { return false }
        return ImageHeaderParser.hasImageMagic(bytes)
    }

    private static func decodeBase64(_ text: Substring) -> [UInt8]? {
        var characters = [UInt8]()
        characters.reserveCapacity(text.utf8.count + 3)
        for c in text.utf8 where !isWhitespace(c) {
            switch c {
            case UInt8(ascii: "-"): characters.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): characters.append(UInt8(ascii: "/"))
            default: characters.append(c)
            }
        }
        while characters.count % 4 != 0 { characters.append(UInt8(ascii: "=")) }
        guard let data = Data(base64Encoded: Data(characters)) else { return nil }
        return [UInt8](data)
    }

    /// At most 60 characters of `text`, for messages.
    static func abbreviated(_ text: String) -> String {
        text.count <= 60 ? text : String(text.prefix(57)) + "…"
    }
}
