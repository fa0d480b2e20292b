import Foundation
import TensorEngine
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A safetensors file opened for reading.
///
///     let file = try SafetensorsFile(url: URL(fileURLWithPath: "model.safetensors"))
///     for name in file.tensorNames { print(name, try file.shape(of: name)) }
///     let w = try file.tensor(named: "encoder.layer.0.attention.self.query.weight")
///
/// The file is memory-mapped; `init` parses and validates the whole header (dtypes, shapes,
/// offsets, sizes, overlaps, coverage of the data region) before any tensor is read, so a
/// file that opens is structurally sound and every `tensor(named:)` of a listed name succeeds.
/// Tensors are copied out of the mapping into Float32 `Tensor`s, converting the element type.
///
/// As with any memory-mapped file, truncating the file on disk while it is open makes later
/// reads fault; replace checkpoints with `SafetensorsWriter` (atomic rename) instead.
public final class SafetensorsFile: @unchecked Sendable {
    /// The largest header the reader accepts (the limit the reference implementation uses).
    public static let maxHeaderBytes: UInt64 = 100_000_000

    /// One tensor's header entry.
    public struct TensorInfo: Equatable, Sendable {
        public let name: String
        public let dtype: SafetensorsDType
        public let shape: [Int]
        /// Byte range relative to the start of the data region (the byte after the header).
        public let dataOffsets: Range<Int>
        /// Number of elements (`shape` product).
        public var count: Int { shape.reduce(1, *) }
    }

    /// The path used in error messages.
    public let path: String
    /// The `__metadata__` map (empty when the file has none).
    public let metadata: [String: String]
    /// Every tensor name, sorted (by UTF-8 bytes).
    public let tensorNames: [String]
    /// Length of the JSON header in bytes (without the 8-byte length prefix).
    public let headerByteCount: Int
    /// Length of the data region in bytes.
    public let dataByteCount: Int

    private let region: ByteRegion
    private let infos: [String: TensorInfo]
    private var dataStart: Int { 8 + headerByteCount }

    /// Opens and validates the file at `url` (memory-mapped).
    public convenience init(url: URL) throws {
        let path = url.path
        try self.init(region: ByteRegion(mapping: path), path: path)
    }

    /// Opens and validates the file at `path` (memory-mapped).
    public convenience init(path: String) throws {
        try self.init(region: ByteRegion(mapping: path), path: path)
    }

    /// Parses safetensors bytes already in memory; `name` stands for the path in error messages.
    public convenience init(bytes: Data, name: String = "<memory>") throws {
        try self.init(region: ByteRegion(copying: bytes), path: name)
    }

    private init(region: ByteRegion, path: String) throws {
        self.region = region
        self.path = path
        let header = try SafetensorsHeader.parse(region, path: path)
        self.headerByteCount = header.headerByteCount
        self.dataByteCount = header.dataByteCount
        self.metadata = header.metadata
        self.infos = header.infos
        self.tensorNames = header.names
    }

    // MARK: - Header facts

    /// Number of tensors in the file.
    public var count: Int { tensorNames.count }

    public func contains(_ name: String) -> Bool { infos[name] != nil }

    /// The header entry of `name`; throws `missingTensor` (with suggestions) when absent.
    public func info(named name: String) throws -> TensorInfo {
        if let info = infos[name] { return info }
        throw missing(name)
    }

    public func dtype(of name: String) throws -> SafetensorsDType { try info(named: name).dtype }

    public func shape(of name: String) throws -> [Int] { try info(named: name).shape }

    /// Every entry, in `tensorNames` order.
    public var tensorInfos: [TensorInfo] { tensorNames.compactMap { infos[$0] } }

    // MARK: - Reading

    /// The tensor `name` as a fresh contiguous Float32 tensor (elements converted from the
    /// stored dtype; integers and booleans become their numeric value).
    public func tensor(named name: String) throws -> Tensor {
        let info = try info(named: name)
        let out = Tensor(uninitialized: info.shape)
        let n = info.count
        if n > 0, let base = region.base {
            DTypeCodec.decode(info.dtype, from: base + dataStart + info.dataOffsets.lowerBound,
                              count: n, into: out.data)
        }
        return out
    }

