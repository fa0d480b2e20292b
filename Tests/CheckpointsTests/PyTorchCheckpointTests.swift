import Foundation
import XCTest
@testable import Checkpoints
import TensorEngine

/// PyTorch zip and legacy checkpoints against the values torch wrote them with, and every
/// malformed or hostile file against the typed error it must give.
final class PyTorchCheckpointTests: TemporaryFolderTestCase {

    // MARK: - Real torch.save output

    private func assertMatchesExpected(_ checkpoint: PyTorchCheckpoint, file: StaticString = #filePath, line: UInt = #line) throws {
        let expected = try SafetensorsFile(url: CheckpointFixtures.url("expected.safetensors"))
        XCTAssertEqual(checkpoint.keys, CheckpointFixtures.stateKeys, file: file, line: line)
        XCTAssertEqual(Set(checkpoint.tensors.keys), Set(expected.tensorNames), file: file, line: line)
        XCTAssertEqual(checkpoint.skippedEntries, [], file: file, line: line)
        for name in expected.tensorNames {
            assertBitwiseEqual(checkpoint.tensors[name], try expected.tensor(named: name), name, file: file, line: line)
        }
    }

    func testZipStateDictMatchesTorch() throws {
        let checkpoint = try PyTorchCheckpoint(url: CheckpointFixtures.url("state.bin"))
        XCTAssertEqual(checkpoint.format, .zip)
        try assertMatchesExpected(checkpoint)
    }

    func testLegacyStateDictMatchesTorch() throws {
        let checkpoint = try PyTorchCheckpoint(url: CheckpointFixtures.url("state_legacy.pth"))
        XCTAssertEqual(checkpoint.format, .legacy)
        try assertMatchesExpected(checkpoint)
    }

    func testViewsAndConversionsSpelledOut() throws {
        let t = try PyTorchCheckpoint(url: CheckpointFixtures.url("state.bin")).tensors
        // transposed: arange(15) - 7 as [3, 5], transposed to [5, 3].
        XCTAssertEqual(t["transposed"]?.shape, [5, 3])
        XCTAssertEqual(t["transposed"]?.toArray().prefix(6), [-7, -2, 3, -6, -1, 4])
        // base = arange(20) * 0.25 - 2: shared.a = base[2:8] as [2, 3], shared.b = base[10:20:2].
        XCTAssertEqual(t["shared.a"]?.toArray(), [-1.5, -1.25, -1, -0.75, -0.5, -0.25])
        XCTAssertEqual(t["shared.b"]?.toArray(), [0.5, 1, 1.5, 2, 2.5])
        XCTAssertEqual(t["expanded"]?.toArray(), [1, 2, 3, 1, 2, 3])
        XCTAssertEqual(t["scalar"]?.shape, [])
        XCTAssertEqual(t["scalar"]?.toArray(), [3.5])
        XCTAssertEqual(t["empty"]?.shape, [0, 3])
        XCTAssertEqual(t["i64"]?.toArray(), [-7, 0, 123456, Float(1 << 40 + 3), Float(-(1 << 62))])
        XCTAssertEqual(t["bool"]?.toArray(), [1, 0, 1])
        XCTAssertEqual(t["u8"]?.toArray(), [0, 1, 254, 255])
        XCTAssertEqual(t["param"]?.toArray(), [0.5, -0.25, 4, 8])
    }

    func testNestedDictsAreFlattenedWithDots() throws {
        let checkpoint = try PyTorchCheckpoint(url: CheckpointFixtures.url("nested.pt"))
        XCTAssertEqual(checkpoint.keys, ["state_dict.conv.weight", "state_dict.conv.bias"])
        XCTAssertEqual(checkpoint.skippedEntries, ["epoch", "best"])
        XCTAssertEqual(checkpoint.tensors["state_dict.conv.weight"]?.toArray(), [1, 2, 3, 4])
        XCTAssertEqual(checkpoint.tensors["state_dict.conv.bias"]?.toArray(), [0.5, -0.5])
    }

