import Foundation
import TensorEngine
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes tensors as a safetensors file.
///
///     try SafetensorsWriter.write(["w": w, "b": b], metadata: ["format": "pt"], to: url)
///
/// Output is deterministic: tensors are laid out in name order (UTF-8 bytes), the header is
/// compact JSON with `__metadata__` first, tensor names in the same order and each entry's keys
/// sorted (`data_offsets`, `dtype`, `shape`), padded with spaces to a multiple of 8 bytes. The
/// same tensors and metadata always give the same bytes, whatever order they were passed in.
///
/// Files are written atomically: the bytes go to a temporary file in the destination's
/// directory, which is flushed to disk and then renamed over the destination, so the
/// destination never holds a partial file; on failure the temporary file is removed.
public enum SafetensorsWriter {
    /// Writes `tensors` (names must be unique and not `__metadata__`) to `url`, storing the
    /// values as `dtype` (F32, F16, BF16 or F64; F16/BF16 round to nearest even).
    public static func write(_ tensors: [(String, Tensor)], metadata: [String: String]? = nil,
                             dtype: SafetensorsDType = .f32, to url: URL) throws {
        let path = url.path
        let plan = try Plan(tensors, metadata: metadata, dtype: dtype, path: path)
        try AtomicFile.write(to: path) { sink in try plan.emit(into: sink) }
    }

    /// Writes `tensors` to `url`; see `write(_:metadata:dtype:to:)`.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String]? = nil,
                             dtype: SafetensorsDType = .f32, to url: URL) throws {
        try write(tensors.map { ($0.key, $0.value) }, metadata: metadata, dtype: dtype, to: url)
    }

    /// The bytes `write` would put in a file.
    public static func serialize(_ tensors: [(String, Tensor)], metadata: [String: String]? = nil,
                                 dtype: SafetensorsDType = .f32) throws -> Data {
        let plan = try Plan(tensors, metadata: metadata, dtype: dtype, path: "<memory>")
        var data = Data()
        data.reserveCapacity(8 + plan.header.count + plan.dataSize)
        try plan.emit { chunk in
            if let base = chunk.baseAddress {
                data.append(base.assumingMemoryBound(to: UInt8.self), count: chunk.count)
            }
        }
        return data
    }

    /// The bytes `write` would put in a file.
    public static func serialize(_ tensors: [String: Tensor], metadata: [String: String]? = nil,
                                 dtype: SafetensorsDType = .f32) throws -> Data {
        try serialize(tensors.map { ($0.key, $0.value) }, metadata: metadata, dtype: dtype)
    }

    // MARK: - Layout

    struct Plan {
        var header: [UInt8]
        var entries: [(name: String, tensor: Tensor)]
        var dtype: SafetensorsDType
        var dataSize: Int

        init(_ tensors: [(String, Tensor)], metadata: [String: String]?, dtype: SafetensorsDType,
             path: String) throws {
            guard dtype.isWritable else {
                throw CheckpointError.invalidWrite(
                    path: path, tensor: nil,
                    detail: "dtype \(dtype.rawValue) cannot be written (use F32, F16, BF16 or F64)")
            }
            var seen = Set<String>()
            for (name, _) in tensors {
                if name == "__metadata__" {
                    throw CheckpointError.invalidWrite(path: path, tensor: name,
                                                       detail: "the name is reserved for the metadata map")
                }
                if !seen.insert(name).inserted {
                    throw CheckpointError.invalidWrite(path: path, tensor: name,
                                                       detail: "the name appears more than once")
                }
            }
            let sorted = tensors.sorted { utf8Less($0.0, $1.0) }

            var json = "{"
            var first = true
            if let metadata {
                json += "\"__metadata__\":{"
                json += metadata.keys.sorted(by: utf8Less).map { key in
                    jsonString(key) + ":" + jsonString(metadata[key] ?? "")
                }.joined(separator: ",")
                json += "}"
                first = false
            }
            var offset = 0
            for (name, tensor) in sorted {
                let shape = tensor.shape
                let bytes = tensor.count * dtype.byteSize
                if !first { json += "," }
                first = false
                json += jsonString(name) + ":{\"data_offsets\":[\(offset),\(offset + bytes)],"
                    + "\"dtype\":\"\(dtype.rawValue)\",\"shape\":[" + shape.map(String.init).joined(separator: ",") + "]}"
                offset += bytes
            }
            json += "}"
            var header = Array(json.utf8)
            while header.count % 8 != 0 { header.append(0x20) }
            if UInt64(header.count) > SafetensorsFile.maxHeaderBytes {
                throw CheckpointError.invalidWrite(
                    path: path, tensor: nil,
                    detail: "the header would be \(header.count) bytes, over the \(SafetensorsFile.maxHeaderBytes)-byte limit")
            }
            self.header = header
            self.entries = sorted.map { ($0.0, $0.1) }
            self.dtype = dtype
            self.dataSize = offset
        }

        /// Streams the file's bytes to `sink` in order.
        func emit(into sink: (UnsafeRawBufferPointer) throws -> Void) throws {
            var length = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: &length) { try sink($0) }
            try header.withUnsafeBytes { try sink($0) }
            let chunkElements = 1 << 18
            var scratch: UnsafeMutableRawPointer?
            defer { scratch?.deallocate() }
            for (_, tensor) in entries {
                let n = tensor.count
                if n == 0 { continue }
                let source = tensor.isContiguous ? tensor : tensor.clone()
                let base = UnsafePointer(source.data)
                #if _endian(little)
                if dtype == .f32 {
                    try sink(UnsafeRawBufferPointer(start: base, count: n * 4))
                    withExtendedLifetime(source) {}
                    continue
                }
                #endif
                let buffer = scratch ?? UnsafeMutableRawPointer.allocate(byteCount: chunkElements * 8, alignment: 64)
                scratch = buffer
                var start = 0
                while start < n {
                    let m = min(chunkElements, n - start)
                    DTypeCodec.encode(dtype, from: base + start, count: m, into: buffer)
                    try sink(UnsafeRawBufferPointer(start: buffer, count: m * dtype.byteSize))
                    start += m
                }
                withExtendedLifetime(source) {}
            }
        }
    }
}

