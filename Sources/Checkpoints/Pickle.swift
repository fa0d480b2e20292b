import Foundation

// A restricted reader of Python pickles (protocols 0–5 as far as `torch.save` uses them).
//
// It is a data decoder, not an interpreter: GLOBAL names are looked up in an allow-list and any
// other name is refused on the spot; REDUCE, NEWOBJ and BUILD are only ever applied to allowed
// names, and then by Swift code that builds a value (a tensor description, a dict, a tuple).
// Nothing named in the file is executed or imported. Facts about the format come from the
// opcode table of CPython's `Lib/pickletools.py`.

/// A decoded pickle value. Containers are reference types because a pickle memoizes a container
/// before filling it: the memo, the stack and any parent must all see the same object.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int64)
    /// An integer wider than 64 bits: its little-endian two's-complement bytes (LONG1/LONG4).
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple(PickleTuple)
    case list(PickleList)
    case dict(PickleDict)
    /// A name from the allow-list, not yet called.
    case global(TorchGlobal)
    /// A storage (or a legacy storage view) from a persistent id.
    case storage(TorchStorageSlice)
    /// A tensor description: storage, offset, sizes, strides. No data is read yet.
    case tensor(TorchTensorView)

    /// Container nesting below this value (0 for scalars), kept so malicious nesting is refused
    /// before any recursive walk (or release) could exhaust the stack.
    var depth: Int {
        switch self {
        case .tuple(let t): return t.depth
        case .list(let l): return l.depth
        case .dict(let d): return d.depth
        default: return 0
        }
    }

    /// "a string", "a dict", … for error messages.
    var kindName: String {
        switch self {
        case .none: return "None"
        case .bool: return "a bool"
        case .int, .bigInt: return "an int"
        case .float: return "a float"
        case .string: return "a string"
        case .bytes: return "bytes"
        case .tuple: return "a tuple"
        case .list: return "a list"
        case .dict: return "a dict"
        case .global(let g): return "the global \(g.qualifiedName)"
        case .storage: return "a storage"
        case .tensor: return "a tensor"
        }
    }

    /// The items of a tuple or list.
    var sequence: [PickleValue]? {
        switch self {
        case .tuple(let t): return t.items
        case .list(let l): return l.items
        default: return nil
        }
    }

    var int: Int? {
        if case .int(let v) = self, let i = Int(exactly: v) { return i }
        return nil
    }
}

/// The deepest container nesting a checkpoint may use (a state dict needs about five levels).
let pickleMaxDepth = 100

struct PickleDepthError: Error {}

final class PickleTuple {
    let items: [PickleValue]
    let depth: Int
    init(_ items: [PickleValue]) throws {
        self.items = items
        depth = 1 + (items.map(\.depth).max() ?? 0)
        if depth > pickleMaxDepth { throw PickleDepthError() }
    }
}

final class PickleList {
    private(set) var items: [PickleValue] = []
    private(set) var depth = 1
    func append(_ value: PickleValue) throws {
        depth = max(depth, value.depth + 1)
        if depth > pickleMaxDepth { throw PickleDepthError() }
        items.append(value)
    }
    /// Drops the items (breaks reference cycles a hostile pickle may have built).
    func clear() { items = [] }
}

/// An insertion-ordered dict. Keys that Python would hash by value (str, int, bool, None,
/// float, bytes) replace earlier entries with an equal key; other keys are kept as given.
final class PickleDict {
    private(set) var entries: [(key: PickleValue, value: PickleValue)] = []
    private var index: [String: Int] = [:]
    private(set) var depth = 1

    func set(_ key: PickleValue, _ value: PickleValue) throws {
        depth = max(depth, key.depth + 1, value.depth + 1)
        if depth > pickleMaxDepth { throw PickleDepthError() }
        if let k = Self.hashKey(key) {
            if let i = index[k] {
                entries[i].value = value
                return
            }
            index[k] = entries.count
        }
        entries.append((key, value))
    }

    func clear() {
        entries = []
        index = [:]
    }

