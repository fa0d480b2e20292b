import Foundation
import TensorEngine
import ZIPFoundation

/// A PyTorch checkpoint (`torch.save` output: `.bin`, `.pth`, `.pt`) read without running any
/// of it.
///
///     let checkpoint = try PyTorchCheckpoint(url: URL(fileURLWithPath: "mobilenet_v2.pth"))
///     let w = checkpoint.tensors["features.0.0.weight"]   // Float32, contiguous
///
/// Two layouts are read, told apart by their first bytes (never by the file name):
/// - **zip** (the default since PyTorch 1.6): `<folder>/data.pkl` holds the pickle, each
///   storage is a raw little-endian record `<folder>/data/<key>`; a `<folder>/byteorder`
///   record, when present, says `little` or `big`.
/// - **legacy** (`_use_new_zipfile_serialization=False`, and older torchvision weights): five
///   pickles in a row (magic number, protocol version 1001, system info, the object, the list
///   of storage keys), then for each key in that list an int64 element count and the raw data.
///
/// The pickle is decoded by a restricted reader that understands tensor rebuilding
/// (`torch._utils._rebuild_tensor_v2`, `_rebuild_tensor`, `_rebuild_parameter`,
/// `_rebuild_parameter_with_state`), storage classes (`torch.FloatStorage`, `HalfStorage`,
/// `BFloat16Storage`, `DoubleStorage`, `LongStorage`, `IntStorage`, `ShortStorage`,
/// `CharStorage`, `ByteStorage`, `BoolStorage`), `collections.OrderedDict`, `torch.Size` and
/// plain values (dict, list, tuple, int, float, str, bytes, bool, None). Any other global is
/// refused with `CheckpointError.forbiddenGlobal` the moment it is read, before any tensor
/// memory is allocated; nothing named in a file is ever imported or called.
///
/// Tensors may be views: a storage offset, any sizes and strides, several tensors over one
/// storage. Every view is checked against its storage before data is read, and each tensor is
/// copied out as a fresh contiguous Float32 tensor (half, bfloat16, double, integer and bool
/// elements converted; integers beyond 2^24 lose precision as Float32 does).
///
/// The top-level object must be a dict. When it holds tensors (a `state_dict()`, as timm,
/// torchvision and Hugging Face files do), its tensor values are the checkpoint. When it holds
/// none at top level (e.g. `{"state_dict": {...}, "epoch": 3}`), nested dicts are flattened
/// with dotted keys (`state_dict.conv.weight`). Non-tensor values are not loaded; their keys
/// are listed in `skippedEntries`.
public struct PyTorchCheckpoint {
    /// The two `torch.save` layouts.
    public enum Format: String, Sendable {
        case zip
        case legacy
    }

    /// The path used in error messages.
    public let path: String
    public let format: Format
    /// Tensor keys in the order the file lists them.
    public let keys: [String]
    /// Every tensor, Float32 and contiguous.
    public let tensors: [String: Tensor]
    /// Dotted keys of values that are not tensors (e.g. an epoch counter), not loaded.
    public let skippedEntries: [String]

    /// Reads the checkpoint at `url`.
    public init(url: URL) throws {
        let path = url.path
        let region = try ByteRegion(mapping: path)
        let format = try Self.detect(region, path: path)
        self.path = path
        self.format = format
        let loaded: Loaded
        switch format {
        case .zip: loaded = try ZipCheckpointReader.read(url: url, path: path)
        case .legacy: loaded = try LegacyCheckpointReader.read(region: region, path: path)
        }
        keys = loaded.keys
        tensors = loaded.tensors
        skippedEntries = loaded.skipped
    }

    /// The layout of the file at `url`, judged by its first bytes. Throws `unrecognizedFormat`
    /// for anything that is neither.
    public static func format(of url: URL) throws -> Format {
        try detect(ByteRegion(mapping: url.path), path: url.path)
    }