    /// Every tensor in the file, keyed by name.
    public func tensors() throws -> [String: Tensor] {
        var all: [String: Tensor] = [:]
        all.reserveCapacity(count)
        for name in tensorNames { all[name] = try tensor(named: name) }
        return all
    }

    /// Calls `body` with the stored (little-endian, unconverted) bytes of `name`. The buffer is
    /// valid only during the call.
    public func withRawBytes<R>(of name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let info = try info(named: name)
        guard let base = region.base, !info.dataOffsets.isEmpty else {
            return try body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        return try body(UnsafeRawBufferPointer(start: base + dataStart + info.dataOffsets.lowerBound,
                                               count: info.dataOffsets.count))
    }

    // MARK: - Missing names

    private func missing(_ name: String) -> CheckpointError {
        // Names are compared on at most 256 bytes so a huge file or query stays cheap.
        let query = Array(name.utf8.prefix(256))
        let ranked = tensorNames
            .map { candidate -> (String, Int) in (candidate, editDistance(query, Array(candidate.utf8.prefix(256)))) }
            .sorted { $0.1 != $1.1 ? $0.1 < $1.1 : utf8Less($0.0, $1.0) }
        var suggestion: String?
        // A name that differs only by a prefix such as "model." is the likeliest intended one.
        if let affix = tensorNames.first(where: { $0.hasSuffix("." + name) || name.hasSuffix("." + $0) }) {
            suggestion = affix
        } else if let best = ranked.first, best.1 <= max(2, query.count / 4) {
            suggestion = best.0
        }
        return .missingTensor(path: path, tensor: name, suggestion: suggestion,
                              available: ranked.prefix(5).map(\.0), total: tensorNames.count)
    }
}

/// Byte-wise (UTF-8) ordering, so sorting never depends on Unicode normalisation.
func utf8Less(_ a: String, _ b: String) -> Bool {
    var a = a, b = b
    return a.withUTF8 { x in
        b.withUTF8 { y in
            let n = min(x.count, y.count)
            if n > 0, let px = x.baseAddress, let py = y.baseAddress {
                let c = memcmp(px, py, n)
                if c != 0 { return c < 0 }
            }
            return x.count < y.count
        }
    }
}

/// Levenshtein distance between two byte strings.
func editDistance(_ a: [UInt8], _ b: [UInt8]) -> Int {
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let substitution = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)
            current[j] = min(substitution, previous[j] + 1, current[j - 1] + 1)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

// MARK: - Bytes

/// Read-only bytes: a private memory mapping of a file, or an owned copy of in-memory data.
final class ByteRegion: @unchecked Sendable {
    /// nil when `count` is 0.
    let base: UnsafeRawPointer?
    let count: Int
    private let mapped: Bool

    init(mapping path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            let code = errno
            if code == ENOENT || code == ENOTDIR { throw CheckpointError.fileNotFound(path: path) }
            throw CheckpointError.unreadable(path: path, reason: String(cString: strerror(code)))
        }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) != 0 {
            throw CheckpointError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        if (info.st_mode & S_IFMT) != S_IFREG {
            let kind = (info.st_mode & S_IFMT) == S_IFDIR ? "it is a directory" : "it is not a regular file"
            throw CheckpointError.unreadable(path: path, reason: kind)
        }
        let size = Int(info.st_size)
        if size == 0 {
            base = nil
            count = 0
            mapped = false
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0),
              p != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw CheckpointError.unreadable(path: path, reason: "mmap failed: " + String(cString: strerror(errno)))
        }
        base = UnsafeRawPointer(p)
        count = size
        mapped = true
    }

    init(copying data: Data) {
        count = data.count
        mapped = false
        if data.isEmpty {
            base = nil
        } else {
            let p = UnsafeMutableRawPointer.allocate(byteCount: data.count, alignment: 64)
            data.withUnsafeBytes { src in
                if let s = src.baseAddress { p.copyMemory(from: s, byteCount: src.count) }
            }
            base = UnsafeRawPointer(p)
        }
    }

    deinit {
        guard let b = base else { return }
        if mapped {
            munmap(UnsafeMutableRawPointer(mutating: b), count)
        } else {
            UnsafeMutableRawPointer(mutating: b).deallocate()
        }
    }
}

