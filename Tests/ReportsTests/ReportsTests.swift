import XCTest
@testable import Reports
