import Foundation
import Training
import XCTest
@testable import Tables

final class NumericProcessorTests: XCTestCase {
    private let cells: [String?] = ["1", "2", nil, "4", "10"]

    func testMedianImputationAndStandardScaling() throws {
        let table = singleColumn("x", cells)
        let processor = try NumericProcessor.fit(table, column: "x", imputation: .median, scaling: .standard)
        // Median of 1, 2, 4, 10 is 3; imputed column 1 2 3 4 10: mean 4, variance (9+4+1+0+36)/5 = 10.
        XCTAssertEqual(processor.fillValue, 3)
        XCTAssertEqual(processor.mean, 4)
        XCTAssertEqual(processor.standardDeviation, 10.0.squareRoot(), accuracy: 1e-12)
        let output = try processor.transform(table)
        let expected = [1.0, 2, 3, 4, 10].map { Float(($0 - 4) / 10.0.squareRoot()) }
        XCTAssertEqual(output, expected)
    }

    func testMeanImputationWithoutScaling() throws {
        let table = singleColumn("x", cells)
        let processor = try NumericProcessor.fit(table, column: "x", imputation: .mean, scaling: .none)
        XCTAssertEqual(processor.fillValue, 4.25)
        XCTAssertEqual(try processor.transform(table), [1, 2, 4.25, 4, 10])
    }

    func testQuantileScalingMatchesHandComputedValues() throws {
        let processor = try NumericProcessor.fit(singleColumn("x", cells), column: "x", imputation: .median, scaling: .quantile)
        // Five values → five quantiles at probabilities 0, .25, .5, .75, 1, equal to the sorted values.
        XCTAssertEqual(processor.quantiles, [1, 2, 3, 4, 10])
        // scipy.stats.norm.ppf of the interpolated probabilities.
        let cases: [(Double, Double)] = [
            (3, 0), (2, -0.6744897501960817), (2.5, -0.3186393639643752), (7, 1.1503493803760079),
            (1, -5.199337582605575), (0.5, -5.199337582605575), (10, 5.199337582605575), (99, 5.199337582605575),
        ]
        for (value, expected) in cases {
            XCTAssertEqual(processor.scaled(value), expected, accuracy: 1e-9, "x = \(value)")
        }
        let output = try processor.transform(singleColumn("x", ["2.5", nil, "7"]))
        XCTAssertEqual(output, [Float(-0.3186393639643752), 0, Float(1.1503493803760079)])
    }

    func testQuantileTiesMapToTheirMiddle() throws {
        let processor = try NumericProcessor.fit(singleColumn("x", ["0", "1", "1", "1", "2"]), column: "x", scaling: .quantile)
        XCTAssertEqual(processor.scaled(1), 0, accuracy: 1e-12)
    }

    func testQuantileUsesAtMostAThousandQuantiles() throws {
        let values = (0..<2000).map { String(Double($0)) }
        let processor = try NumericProcessor.fit(singleColumn("x", values), column: "x", scaling: .quantile)
        XCTAssertEqual(processor.quantiles.count, 1000)
        // Evenly spread data: the empirical CDF at x is x / 1999, so Φ(output) must give it back.
        for x in [12.5, 700.0, 1000.0, 1500.25, 1990.0] {
            XCTAssertEqual(StandardNormal.cdf(processor.scaled(x)), x / 1999, accuracy: 1e-9, "x = \(x)")
        }
    }

    func testStandardNormalQuantileAgainstScipy() {
        let cases: [(Double, Double)] = [(0.5, 0), (0.975, 1.959963984540054), (0.01, -2.3263478740408408),
                                         (1e-7, -5.199337582192817), (0.999, 3.090232306167813)]
        for (p, expected) in cases {
            XCTAssertEqual(StandardNormal.quantile(p), expected, accuracy: 1e-12, "p = \(p)")
        }
    }

    func testConstantColumnScalesToZero() throws {
        let table = singleColumn("x", ["5", "5", nil])
        for scaling in [NumericProcessor.Scaling.standard, .quantile] {
            let processor = try NumericProcessor.fit(table, column: "x", scaling: scaling)
            XCTAssertEqual(try processor.transform(singleColumn("x", ["5", "7", nil])), [0, 0, 0])
        }
    }

    func testNonNumericCellNamesColumnAndLine() throws {
        let processor = try NumericProcessor.fit(singleColumn("x", cells), column: "x")
        assertTableError(.nonNumericValue(column: "x", path: "t.csv", line: 3, value: "ten"), ["t.csv:3", "'x'", "'ten'"]) {
            try processor.transform(singleColumn("x", ["1", "ten"]))
        }
        assertTableError(.nothingToFit(column: "x", path: "t.csv", detail: "every training value is missing")) {
            try NumericProcessor.fit(singleColumn("x", [nil, nil]), column: "x")
        }
    }

