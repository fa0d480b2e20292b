import XCTest
@testable import Registry