    func testBigEndianByteOrderRecord() throws {
        let checkpoint = try PyTorchCheckpoint(url: CheckpointFixtures.url("big_endian.bin"))
        XCTAssertEqual(checkpoint.tensors["w"]?.shape, [2, 2])
        XCTAssertEqual(checkpoint.tensors["w"]?.toArray(), [1.5, -2, 1e-3, 65536])
    }

    func testLegacyStorageView() throws {
        let checkpoint = try PyTorchCheckpoint(url: CheckpointFixtures.url("legacy_storage_view.pth"))
        XCTAssertEqual(checkpoint.format, .legacy)
        XCTAssertEqual(checkpoint.tensors["w"]?.toArray(), [2, 3, 4, 5])
    }

    func testFormatIsJudgedByBytesNotName() throws {
        let zipNamedPth = try copyFixture("state.bin", to: "weights.pth")
        XCTAssertEqual(try PyTorchCheckpoint.format(of: zipNamedPth), .zip)
        let legacyNamedBin = try copyFixture("state_legacy.pth", to: "weights.bin")
        XCTAssertEqual(try PyTorchCheckpoint(url: legacyNamedBin).format, .legacy)

        let text = url("notes.pth")
        try Data("just some text, not weights".utf8).write(to: text)
        let e = checkpointError { _ = try PyTorchCheckpoint(url: text) }
        guard case .unrecognizedFormat? = e else { return XCTFail("\(String(describing: e))") }
        assertMessage(e, contains: ["notes.pth", "neither a PyTorch zip nor a legacy pickle"])
    }

    // MARK: - Hostile pickles

    func testForbiddenGlobalsAreRefusedAndNamed() throws {
        let cases = [("evil_posix_system.bin", "posix.system"), ("evil_os_system.pth", "os.system"),
                     ("evil_builtins_eval.bin", "builtins.eval")]
        for (name, global) in cases {
            let e = checkpointError { _ = try PyTorchCheckpoint(url: CheckpointFixtures.url(name)) }
            guard case .forbiddenGlobal(let path, let named, let offset)? = e else {
                XCTFail("\(name): \(String(describing: e))")
                continue
            }
            XCTAssertTrue(path.contains(name), path)
            XCTAssertEqual(named, global)
            XCTAssertGreaterThan(offset, 0)
            assertMessage(e, contains: [name, "'\(global)'", "byte \(offset)", "Nothing in the file was run"])
        }
    }

    func testForbiddenGlobalThroughFolder() throws {
        _ = try copyFixture("evil_posix_system.bin", to: "model/pytorch_model.bin")
        let folder = try CheckpointFolder(url("model"))
        XCTAssertEqual(folder.format, .pytorchZip)
        let e = checkpointError { _ = try folder.loadTensors() }
        guard case .forbiddenGlobal(_, "posix.system", _)? = e else { return XCTFail("\(String(describing: e))") }
    }

    func testUnsupportedOpcodeIsNamedWithOffset() throws {
        let e = checkpointError { _ = try PyTorchCheckpoint(url: CheckpointFixtures.url("bad_opcode.pth")) }
        guard case .unsupportedOpcode(_, let opcode, let offset)? = e else { return XCTFail("\(String(describing: e))") }
        XCTAssertEqual(opcode, "INST (0x69)")
        // The main pickle's INST sits 3 bytes into it (PROTO 2, MARK), after the three header pickles.
        let bytes = try Data(contentsOf: CheckpointFixtures.url("bad_opcode.pth"))
        XCTAssertEqual(bytes[offset], UInt8(ascii: "i"))
        assertMessage(e, contains: ["bad_opcode.pth", "INST", "at byte \(offset)"])
    }

    // MARK: - Lying tensors and storages

