import Images
import XCTest

final class RGBImageTests: XCTestCase {
    func testPlanarLayout() {
        var image = RGBImage(width: 3, height: 2)
        image[2, 1, 0] = 0.5
        XCTAssertEqual(image.pixels[(2 * 2 + 1) * 3 + 0], 0.5)
        XCTAssertEqual(image.planeSize, 6)
    }
}