    private static func hashKey(_ key: PickleValue) -> String? {
        switch key {
        case .string(let s): return "s" + s
        // Python: 1 == 1.0 == True hash alike.
        case .int(let v): return "n" + String(v)
        case .bool(let b): return "n" + (b ? "1" : "0")
        case .float(let d): return d == d.rounded() && abs(d) < 9e15 ? "n" + String(Int64(d)) : "f" + String(d)
        case .none: return "0"
        case .bytes(let b): return "b" + b.map { String($0, radix: 16) }.joined(separator: ",")
        default: return nil
        }
    }
}

/// What the machine asks of the format it decodes (here: PyTorch checkpoints).
protocol PickleHost {
    /// The allowed global `module.name`, or nil to refuse it.
    func resolveGlobal(module: String, name: String) -> TorchGlobal?
    /// The object a persistent id stands for.
    mutating func persistentLoad(_ id: PickleValue, offset: Int) throws -> PickleValue
    /// Applies an allowed global to arguments (REDUCE, or NEWOBJ with `isNew`).
    func call(_ global: TorchGlobal, _ args: [PickleValue], offset: Int) throws -> PickleValue
}

/// The pickle virtual machine, restricted. `run` decodes one pickle (up to STOP) from `bytes`
/// starting at `start` and returns the value and the offset just past STOP.
struct PickleMachine<Host: PickleHost> {
    let bytes: UnsafeRawBufferPointer
    /// Used in error messages.
    let path: String
    /// Added to in-buffer positions in error messages (where the pickle sits in the file).
    let reportedBase: Int
    var host: Host

    private var position = 0
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    /// Every mutable container created, emptied by `releaseContainers` to break cycles.
    private var containers: [AnyObject] = []

    init(bytes: UnsafeRawBufferPointer, path: String, reportedBase: Int = 0, host: Host) {
        self.bytes = bytes
        self.path = path
        self.reportedBase = reportedBase
        self.host = host
    }

    /// Empties every list and dict the machine created. Call once the result has been consumed:
    /// a pickle can make a container hold itself, which reference counting would never free.
    mutating func releaseContainers() {
        for c in containers {
            if let l = c as? PickleList { l.clear() } else if let d = c as? PickleDict { d.clear() }
        }
        containers = []
        memo = [:]
        stack = []
    }

