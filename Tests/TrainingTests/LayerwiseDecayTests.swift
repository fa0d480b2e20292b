import TensorEngine
import Training
import XCTest

final class LayerwiseDecayTests: XCTestCase {
    /// A 2-layer text backbone, a 3-layer image backbone and a head, named like the pipeline's.
    func named() -> [(key: String, tensor: Tensor)] {
        let keys: [(String, [Int])] = [
            ("text.embeddings.word.weight", [10, 4]), ("text.embeddings.norm.weight", [4]),
            ("text.layers.0.attn.weight", [4, 4]), ("text.layers.0.attn.bias", [4]),
            ("text.layers.1.attn.weight", [4, 4]),
            ("image.stem.weight", [4, 3]), ("image.blocks.2.weight", [4, 4]),
            ("fusion.0.weight", [4, 8]), ("head.weight", [2, 4]), ("head.bias", [2]),
        ]
        return keys.map { (key: $0.0, tensor: Tensor.parameter(Tensor.zeros($0.1))) }
    }

    /// depth: embeddings/stem 0, layer i → i + 1.
    func position(_ key: String) -> LayerDepth? {
        let parts = key.split(separator: ".")
        let layers = key.hasPrefix("text.") ? 2 : 3
        guard key.hasPrefix("text.") || key.hasPrefix("image.") else { return nil }
        if let i = parts.compactMap({ Int($0) }).first { return LayerDepth(depth: i + 1, layers: layers) }
        return LayerDepth(depth: 0, layers: layers)
    }

    func isHead(_ key: String) -> Bool { key.hasPrefix("fusion.") || key.hasPrefix("head.") }

    func testLayerwiseDecayFollowsAutoMMsLayerIds() throws {
        let groups = try ParameterGroup.layerwiseDecay(named(), lr: 1e-3, decay: 0.5, weightDecay: 0.01,
                                                       position: position, isHead: isHead)
        // AutoMM's ids: head 0, layer i of L → L − i, embeddings L + 1.
        XCTAssertEqual(groups.map { $0.name ?? "" }, ["layer_3_decay", "layer_3_no_decay", "layer_2_decay", "layer_2_no_decay", "layer_1_decay",
                                                       "layer_4_decay", "layer_0_decay", "layer_0_no_decay"])
        XCTAssertEqual(groups.map(\.parameterNames), [
            ["text.embeddings.word.weight"], ["text.embeddings.norm.weight"], ["text.layers.0.attn.weight"], ["text.layers.0.attn.bias"],
            ["text.layers.1.attn.weight", "image.blocks.2.weight"], ["image.stem.weight"], ["fusion.0.weight", "head.weight"], ["head.bias"],
        ])
        let scales: [Float] = [0.125, 0.125, 0.25, 0.25, 0.5, 0.0625, 1, 1]
        assertClose(groups.map(\.lr), scales.map { $0 * 1e-3 })
        XCTAssertEqual(groups.map(\.weightDecay), [0.01, 0, 0.01, 0, 0.01, 0.01, 0.01, 0])
        XCTAssertEqual(groups.reduce(0) { $0 + $1.parameters.count }, named().count)

        // One backbone: depth + layers.
        let single = try ParameterGroup.layerwiseDecay(named().filter { $0.key.hasPrefix("text.") || isHead($0.key) }, lr: 1, decay: 0.9,
                                                       weightDecay: 0, layers: 2, depth: { self.position($0)?.depth }, isHead: isHead)
        let expected: [Float] = [0.729, 0.729, 0.81, 0.81, 0.9, 1, 1]
        assertClose(single.map(\.lr), expected)
    }

    func testTwoStages() throws {
        let groups = try ParameterGroup.twoStages(named(), lr: 1e-4, headMultiplier: 10, weightDecay: 0.001, isHead: isHead)
        XCTAssertEqual(groups.map { $0.name ?? "" }, ["backbone_decay", "backbone_no_decay", "head_decay", "head_no_decay"])
        assertClose(groups.map(\.lr), [1e-4, 1e-4, 1e-3, 1e-3])
        XCTAssertEqual(groups.map(\.weightDecay), [0.001, 0, 0.001, 0])
        XCTAssertEqual(groups[2].parameterNames, ["fusion.0.weight", "head.weight"])
        XCTAssertEqual(groups[3].parameterNames, ["head.bias"])
        XCTAssertEqual(groups[1].parameterNames, ["text.embeddings.norm.weight", "text.layers.0.attn.bias"])
    }

    func testErrors() throws {
        assertThrowsMessage("layerwise_decay: 'text.layers.0.attn.weight' has depth 3 in a backbone of 2 layers; depths run from 0 (embeddings) to 2 (the last layer)") {
            _ = try ParameterGroup.layerwiseDecay(self.named(), lr: 1, decay: 0.9, weightDecay: 0, layers: 2,
                                                  depth: { $0.contains(".0.") ? 3 : 0 }, isHead: self.isHead)
        }
        assertThrowsContaining(["layerwise_decay: decay must be in (0, 1]", "got 1.5"]) {
            _ = try ParameterGroup.layerwiseDecay(self.named(), lr: 1, decay: 1.5, weightDecay: 0, position: self.position, isHead: self.isHead)
        }
        assertThrowsMessage("two_stages: lr must be a finite number > 0, got 0.0") {
            _ = try ParameterGroup.twoStages(self.named(), lr: 0, headMultiplier: 1, weightDecay: 0, isHead: self.isHead)
        }
    }
}