    /// The int `0x1950a86a20f9469cfc6c` that opens a legacy file, as the little-endian bytes of
    /// its LONG1 opcode.
    static let legacyMagic: [UInt8] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]

    static func detect(_ region: ByteRegion, path: String) throws -> Format {
        let head = region.prefix(512)
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) || head.starts(with: [0x50, 0x4B, 0x05, 0x06]) { return .zip }
        // PROTO 2, LONG1 of 10 bytes, the magic number.
        if head.starts(with: [0x80, 0x02, 0x8a, 0x0a] + legacyMagic) { return .legacy }
        if head.isEmpty { throw CheckpointError.truncated(path: path, detail: "the file is empty") }
        if head.count >= 262, head[257..<262].elementsEqual("ustar".utf8) {
            throw CheckpointError.unrecognizedFormat(
                path: path, detail: "a tar archive (PyTorch's pre-0.4 format), which is not supported; "
                    + "re-save it with a current torch.save")
        }
        if head.first == 0x80 {
            throw CheckpointError.unrecognizedFormat(
                path: path, detail: "a Python pickle without torch.save's header (magic number)")
        }
        if head.count >= 9, head[8] == UInt8(ascii: "{") {
            throw CheckpointError.unrecognizedFormat(
                path: path, detail: "looks like a safetensors file; name it *.safetensors or open it with SafetensorsFile")
        }
        let shown = head.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
        throw CheckpointError.unrecognizedFormat(
            path: path, detail: "starts with bytes \(shown), neither a PyTorch zip nor a legacy pickle checkpoint")
    }

    struct Loaded {
        var keys: [String]
        var tensors: [String: Tensor]
        var skipped: [String]
    }
}

// MARK: - Views and decoding shared by both layouts

enum TorchTensorDecoding {
    /// The most elements a view may have beyond its storage's size (by repeating elements).
    static let maxRepeatedElements = 1 << 24

    /// Checks every tensor's storage type and view bounds; returns each tensor's element type.
    /// Runs before any storage is read or any tensor allocated.
    static func validate(_ state: TorchStateDict, path: String) throws -> [SafetensorsDType] {
        try state.tensors.map { key, view in
            let storage = view.slice.storage
            guard let dtype = TorchStorageType.dtype(storage.typeName) else {
                throw CheckpointError.unknownStorageType(path: path, tensor: key, type: "torch." + storage.typeName)
            }
            func tooBig() -> CheckpointError {
                .invalidEntry(path: path, tensor: key,
                              detail: "size \(CheckpointError.shapeText(view.shape)) with stride "
                                  + "\(CheckpointError.shapeText(view.strides)) is too large to address")
            }
            var elements = 1
            for d in view.shape {
                let (m, o) = elements.multipliedReportingOverflow(by: d)
                if o { throw tooBig() }
                elements = m
            }
            if elements.multipliedReportingOverflow(by: 8).overflow { throw tooBig() }
            if elements == 0 { return dtype }
            // The last element the view touches: offset + Σ (size - 1) × stride.
            var last = view.offset
            for (d, s) in zip(view.shape, view.strides) {
                let (step, o1) = (d - 1).multipliedReportingOverflow(by: s)
                let (sum, o2) = last.addingReportingOverflow(step)
                if o1 || o2 { throw tooBig() }
                last = sum
            }
            // A view may repeat storage elements (stride 0, as `expand` makes), but a huge
            // tensor over a tiny storage would only be a way to exhaust memory.
            if elements > max(view.slice.count, maxRepeatedElements) {
                throw CheckpointError.storageTooShort(
                    path: path, tensor: key,
                    detail: "size \(CheckpointError.shapeText(view.shape)) has \(elements) elements but storage "
                        + "'\(storage.key)' holds only \(view.slice.count) (strides \(CheckpointError.shapeText(view.strides)) "
                        + "repeat elements beyond the \(maxRepeatedElements) allowed)")
            }
            if last >= view.slice.count {
                throw CheckpointError.storageTooShort(
                    path: path, tensor: key,
                    detail: "its view (storage offset \(view.offset), size \(CheckpointError.shapeText(view.shape)), "
                        + "stride \(CheckpointError.shapeText(view.strides))) reaches element \(last + 1) but storage "
                        + "'\(storage.key)' holds \(view.slice.count) element\(view.slice.count == 1 ? "" : "s")")
            }
            return dtype
        }
    }

    /// Copies one validated view out of its storage's bytes (little-endian, `storage.count`
    /// elements from `base`) into a new contiguous tensor.
    static func tensor(_ view: TorchTensorView, dtype: SafetensorsDType, base: UnsafeRawPointer?) -> Tensor {
        let out = Tensor(uninitialized: view.shape)
        guard out.count > 0, let base else { return out }
        let start = view.slice.offset + view.offset
        if isContiguous(view.shape, view.strides) {
            DTypeCodec.decode(dtype, from: base + start * dtype.byteSize, count: out.count, into: out.data)
        } else {
            DTypeCodec.gather(dtype, from: base, offset: start, shape: view.shape, strides: view.strides, into: out.data)
        }
        return out
    }

    /// Row-major contiguous, ignoring the strides of size-1 dimensions.
    static func isContiguous(_ shape: [Int], _ strides: [Int]) -> Bool {
        var expected = 1
        for (d, s) in zip(shape, strides).reversed() where d != 1 {
            if s != expected { return false }
            expected *= d
        }
        return true
    }

