import XCTest
import Layers
import TensorEngine
@testable import Models

final class ResNetTests: XCTestCase {
    func testResNet18MatchesTorchvisionKeysAndSize() throws {
        let model = try ResNet(.resnet18, rng: RandomSource(seed: 0))
        // torchvision.models.resnet18(): 11,689,512 parameters.
        XCTAssertEqual(model.parameterCount(), 11_689_512)
        let keys = Set(model.stateDict().map(\.key))
        for k in ["conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer1.1.bn2.bias",
                  "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var",
                  "layer4.1.conv2.weight", "fc.weight", "fc.bias"] {
            XCTAssertTrue(keys.contains(k), "missing \(k)")
        }
        XCTAssertFalse(keys.contains("layer1.0.downsample.0.weight"), "the first stage keeps its shape: no downsample")
    }

    func testForwardShapesAndBackward() throws {
        let rng = RandomSource(seed: 1)
        let model = try ResNet(ResNetConfig(blocks: [1, 1], widths: [8, 16], classes: 5), rng: rng)
        let x = Tensor.normal([2, 3, 32, 32], rng: &rng.generator)
        let features = try model.features(x)
        XCTAssertEqual(features.shape, [2, 16])
        let logits = try model(x)
        XCTAssertEqual(logits.shape, [2, 5])
        try crossEntropy(logits, targets: [0, 3]).backward()
        XCTAssertTrue(model.parameters.allSatisfy { $0.grad != nil })
        // Training mode moved the running statistics away from their initial values.
        XCTAssertNotEqual(model.namedBuffers().first { $0.key == "bn1.running_mean" }?.tensor.toArray().first, 0)
    }

    func testInvalidConfigurationThrows() {
        XCTAssertThrowsError(try ResNet(ResNetConfig(blocks: [2, 2], widths: [8]), rng: RandomSource(seed: 2)))
    }
}