// MARK: - Header parsing and validation

struct SafetensorsHeader {
    var headerByteCount: Int
    var dataByteCount: Int
    var metadata: [String: String]
    var infos: [String: SafetensorsFile.TensorInfo]
    /// Tensor names sorted by UTF-8 bytes.
    var names: [String]

    static func parse(_ region: ByteRegion, path: String) throws -> SafetensorsHeader {
        let size = region.count
        guard size >= 8, let base = region.base else {
            throw CheckpointError.truncated(
                path: path,
                detail: size == 0 ? "the file is empty (a safetensors file starts with an 8-byte header length)"
                    : "the file is \(size) bytes, shorter than the 8-byte header length prefix")
        }
        let declared = UInt64(littleEndian: base.loadUnaligned(as: UInt64.self))
        if declared > SafetensorsFile.maxHeaderBytes {
            throw CheckpointError.headerTooLarge(path: path, length: declared, limit: SafetensorsFile.maxHeaderBytes)
        }
        if declared > UInt64(size - 8) {
            throw CheckpointError.truncated(
                path: path,
                detail: "the header length prefix says \(declared) bytes but only \(size - 8) bytes follow it")
        }
        let headerLength = Int(declared)
        let dataSize = size - 8 - headerLength
        let root = try decodeJSON(UnsafeRawBufferPointer(start: base + 8, count: headerLength), path: path)
        guard case .object(let entries) = root else {
            throw CheckpointError.invalidHeader(path: path, detail: "the header JSON is \(root.kindName), not an object")
        }

        var metadata: [String: String] = [:]
        var infos: [String: SafetensorsFile.TensorInfo] = [:]
        var ranges: [(name: String, begin: UInt64, end: UInt64)] = []
        var names: [String] = []
        names.reserveCapacity(entries.count)
        infos.reserveCapacity(entries.count)
        ranges.reserveCapacity(entries.count)
        for key in entries.keys.sorted(by: utf8Less) {
            guard let value = entries[key] else { continue }
            if key == "__metadata__" {
                metadata = try parseMetadata(value, path: path)
                continue
            }
            let info = try parseEntry(key, value, dataSize: dataSize, path: path)
            infos[key] = info
            names.append(key)
            ranges.append((key, UInt64(info.dataOffsets.lowerBound), UInt64(info.dataOffsets.upperBound)))
        }

        // Tensors must tile the data region: sorted by offset, each begins where the last ended.
        // (Stable sort over name-ordered entries: ties keep name order.)
        ranges.sort { $0.begin != $1.begin ? $0.begin < $1.begin : $0.end < $1.end }
        var position: UInt64 = 0
        var previous: (name: String, begin: UInt64, end: UInt64)?
        for r in ranges {
            if r.begin < position, let p = previous {
                throw CheckpointError.overlapping(path: path, tensor: r.name, other: p.name,
                                                  range: [r.begin, r.end], otherRange: [p.begin, p.end])
            }
            if r.begin > position {
                let after = previous.map { "after tensor '\($0.name)' " } ?? "at the start of the data region "
                throw CheckpointError.incompleteData(
                    path: path,
                    detail: "bytes [\(position), \(r.begin)) \(after)belong to no tensor (tensor '\(r.name)' starts at \(r.begin))")
            }
            position = r.end
            previous = r
        }
        if position != UInt64(dataSize) {
            let last = previous.map { "the last tensor, '\($0.name)', ends at byte \(position)" } ?? "the file holds no tensors"
            throw CheckpointError.incompleteData(
                path: path,
                detail: "\(last) but the data region holds \(dataSize) bytes (\(UInt64(dataSize) - position) trailing bytes)")
        }
        return SafetensorsHeader(headerByteCount: headerLength, dataByteCount: dataSize,
                                 metadata: metadata, infos: infos, names: names)
    }