    /// The first tensor key using each storage, for error messages.
    static func firstUser(_ state: TorchStateDict) -> [String: String] {
        var users: [String: String] = [:]
        for (key, view) in state.tensors where users[view.slice.storage.key] == nil {
            users[view.slice.storage.key] = key
        }
        return users
    }

    static func storageBytes(_ storage: TorchStorage, _ dtype: SafetensorsDType, path: String, tensor: String) throws -> Int {
        let (bytes, overflow) = storage.count.multipliedReportingOverflow(by: dtype.byteSize)
        if overflow {
            throw CheckpointError.invalidEntry(
                path: path, tensor: tensor, detail: "storage '\(storage.key)' declares \(storage.count) elements, too many to address")
        }
        return bytes
    }
}

// MARK: - Zip layout

enum ZipCheckpointReader {
    static func read(url: URL, path: String) throws -> PyTorchCheckpoint.Loaded {
        let archive: Archive
        do {
            archive = try Archive(url: url, accessMode: .read)
        } catch Archive.ArchiveError.missingEndOfCentralDirectoryRecord {
            throw CheckpointError.truncated(
                path: path, detail: "the zip archive has no end-of-central-directory record (cut short or damaged)")
        } catch {
            throw CheckpointError.invalidArchive(path: path, detail: "cannot open the zip archive: \(error)")
        }
        var entries: [String: Entry] = [:]
        for entry in archive { entries[entry.path] = entry }

        // The record folder's name varies (`archive`, the file's stem, …): find `<folder>/data.pkl`.
        let pickles = entries.keys.filter { name in
            let parts = name.split(separator: "/", omittingEmptySubsequences: false)
            return parts.count == 2 && parts[1] == "data.pkl" && !parts[0].isEmpty
        }.sorted()
        guard pickles.count == 1, let pickleName = pickles.first, let pickleEntry = entries[pickleName] else {
            if pickles.count > 1 {
                throw CheckpointError.invalidArchive(path: path, detail: "several data.pkl records: \(pickles.joined(separator: ", "))")
            }
            if entries.keys.contains(where: { $0.hasSuffix("/constants.pkl") || $0.contains("/code/") }) {
                throw CheckpointError.unrecognizedFormat(
                    path: path, detail: "a TorchScript archive (torch.jit.save), which holds code; save a state_dict instead")
            }
            throw CheckpointError.unrecognizedFormat(
                path: path, detail: "a zip file without a <folder>/data.pkl record, so not a torch.save checkpoint "
                    + "(\(entries.count) entr\(entries.count == 1 ? "y" : "ies"))")
        }
        let folder = String(pickleName.dropLast("/data.pkl".count))

        var bigEndian = false
        if let orderEntry = entries[folder + "/byteorder"] {
            let length = min(Int(clamping: orderEntry.uncompressedSize), 16)
            let data = try readRecord(archive, orderEntry, byteCount: length, path: path)
            let text = String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
            data.deallocate()
            switch text.trimmingCharacters(in: .whitespacesAndNewlines) {
            case "little": bigEndian = false
            case "big": bigEndian = true
            default: throw CheckpointError.invalidArchive(path: path, detail: "\(folder)/byteorder says '\(text.prefix(16))', not little or big")
            }
        }

        let pickleSize = try recordSize(pickleEntry, path: path)
        let pickleBytes = try readRecord(archive, pickleEntry, byteCount: pickleSize, path: path)
        defer { pickleBytes.deallocate() }
        var machine = PickleMachine(bytes: UnsafeRawBufferPointer(start: pickleBytes, count: pickleSize),
                                    path: "\(path) [\(pickleName)]", host: TorchPickleHost(path: "\(path) [\(pickleName)]"))
        defer { machine.releaseContainers() }
        let root = try machine.run().value
        let state = try TorchStateDict(root, path: path)
        let dtypes = try TorchTensorDecoding.validate(state, path: path)

        // Read each storage once, in the order tensors first use it, and cut its tensors out.
        var byStorage: [String: [Int]] = [:]
        var order: [String] = []
        for (i, t) in state.tensors.enumerated() {
            let key = t.view.slice.storage.key
            if byStorage[key] == nil { order.append(key) }
            byStorage[key, default: []].append(i)
        }
        var tensors: [String: Tensor] = [:]
        tensors.reserveCapacity(state.tensors.count)
        for key in order {
            guard let users = byStorage[key], let firstIndex = users.first else { continue }
            let firstKey = state.tensors[firstIndex].key
            let storage = state.tensors[firstIndex].view.slice.storage
            let dtype = dtypes[firstIndex]
            let needed = try TorchTensorDecoding.storageBytes(storage, dtype, path: path, tensor: firstKey)
            let recordName = "\(folder)/data/\(key)"
            guard let entry = entries[recordName] else {
                throw CheckpointError.invalidArchive(
                    path: path, detail: "record '\(recordName)' (storage of tensor '\(firstKey)') is missing")
            }
            let size = try recordSize(entry, path: path)
            if size < needed {
                throw CheckpointError.storageTooShort(
                    path: path, tensor: firstKey,
                    detail: "storage record '\(recordName)' holds \(size) bytes but its \(storage.count) × "
                        + "torch.\(storage.typeName) elements need \(needed)")
            }
            if size > needed {
                throw CheckpointError.invalidArchive(
                    path: path, detail: "storage record '\(recordName)' (tensor '\(firstKey)') holds \(size) bytes, "
                        + "more than the \(needed) its \(storage.count) × torch.\(storage.typeName) elements take")
            }
            let buffer = try readRecord(archive, entry, byteCount: needed, path: path)
            defer { buffer.deallocate() }
            if bigEndian { DTypeCodec.swapBytes(buffer, byteCount: needed, elementSize: dtype.byteSize) }
            for i in users {
                let (name, view) = state.tensors[i]
                tensors[name] = TorchTensorDecoding.tensor(view, dtype: dtypes[i], base: needed > 0 ? UnsafeRawPointer(buffer) : nil)
            }
        }
        return .init(keys: state.tensors.map(\.key), tensors: tensors, skipped: state.skipped)
    }

