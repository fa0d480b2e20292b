import Testing
@testable import TensorEngine

/// NumPy/PyTorch broadcasting rules, table-driven.
struct BroadcastRuleTests {
    @Test(arguments: [
        ([3, 1], [1, 4], [3, 4]),
        ([5, 3, 4], [4], [5, 3, 4]),
        ([1], [2, 3], [2, 3]),
        ([], [2, 3], [2, 3]),
        ([2, 1, 3], [4, 1], [2, 4, 3]),
        ([0, 3], [1, 3], [0, 3]),
    ])
    func compatibleShapesBroadcast(a: [Int], b: [Int], expected: [Int]) throws {
        #expect(try broadcastShape(a, b, op: "test") == expected)
        #expect(try broadcastShape(b, a, op: "test") == expected)
    }

    @Test(arguments: [([3], [4]), ([2, 3], [3, 2]), ([5, 2], [5, 3])])
    func incompatibleShapesNameBoth(a: [Int], b: [Int]) {
        #expect {
            try broadcastShape(a, b, op: "add")
        } throws: { error in
            let message = "\(error)"
            return message.contains(shapeString(a)) && message.contains(shapeString(b)) && message.hasPrefix("add:")
        }
    }

    @Test func broadcastAddMatchesExplicitExpansion() throws {
        let a = try Tensor([1, 2, 3], shape: [3, 1])
        let b = try Tensor([10, 20], shape: [1, 2])
        #expect(try add(a, b).toArray() == [11, 21, 12, 22, 13, 23])
    }
}

/// Multi-axis max agrees with reducing one axis at a time by hand.
struct MaxOverAxesTests {
    @Test func maxOverTwoAxes() throws {
        let x = try Tensor([1, 9, 3, 4, 5, 6, 7, 8, 2, 0, 11, 10], shape: [2, 3, 2])
        #expect(try max(x, axes: [1, 2]).toArray() == [9, 11])
        #expect(try max(x, axes: [0, 2], keepDims: true).shape == [1, 3, 1])
        #expect(try max(x, axes: []).toArray() == [11])
    }
}
