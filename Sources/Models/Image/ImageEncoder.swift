// The contract between image backbones (one file per family: ResNet, MobileNetV2,
// EfficientNet-Lite, ViT, ConvNeXt) and the pipeline. A backbone maps normalised NCHW images to
// pooled features; its blocks are numbered bottom to top so `trainable: {top_blocks: N}` can
// freeze everything below the top N.
import Layers
import TensorEngine

/// The facts about an image backbone the pipeline needs: feature width, block count and the
/// preprocessing its weights were trained with.
public struct ImageEncoderShape: Sendable, Equatable, Codable {
    /// The architecture name (`resnet18`, `mobilenet_v2`, `vit_base_patch16_224`, …).
    public var architecture: String
    /// Width of the pooled features.
    public var features: Int
    /// Number of blocks `parameterPrefixes(ofBlock:)` knows.
    public var blocks: Int
    /// Square input size the weights were trained at (224 for ImageNet models).
    public var inputSize: Int
    /// Per-channel normalisation (RGB) applied after scaling samples to [0, 1].
    public var mean: [Float]
    public var std: [Float]
    /// Whether the input size is fixed (ViT: position embeddings) or any size ≥ `minimumSize`
    /// works (CNNs with global pooling).
    public var fixedSize: Bool
    public var minimumSize: Int

    public init(architecture: String, features: Int, blocks: Int, inputSize: Int = 224,
                mean: [Float] = ImageEncoderShape.imagenetMean, std: [Float] = ImageEncoderShape.imagenetStd,
                fixedSize: Bool = false, minimumSize: Int = 32) {
        self.architecture = architecture
        self.features = features
        self.blocks = blocks
        self.inputSize = inputSize
        self.mean = mean
        self.std = std
        self.fixedSize = fixedSize
        self.minimumSize = minimumSize
    }

    public static let imagenetMean: [Float] = [0.485, 0.456, 0.406]
    public static let imagenetStd: [Float] = [0.229, 0.224, 0.225]
}

/// A pretrained image backbone whose parameter keys equal its checkpoint's names.
public protocol ImageEncoder: Module {
    var shape: ImageEncoderShape { get }

    /// Pooled features [batch, shape.features] of normalised images [batch, 3, height, width].
    func features(_ images: Tensor) throws -> Tensor

    /// Class logits [batch, classes] when the checkpoint carried its classifier, else nil.
    func logits(_ images: Tensor) throws -> Tensor?

    /// Dotted-key prefixes of the parameters of block `index` (0 = lowest, `shape.blocks - 1` =
    /// top). The stem belongs to no block (it trains only with `full`); the final norm or head
    /// convolution before pooling belongs to the top block.
    func parameterPrefixes(ofBlock index: Int) -> [String]
}