    /// A record's declared size, refusing sizes no honest archive of this file could hold.
    private static func recordSize(_ entry: Entry, path: String) throws -> Int {
        let size = entry.uncompressedSize
        let limit: UInt64 = entry.isCompressed ? entry.compressedSize.multipliedReportingOverflow(by: 1100).partialValue
                                               : entry.compressedSize
        guard size <= limit, size <= UInt64(Int.max / 2) else {
            throw CheckpointError.invalidArchive(
                path: path, detail: "record '\(entry.path)' declares \(size) bytes, more than its \(entry.compressedSize) stored bytes can hold")
        }
        return Int(size)
    }

    /// Reads the first `byteCount` bytes of a record (the whole record is streamed so its CRC-32
    /// can be checked). The caller deallocates the buffer.
    private static func readRecord(_ archive: Archive, _ entry: Entry, byteCount: Int, path: String) throws -> UnsafeMutableRawPointer {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
        var filled = 0
        var total: UInt64 = 0
        do {
            let crc = try archive.extract(entry, bufferSize: 1 << 20, skipCRC32: false) { chunk in
                total += UInt64(chunk.count)
                let take = min(chunk.count, byteCount - filled)
                if take > 0 {
                    chunk.withUnsafeBytes { src in
                        if let s = src.baseAddress { (buffer + filled).copyMemory(from: s, byteCount: take) }
                    }
                    filled += take
                }
            }
            if total != entry.uncompressedSize {
                throw CheckpointError.truncated(
                    path: path, detail: "record '\(entry.path)' should hold \(entry.uncompressedSize) bytes but only \(total) could be read")
            }
            if crc != entry.checksum {
                throw CheckpointError.invalidArchive(path: path, detail: "record '\(entry.path)' fails its CRC-32 check (damaged data)")
            }
        } catch let error as CheckpointError {
            buffer.deallocate()
            throw error
        } catch {
            buffer.deallocate()
            throw CheckpointError.invalidArchive(path: path, detail: "cannot read record '\(entry.path)': \(error)")
        }
        return buffer
    }
}

// MARK: - Legacy layout

