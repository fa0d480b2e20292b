// The one image type every part of runpipe passes around: decoders produce it, transforms map it
// to itself, and the pipeline packs batches of it into NCHW tensors for the backbones.

/// An RGB image with Float32 samples in [0, 1], stored planar (channel-major): all red samples
/// row by row, then green, then blue — the [3, height, width] layout torchvision's `to_tensor`
/// gives, so a batch is a concatenation of images.
public struct RGBImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// `3 · height · width` samples, planar.
    public var pixels: [Float]

    public init(width: Int, height: Int, pixels: [Float]) {
        precondition(width >= 0 && height >= 0 && pixels.count == 3 * width * height,
                     "RGBImage: \(pixels.count) samples for \(width)×\(height)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A black image.
    public init(width: Int, height: Int) {
        self.init(width: width, height: height, pixels: Array(repeating: 0, count: 3 * width * height))
    }

    /// Samples per channel plane.
    public var planeSize: Int { width * height }

    /// Sample of channel `c` (0 red, 1 green, 2 blue) at row `y`, column `x`.
    @inlinable public subscript(c: Int, y: Int, x: Int) -> Float {
        get { pixels[(c * height + y) * width + x] }
        set { pixels[(c * height + y) * width + x] = newValue }
    }
}