    /// Decodes one pickle beginning at `start`; returns its value and the offset after STOP.
    mutating func run(from start: Int = 0) throws -> (value: PickleValue, end: Int) {
        position = start
        stack = []
        marks = []
        memo = [:]
        while true {
            let at = position
            let op = try byte(at, "an opcode")
            switch op {
            case 0x80:  // PROTO
                let version = try byte(at, "PROTO")
                if version > 5 { throw invalid(at, "pickle protocol \(version) is newer than 5") }
            case 0x95:  // FRAME: an 8-byte length hint; the frame's opcodes follow inline
                _ = try fixed(at, 8, "FRAME")
            case UInt8(ascii: "."):  // STOP
                let value = try pop(at)
                return (value, position)

            // Stack and marks
            case UInt8(ascii: "("): marks.append(stack.count)
            case UInt8(ascii: "0"):  // POP
                if let m = marks.last, m == stack.count { marks.removeLast() } else { _ = try pop(at) }
            case UInt8(ascii: "1"): _ = try popMark(at)  // POP_MARK
            case UInt8(ascii: "2"): stack.append(try top(at))  // DUP

            // Scalars
            case UInt8(ascii: "N"): stack.append(.none)
            case 0x88: stack.append(.bool(true))
            case 0x89: stack.append(.bool(false))
            case UInt8(ascii: "J"):  // BININT
                stack.append(.int(Int64(Int32(bitPattern: try uint32(at, "BININT")))))
            case UInt8(ascii: "K"): stack.append(.int(Int64(try byte(at, "BININT1"))))
            case UInt8(ascii: "M"):
                let b = try fixed(at, 2, "BININT2")
                stack.append(.int(Int64(b[b.startIndex]) | Int64(b[b.startIndex + 1]) << 8))
            case 0x8a:  // LONG1
                let n = Int(try byte(at, "LONG1"))
                stack.append(Self.long(try fixed(at, n, "LONG1")))
            case 0x8b:  // LONG4
                let n = Int(Int32(bitPattern: try uint32(at, "LONG4")))
                if n < 0 { throw invalid(at, "LONG4 with negative length \(n)") }
                stack.append(Self.long(try fixed(at, n, "LONG4")))
            case UInt8(ascii: "I"):  // INT (text; "00"/"01" are False/True)
                let text = try line(at, "INT")
                if text == "00" { stack.append(.bool(false)) } else if text == "01" { stack.append(.bool(true)) } else {
                    guard let v = Int64(text) else { throw invalid(at, "INT argument '\(text.prefix(40))' is not an integer") }
                    stack.append(.int(v))
                }
            case UInt8(ascii: "L"):  // LONG (text, optional trailing L)
                var text = try line(at, "LONG")
                if text.hasSuffix("L") { text.removeLast() }
                guard let v = Int64(text) else { throw invalid(at, "LONG argument '\(text.prefix(40))' does not fit 64 bits") }
                stack.append(.int(v))
            case UInt8(ascii: "G"):  // BINFLOAT, big-endian
                let b = try fixed(at, 8, "BINFLOAT")
                let bits = b.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                stack.append(.float(Double(bitPattern: bits)))
            case UInt8(ascii: "F"):  // FLOAT (text)
                let text = try line(at, "FLOAT")
                guard let v = Double(text) else { throw invalid(at, "FLOAT argument '\(text.prefix(40))' is not a number") }
                stack.append(.float(v))

            // Strings and bytes
            case UInt8(ascii: "X"): stack.append(try unicode(at, length: Int(try uint32(at, "BINUNICODE")), "BINUNICODE"))
            case 0x8c: stack.append(try unicode(at, length: Int(try byte(at, "SHORT_BINUNICODE")), "SHORT_BINUNICODE"))
            case 0x8d: stack.append(try unicode(at, length: try length8(at, "BINUNICODE8"), "BINUNICODE8"))
            case UInt8(ascii: "T"):  // BINSTRING (Python 2 str): text when it is UTF-8, else bytes
                let n = Int(Int32(bitPattern: try uint32(at, "BINSTRING")))
                if n < 0 { throw invalid(at, "BINSTRING with negative length \(n)") }
                stack.append(Self.py2String(try fixed(at, n, "BINSTRING")))
            case UInt8(ascii: "U"):
                stack.append(Self.py2String(try fixed(at, Int(try byte(at, "SHORT_BINSTRING")), "SHORT_BINSTRING")))
            case UInt8(ascii: "B"): stack.append(.bytes(Array(try fixed(at, Int(try uint32(at, "BINBYTES")), "BINBYTES"))))
            case UInt8(ascii: "C"): stack.append(.bytes(Array(try fixed(at, Int(try byte(at, "SHORT_BINBYTES")), "SHORT_BINBYTES"))))
            case 0x8e: stack.append(.bytes(Array(try fixed(at, try length8(at, "BINBYTES8"), "BINBYTES8"))))
            case 0x96: stack.append(.bytes(Array(try fixed(at, try length8(at, "BYTEARRAY8"), "BYTEARRAY8"))))

            // Containers
            case UInt8(ascii: ")"): stack.append(.tuple(try tuple(at, [])))
            case UInt8(ascii: "t"): stack.append(.tuple(try tuple(at, try popMark(at))))
            case 0x85, 0x86, 0x87:  // TUPLE1…3
                let n = Int(op - 0x84)
                if stack.count - (marks.last ?? 0) < n { throw invalid(at, "TUPLE\(n) needs \(n) values on the stack") }
                let items = Array(stack.suffix(n))
                stack.removeLast(n)
                stack.append(.tuple(try tuple(at, items)))
            case UInt8(ascii: "]"), 0x8f:  // EMPTY_LIST, EMPTY_SET (a set is kept as a list)
                stack.append(.list(newList()))
            case UInt8(ascii: "l"), 0x91:  // LIST, FROZENSET
                let items = try popMark(at)
                let list = newList()
                for item in items { try guarded(at) { try list.append(item) } }
                stack.append(.list(list))
            case UInt8(ascii: "a"):  // APPEND
                let item = try pop(at)
                try append(at, [item])
            case UInt8(ascii: "e"), 0x90:  // APPENDS, ADDITEMS
                let items = try popMark(at)  // (before `append` reads the stack)
                try append(at, items)
            case UInt8(ascii: "}"): stack.append(.dict(newDict()))
            case UInt8(ascii: "d"):  // DICT
                let items = try popMark(at)
                let dict = newDict()
                try setItems(at, dict, items)
                stack.append(.dict(dict))
            case UInt8(ascii: "s"):  // SETITEM
                let value = try pop(at)
                let key = try pop(at)
                try setItems(at, try topDict(at, "SETITEM"), [key, value])
            case UInt8(ascii: "u"):  // SETITEMS
                let items = try popMark(at)
                try setItems(at, try topDict(at, "SETITEMS"), items)

            // Memo
            case UInt8(ascii: "p"):
                let text = try line(at, "PUT")
                guard let i = Int(text) else { throw invalid(at, "PUT index '\(text.prefix(40))' is not an integer") }
                memo[i] = try top(at)
            case UInt8(ascii: "q"): memo[Int(try byte(at, "BINPUT"))] = try top(at)
            case UInt8(ascii: "r"): memo[Int(try uint32(at, "LONG_BINPUT"))] = try top(at)
            case 0x94: memo[memo.count] = try top(at)  // MEMOIZE
            case UInt8(ascii: "g"):
                let text = try line(at, "GET")
                guard let i = Int(text) else { throw invalid(at, "GET index '\(text.prefix(40))' is not an integer") }
                stack.append(try memoized(at, i))
            case UInt8(ascii: "h"): stack.append(try memoized(at, Int(try byte(at, "BINGET"))))
            case UInt8(ascii: "j"): stack.append(try memoized(at, Int(try uint32(at, "LONG_BINGET"))))

            // Globals and calls: only allow-listed names, applied by Swift code.
            case UInt8(ascii: "c"):  // GLOBAL "module\nname\n"
                let module = try line(at, "GLOBAL")
                let name = try line(at, "GLOBAL")
                stack.append(.global(try resolve(at, module, name)))
            case 0x93:  // STACK_GLOBAL
                let nameValue = try pop(at)
                let moduleValue = try pop(at)
                guard case .string(let module) = moduleValue, case .string(let name) = nameValue else {
                    throw invalid(at, "STACK_GLOBAL needs two strings, found \(moduleValue.kindName) and \(nameValue.kindName)")
                }
                stack.append(.global(try resolve(at, module, name)))
            case UInt8(ascii: "R"):  // REDUCE
                let args = try pop(at)
                let callable = try pop(at)
                stack.append(try apply(at, callable, args, "REDUCE"))
            case 0x81:  // NEWOBJ: cls.__new__(cls, *args)
                let args = try pop(at)
                let cls = try pop(at)
                stack.append(try apply(at, cls, args, "NEWOBJ"))
            case UInt8(ascii: "b"):  // BUILD: obj.__setstate__(state)
                let state = try pop(at)
                let target = try top(at)
                // An OrderedDict from `state_dict()` carries `_metadata` (module versions) as its
                // attribute state; attributes are not tensors, so the state is dropped.
                guard case .dict = target else {
                    throw invalid(at, "BUILD (set state) applied to \(target.kindName); only a dict's attributes may be set")
                }
                _ = state
            case UInt8(ascii: "Q"):  // BINPERSID
                let id = try pop(at)
                stack.append(try host.persistentLoad(id, offset: reportedBase + at))

            default:
                throw CheckpointError.unsupportedOpcode(path: path, opcode: Self.opcodeName(op), offset: reportedBase + at)
            }
        }
    }