enum LegacyCheckpointReader {
    static func read(region: ByteRegion, path: String) throws -> PyTorchCheckpoint.Loaded {
        let bytes = UnsafeRawBufferPointer(start: region.base, count: region.count)
        var machine = PickleMachine(bytes: bytes, path: path, host: TorchPickleHost(path: path))
        defer { machine.releaseContainers() }

        let magic = try machine.run(from: 0)
        guard case .bigInt(let m) = magic.value, m == PyTorchCheckpoint.legacyMagic else {
            throw CheckpointError.unrecognizedFormat(path: path, detail: "the first pickle is not torch.save's magic number")
        }
        let version = try machine.run(from: magic.end)
        guard case .int(1001) = version.value else {
            throw CheckpointError.unrecognizedFormat(
                path: path, detail: "legacy protocol version is \(version.value.kindName) \(version.value.int.map(String.init) ?? ""), expected 1001")
        }
        let info = try machine.run(from: version.end)
        var littleEndian = true
        if case .dict(let d) = info.value {
            for (k, v) in d.entries {
                if case .string("little_endian") = k, case .bool(let b) = v { littleEndian = b }
            }
        } else {
            throw CheckpointError.invalidPickle(path: path, offset: version.end, detail: "system info is \(info.value.kindName), not a dict")
        }
        let main = try machine.run(from: info.end)
        let state = try TorchStateDict(main.value, path: path)
        let dtypes = try TorchTensorDecoding.validate(state, path: path)
        let listing = try machine.run(from: main.end)
        guard let keyValues = listing.value.sequence else {
            throw CheckpointError.invalidPickle(path: path, offset: main.end, detail: "the storage key list is \(listing.value.kindName)")
        }

        // Storage records follow the key list: int64 element count, then the elements.
        let storages = machine.host.storages
        let users = TorchTensorDecoding.firstUser(state)
        var located: [String: Int] = [:]  // storage key -> byte offset of its data
        var position = listing.end
        for keyValue in keyValues {
            let key: String
            switch keyValue {
            case .string(let s): key = s
            case .int(let v): key = String(v)
            default: throw CheckpointError.invalidPickle(path: path, offset: main.end, detail: "a storage key is \(keyValue.kindName)")
            }
            guard let storage = storages[key] else {
                throw CheckpointError.invalidPickle(
                    path: path, offset: main.end, detail: "the storage list names '\(key)', which no tensor refers to")
            }
            let tensor = users[key] ?? "(unused storage \(key))"
            guard let dtype = TorchStorageType.dtype(storage.typeName) else {
                throw CheckpointError.unknownStorageType(path: path, tensor: tensor, type: "torch." + storage.typeName)
            }
            guard region.count - position >= 8, let base = region.base else {
                throw CheckpointError.truncated(
                    path: path, detail: "the file ends at byte \(region.count), inside the element count of storage '\(key)' "
                        + "(tensor '\(tensor)') at byte \(position)")
            }
            let raw = base.loadUnaligned(fromByteOffset: position, as: Int64.self)
            let stored = littleEndian ? Int64(littleEndian: raw) : Int64(bigEndian: raw)
            if stored != Int64(storage.count) {
                throw CheckpointError.storageTooShort(
                    path: path, tensor: tensor,
                    detail: "storage '\(key)' is declared with \(storage.count) × torch.\(storage.typeName) elements "
                        + "but the file stores \(stored) at byte \(position)")
            }
            let needed = try TorchTensorDecoding.storageBytes(storage, dtype, path: path, tensor: tensor)
            position += 8
            if region.count - position < needed {
                throw CheckpointError.truncated(
                    path: path, detail: "storage '\(key)' (tensor '\(tensor)') needs bytes [\(position), \(position + needed)) "
                        + "but the file ends at byte \(region.count)")
            }
            located[key] = position
            position += needed
        }

        for t in state.tensors where located[t.view.slice.storage.key] == nil {
            throw CheckpointError.invalidPickle(
                path: path, offset: main.end,
                detail: "tensor '\(t.key)' uses storage '\(t.view.slice.storage.key)', which the storage list does not include")
        }

        var tensors: [String: Tensor] = [:]
        tensors.reserveCapacity(state.tensors.count)
        var swapped: [String: UnsafeMutableRawPointer] = [:]
        defer { for p in swapped.values { p.deallocate() } }
        for (i, t) in state.tensors.enumerated() {
            let storage = t.view.slice.storage
            guard let offset = located[storage.key], let base = region.base else { continue }
            var data = UnsafeRawPointer(base + offset)
            if !littleEndian {
                let n = storage.count * dtypes[i].byteSize
                if let copy = swapped[storage.key] {
                    data = UnsafeRawPointer(copy)
                } else {
                    let copy = UnsafeMutableRawPointer.allocate(byteCount: max(n, 1), alignment: 64)
                    copy.copyMemory(from: data, byteCount: n)
                    DTypeCodec.swapBytes(copy, byteCount: n, elementSize: dtypes[i].byteSize)
                    swapped[storage.key] = copy
                    data = UnsafeRawPointer(copy)
                }
            }
            tensors[t.key] = TorchTensorDecoding.tensor(t.view, dtype: dtypes[i], base: data)
        }
        return .init(keys: state.tensors.map(\.key), tensors: tensors, skipped: state.skipped)
    }
}

extension ByteRegion {
    /// Up to the first `n` bytes.
    func prefix(_ n: Int) -> [UInt8] {
        guard let base, count > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: base, count: min(n, count)))
    }
}
