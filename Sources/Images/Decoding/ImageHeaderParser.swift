// Reads a PNG's IHDR (and eXIf/XMP chunks) or a JPEG's markers up to its first scan (SOF, Exif and
// XMP segments) from raw bytes — the cheap part of decoding, used by `probe` and to check limits
// before allocating. Orientation follows Pillow's `getexif()`: EXIF tag 0x0112, else XMP.

/// What the header says, in stored (not yet oriented) terms.
struct ImageLayout: Equatable {
    var format: ImageFormat
    /// Dimensions as stored in the file.
    var storedWidth: Int
    var storedHeight: Int
    /// EXIF/XMP orientation 1…8 (1 when absent or invalid).
    var orientation: Int = 1

    /// Whether the orientation is a quarter turn (swapping width and height).
    var swapsAxes: Bool { orientation >= 5 }
    var width: Int { swapsAxes ? storedHeight : storedWidth }
    var height: Int { swapsAxes ? storedWidth : storedHeight }
    var header: ImageHeader { ImageHeader(format: format, width: width, height: height) }
}

enum ImageHeaderParser {
    static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// The layout of `bytes`, or the typed error a decode would give for its header.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws -> ImageLayout {
        guard !bytes.isEmpty else { throw ImageDecodeError.emptyData }
        if hasPrefix(bytes, pngSignature) || (bytes.count < 8 && pngSignature.starts(with: bytes)) {
            return try parsePNG(bytes)
        }
        if hasPrefix(bytes, [0xFF, 0xD8, 0xFF]) || (bytes.count < 3 && [0xFF, 0xD8, 0xFF].starts(with: bytes)) {
            return try parseJPEG(bytes)
        }
        throw ImageDecodeError.unknownFormat(firstBytes: Array(bytes.prefix(16)))
    }

    /// Whether `bytes` starts with PNG or JPEG magic.
    static func hasImageMagic<C: Collection>(_ bytes: C) -> Bool where C.Element == UInt8 {
        bytes.starts(with: pngSignature) || bytes.starts(with: [0xFF, 0xD8, 0xFF])
    }

    private static func hasPrefix(_ bytes: UnsafeRawBufferPointer, _ prefix: [UInt8]) -> Bool {
        bytes.count >= prefix.count && bytes.starts(with: prefix)
    }

    private static func u16(_ b: UnsafeRawBufferPointer, _ i: Int) -> Int { Int(b[i]) << 8 | Int(b[i + 1]) }
    private static func u32(_ b: UnsafeRawBufferPointer, _ i: Int) -> Int {
        Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3])
    }

    // MARK: - PNG

    private static func parsePNG(_ b: UnsafeRawBufferPointer) throws -> ImageLayout {
        // Signature (8), IHDR length (4) and type (4), width (4), height (4).
        guard b.count >= 24 else { throw ImageDecodeError.truncated(.png) }
        guard u32(b, 8) == 13, Array(b[12..<16]) == Array("IHDR".utf8) else {
            throw ImageDecodeError.corrupt(.png, message: "IHDR: missing or not the first chunk")
        }
        let width = u32(b, 16), height = u32(b, 20)
        guard width > 0, height > 0, width <= 0x7FFF_FFFF, height <= 0x7FFF_FFFF else {
            throw ImageDecodeError.corrupt(.png, message: "IHDR: invalid image size \(width)×\(height)")
        }
        return ImageLayout(format: .png, storedWidth: width, storedHeight: height, orientation: pngOrientation(b))
    }

    /// Orientation from an eXIf chunk, else from XMP in an uncompressed iTXt chunk, wherever they
    /// are (Pillow loads the whole file to find them). Chunk walking skips data by length.
    private static func pngOrientation(_ b: UnsafeRawBufferPointer) -> Int {
        var exif: Int?? = nil
        var xmp: Int? = nil
        var i = 8
        while i + 8 <= b.count {
            let length = u32(b, i)
            let type = (b[i + 4], b[i + 5], b[i + 6], b[i + 7])
            let body = i + 8
            guard length <= b.count - body else { break }
            let data = UnsafeRawBufferPointer(rebasing: b[body..<body + length])
            if type == (0x65, 0x58, 0x49, 0x66), exif == nil {  // eXIf
                exif = .some(exifOrientation(data))
            } else if type == (0x69, 0x54, 0x58, 0x74), xmp == nil {  // iTXt
                xmp = xmpOrientation(iTXtXMP: data)
            } else if type == (0x49, 0x45, 0x4E, 0x44) {  // IEND
                break
            }
            i = body + length + 4
        }
        return resolvedOrientation(exif: exif, xmp: xmp)
    }

    /// The text of an uncompressed iTXt chunk whose keyword is XML:com.adobe.xmp.
    private static func xmpOrientation(iTXtXMP data: UnsafeRawBufferPointer) -> Int? {
        let keyword = Array("XML:com.adobe.xmp".utf8) + [0]
        guard data.count > keyword.count + 2, data.starts(with: keyword), data[keyword.count] == 0 else { return nil }
        // compression flag 0, method, language tag\0, translated keyword\0, text
        var i = keyword.count + 2
        for _ in 0..<2 {
            while i < data.count && data[i] != 0 { i += 1 }
            i += 1
        }
        guard i < data.count else { return nil }
        return xmpOrientation(UnsafeRawBufferPointer(rebasing: data[i...]))
    }

    /// Pillow's rule: EXIF orientation when the tag is present (whatever its value), else XMP's
    /// `tiff:Orientation`; only 1…8 mean something.
    private static func resolvedOrientation(exif: Int??, xmp: Int?) -> Int {
        let value: Int?
        if case .some(.some(let tagged)) = exif { value = tagged } else { value = xmp }
        guard let orientation = value, (1...8).contains(orientation) else { return 1 }
        return orientation
    }

    /// The digit of the first `tiff:Orientation="d` or `tiff:Orientation>d` in XMP text.
    static func xmpOrientation(_ text: UnsafeRawBufferPointer) -> Int? {
        let key = Array("tiff:Orientation".utf8)
        guard text.count > key.count else { return nil }
        var i = 0
        while i + key.count < text.count {
            if text[i] == key[0], text[i..<i + key.count].elementsEqual(key) {
                var j = i + key.count
                if text[j] == UInt8(ascii: "=") && j + 1 < text.count && text[j + 1] == UInt8(ascii: "\"") {
                    j += 2
                } else if text[j] == UInt8(ascii: ">") {
                    j += 1
                } else {
                    i += 1
                    continue
                }
                if j < text.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(text[j]) {
                    return Int(text[j] - UInt8(ascii: "0"))
                }
            }
            i += 1
        }
        return nil
    }

    // MARK: - JPEG

    /// Walks the markers up to the first scan: the first SOF gives the size; EXIF (first Exif
    /// APP1) or XMP (`tiff:Orientation`) segments anywhere before the scan give the orientation,
    /// as Pillow reads them. Past the SOF, anything odd is left for libjpeg to report.
    private static func parseJPEG(_ b: UnsafeRawBufferPointer) throws -> ImageLayout {
        var frame: ImageLayout?
        var exif: Int?? = nil
        var xmp: Int? = nil
        func finished() -> ImageLayout? {
            guard var layout = frame else { return nil }
            layout.orientation = resolvedOrientation(exif: exif, xmp: xmp)
            return layout
        }
        var i = 2
        while true {
            // Skip junk and fill bytes up to the next marker, as libjpeg and Pillow do.
            while i < b.count && b[i] != 0xFF { i += 1 }
            while i < b.count && b[i] == 0xFF { i += 1 }
            guard i < b.count else {
                if let layout = finished() { return layout }
                throw ImageDecodeError.truncated(.jpeg)
            }
            let marker = b[i]
            i += 1
            if marker == 0xDA || marker == 0xD9 || marker == 0xD8, let layout = finished() { return layout }
            switch marker {
            case 0x01, 0xD0...0xD7, 0x00:
                continue  // standalone markers (TEM, RSTn) and stuffed zeros carry no length
            case 0xD8:
                throw ImageDecodeError.corrupt(.jpeg, message: "a second SOI marker before the frame header")
            case 0xD9:
                throw ImageDecodeError.corrupt(.jpeg, message: "JPEG datastream contains no image")
            case 0xDA:
                throw ImageDecodeError.corrupt(.jpeg, message: "scan (SOS) before the frame header (SOF)")
            default:
                break
            }
            guard i + 2 <= b.count else {
                if let layout = finished() { return layout }
                throw ImageDecodeError.truncated(.jpeg)
            }
            let length = u16(b, i)
            guard length >= 2 else {
                if let layout = finished() { return layout }
                throw ImageDecodeError.corrupt(.jpeg, message: "marker 0xFF\(hex(marker)) with length \(length)")
            }
            let body = i + 2, end = i + length
            if isSOF(marker), frame == nil {
                guard body + 6 <= b.count else { throw ImageDecodeError.truncated(.jpeg) }
                guard length >= 8 else {
                    throw ImageDecodeError.corrupt(.jpeg, message: "frame header of \(length) bytes")
                }
                let precision = Int(b[body]), height = u16(b, body + 1), width = u16(b, body + 3)
                let components = Int(b[body + 5])
                if let reason = unsupportedFrame(marker) {
                    throw ImageDecodeError.unsupported(.jpeg, reason: reason)
                }
                guard precision == 8 else {
                    throw ImageDecodeError.unsupported(.jpeg, reason: "\(precision)-bit samples (only 8-bit JPEGs are decoded)")
                }
                guard height > 0 else {
                    throw ImageDecodeError.unsupported(.jpeg, reason: "height defined by a DNL marker")
                }
                guard width > 0 else { throw ImageDecodeError.corrupt(.jpeg, message: "frame header with width 0") }
                guard [1, 3, 4].contains(components) else {
                    throw ImageDecodeError.unsupported(.jpeg, reason: "\(components) color components")
                }
                frame = ImageLayout(format: .jpeg, storedWidth: width, storedHeight: height)
            } else if marker == 0xE1, end <= b.count {
                let segment = UnsafeRawBufferPointer(rebasing: b[body..<end])
                let xmpKey = Array("http://ns.adobe.com/xap/1.0/".utf8) + [0]
                if exif == nil, segment.starts(with: [0x45, 0x78, 0x69, 0x66, 0, 0]) {
                    exif = .some(exifOrientation(UnsafeRawBufferPointer(rebasing: segment[6...])))
                } else if xmp == nil, segment.starts(with: xmpKey) {
                    xmp = xmpOrientation(UnsafeRawBufferPointer(rebasing: segment[xmpKey.count...]))
                }
            }
            i = end
        }
    }

    private static func isSOF(_ marker: UInt8) -> Bool {
        (0xC0...0xCF).contains(marker) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC
    }

    private static func unsupportedFrame(_ marker: UInt8) -> String? {
        switch marker {
        case 0xC3, 0xCB: return "lossless JPEG (SOF\(Int(marker) - 0xC0))"
        case 0xC5, 0xC6, 0xC7, 0xCD, 0xCE, 0xCF: return "hierarchical JPEG (SOF\(Int(marker) - 0xC0))"
        default: return nil
        }
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16, uppercase: true)
        return digits.count == 1 ? "0" + digits : digits
    }

    /// Tag 0x0112 of IFD0 in a TIFF structure (any value; nil when absent or unreadable).
    static func exifOrientation(_ tiff: UnsafeRawBufferPointer) -> Int? {
        guard tiff.count >= 8 else { return nil }
        let little: Bool
        switch (tiff[0], tiff[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return nil
        }
        func read(_ offset: Int, _ size: Int) -> Int? {
            guard offset >= 0, offset + size <= tiff.count else { return nil }
            var value = 0
            for k in 0..<size {
                let byte = Int(tiff[offset + (little ? size - 1 - k : k)])
                value = value << 8 | byte
            }
            return value
        }
        guard read(2, 2) == 42, let ifd = read(4, 4), let count = read(ifd, 2) else { return nil }
        for entry in 0..<count {
            let at = ifd + 2 + 12 * entry
            guard let tag = read(at, 2), let type = read(at + 2, 2) else { return nil }
            guard tag == 0x0112 else { continue }
            let value: Int?
            switch type {
            case 3: value = read(at + 8, 2)   // SHORT
            case 4: value = read(at + 8, 4)   // LONG
            default: value = nil
            }
            return value
        }
        return nil
    }
}
