import Foundation
import XCTest
@testable import Checkpoints
import TensorEngine

final class SafetensorsTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("runpipe-safetensors-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    // MARK: - Helpers

    private func url(_ name: String) -> URL { directory.appendingPathComponent(name) }

    /// A safetensors file from a header string and raw data bytes (no padding added).
    private func build(header: String, data: [UInt8] = [], lengthPrefix: UInt64? = nil) -> Data {
        let json = Array(header.utf8)
        var bytes = Data()
        var length = (lengthPrefix ?? UInt64(json.count)).littleEndian
        withUnsafeBytes(of: &length) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: json)
        bytes.append(contentsOf: data)
        return bytes
    }

    private func le<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { v -> [UInt8] in
            var x = v.littleEndian
            return withUnsafeBytes(of: &x) { Array($0) }
        }
    }

    private func f32Bytes(_ values: [Float]) -> [UInt8] { le(values.map(\.bitPattern)) }

    /// Writes `bytes` to a file, opens it, and returns the thrown CheckpointError.
    private func openError(_ bytes: Data, name: String = "bad.safetensors",
                           file: StaticString = #filePath, line: UInt = #line) -> CheckpointError? {
        let u = url(name)
        do {
            try bytes.write(to: u)
            _ = try SafetensorsFile(url: u)
            XCTFail("opening \(name) should have thrown", file: file, line: line)
            return nil
        } catch let error as CheckpointError {
            XCTAssertTrue(error.description.hasPrefix(u.path + ": "),
                          "message should start with the path: \(error)", file: file, line: line)
            return error
        } catch {
            XCTFail("unexpected error \(error)", file: file, line: line)
            return nil
        }
    }

    private func assertMessage(_ error: CheckpointError?, contains parts: [String],
                               file: StaticString = #filePath, line: UInt = #line) {
        guard let error else { return }
        for part in parts {
            XCTAssertTrue(error.description.contains(part), "'\(error)' should contain '\(part)'", file: file, line: line)
        }
    }

    private func assertBitwiseEqual(_ a: [Float], _ b: [Float], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        for (x, y) in zip(a, b) where !(x.isNaN && y.isNaN) {
            XCTAssertEqual(x.bitPattern, y.bitPattern, "\(x) vs \(y)", file: file, line: line)
        }
    }

    // MARK: - Round trips

    func testRoundTripSeveralTensorsWithMetadata() throws {
        let a = try Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3])
        let scalar = Tensor(scalar: -0.25)
        let empty = try Tensor([], shape: [0, 5])
        let base = try Tensor([1, 2, 3, 4, 5, 6], shape: [3, 2])
        let view = try base.transposed()  // non-contiguous: must be written row-major
        let special = try Tensor([.infinity, -.infinity, .nan, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude],
                                 shape: [6])
        let metadata = ["format": "pt", "step": "1200", "note": "quote \" backslash \\ newline \n ünïcode"]
        let u = url("model.safetensors")
        try SafetensorsWriter.write([("layer.1.w", a), ("scale", scalar), ("empty", empty),
                                     ("view", view), ("special", special)],
                                    metadata: metadata, to: u)

        let file = try SafetensorsFile(url: u)
        XCTAssertEqual(file.tensorNames, ["empty", "layer.1.w", "scale", "special", "view"])
        XCTAssertEqual(file.metadata, metadata)
        XCTAssertEqual(file.headerByteCount % 8, 0)
        XCTAssertEqual(try file.shape(of: "layer.1.w"), [2, 3])
        XCTAssertEqual(try file.shape(of: "scale"), [])
        XCTAssertEqual(try file.shape(of: "empty"), [0, 5])
        XCTAssertEqual(try file.shape(of: "view"), [2, 3])
        XCTAssertEqual(try file.dtype(of: "view"), .f32)
        XCTAssertEqual(try file.tensor(named: "layer.1.w").toArray(), [1, 2, 3, 4, 5, 6])
        XCTAssertEqual(try file.tensor(named: "scale").toArray(), [-0.25])
        XCTAssertEqual(try file.tensor(named: "empty").count, 0)
        XCTAssertEqual(try file.tensor(named: "view").toArray(), [1, 3, 5, 2, 4, 6])
        assertBitwiseEqual(try file.tensor(named: "special").toArray(), special.toArray())
        XCTAssertTrue(try file.tensor(named: "special").toArray()[2].isNaN)
        XCTAssertEqual(try file.tensors().count, 5)
        try file.withRawBytes(of: "layer.1.w") { XCTAssertEqual(Array($0), f32Bytes([1, 2, 3, 4, 5, 6])) }
    }

    func testDeterministicBytes() throws {
        let w = try Tensor((0..<12).map { Float($0) * 0.1 }, shape: [3, 4])
        let b = try Tensor([0.5, -0.5, 1.5], shape: [3])
        let meta = ["z": "last", "a": "first", "m": "middle"]
        let u1 = url("one.safetensors"), u2 = url("two.safetensors"), u3 = url("three.safetensors")
        try SafetensorsWriter.write([("w", w), ("b", b)], metadata: meta, to: u1)
        try SafetensorsWriter.write([("b", b), ("w", w)], metadata: meta, to: u2)
        try SafetensorsWriter.write(["w": w, "b": b], metadata: meta, to: u3)
        let d1 = try Data(contentsOf: u1)
        XCTAssertEqual(d1, try Data(contentsOf: u2))
        XCTAssertEqual(d1, try Data(contentsOf: u3))
        XCTAssertEqual(d1, try SafetensorsWriter.serialize(["b": b, "w": w], metadata: meta))

        // The exact layout: compact JSON, sorted keys, metadata first, space padding to 8.
        let tiny = try SafetensorsWriter.serialize([("x", try Tensor([1, 2], shape: [2]))], metadata: ["k": "v"])
        let expectedHeader = #"{"__metadata__":{"k":"v"},"x":{"data_offsets":[0,8],"dtype":"F32","shape":[2]}}"#
        let padded = expectedHeader + String(repeating: " ", count: (8 - expectedHeader.utf8.count % 8) % 8)
        XCTAssertEqual(tiny, build(header: padded, data: f32Bytes([1, 2])))
    }

    func testWritesHalfPrecision() throws {
        let values: [Float] = [1, -2.5, 0.1, 65504, 70000, 1e-8, 3.14159265, -0.0]
        let t = try Tensor(values, shape: [2, 4])
        let uh = url("half.safetensors"), ub = url("bf16.safetensors"), ud = url("f64.safetensors")
        try SafetensorsWriter.write([("t", t)], dtype: .f16, to: uh)
        try SafetensorsWriter.write([("t", t)], dtype: .bf16, to: ub)
        try SafetensorsWriter.write([("t", t)], dtype: .f64, to: ud)

        let half = try SafetensorsFile(url: uh)
        XCTAssertEqual(try half.dtype(of: "t"), .f16)
        XCTAssertEqual(half.dataByteCount, 16)
        assertBitwiseEqual(try half.tensor(named: "t").toArray(), values.map { halfBitsToFloat(floatToHalfBits($0)) })
        let h = try half.tensor(named: "t").toArray()
        XCTAssertEqual(h[0], 1)
        XCTAssertEqual(h[3], 65504)
        XCTAssertEqual(h[4], .infinity)
        XCTAssertEqual(h[2], 0.0999755859375)

        let bf = try SafetensorsFile(url: ub)
        XCTAssertEqual(try bf.dtype(of: "t"), .bf16)
        let b = try bf.tensor(named: "t").toArray()
        assertBitwiseEqual(b, values.map { bfloat16BitsToFloat(floatToBFloat16Bits($0)) })
        XCTAssertEqual(b[6], 3.140625)
        XCTAssertEqual(b[4], 70144)

        let f64 = try SafetensorsFile(url: ud)
        XCTAssertEqual(f64.dataByteCount, 64)
        assertBitwiseEqual(try f64.tensor(named: "t").toArray(), values)
    }

    func testLargeTensorRoundTripUsesParallelPaths() throws {
        let n = 300_000
        let values = (0..<n).map { Float($0 % 2048) / 64 - 16 }  // exact in F16 and BF16? F16 yes.
        let t = try Tensor(values, shape: [n / 100, 100])
        for dtype in [SafetensorsDType.f32, .f16] {
            let u = url("large-\(dtype.rawValue).safetensors")
            try SafetensorsWriter.write([("big", t)], dtype: dtype, to: u)
            let read = try SafetensorsFile(url: u).tensor(named: "big")
            XCTAssertEqual(read.shape, [n / 100, 100])
            XCTAssertEqual(read.toArray(), values, "\(dtype)")
        }
    }

    func testNamesNeedingJSONEscapes() throws {
        let names = ["quote\"d", "back\\slash", "new\nline", "tab\tand\u{01}ctl", "ünïcödé.wéight", "emoji😀"]
        let tensors = try names.enumerated().map { ($0.element, try Tensor([Float($0.offset)], shape: [1])) }
        let u = url("names.safetensors")
        try SafetensorsWriter.write(tensors, to: u)
        let file = try SafetensorsFile(url: u)
        XCTAssertEqual(Set(file.tensorNames), Set(names))
        for (i, name) in names.enumerated() {
            XCTAssertEqual(try file.tensor(named: name).toArray(), [Float(i)])
        }
    }

    func testInMemoryBytes() throws {
        let data = try SafetensorsWriter.serialize([("a", try Tensor([7, 8], shape: [1, 2]))])
        let file = try SafetensorsFile(bytes: data, name: "mem.safetensors")
        XCTAssertEqual(try file.tensor(named: "a").toArray(), [7, 8])
        XCTAssertThrowsError(try file.tensor(named: "b")) { error in
            XCTAssertTrue("\(error)".hasPrefix("mem.safetensors: no tensor named 'b'"), "\(error)")
        }
    }

    // MARK: - Hand-built files in other dtypes

    func testReadsHandBuiltF16() throws {
        let bits: [UInt16] = [0x3C00, 0xC100, 0x7BFF, 0x0400, 0x0001, 0x03FF, 0x8000, 0x7C00, 0xFC00, 0x7E00, 0x3555, 0x0000]
        let header = #"{"h":{"dtype":"F16","shape":[3,4],"data_offsets":[0,24]}}"#
        let u = url("f16.safetensors")
        try build(header: header, data: le(bits)).write(to: u)
        let file = try SafetensorsFile(url: u)
        XCTAssertEqual(try file.dtype(of: "h"), .f16)
        let v = try file.tensor(named: "h").toArray()
        XCTAssertEqual(Array(v[0..<6]), [1, -2.5, 65504, 0x1p-14, 0x1p-24, 1023 * 0x1p-24])
        XCTAssertEqual(v[6].bitPattern, (-0.0 as Float).bitPattern)
        XCTAssertEqual(v[7], .infinity)
        XCTAssertEqual(v[8], -.infinity)
        XCTAssertTrue(v[9].isNaN)
        XCTAssertEqual(v[10], 0.333251953125)
        XCTAssertEqual(v[11], 0)
    }

    func testReadsHandBuiltBF16() throws {
        let bits: [UInt16] = [0x3F80, 0xC049, 0x7F80, 0xFF80, 0x7FC0, 0x0001, 0x8000, 0x4780]
        // Leading space padding before the JSON and trailing padding after it are allowed.
        let header = #"{"b":{"dtype":"BF16","shape":[2,2,2],"data_offsets":[0,16]}}   "#
        let u = url("bf16.safetensors")
        try build(header: header, data: le(bits)).write(to: u)
        let v = try SafetensorsFile(url: u).tensor(named: "b").toArray()
        XCTAssertEqual(v[0], 1)
        XCTAssertEqual(v[1], -3.140625)
        XCTAssertEqual(v[2], .infinity)
        XCTAssertEqual(v[3], -.infinity)
        XCTAssertTrue(v[4].isNaN)
        XCTAssertEqual(v[5], 0x1p-133)
        XCTAssertEqual(v[6].bitPattern, (-0.0 as Float).bitPattern)
        XCTAssertEqual(v[7], 65536)
    }

    func testReadsIntegerBoolAndOtherFloatDTypes() throws {
        var data: [UInt8] = []
        var entries: [String] = []
        func add(_ name: String, _ dtype: String, _ shape: [Int], _ bytes: [UInt8]) {
            entries.append("\"\(name)\":{\"dtype\":\"\(dtype)\",\"shape\":\(shape),\"data_offsets\":[\(data.count),\(data.count + bytes.count)]}")
            data += bytes
        }
        add("f64", "F64", [3], le([1.5, -1e300, 0.1].map { (v: Double) in v.bitPattern }))
        add("i64", "I64", [2], le([Int64(-5), 1 << 40]))
        add("i32", "I32", [2], le([Int32(-7), Int32.max]))
        add("i16", "I16", [2], le([Int16(-300), 300]))
        add("i8", "I8", [3], le([Int8(-128), 0, 127]))
        add("u64", "U64", [1], le([UInt64(1) << 63]))
        add("u32", "U32", [1], le([UInt32.max]))
        add("u16", "U16", [1], le([UInt16(65535)]))
        add("u8", "U8", [3], [0, 128, 255])
        add("bool", "BOOL", [4], [0, 1, 0, 2])
        add("e4m3", "F8_E4M3", [5], [0x38, 0xC4, 0x7E, 0x01, 0x7F])
        add("e5m2", "F8_E5M2", [4], [0x3C, 0xC1, 0x7C, 0x01])
        let u = url("mixed.safetensors")
        try build(header: "{" + entries.joined(separator: ",") + "}", data: data).write(to: u)
        let file = try SafetensorsFile(url: u)
        XCTAssertEqual(try file.dtype(of: "bool"), .bool)
        XCTAssertEqual(try file.tensor(named: "f64").toArray(), [1.5, -.infinity, 0.1])
        XCTAssertEqual(try file.tensor(named: "i64").toArray(), [-5, 1_099_511_627_776])
        XCTAssertEqual(try file.tensor(named: "i32").toArray(), [-7, Float(Int32.max)])
        XCTAssertEqual(try file.tensor(named: "i16").toArray(), [-300, 300])
        XCTAssertEqual(try file.tensor(named: "i8").toArray(), [-128, 0, 127])
        XCTAssertEqual(try file.tensor(named: "u64").toArray(), [0x1p63])
        XCTAssertEqual(try file.tensor(named: "u32").toArray(), [Float(UInt32.max)])
        XCTAssertEqual(try file.tensor(named: "u16").toArray(), [65535])
        XCTAssertEqual(try file.tensor(named: "u8").toArray(), [0, 128, 255])
        XCTAssertEqual(try file.tensor(named: "bool").toArray(), [0, 1, 0, 1])
        let e4 = try file.tensor(named: "e4m3").toArray()
        XCTAssertEqual(Array(e4[0..<4]), [1, -3, 448, 0x1p-9])
        XCTAssertTrue(e4[4].isNaN)
        XCTAssertEqual(try file.tensor(named: "e5m2").toArray(), [1, -2.5, .infinity, 0x1p-16])
    }

    // MARK: - Conversions

    func testHalfConversionsAgainstReference() throws {
        // Exhaustive half -> float, and float -> half on edge cases and a sweep, against Swift's
        // Float16 where the platform has it.
        #if !(os(macOS) && arch(x86_64))
        for bits in 0...UInt16.max {
            let mine = halfBitsToFloat(bits)
            let reference = Float(Float16(bitPattern: bits))
            if reference.isNaN { XCTAssertTrue(mine.isNaN); continue }
            XCTAssertEqual(mine.bitPattern, reference.bitPattern, "half bits \(bits)")
        }
        var samples: [Float] = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e10, -1e10, .infinity, -.infinity,
                                0x1p-24, 0x1p-25, 0x1.000002p-25, 0x1.8p-24, 0x1p-14, 0x1.ff8p-15, 1e-30,
                                .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1 + 0x1p-11, 1 + 0x1.8p-11, 2049]
        var x: UInt32 = 0x1234_5678
        for _ in 0..<200_000 {  // xorshift sweep over all bit patterns
            x ^= x << 13; x ^= x >> 17; x ^= x << 5
            samples.append(Float(bitPattern: x))
        }
        for f in samples where !f.isNaN {
            XCTAssertEqual(floatToHalfBits(f), Float16(f).bitPattern, "float \(f)")
        }
        #endif
        XCTAssertTrue(halfBitsToFloat(floatToHalfBits(.nan)).isNaN)
        XCTAssertEqual(floatToHalfBits(1), 0x3C00)
        XCTAssertEqual(floatToHalfBits(0x1p-25), 0)  // tie rounds to even (zero)
        XCTAssertEqual(floatToHalfBits(0x1.8p-24), 2)  // tie rounds to even
        XCTAssertEqual(floatToHalfBits(65520), 0x7C00)
    }

    func testBFloat16Conversions() {
        XCTAssertEqual(floatToBFloat16Bits(1), 0x3F80)
        XCTAssertEqual(floatToBFloat16Bits(1 + 0x1p-8), 0x3F80)  // tie -> even
        XCTAssertEqual(floatToBFloat16Bits(1 + 0x1.8p-7), 0x3F82)  // tie -> even (up)
        XCTAssertEqual(floatToBFloat16Bits(1 + 0x1.2p-8), 0x3F81)  // above half -> up
        XCTAssertEqual(floatToBFloat16Bits(.greatestFiniteMagnitude), 0x7F80)
        XCTAssertEqual(floatToBFloat16Bits(-.infinity), 0xFF80)
        XCTAssertTrue(bfloat16BitsToFloat(floatToBFloat16Bits(.nan)).isNaN)
        XCTAssertTrue(bfloat16BitsToFloat(floatToBFloat16Bits(Float(bitPattern: 0x7F80_0001))).isNaN)
        XCTAssertEqual(bfloat16BitsToFloat(0xC049), -3.140625)
    }

    // MARK: - Malformed files

    func testEmptyFile() {
        let e = openError(Data())
        guard case .truncated? = e else { return XCTFail("\(String(describing: e))") }
        assertMessage(e, contains: ["truncated file", "empty"])
    }

    func testShorterThanLengthPrefix() {
        let e = openError(Data([1, 0, 0]))
        guard case .truncated? = e else { return XCTFail("\(String(describing: e))") }
        assertMessage(e, contains: ["3 bytes"])
    }

    func testHeaderLengthTwoToTheSixty() {
        let e = openError(build(header: "{}", lengthPrefix: 1 << 60))
        guard case .headerTooLarge(_, let length, _)? = e else { return XCTFail("\(String(describing: e))") }
        XCTAssertEqual(length, 1 << 60)
        assertMessage(e, contains: ["1152921504606846976", "100000000"])
        // The largest possible prefix too.
        let e2 = openError(build(header: "{}", lengthPrefix: .max), name: "max.safetensors")
        guard case .headerTooLarge? = e2 else { return XCTFail("\(String(describing: e2))") }
    }

    func testHeaderLengthLargerThanFile() {
        let e = openError(build(header: #"{"a":{}}"#, lengthPrefix: 1000))
        guard case .truncated? = e else { return XCTFail("\(String(describing: e))") }
        assertMessage(e, contains: ["1000 bytes", "only 8 bytes follow"])
    }

    func testOffsetsPastEnd() {
        let header = #"{"encoder.bias":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#
        let e = openError(build(header: header, data: f32Bytes([1, 2, 3])))
        guard case .offsetsOutOfBounds(_, let tensor, 0, 16, 12)? = e else { return XCTFail("\(String(describing: e))") }
        XCTAssertEqual(tensor, "encoder.bias")
        assertMessage(e, contains: ["tensor 'encoder.bias'", "[0, 16]", "12 bytes"])
    }

    func testReversedOffsets() {
        let header = #"{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,4]},"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let e = openError(build(header: header, data: f32Bytes([1, 2])))
        guard case .offsetsOutOfBounds? = e else { return XCTFail("\(String(describing: e))") }
        assertMessage(e, contains: ["tensor 'w'", "[8, 4]", "reversed"])
    }

    func testUnknownDType() {
        let header = #"{"decoder.proj":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}"#
        let e = openError(build(header: header, data: f32Bytes([1])))
        guard case .unknownDType(_, "decoder.proj", "F33")? = e else { return XCTFail("\(String(describing: e))") }
        assertMessage(e, contains: ["tensor 'decoder.proj'", "unknown dtype 'F33'", "BF16"])
    }

    func testSizeMismatch() {
        let name = "encoder.layer.0.attention.self.query.weight"
        let header = "{\"\(name)\":{\"dtype\":\"F32\",\"shape\":[10,20],\"data_offsets\":[0,400]}}"
        let e = openError(build(header: header, data: [UInt8](repeating: 0, count: 400)), name: "model.safetensors")
        guard case .sizeMismatch? = e else { return XCTFail("\(String(describing: e))") }
        assertMessage(e, contains: [
            "model.safetensors: tensor '\(name)': data_offsets [0, 400] hold 400 bytes but shape [10, 20] of F32 needs 800",
        ])
    }

    func testShapeOverflow() throws {
        let header = #"{"huge":{"dtype":"F64","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}"#
        let e = openError(build(header: header, data: [UInt8](repeating: 0, count: 8)))
        guard case .invalidEntry? = e else { return XCTFail("\(String(describing: e))") }
        assertMessage(e, contains: ["tensor 'huge'", "too many elements"])

        let bytes = #"{"wide":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}}"#
        let e2 = openError(build(header: bytes, data: [UInt8](repeating: 0, count: 8)), name: "bytes.safetensors")
        guard case .sizeMismatch? = e2 else { return XCTFail("\(String(describing: e2))") }
        assertMessage(e2, contains: ["tensor 'wide'", "more than 2^63 bytes"])

        // Dimensions that overflow before a zero are rejected rather than trapping later.
        let zero = #"{"z":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904,0],"data_offsets":[0,0]}}"#
        let e3 = openError(build(header: zero), name: "zero.safetensors")
        guard case .invalidEntry? = e3 else { return XCTFail("\(String(describing: e3))") }
        // Large dimensions around a zero that do fit are fine and read as an empty tensor.
        let ok = #"{"z":{"dtype":"F32","shape":[0,2305843009213693952,2],"data_offsets":[0,0]}}"#
        let file = try SafetensorsFile(bytes: build(header: ok))
        XCTAssertEqual(try file.shape(of: "z"), [0, 2305843009213693952, 2])
        XCTAssertEqual(try file.tensor(named: "z").count, 0)
    }

    func testOverlappingTensors() {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        let e = openError(build(header: header, data: f32Bytes([1, 2, 3])))
        guard case .overlapping(_, "b", "a", [4, 12], [0, 8])? = e else { return XCTFail("\(String(describing: e))") }
        assertMessage(e, contains: ["tensor 'b'", "overlap tensor 'a'"])
    }

    func testGapAndTrailingBytes() {
        let gap = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#
        let e = openError(build(header: gap, data: f32Bytes([1, 2, 3])))
        guard case .incompleteData? = e else { return XCTFail("\(String(describing: e))") }
        assertMessage(e, contains: ["[4, 8)", "'a'", "'b'"])

        let trailing = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        let e2 = openError(build(header: trailing, data: f32Bytes([1, 2])), name: "trailing.safetensors")
        guard case .incompleteData? = e2 else { return XCTFail("\(String(describing: e2))") }
        assertMessage(e2, contains: ["'a'", "4 trailing bytes"])
    }

    func testNonJSONHeader() {
        let e = openError(build(header: "this is not json", data: []))
        guard case .invalidHeader? = e else { return XCTFail("\(String(describing: e))") }
        assertMessage(e, contains: ["not valid JSON"])

        let e2 = openError(build(header: "[1, 2, 3]"), name: "array.safetensors")
        guard case .invalidHeader? = e2 else { return XCTFail("\(String(describing: e2))") }
        assertMessage(e2, contains: ["an array, not an object"])

        var bytes = build(header: "{\"a\":1}")
        bytes[10] = 0xFF  // invalid UTF-8 inside the header
        let e3 = openError(bytes, name: "utf8.safetensors")
        guard case .invalidHeader? = e3 else { return XCTFail("\(String(describing: e3))") }
        assertMessage(e3, contains: ["UTF-8"])

        let e4 = openError(build(header: ""), name: "zero.safetensors")
        guard case .invalidHeader? = e4 else { return XCTFail("\(String(describing: e4))") }
    }

    func testMalformedEntriesAndMetadata() {
        let cases: [(String, [String])] = [
            (#"{"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#, ["tensor 't'", "non-negative integers"]),
            (#"{"t":{"dtype":"F32","shape":[1.5],"data_offsets":[0,0]}}"#, ["tensor 't'", "\"shape\""]),
            (#"{"t":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, ["tensor 't'", "\"shape\""]),
            (#"{"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4.0]}}"#, ["tensor 't'", "\"data_offsets\""]),
            (#"{"t":{"dtype":"F32","shape":["2"],"data_offsets":[0,0]}}"#, ["tensor 't'", "\"shape\""]),
            (#"{"t":{"dtype":"F32","shape":[true],"data_offsets":[0,0]}}"#, ["tensor 't'", "\"shape\""]),
            (#"{"t":{"dtype":"F32","data_offsets":[0,0]}}"#, ["tensor 't'", "no \"shape\""]),
            (#"{"t":{"shape":[],"data_offsets":[0,4]}}"#, ["tensor 't'", "no \"dtype\""]),
            (#"{"t":{"dtype":7,"shape":[],"data_offsets":[0,4]}}"#, ["tensor 't'", "not a string"]),
            (#"{"t":{"dtype":"F32","shape":[]}}"#, ["tensor 't'", "no \"data_offsets\""]),
            (#"{"t":{"dtype":"F32","shape":[],"data_offsets":[0]}}"#, ["tensor 't'", "two non-negative integers"]),
            (#"{"t":{"dtype":"F32","shape":[],"data_offsets":[-4,0]}}"#, ["tensor 't'", "two non-negative integers"]),
            (#"{"t":[1,2]}"#, ["tensor 't'", "not an object"]),
            (#"{"t":{"dtype":"F32","shape":[],"data_offsets":[0,18446744073709551615]}}"#, ["tensor 't'", "past the end"]),
            (#"{"t":{"dtype":"F32","shape":[],"data_offsets":[0,18446744073709551616]}}"#, ["tensor 't'", "\"data_offsets\""]),
            (#"{"__metadata__":{"epoch":3}}"#, ["__metadata__", "'epoch'", "not a string"]),
            (#"{"__metadata__":"x"}"#, ["__metadata__", "not an object"]),
        ]
        for (i, (header, parts)) in cases.enumerated() {
            let e = openError(build(header: header, data: []), name: "case\(i).safetensors")
            assertMessage(e, contains: parts)
        }
    }

    func testFileNotFoundAndDirectory() {
        let missing = url("nope/missing.safetensors")
        XCTAssertThrowsError(try SafetensorsFile(url: missing)) { error in
            XCTAssertEqual(error as? CheckpointError, .fileNotFound(path: missing.path))
            XCTAssertTrue("\(error)".contains(missing.path))
        }
        XCTAssertThrowsError(try SafetensorsFile(path: directory.path)) { error in
            guard case .unreadable? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("directory"))
        }
    }

    func testPartiallyOverwrittenFile() throws {
        let tensors = [("encoder.weight", try Tensor((0..<64).map(Float.init), shape: [8, 8])),
                       ("encoder.bias", try Tensor((0..<8).map(Float.init), shape: [8]))]
        let original = try SafetensorsWriter.serialize(tensors, metadata: ["format": "pt"])

        // Header bytes overwritten in place (JSON broken).
        let u = url("overwritten.safetensors")
        try SafetensorsWriter.write(tensors, metadata: ["format": "pt"], to: u)
        let handle = try FileHandle(forWritingTo: u)
        try handle.seek(toOffset: 20)
        try handle.write(contentsOf: Data("\u{0}\u{0}garbage\"}".utf8))
        try handle.close()
        XCTAssertThrowsError(try SafetensorsFile(url: u)) { error in
            guard case .invalidHeader? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".hasPrefix(u.path))
        }

        // A second save interrupted by a crash in a non-atomic writer: the file is cut short.
        let cut = url("cut.safetensors")
        try original.prefix(original.count - 100).write(to: cut)
        XCTAssertThrowsError(try SafetensorsFile(url: cut)) { error in
            guard case .offsetsOutOfBounds(_, "encoder.weight", _, _, _)? = error as? CheckpointError else {
                return XCTFail("\(error)")
            }
            XCTAssertTrue("\(error)".contains("past the end"))
        }

        // Cut inside the header.
        let cutHeader = url("cut-header.safetensors")
        try original.prefix(40).write(to: cutHeader)
        XCTAssertThrowsError(try SafetensorsFile(url: cutHeader)) { error in
            guard case .truncated? = error as? CheckpointError else { return XCTFail("\(error)") }
        }

        // Length prefix overwritten with junk.
        var junk = original
        junk.replaceSubrange(0..<8, with: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        let junkURL = url("junk-prefix.safetensors")
        try junk.write(to: junkURL)
        XCTAssertThrowsError(try SafetensorsFile(url: junkURL)) { error in
            guard case .headerTooLarge? = error as? CheckpointError else { return XCTFail("\(error)") }
        }

        // Data bytes overwritten keep the file valid (values change, structure does not).
        let dataURL = url("data-overwritten.safetensors")
        var changed = original
        changed[changed.count - 4..<changed.count] = Data(f32Bytes([-1]))
        try changed.write(to: dataURL)
        XCTAssertEqual(try SafetensorsFile(url: dataURL).tensor(named: "encoder.weight").toArray().last, -1)
    }

    // MARK: - Missing names

    func testMissingTensorSuggestsNames() throws {
        let u = url("names.safetensors")
        let one = try Tensor([1], shape: [1])
        try SafetensorsWriter.write(["encoder.weight": one, "encoder.bias": one, "decoder.weight": one,
                                     "head.weight": one, "head.bias": one, "norm.weight": one, "norm.bias": one], to: u)
        let file = try SafetensorsFile(url: u)
        XCTAssertThrowsError(try file.tensor(named: "encoder.weights")) { error in
            guard case .missingTensor(_, "encoder.weights", "encoder.weight", let available, 7)? = error as? CheckpointError else {
                return XCTFail("\(error)")
            }
            XCTAssertEqual(available.count, 5)
            XCTAssertEqual(available.first, "encoder.weight")
            XCTAssertTrue("\(error)".contains("did you mean 'encoder.weight'?"), "\(error)")
            XCTAssertTrue("\(error)".contains("file holds 7 tensors"), "\(error)")
            XCTAssertTrue("\(error)".hasPrefix(u.path), "\(error)")
        }
        XCTAssertThrowsError(try file.shape(of: "model.head.bias")) { error in
            XCTAssertTrue("\(error)".contains("did you mean 'head.bias'?"), "\(error)")
        }
        XCTAssertThrowsError(try file.tensor(named: "completely_unrelated_name_xyz")) { error in
            XCTAssertFalse("\(error)".contains("did you mean"), "\(error)")
            XCTAssertTrue("\(error)".contains(", …)"), "\(error)")
        }
        XCTAssertFalse(file.contains("x"))
        XCTAssertTrue(file.contains("head.bias"))
    }

    // MARK: - Writer failures and atomicity

    func testWriterRejectsBadInput() throws {
        let t = try Tensor([1], shape: [1])
        let u = url("reject.safetensors")
        XCTAssertThrowsError(try SafetensorsWriter.write([("a", t), ("a", t)], to: u)) { error in
            XCTAssertTrue("\(error)".contains("tensor 'a'") && "\(error)".contains("more than once"), "\(error)")
        }
        XCTAssertThrowsError(try SafetensorsWriter.write([("__metadata__", t)], to: u))
        XCTAssertThrowsError(try SafetensorsWriter.write([("a", t)], dtype: .i32, to: u)) { error in
            XCTAssertTrue("\(error)".contains("I32"), "\(error)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: u.path))

        let nowhere = url("no/such/dir/x.safetensors")
        XCTAssertThrowsError(try SafetensorsWriter.write([("a", t)], to: nowhere)) { error in
            guard case .writeFailed? = error as? CheckpointError else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("does not exist"), "\(error)")
        }
    }

    func testFailedWriteLeavesDestinationUntouched() throws {
        let u = url("keep.safetensors")
        try SafetensorsWriter.write([("old", try Tensor([1, 2], shape: [2]))], to: u)
        let before = try Data(contentsOf: u)

        struct Interrupted: Error {}
        XCTAssertThrowsError(try AtomicFile.write(to: u.path) { sink in
            try Data(repeating: 0xAB, count: 4096).withUnsafeBytes { try sink($0) }
            throw Interrupted()
        })
        XCTAssertEqual(try Data(contentsOf: u), before)

        // A failing plan never touches the destination either.
        XCTAssertThrowsError(try SafetensorsWriter.write([("x", Tensor(scalar: 1)), ("x", Tensor(scalar: 2))], to: u))
        XCTAssertEqual(try Data(contentsOf: u), before)

        // Overwriting replaces the file in one step; no temporary files are left behind.
        try SafetensorsWriter.write([("new", Tensor(scalar: 3))], to: u)
        XCTAssertEqual(try SafetensorsFile(url: u).tensorNames, ["new"])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        XCTAssertEqual(leftovers, ["keep.safetensors"])
    }

    func testOpenFileSurvivesReplacement() throws {
        // An open (mapped) file keeps its contents when the path is atomically replaced.
        let u = url("replace.safetensors")
        try SafetensorsWriter.write([("v", try Tensor([1, 2, 3], shape: [3]))], to: u)
        let file = try SafetensorsFile(url: u)
        try SafetensorsWriter.write([("v", try Tensor([9, 9, 9], shape: [3]))], to: u)
        XCTAssertEqual(try file.tensor(named: "v").toArray(), [1, 2, 3])
        XCTAssertEqual(try SafetensorsFile(url: u).tensor(named: "v").toArray(), [9, 9, 9])
    }

    // MARK: - Compatibility with the reference implementation

    func testReadsPythonFixture() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/safetensors/tiny_f32_f16_bf16.safetensors")
        let file = try SafetensorsFile(url: fixture)
        XCTAssertEqual(file.tensorNames, ["decoder.bf16", "decoder.counts", "decoder.half", "empty",
                                          "encoder.scale", "encoder.weight"])
        XCTAssertEqual(file.metadata, ["format": "pt", "source": "make_safetensors_fixture.py"])

        XCTAssertEqual(try file.dtype(of: "encoder.weight"), .f32)
        XCTAssertEqual(try file.shape(of: "encoder.weight"), [2, 3])
        XCTAssertEqual(try file.tensor(named: "encoder.weight").toArray(), [-1, -0.5, 0, 0.5, 1, 1.5])
        XCTAssertEqual(try file.shape(of: "encoder.scale"), [])
        XCTAssertEqual(try file.tensor(named: "encoder.scale").item(), 0.125)

        XCTAssertEqual(try file.dtype(of: "decoder.half"), .f16)
        let half = try file.tensor(named: "decoder.half").toArray()
        XCTAssertEqual(Array(half[0..<5]), [1, -2.5, 65504, 0x1p-14, 0x1p-24])
        XCTAssertEqual(half[5].bitPattern, (-0.0 as Float).bitPattern)
        XCTAssertEqual(half[6], -.infinity)
        XCTAssertTrue(half[7].isNaN)

        XCTAssertEqual(try file.dtype(of: "decoder.bf16"), .bf16)
        XCTAssertEqual(try file.shape(of: "decoder.bf16"), [2, 2])
        XCTAssertEqual(try file.tensor(named: "decoder.bf16").toArray(), [1, -3.140625, 0x1p100, 0x1p-133])

        XCTAssertEqual(try file.dtype(of: "decoder.counts"), .i64)
        XCTAssertEqual(try file.tensor(named: "decoder.counts").toArray(), [-7, 0, 123456])

        XCTAssertEqual(try file.shape(of: "empty"), [0, 4])
        XCTAssertEqual(try file.tensor(named: "empty").count, 0)

        // Re-writing what the fixture holds (as F32) and reading it back keeps every value.
        let copy = url("copy.safetensors")
        try SafetensorsWriter.write(try file.tensors(), metadata: file.metadata, to: copy)
        let again = try SafetensorsFile(url: copy)
        XCTAssertEqual(again.tensorNames, file.tensorNames)
        for name in file.tensorNames {
            XCTAssertEqual(try again.shape(of: name), try file.shape(of: name))
            assertBitwiseEqual(try again.tensor(named: name).toArray(), try file.tensor(named: name).toArray())
        }
    }
}

final class HeaderJSONTests: XCTestCase {
    private func parse(_ text: String) throws -> JSONValue {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBytes { try JSONValue.parse($0) }
    }

    private func assertRejects(_ text: String, _ fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try parse(text), file: file, line: line) { error in
            let message = (error as? JSONValue.ParseError)?.message ?? "\(error)"
            XCTAssertTrue(message.contains(fragment), "'\(message)' should contain '\(fragment)'", file: file, line: line)
        }
    }

    func testValues() throws {
        guard case .object(let o) = try parse(#"  {"a": [1, -2, 0, 18446744073709551615, -9223372036854775808, 2.5, 1e3, -0.0],"#
            + #" "b": true, "c": false, "d": null, "e": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00z", "f": {}, "g": [] }  "#) else {
            return XCTFail("not an object")
        }
        guard case .array(let a)? = o["a"] else { return XCTFail("a") }
        XCTAssertEqual(a.count, 8)
        guard case .integer(1) = a[0], case .integer(-2) = a[1], case .integer(0) = a[2],
              case .unsigned(UInt64.max) = a[3], case .integer(Int64.min) = a[4],
              case .number(2.5) = a[5], case .number(1000) = a[6], case .number(let z) = a[7] else {
            return XCTFail("\(a)")
        }
        XCTAssertEqual(z.sign, .minus)
        guard case .bool(true)? = o["b"], case .bool(false)? = o["c"], case .null? = o["d"] else { return XCTFail() }
        guard case .string(let s)? = o["e"] else { return XCTFail("e") }
        XCTAssertEqual(s, "x\"\\/\u{08}\u{0C}\n\r\té😀z")
        guard case .object(let f)? = o["f"], f.isEmpty, case .array(let g)? = o["g"], g.isEmpty else { return XCTFail() }
        guard case .string("ünï")? = try? parse(#""ünï""#) else { return XCTFail("raw UTF-8") }
        guard case .number(let big) = try parse("18446744073709551616") else { return XCTFail("overflow") }
        XCTAssertEqual(big, 18446744073709551616.0)
    }

    func testRejectsMalformedJSON() {
        assertRejects(#"{"a":1,"a":2}"#, "duplicate key \"a\"")
        assertRejects(#"{"a":1} x"#, "after the top-level value")
        assertRejects(#"{"a":1"#, "unterminated object")
        assertRejects(#"{"a" 1}"#, "expected ':'")
        assertRejects(#"{a:1}"#, "expected a string key")
        assertRejects(#"[1,]"#, "expected a value")
        assertRejects(#"[1 2]"#, "expected ',' or ']'")
        assertRejects(#"[01]"#, "leading zero")
        assertRejects(#"[1.]"#, "after the decimal point")
        assertRejects(#"[1e]"#, "in the exponent")
        assertRejects(#"[-]"#, "expected a digit")
        assertRejects(#"[tru]"#, "expected 'true'")
        assertRejects(#"["abc"#, "unterminated string")
        assertRejects("[\"a\u{01}b\"]", "control character")
        assertRejects(#"["\x"]"#, "invalid escape")
        assertRejects(#"["\ud800"]"#, "unpaired surrogate")
        assertRejects(#"["\udc00"]"#, "unpaired surrogate")
        assertRejects(#"["\u12G4"]"#, "hex digit")
        assertRejects(String(repeating: "[", count: 100) + String(repeating: "]", count: 100), "nesting deeper")
        assertRejects("", "expected a value")
        assertRejects("   ", "expected a value")
        XCTAssertThrowsError(try [UInt8(0x22), 0xC3, 0x28, 0x22].withUnsafeBytes { try JSONValue.parse($0) }) { error in
            XCTAssertTrue("\(error)".contains("UTF-8"))
        }
    }

    func testDuplicateKeyInHeaderIsRejected() throws {
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#
        var data = Data()
        var n = UInt64(header.utf8.count).littleEndian
        withUnsafeBytes(of: &n) { data.append(contentsOf: $0) }
        data.append(contentsOf: Array(header.utf8) + [UInt8](repeating: 0, count: 8))
        XCTAssertThrowsError(try SafetensorsFile(bytes: data, name: "dup.safetensors")) { error in
            XCTAssertTrue("\(error)".contains("dup.safetensors: invalid safetensors header"), "\(error)")
            XCTAssertTrue("\(error)".contains("duplicate key \"a\""), "\(error)")
        }
    }
}