    // MARK: - Reading bytes

    private mutating func byte(_ at: Int, _ what: String) throws -> UInt8 {
        guard position < bytes.count else { throw truncated(at, what) }
        let b = bytes[position]
        position += 1
        return b
    }

    private mutating func fixed(_ at: Int, _ n: Int, _ what: String) throws -> UnsafeRawBufferPointer.SubSequence {
        guard n >= 0, n <= bytes.count - position else { throw truncated(at, what) }
        let slice = bytes[position..<(position + n)]
        position += n
        return slice
    }

    private mutating func uint32(_ at: Int, _ what: String) throws -> UInt32 {
        let b = try fixed(at, 4, what)
        return b.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    private mutating func length8(_ at: Int, _ what: String) throws -> Int {
        let b = try fixed(at, 8, what)
        let v = b.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard v <= UInt64(bytes.count - position) else { throw truncated(at, what) }
        return Int(v)
    }

    /// A newline-terminated ASCII argument (protocol 0 opcodes), without the newline.
    private mutating func line(_ at: Int, _ what: String) throws -> String {
        var end = position
        while end < bytes.count && bytes[end] != 0x0A {
            end += 1
            if end - position > 4096 { throw invalid(at, "\(what) argument longer than 4096 bytes") }
        }
        guard end < bytes.count else { throw truncated(at, what) }
        let text = String(decoding: bytes[position..<end], as: UTF8.self)
        position = end + 1
        return text
    }

    private mutating func unicode(_ at: Int, length: Int, _ what: String) throws -> PickleValue {
        let b = try fixed(at, length, what)
        guard let s = String(bytes: b, encoding: .utf8) else { throw invalid(at, "\(what) holds invalid UTF-8") }
        return .string(s)
    }

    private static func py2String(_ b: UnsafeRawBufferPointer.SubSequence) -> PickleValue {
        if let s = String(bytes: b, encoding: .utf8) { return .string(s) }
        return .bytes(Array(b))
    }

    private static func long(_ b: UnsafeRawBufferPointer.SubSequence) -> PickleValue {
        let raw = Array(b)
        if raw.isEmpty { return .int(0) }
        if raw.count > 8 { return .bigInt(raw) }
        var v: UInt64 = 0
        for (i, x) in raw.enumerated() { v |= UInt64(x) << (8 * UInt64(i)) }
        // Sign-extend from the top byte.
        if raw.count < 8, let last = raw.last, last & 0x80 != 0 { v |= ~UInt64(0) << (8 * UInt64(raw.count)) }
        return .int(Int64(bitPattern: v))
    }

    // MARK: - Stack

    private mutating func pop(_ at: Int) throws -> PickleValue {
        if stack.count <= (marks.last ?? 0) || stack.isEmpty {
            throw invalid(at, "\(Self.opcodeName(bytes[at])) needs a value but the stack is empty")
        }
        return stack.removeLast()
    }

    private func top(_ at: Int) throws -> PickleValue {
        guard let v = stack.last, stack.count > (marks.last ?? 0) else {
            throw invalid(at, "\(Self.opcodeName(bytes[at])) needs a value but the stack is empty")
        }
        return v
    }

    private mutating func popMark(_ at: Int) throws -> [PickleValue] {
        guard let m = marks.popLast() else {
            throw invalid(at, "\(Self.opcodeName(bytes[at])) needs a MARK but there is none")
        }
        let items = Array(stack[m...])
        stack.removeLast(stack.count - m)
        return items
    }

    private func memoized(_ at: Int, _ i: Int) throws -> PickleValue {
        guard let v = memo[i] else { throw invalid(at, "memo entry \(i) is read before it is written") }
        return v
    }

    private func topDict(_ at: Int, _ what: String) throws -> PickleDict {
        let target = try top(at)
        guard case .dict(let d) = target else { throw invalid(at, "\(what) applied to \(target.kindName), not a dict") }
        return d
    }

    private mutating func newList() -> PickleList {
        let l = PickleList()
        containers.append(l)
        return l
    }

    private mutating func newDict() -> PickleDict {
        let d = PickleDict()
        containers.append(d)
        return d
    }

    private func tuple(_ at: Int, _ items: [PickleValue]) throws -> PickleTuple {
        try guarded(at) { try PickleTuple(items) }
    }

    private func append(_ at: Int, _ items: [PickleValue]) throws {
        let target = try top(at)
        guard case .list(let list) = target else {
            throw invalid(at, "\(Self.opcodeName(bytes[at])) applied to \(target.kindName), not a list")
        }
        for item in items { try guarded(at) { try list.append(item) } }
    }

    private func setItems(_ at: Int, _ dict: PickleDict, _ items: [PickleValue]) throws {
        if items.count % 2 != 0 { throw invalid(at, "\(Self.opcodeName(bytes[at])) got an odd number of values (\(items.count))") }
        var i = 0
        while i < items.count {
            let (k, v) = (items[i], items[i + 1])
            try guarded(at) { try dict.set(k, v) }
            i += 2
        }
    }

    private func guarded<T>(_ at: Int, _ body: () throws -> T) throws -> T {
        do { return try body() } catch is PickleDepthError {
            throw invalid(at, "containers nest deeper than \(pickleMaxDepth) levels")
        }
    }

    // MARK: - Globals

    private func resolve(_ at: Int, _ module: String, _ name: String) throws -> TorchGlobal {
        guard let g = host.resolveGlobal(module: module, name: name) else {
            let shown = (module + "." + name).prefix(200)
            throw CheckpointError.forbiddenGlobal(path: path, global: String(shown), offset: reportedBase + at)
        }
        return g
    }

    private func apply(_ at: Int, _ callable: PickleValue, _ args: PickleValue, _ op: String) throws -> PickleValue {
        guard case .global(let g) = callable else {
            throw invalid(at, "\(op) calls \(callable.kindName), which is not callable")
        }
        guard let items = args.sequence, case .tuple = args else {
            throw invalid(at, "\(op) of \(g.qualifiedName) with \(args.kindName) instead of an argument tuple")
        }
        return try host.call(g, items, offset: reportedBase + at)
    }

    // MARK: - Errors

    private func truncated(_ at: Int, _ what: String) -> CheckpointError {
        .truncated(path: path, detail: "the pickle ends inside \(what) (opcode at byte \(reportedBase + at))")
    }

    private func invalid(_ at: Int, _ detail: String) -> CheckpointError {
        .invalidPickle(path: path, offset: reportedBase + at, detail: detail)
    }

    /// The pickletools name of an opcode byte ("0xNN" when it is no opcode at all).
    static func opcodeName(_ op: UInt8) -> String {
        let names: [UInt8: String] = [
            0x28: "MARK", 0x2e: "STOP", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP", 0x46: "FLOAT",
            0x49: "INT", 0x4a: "BININT", 0x4b: "BININT1", 0x4c: "LONG", 0x4d: "BININT2", 0x4e: "NONE",
            0x50: "PERSID", 0x51: "BINPERSID", 0x52: "REDUCE", 0x53: "STRING", 0x54: "BINSTRING",
            0x55: "SHORT_BINSTRING", 0x56: "UNICODE", 0x58: "BINUNICODE", 0x61: "APPEND", 0x62: "BUILD",
            0x63: "GLOBAL", 0x64: "DICT", 0x7d: "EMPTY_DICT", 0x65: "APPENDS", 0x67: "GET", 0x68: "BINGET",
            0x69: "INST", 0x6a: "LONG_BINGET", 0x6c: "LIST", 0x5d: "EMPTY_LIST", 0x6f: "OBJ", 0x70: "PUT",
            0x71: "BINPUT", 0x72: "LONG_BINPUT", 0x73: "SETITEM", 0x74: "TUPLE", 0x29: "EMPTY_TUPLE",
            0x75: "SETITEMS", 0x47: "BINFLOAT", 0x80: "PROTO", 0x81: "NEWOBJ", 0x82: "EXT1", 0x83: "EXT2",
            0x84: "EXT4", 0x85: "TUPLE1", 0x86: "TUPLE2", 0x87: "TUPLE3", 0x88: "NEWTRUE", 0x89: "NEWFALSE",
            0x8a: "LONG1", 0x8b: "LONG4", 0x42: "BINBYTES", 0x43: "SHORT_BINBYTES",
            0x8c: "SHORT_BINUNICODE", 0x8d: "BINUNICODE8", 0x8e: "BINBYTES8", 0x8f: "EMPTY_SET",
            0x90: "ADDITEMS", 0x91: "FROZENSET", 0x92: "NEWOBJ_EX", 0x93: "STACK_GLOBAL", 0x94: "MEMOIZE",
            0x95: "FRAME", 0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
        ]
        let hex = "0x" + (op < 16 ? "0" : "") + String(op, radix: 16)
        if let n = names[op] { return "\(n) (\(hex))" }
        return "\(hex) (not a pickle opcode)"
    }
}
