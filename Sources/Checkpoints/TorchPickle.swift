import Foundation

// What a `torch.save` pickle may name, and how those names become tensor descriptions.
// Facts from PyTorch's `torch/serialization.py` (persistent ids) and `torch/_utils.py`
// (the rebuild functions' argument lists).

/// The globals a checkpoint pickle may reference. Everything else is refused by name.
enum TorchGlobal: Equatable {
    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`
    case rebuildTensorV2
    /// `torch._utils._rebuild_tensor(storage, offset, size, stride)`
    case rebuildTensor
    /// `torch._utils._rebuild_parameter(data, requires_grad, hooks)`
    case rebuildParameter
    /// `torch._utils._rebuild_parameter_with_state(data, requires_grad, hooks, state)`
    case rebuildParameterWithState
    /// `collections.OrderedDict`
    case orderedDict
    /// `torch.Size` (a tuple of ints)
    case torchSize
    /// A storage class such as `torch.FloatStorage` (or `torch.cuda.FloatStorage` in files saved
    /// from a GPU); only ever a type tag in a persistent id, never called.
    case storageType(String)

    var qualifiedName: String {
        switch self {
        case .rebuildTensorV2: return "torch._utils._rebuild_tensor_v2"
        case .rebuildTensor: return "torch._utils._rebuild_tensor"
        case .rebuildParameter: return "torch._utils._rebuild_parameter"
        case .rebuildParameterWithState: return "torch._utils._rebuild_parameter_with_state"
        case .orderedDict: return "collections.OrderedDict"
        case .torchSize: return "torch.Size"
        case .storageType(let name): return "torch." + name
        }
    }

    /// The allow-list.
    static func resolve(module: String, name: String) -> TorchGlobal? {
        switch (module, name) {
        case ("torch._utils", "_rebuild_tensor_v2"): return .rebuildTensorV2
        case ("torch._utils", "_rebuild_tensor"): return .rebuildTensor
        case ("torch._utils", "_rebuild_parameter"): return .rebuildParameter
        case ("torch._utils", "_rebuild_parameter_with_state"): return .rebuildParameterWithState
        case ("collections", "OrderedDict"): return .orderedDict
        case ("torch", "Size"): return .torchSize
        case ("torch", _), ("torch.cuda", _):
            // Any storage class name is accepted as a tag; one without a Float32 conversion is
            // reported with the tensor that uses it (`unknownStorageType`).
            if name.hasSuffix("Storage"), name.count <= 64,
               name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) {
                return .storageType(name)
            }
            return nil
        default: return nil
        }
    }
}

/// Storage classes and the element type each holds.
public enum TorchStorageType {
    static let dtypes: [String: SafetensorsDType] = [
        "FloatStorage": .f32, "HalfStorage": .f16, "BFloat16Storage": .bf16, "DoubleStorage": .f64,
        "LongStorage": .i64, "IntStorage": .i32, "ShortStorage": .i16, "CharStorage": .i8,
        "ByteStorage": .u8, "BoolStorage": .bool,
    ]

    /// The storage class names the reader converts to Float32, sorted.
    public static var supportedNames: [String] { dtypes.keys.sorted().map { "torch." + $0 } }

    static func dtype(_ name: String) -> SafetensorsDType? { dtypes[name] }
}

/// One storage of the checkpoint, as its persistent id describes it.
final class TorchStorage {
    /// The record name (zip: `data/<key>`) or legacy storage key.
    let key: String
    let typeName: String
    /// Element count declared by the persistent id.
    let count: Int
    init(key: String, typeName: String, count: Int) {
        self.key = key
        self.typeName = typeName
        self.count = count
    }
}

/// A storage, or (legacy files only) a window of one.
struct TorchStorageSlice {
    let storage: TorchStorage
    let offset: Int
    let count: Int
}

/// A tensor as the pickle describes it: a view into a storage. No data has been read.
struct TorchTensorView {
    let slice: TorchStorageSlice
    let offset: Int
    let shape: [Int]
    let strides: [Int]
}

// MARK: - The host

/// Answers the pickle machine for `torch.save` pickles.
struct TorchPickleHost: PickleHost {
    let path: String
    /// Storages by key: tensors sharing a storage share this object.
    private(set) var storages: [String: TorchStorage] = [:]
    /// Storage keys in the order their persistent ids first appeared.
    private(set) var storageOrder: [String] = []

    init(path: String) { self.path = path }

    func resolveGlobal(module: String, name: String) -> TorchGlobal? {
        TorchGlobal.resolve(module: module, name: name)
    }

    /// Persistent ids: `('storage', type, key, location, numel)` in zip files, and
    /// `('storage', type, key, location, numel, view)` in legacy files, where `view` is None or
    /// `(view_key, offset, size)`.
    mutating func persistentLoad(_ id: PickleValue, offset: Int) throws -> PickleValue {
        func bad(_ detail: String) -> CheckpointError { .invalidPickle(path: path, offset: offset, detail: detail) }
        guard case .tuple(let t) = id, let first = t.items.first else {
            throw bad("persistent id is \(id.kindName), not a tuple")
        }
        guard case .string(let kind) = first else { throw bad("persistent id starts with \(first.kindName), not a string") }
        if kind == "module" {
            throw bad("the file stores a whole module with its source code, not a state dict; "
                      + "save `model.state_dict()` instead")
        }
        guard kind == "storage" else { throw bad("persistent id of unknown kind '\(kind.prefix(40))'") }
        let items = t.items
        guard items.count == 5 || items.count == 6 else {
            throw bad("a storage persistent id has \(items.count) fields, expected 5 or 6")
        }
        guard case .global(.storageType(let typeName)) = items[1] else {
            throw bad("storage type is \(items[1].kindName), not a torch storage class")
        }
        let key: String
        switch items[2] {
        case .string(let s): key = s
        case .int(let v): key = String(v)
        default: throw bad("storage key is \(items[2].kindName)")
        }
        guard case .string = items[3] else { throw bad("storage location is \(items[3].kindName), not a string") }
        guard let count = items[4].int, count >= 0 else {
            throw bad("storage '\(key)' declares \(items[4].kindName) elements, not a non-negative count")
        }
        let storage: TorchStorage
        if let known = storages[key] {
            guard known.typeName == typeName, known.count == count else {
                throw bad("storage '\(key)' is declared twice with different types or sizes "
                          + "(torch.\(known.typeName) × \(known.count), torch.\(typeName) × \(count))")
            }
            storage = known
        } else {
            storage = TorchStorage(key: key, typeName: typeName, count: count)
            storages[key] = storage
            storageOrder.append(key)
        }
        var slice = TorchStorageSlice(storage: storage, offset: 0, count: count)
        if items.count == 6, case .tuple(let view) = items[5] {
            guard view.items.count == 3, let viewOffset = view.items[1].int, let viewCount = view.items[2].int,
                  viewOffset >= 0, viewCount >= 0, viewOffset <= count, viewCount <= count - viewOffset else {
                throw bad("storage '\(key)' has a view \(describe(items[5])) outside its \(count) elements")
            }
            slice = TorchStorageSlice(storage: storage, offset: viewOffset, count: viewCount)
        } else if items.count == 6, case .none = items[5] {
        } else if items.count == 6 {
            throw bad("storage view is \(items[5].kindName), not None or a tuple")
        }
        return .storage(slice)
    }

    func call(_ global: TorchGlobal, _ args: [PickleValue], offset: Int) throws -> PickleValue {
        func bad(_ detail: String) -> CheckpointError {
            .invalidPickle(path: path, offset: offset, detail: "\(global.qualifiedName): \(detail)")
        }
        switch global {
        case .orderedDict:
            let dict = PickleDict()
            if let first = args.first {
                // OrderedDict(iterable of pairs)
                guard args.count == 1, let pairs = first.sequence else { throw bad("expected no arguments or one list of pairs") }
                for pair in pairs {
                    guard let kv = pair.sequence, kv.count == 2 else { throw bad("an item is not a (key, value) pair") }
                    do { try dict.set(kv[0], kv[1]) } catch { throw bad("containers nest too deeply") }
                }
            }
            return .dict(dict)
        case .torchSize:
            guard args.count <= 1 else { throw bad("expected one sequence of ints") }
            let items = args.first?.sequence ?? []
            guard items.allSatisfy({ $0.int != nil }) else { throw bad("sizes must be ints") }
            do { return .tuple(try PickleTuple(items)) } catch { throw bad("containers nest too deeply") }
        case .rebuildTensorV2, .rebuildTensor:
            let expected = global == .rebuildTensor ? [4] : [6, 7]
            guard expected.contains(args.count) else {
                throw bad("expected \(expected.map(String.init).joined(separator: " or ")) arguments, got \(args.count)")
            }
            guard case .storage(let slice) = args[0] else { throw bad("argument 1 is \(args[0].kindName), not a storage") }
            guard let storageOffset = args[1].int, storageOffset >= 0 else {
                throw bad("storage offset is \(describe(args[1])), not a non-negative int")
            }
            guard let shape = ints(args[2]), shape.allSatisfy({ $0 >= 0 }) else {
                throw bad("size is \(describe(args[2])), not a tuple of non-negative ints")
            }
            guard let strides = ints(args[3]), strides.allSatisfy({ $0 >= 0 }) else {
                throw bad("stride is \(describe(args[3])), not a tuple of non-negative ints")
            }
            guard shape.count == strides.count else {
                throw bad("size \(CheckpointError.shapeText(shape)) and stride \(CheckpointError.shapeText(strides)) differ in length")
            }
            if args.count >= 6 { try requireNoHooks(args[5], bad) }
            return .tensor(TorchTensorView(slice: slice, offset: storageOffset, shape: shape, strides: strides))
        case .rebuildParameter, .rebuildParameterWithState:
            let expected = global == .rebuildParameter ? 3 : 4
            guard args.count == expected else { throw bad("expected \(expected) arguments, got \(args.count)") }
            guard case .tensor = args[0] else { throw bad("argument 1 is \(args[0].kindName), not a tensor") }
            try requireNoHooks(args[2], bad)
            return args[0]
        case .storageType(let name):
            throw CheckpointError.invalidPickle(
                path: path, offset: offset,
                detail: "the pickle calls torch.\(name) (storages are only referenced by persistent ids in a checkpoint)")
        }
    }

    /// Backward hooks must be an empty dict: a hook is a Python function.
    private func requireNoHooks(_ value: PickleValue, _ bad: (String) -> CheckpointError) throws {
        switch value {
        case .none: return
        case .dict(let d) where d.entries.isEmpty: return
        default: throw bad("backward hooks must be empty, found \(value.kindName)")
        }
    }

    private func ints(_ value: PickleValue) -> [Int]? {
        guard let items = value.sequence else { return nil }
        var out: [Int] = []
        out.reserveCapacity(items.count)
        for item in items {
            guard let i = item.int else { return nil }
            out.append(i)
        }
        return out
    }

    private func describe(_ value: PickleValue) -> String {
        switch value {
        case .int(let v): return String(v)
        case .tuple, .list:
            let items = value.sequence ?? []
            return "(" + items.prefix(8).map { item -> String in
                if case .int(let v) = item { return String(v) }
                return item.kindName
            }.joined(separator: ", ") + (items.count > 8 ? ", …" : "") + ")"
        default: return value.kindName
        }
    }
}

// MARK: - From the unpickled object to named tensors

/// The tensors of an unpickled checkpoint, with dotted keys, in file order.
struct TorchStateDict {
    var tensors: [(key: String, view: TorchTensorView)] = []
    /// Keys (dotted paths) of values that are not tensors and were therefore not loaded.
    var skipped: [String] = []

    /// Reads the top-level object. A dict that holds tensors directly (what `state_dict()`
    /// gives, and what timm, torchvision and Hugging Face files hold) is taken as is: its tensor
    /// values are the checkpoint, other values are listed in `skipped`. A dict holding no tensor
    /// at top level (e.g. `{"state_dict": …, "epoch": 3}`) is flattened: nested dicts' tensors
    /// get dotted keys such as `state_dict.conv.weight`.
    init(_ root: PickleValue, path: String) throws {
        guard case .dict(let dict) = root else {
            throw CheckpointError.unrecognizedFormat(
                path: path, detail: "the pickle holds \(root.kindName), not a dict of tensors (a state dict)")
        }
        var seen = Set<String>()
        let flat = dict.entries.contains { if case .tensor = $0.value { return true } else { return false } }
        try collect(dict, prefix: "", flatten: !flat, seen: &seen, path: path)
    }

    private mutating func collect(_ dict: PickleDict, prefix: String, flatten: Bool,
                                  seen: inout Set<String>, path: String) throws {
        for (k, value) in dict.entries {
            let name: String
            switch k {
            case .string(let s): name = s
            case .int(let v): name = String(v)
            default:
                skipped.append(prefix + "<\(k.kindName) key>")
                continue
            }
            let key = prefix + name
            switch value {
            case .tensor(let view):
                if !seen.insert(key).inserted {
                    throw CheckpointError.duplicateTensor(
                        path: path, tensor: key, detail: "a nested dict's dotted key equals another key")
                }
                tensors.append((key, view))
            case .dict(let inner) where flatten:
                // Depth is bounded by `pickleMaxDepth`, so this recursion is too.
                try collect(inner, prefix: key + ".", flatten: true, seen: &seen, path: path)
            default:
                skipped.append(key)
            }
        }
    }
}