    func testCodableRoundTripIsExact() throws {
        let values = (0..<1500).map { String(sin(Double($0)) * 1e3) }
        let processor = try NumericProcessor.fit(singleColumn("x", values), column: "x", imputation: .mean, scaling: .quantile)
        let decoded = try JSONDecoder().decode(NumericProcessor.self, from: JSONEncoder().encode(processor))
        XCTAssertEqual(decoded, processor)
        XCTAssertEqual(try decoded.transform(singleColumn("x", values)), try processor.transform(singleColumn("x", values)))
    }
}

final class CategoricalProcessorTests: XCTestCase {
    private let table = singleColumn("c", ["b", "a", "b", "c", "a", "b", nil, "d"])

    func testVocabularyByFrequencyThenValue() throws {
        let processor = try CategoricalProcessor.fit(table, column: "c")
        XCTAssertEqual(processor.categories, ["b", "a", "c", "d"])
        XCTAssertEqual(processor.cardinality, 5)
        XCTAssertEqual(try processor.transform(singleColumn("c", ["a", "zz", nil, "b", "d"])), [2, 0, 0, 1, 4])
    }

    func testMinCountAndMaxCategories() throws {
        XCTAssertEqual(try CategoricalProcessor.fit(table, column: "c", minCount: 2).categories, ["b", "a"])
        let capped = try CategoricalProcessor.fit(table, column: "c", maxCategories: 3)
        XCTAssertEqual(capped.categories, ["b", "a", "c"])
        XCTAssertEqual(capped.cardinality, 4)
        XCTAssertEqual(capped.index(of: "d"), CategoricalProcessor.unknownIndex)
        assertTableError(.invalidOption(column: "c", option: "min_count", detail: "must be at least 1, got 0")) {
            try CategoricalProcessor.fit(table, column: "c", minCount: 0)
        }
    }

    func testCodableRoundTrip() throws {
        let processor = try CategoricalProcessor.fit(table, column: "c")
        let decoded = try JSONDecoder().decode(CategoricalProcessor.self, from: JSONEncoder().encode(processor))
        XCTAssertEqual(decoded, processor)
        XCTAssertEqual(decoded.index(of: "c"), 3)
    }
}

final class LabelProcessorTests: XCTestCase {
    func testNumericClassesSortNumerically() throws {
        let processor = try LabelProcessor.fit(singleColumn("y", ["10", "9", "10", "2", nil]), column: "y", problem: .multiclass)
        XCTAssertEqual(processor.classes, ["2", "9", "10"])
        XCTAssertEqual(try processor.encodeClasses(singleColumn("y", ["9", "10", "2"])), [1, 2, 0])
        XCTAssertEqual(processor.decode(2), "10")
        XCTAssertNil(processor.decode(3))
    }

    func testTextClassesSortByScalars() throws {
        let processor = try LabelProcessor.fit(singleColumn("y", ["b", "B", "a", "é"]), column: "y", problem: .multiclass)
        XCTAssertEqual(processor.classes, ["B", "a", "b", "é"])
    }

    func testUnseenAndMissingLabelsNameTheLine() throws {
        let processor = try LabelProcessor.fit(singleColumn("y", ["no", "yes"]), column: "y", problem: .binary)
        assertTableError(.unseenLabel(column: "y", path: "t.csv", line: 3, value: "maybe", known: ["no", "yes"]), ["t.csv:3", "'maybe'"]) {
            try processor.encodeClasses(singleColumn("y", ["yes", "maybe"]))
        }
        assertTableError(.missingLabel(column: "y", path: "t.csv", line: 2)) {
            try processor.encodeClasses(singleColumn("y", [nil]))
        }
        XCTAssertEqual(try LabelProcessor.missingLabelRows(singleColumn("y", ["a", nil, "b", nil]), column: "y"), [1, 3])
    }

    func testBinaryWithThreeTrainingClassesFails() {
        XCTAssertThrowsError(try LabelProcessor.fit(singleColumn("y", ["a", "b", "c"]), column: "y", problem: .binary))
    }

    func testRegressionStandardisesAndInverts() throws {
        let table = singleColumn("y", ["1", "2", nil, "3"])
        let labelled = table.selectingRows(table.rowCount == 4 ? [0, 1, 3] : [])
        let processor = try LabelProcessor.fit(table, column: "y", problem: .regression)
        XCTAssertEqual(processor.mean, 2)
        XCTAssertEqual(processor.standardDeviation, (2.0 / 3).squareRoot(), accuracy: 1e-15)
        let targets = try processor.encodeTargets(labelled)
        XCTAssertEqual(targets, [Float(-1 / (2.0 / 3).squareRoot()), 0, Float(1 / (2.0 / 3).squareRoot())])
        XCTAssertEqual(processor.decodeTarget(targets[2]), 3, accuracy: 1e-6)
        let decoded = try JSONDecoder().decode(LabelProcessor.self, from: JSONEncoder().encode(processor))
        XCTAssertEqual(decoded, processor)
    }

    func testRegressionOnTextNamesTheLine() {
        assertTableError(.nonNumericValue(column: "y", path: "t.csv", line: 3, value: "big")) {
            try LabelProcessor.fit(singleColumn("y", ["1", "big"]), column: "y", problem: .regression)
        }
    }
}