/// A JSON string literal: quotes, backslashes and control characters escaped, other
/// characters kept as UTF-8.
func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 {
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
    }
    return out + "\""
}

// MARK: - Atomic file writing

enum AtomicFile {
    /// Writes the bytes `produce` streams to a temporary file next to `path`, flushes it to disk
    /// and renames it to `path`. On any failure the temporary file is removed and `path` is left
    /// as it was.
    static func write(to path: String,
                      _ produce: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let temporary = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp").path

        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        if fd < 0 {
            let code = errno
            if code == ENOENT || code == ENOTDIR {
                throw CheckpointError.writeFailed(path: path, reason: "directory \(directory) does not exist")
            }
            throw CheckpointError.writeFailed(
                path: path, reason: "cannot create a temporary file in \(directory): \(errorText(code))")
        }
        var isOpen = true
        var renamed = false
        defer {
            if isOpen { close(fd) }
            if !renamed { unlink(temporary) }
        }

        try produce { chunk in
            guard var p = chunk.baseAddress else { return }
            var remaining = chunk.count
            while remaining > 0 {
                let written = posixWrite(fd, p, min(remaining, 1 << 30))
                if written < 0 {
                    let code = errno
                    if code == EINTR { continue }
                    throw CheckpointError.writeFailed(path: path, reason: errorText(code))
                }
                p += written
                remaining -= written
            }
        }
        if fsync(fd) != 0 {
            throw CheckpointError.writeFailed(path: path, reason: "fsync: " + errorText(errno))
        }
        isOpen = false
        if close(fd) != 0 {
            throw CheckpointError.writeFailed(path: path, reason: "close: " + errorText(errno))
        }
        if rename(temporary, path) != 0 {
            throw CheckpointError.writeFailed(path: path, reason: "rename: " + errorText(errno))
        }
        renamed = true
        // Make the rename itself durable (best effort: not every file system allows it).
        let dirFD = open(directory, O_RDONLY | O_CLOEXEC)
        if dirFD >= 0 {
            _ = fsync(dirFD)
            close(dirFD)
        }
    }

    static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }
}

// Inside `AtomicFile`, `write` names its own static method; this names the C function.
@inline(__always)
private func posixWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int { write(fd, p, n) }
