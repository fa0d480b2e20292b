// What a PNG or JPEG says about itself before any pixel is decoded: its format, its size, and the
// pixel budget a decode may not exceed.

/// The encoded image formats runpipe decodes.
public enum ImageFormat: String, Sendable {
    case png
    case jpeg

    /// "PNG" / "JPEG", for messages.
    public var displayName: String { rawValue.uppercased() }
}

/// Format and size read from an image's header (PNG IHDR, JPEG SOF) without decoding pixels.
///
/// `width` and `height` are those of the decoded image: when the EXIF/XMP orientation is 5–8 (a
/// quarter turn) they are the stored dimensions swapped, as `ImageOps.exif_transpose` gives.
public struct ImageHeader: Sendable, Equatable {
    public var format: ImageFormat
    public var width: Int
    public var height: Int

    public init(format: ImageFormat, width: Int, height: Int) {
        self.format = format
        self.width = width
        self.height = height
    }
}

/// Bounds checked against the header before a decode allocates anything.
public struct ImageDecodeLimits: Sendable, Equatable {
    /// Largest `width · height` accepted (the `processors.image.max_pixels` setting). The default
    /// is Pillow's `Image.MAX_IMAGE_PIXELS` (a 1024 · 1024 · 1024 / 4 / 3 decompression-bomb guard).
    public var maxPixels: Int

    public init(maxPixels: Int = 89_478_485) {
        self.maxPixels = maxPixels
    }
}
