import XCTest
@testable import Sweeps