    func testViewPastItsStorage() {
        let e = checkpointError { _ = try PyTorchCheckpoint(url: CheckpointFixtures.url("view_past_storage.bin")) }
        guard case .storageTooShort(_, "w", _)? = e else { return XCTFail("\(String(describing: e))") }
        assertMessage(e, contains: ["view_past_storage.bin", "tensor 'w'", "size [3, 2]", "reaches element 6", "holds 4 elements"])
    }

    func testRecordShorterThanStorage() {
        let e = checkpointError { _ = try PyTorchCheckpoint(url: CheckpointFixtures.url("record_too_short.bin")) }
        guard case .storageTooShort(_, "w", _)? = e else { return XCTFail("\(String(describing: e))") }
        assertMessage(e, contains: ["record_too_short.bin", "archive/data/0", "holds 12 bytes", "need 24"])
    }

    func testUnknownStorageType() {
        let e = checkpointError { _ = try PyTorchCheckpoint(url: CheckpointFixtures.url("unknown_storage.bin")) }
        XCTAssertEqual(e, .unknownStorageType(path: CheckpointFixtures.url("unknown_storage.bin").path,
                                              tensor: "z", type: "torch.ComplexFloatStorage"))
        assertMessage(e, contains: ["torch.FloatStorage", "torch.BFloat16Storage"])
    }

    func testMissingStorageRecord() {
        let e = checkpointError { _ = try PyTorchCheckpoint(url: CheckpointFixtures.url("missing_record.bin")) }
        guard case .invalidArchive? = e else { return XCTFail("\(String(describing: e))") }
        assertMessage(e, contains: ["missing_record.bin", "'archive/data/0'", "tensor 'w'", "missing"])
    }

    func testLegacyElementCountMismatch() {
        let e = checkpointError { _ = try PyTorchCheckpoint(url: CheckpointFixtures.url("legacy_count_mismatch.pth")) }
        guard case .storageTooShort(_, "w", _)? = e else { return XCTFail("\(String(describing: e))") }
        assertMessage(e, contains: ["declared with 4", "stores 3"])
    }

    // MARK: - Truncation and damage

    func testEveryTruncationOfTheLegacyFileIsATypedError() throws {
        let bytes = try Data(contentsOf: CheckpointFixtures.url("state_legacy.pth"))
        let cut = url("cut.pth")
        // Every cut inside the four header pickles, then every fifth byte (debug builds are slow).
        for length in Array(0..<200) + Array(stride(from: 200, to: bytes.count, by: 5)) {
            try bytes.prefix(length).write(to: cut)
            let e = checkpointError { _ = try PyTorchCheckpoint(url: cut) }
            guard let e else { continue }
            XCTAssertTrue(e.description.hasPrefix(cut.path), "\(length): \(e)")
            if length >= 14, case .truncated = e {} else if length >= 14 {
                XCTFail("cut at \(length): expected .truncated, got \(e)")
            }
        }
    }

    func testEveryTruncationOfTheZipFileIsATypedError() throws {
        let bytes = try Data(contentsOf: CheckpointFixtures.url("state.bin"))
        let cut = url("cut.bin")
        for length in stride(from: 0, to: bytes.count, by: 7) {
            try bytes.prefix(length).write(to: cut)
            let e = checkpointError { _ = try PyTorchCheckpoint(url: cut) }
            guard let e else { continue }
            XCTAssertTrue(e.description.hasPrefix(cut.path), "\(length): \(e)")
            if length >= 4, case .truncated = e {} else if length >= 4 {
                XCTFail("cut at \(length): expected .truncated, got \(e)")
            }
        }
    }