    private static func decodeJSON(_ bytes: UnsafeRawBufferPointer, path: String) throws -> JSONValue {
        if bytes.isEmpty {
            throw CheckpointError.invalidHeader(path: path, detail: "the header is empty (length prefix is 0)")
        }
        do {
            return try JSONValue.parse(bytes)
        } catch let error as JSONValue.ParseError {
            throw CheckpointError.invalidHeader(path: path, detail: "the header is not valid JSON: \(error.message)")
        }
    }

    private static func parseMetadata(_ value: JSONValue, path: String) throws -> [String: String] {
        switch value {
        case .null:
            return [:]
        case .object(let map):
            var metadata: [String: String] = [:]
            for key in map.keys.sorted(by: utf8Less) {
                guard case .string(let s)? = map[key] else {
                    let kind = map[key]?.kindName ?? "missing"
                    throw CheckpointError.invalidHeader(
                        path: path, detail: "__metadata__ value for key '\(key)' is \(kind), not a string")
                }
                metadata[key] = s
            }
            return metadata
        default:
            throw CheckpointError.invalidHeader(
                path: path, detail: "__metadata__ is \(value.kindName), not an object of strings")
        }
    }

    private static func parseEntry(_ name: String, _ value: JSONValue, dataSize: Int,
                                   path: String) throws -> SafetensorsFile.TensorInfo {
        func bad(_ detail: String) -> CheckpointError {
            .invalidEntry(path: path, tensor: name, detail: detail)
        }
        guard case .object(let fields) = value else {
            throw bad("entry is \(value.kindName), not an object with dtype, shape and data_offsets")
        }
        guard let dtypeValue = fields["dtype"] else { throw bad("entry has no \"dtype\"") }
        guard case .string(let dtypeName) = dtypeValue else {
            throw bad("\"dtype\" is \(dtypeValue.kindName), not a string")
        }
        guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
            throw CheckpointError.unknownDType(path: path, tensor: name, dtype: dtypeName)
        }

        guard let shapeValue = fields["shape"] else { throw bad("entry has no \"shape\"") }
        guard case .array(let shapeItems) = shapeValue else {
            throw bad("\"shape\" is \(shapeValue.kindName), not an array of integers")
        }
        var shape: [Int] = []
        shape.reserveCapacity(shapeItems.count)
        for item in shapeItems {
            guard let d = item.nonNegativeInteger, d <= UInt64(Int.max) else {
                throw bad("\"shape\" \(JSONValue.array(shapeItems).compactText) must hold non-negative integers")
            }
            shape.append(Int(d))
        }

        guard let offsetsValue = fields["data_offsets"] else { throw bad("entry has no \"data_offsets\"") }
        guard case .array(let offsetItems) = offsetsValue, offsetItems.count == 2,
              let begin = offsetItems[0].nonNegativeInteger, let end = offsetItems[1].nonNegativeInteger else {
            throw bad("\"data_offsets\" \(offsetsValue.compactText) must be two non-negative integers [begin, end]")
        }
        if begin > end || end > UInt64(dataSize) {
            throw CheckpointError.offsetsOutOfBounds(path: path, tensor: name, begin: begin, end: end, dataSize: dataSize)
        }

        // Element count × element size. The non-zero dimensions must multiply within Int, so
        // no partial product `Tensor` later forms (counts, strides) can overflow and trap.
        var nonZeroProduct = 1
        for d in shape where d != 0 {
            let (m, o) = nonZeroProduct.multipliedReportingOverflow(by: d)
            if o {
                throw bad("shape \(CheckpointError.shapeText(shape)) has too many elements "
                          + "(its dimensions multiply past 2^63)")
            }
            nonZeroProduct = m
        }
        let elements = shape.contains(0) ? 0 : nonZeroProduct
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        if overflow || UInt64(bytes) != end - begin {
            throw CheckpointError.sizeMismatch(
                path: path, tensor: name, begin: begin, end: end, shape: shape, dtype: dtype.rawValue,
                expectedBytes: overflow ? "more than 2^63 bytes" : String(bytes))
        }
        return SafetensorsFile.TensorInfo(name: name, dtype: dtype, shape: shape,
                                          dataOffsets: Int(begin)..<Int(end))
    }
}