    /// Random byte damage must give a value or a typed error, never a crash or a foreign error.
    func testDamagedFilesNeverCrash() throws {
        var rng = SplitMix(seed: 0x5eed)
        for name in ["state_legacy.pth", "state.bin", "nested.pt", "legacy_storage_view.pth"] {
            let original = [UInt8](try Data(contentsOf: CheckpointFixtures.url(name)))
            let damaged = url("damaged-" + name)
            for _ in 0..<150 {
                var bytes = original
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    let i = Int(rng.next() % UInt64(bytes.count))
                    bytes[i] = UInt8(truncatingIfNeeded: rng.next())
                }
                try Data(bytes).write(to: damaged)
                do {
                    _ = try PyTorchCheckpoint(url: damaged)
                } catch let error as CheckpointError {
                    XCTAssertTrue(error.description.hasPrefix(damaged.path), "\(error)")
                } catch {
                    XCTFail("\(name): foreign error \(error)")
                }
            }
        }
    }

    // MARK: - The pickle machine on hand-written opcodes

    private func legacyFile(_ mainPickle: [UInt8], keys: [UInt8] = Array("\u{80}\u{02}].".utf8)) -> Data {
        var bytes: [UInt8] = [0x80, 0x02, 0x8a, 0x0a] + PyTorchCheckpoint.legacyMagic + [0x2e]
        bytes += [0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e]  // 1001
        bytes += [0x80, 0x02, 0x7d, 0x2e]  // {}
        bytes += mainPickle
        bytes += [0x80, 0x02, 0x5d, 0x2e]  // []
        return Data(bytes)
    }

    private func loadLegacy(_ mainPickle: [UInt8]) -> CheckpointError? {
        let file = url("hand.pth")
        do { try legacyFile(mainPickle).write(to: file) } catch { XCTFail("\(error)"); return nil }
        return checkpointError { _ = try PyTorchCheckpoint(url: file) }
    }

    func testDeepNestingIsRefused() {
        // PROTO 2, EMPTY_TUPLE, then TUPLE1 200 times.
        let e = loadLegacy([0x80, 0x02, 0x29] + [UInt8](repeating: 0x85, count: 200) + [0x2e])
        guard case .invalidPickle(_, _, let detail)? = e else { return XCTFail("\(String(describing: e))") }
        XCTAssertTrue(detail.contains("deeper than"), detail)
    }

    func testSelfContainingListIsRefusedNotLooped() {
        // EMPTY_LIST, BINPUT 0, then (BINGET 0, APPEND) repeated: the list holds itself.
        var p: [UInt8] = [0x80, 0x02, 0x5d, 0x71, 0x00]
        for _ in 0..<300 { p += [0x68, 0x00, 0x61] }
        let e = loadLegacy(p + [0x2e])
        guard case .invalidPickle? = e else { return XCTFail("\(String(describing: e))") }
    }

    func testMalformedPicklesGiveTypedErrors() {
        let cases: [([UInt8], String)] = [
            ([0x80, 0x02, 0x68, 0x05, 0x2e], "memo entry 5"),                     // BINGET before BINPUT
            ([0x80, 0x02, 0x2e], "stack is empty"),                               // STOP on empty stack
            ([0x80, 0x02, 0x4b, 0x01, 0x4b, 0x02, 0x93, 0x2e], "STACK_GLOBAL needs two strings"),
            ([0x80, 0x02, 0x7d, 0x4b, 0x01, 0x75, 0x2e], "needs a MARK"),         // SETITEMS without MARK
            ([0x80, 0x06, 0x2e], "protocol 6"),
            ([0x80, 0x02, 0x4b, 0x01, 0x29, 0x52, 0x2e], "not callable"),         // REDUCE on an int
            ([0x80, 0x02, 0x4b, 0x01, 0x2e], "not a dict of tensors"),           // top level is an int
        ]
        for (pickle, fragment) in cases {
            let e = loadLegacy(pickle)
            XCTAssertNotNil(e, fragment)
            assertMessage(e, contains: [fragment])
        }
        // Lengths beyond the end of the file.
        for pickle: [UInt8] in [[0x80, 0x02, 0x58, 0xff, 0xff, 0xff, 0x7f], [0x80, 0x02, 0x8d] + [UInt8](repeating: 0xff, count: 8),
                                [0x80, 0x02, 0x8b, 0x00, 0x00, 0x00, 0x40], [0x80, 0x02, 0x63, 0x6f, 0x73]] {
            let file = url("short.pth")
            var bytes = [UInt8](legacyFile([]))
            bytes.removeLast(4)  // drop the key list: the main pickle runs to the end of the file
            bytes += pickle
            XCTAssertNoThrow(try Data(bytes).write(to: file))
            let e = checkpointError { _ = try PyTorchCheckpoint(url: file) }
            guard case .truncated? = e else { XCTFail("\(pickle): \(String(describing: e))"); continue }
        }
    }

    func testCallingAStorageClassIsRefused() {
        // GLOBAL torch FloatStorage, EMPTY_TUPLE, REDUCE
        let p: [UInt8] = [0x80, 0x02] + Array("ctorch\nFloatStorage\n".utf8) + [0x29, 0x52, 0x2e]
        let e = loadLegacy(p)
        guard case .invalidPickle(_, _, let detail)? = e else { return XCTFail("\(String(describing: e))") }
        XCTAssertTrue(detail.contains("calls torch.FloatStorage"), detail)
    }

    /// `{"w": _rebuild_tensor_v2(storage '0' of `numel` floats, 0, size, stride, False, OrderedDict())}`
    private func tensorPickle(numel: Int32, size: [Int32], stride: [Int32]) -> [UInt8] {
        func str(_ s: String) -> [UInt8] { [0x58] + withUnsafeBytes(of: UInt32(s.utf8.count).littleEndian, Array.init) + Array(s.utf8) }
        func int(_ v: Int32) -> [UInt8] { [0x4a] + withUnsafeBytes(of: v.littleEndian, Array.init) }
        func global(_ m: String, _ n: String) -> [UInt8] { [0x63] + Array("\(m)\n\(n)\n".utf8) }
        func tuple(_ items: [[UInt8]]) -> [UInt8] { [0x28] + items.flatMap { $0 } + [0x74] }
        let storage = tuple([str("storage"), global("torch", "FloatStorage"), str("0"), str("cpu"), int(numel)]) + [0x51]
        let hooks = global("collections", "OrderedDict") + [0x29, 0x52]
        let args = tuple([storage, int(0), tuple(size.map(int)), tuple(stride.map(int)), [0x89], hooks])
        let tensor = global("torch._utils", "_rebuild_tensor_v2") + args + [0x52]
        return [0x80, 0x02, 0x7d, 0x28] + str("w") + tensor + [0x75, 0x2e]
    }

    func testHugeRepeatingViewIsRefusedBeforeAllocating() {
        // 2^20 × 2^20 elements, all the same storage element (stride 0).
        let e = loadLegacy(tensorPickle(numel: 1, size: [1 << 20, 1 << 20], stride: [0, 0]))
        guard case .storageTooShort(_, "w", let detail)? = e else { return XCTFail("\(String(describing: e))") }
        XCTAssertTrue(detail.contains("1099511627776 elements"), detail)
    }

    func testViewOverflowingIndexArithmeticIsRefused() {
        let e = loadLegacy(tensorPickle(numel: 4, size: [2, 2], stride: [Int32.max, Int32.max]))
        guard case .storageTooShort(_, "w", _)? = e else { return XCTFail("\(String(describing: e))") }
        let e2 = loadLegacy(tensorPickle(numel: 4, size: [Int32.max, Int32.max, Int32.max, 4], stride: [0, 0, 0, 1]))
        guard case .invalidEntry(_, "w", _)? = e2 else { return XCTFail("\(String(describing: e2))") }
        let e3 = loadLegacy(tensorPickle(numel: 4, size: [2], stride: [1, 1]))
        assertMessage(e3, contains: ["differ in length"])
    }

    func testBuildOnSomethingOtherThanADictIsRefused() {
        // EMPTY_LIST, EMPTY_DICT, BUILD
        let e = loadLegacy([0x80, 0x02, 0x5d, 0x7d, 0x62, 0x2e])
        assertMessage(e, contains: ["BUILD", "a list"])
    }
}

/// A small deterministic generator for the damage test.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
