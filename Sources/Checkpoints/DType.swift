import TensorEngine

/// The element types a safetensors header can name. Every one of them is read into a Float32
/// `Tensor` (integers and booleans as numbers); F32, F16, BF16 and F64 can also be written.
public enum SafetensorsDType: String, CaseIterable, Sendable {
    case f64 = "F64"
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case f8e4m3 = "F8_E4M3"
    case f8e5m2 = "F8_E5M2"
    case i64 = "I64"
    case i32 = "I32"
    case i16 = "I16"
    case i8 = "I8"
    case u64 = "U64"
    case u32 = "U32"
    case u16 = "U16"
    case u8 = "U8"
    case bool = "BOOL"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .f8e4m3, .f8e5m2, .i8, .u8, .bool: return 1
        }
    }

    /// Whether `SafetensorsWriter` can store Float32 values in this type.
    public var isWritable: Bool {
        switch self {
        case .f32, .f16, .bf16, .f64: return true
        default: return false
        }
    }
}

// MARK: - Scalar conversions

/// IEEE 754 binary16 bits -> Float (exact: every half is a float). Handles zeros, subnormals,
/// infinities and NaN (the payload is kept).
@inlinable
public func halfBitsToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    let mantissa = UInt32(h & 0x3FF)
    if exponent == 0 {
        if mantissa == 0 { return Float(bitPattern: sign) }
        // Subnormal: mantissa × 2^-24, exact in Float.
        let magnitude = Float(mantissa) * 0x1p-24
        return sign == 0 ? magnitude : -magnitude
    }
    if exponent == 0x1F {
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    }
    return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
}

/// Float -> IEEE 754 binary16 bits, rounding to nearest even. Values beyond the half range
/// become ±infinity, tiny values become subnormals or ±0, NaN stays NaN (quiet).
@inlinable
public func floatToHalfBits(_ f: Float) -> UInt16 {
    let x = f.bitPattern
    let sign = UInt16((x >> 16) & 0x8000)
    let exponent = Int((x >> 23) & 0xFF)
    let mantissa = x & 0x7F_FFFF
    if exponent == 0xFF {
        if mantissa == 0 { return sign | 0x7C00 }
        return sign | 0x7E00 | UInt16(truncatingIfNeeded: mantissa >> 13)
    }
    let e = exponent - 127 + 15
    if e >= 31 { return sign | 0x7C00 }
    if e <= 0 {
        if e < -10 { return sign }  // below half of the smallest subnormal: rounds to zero
        let significand = mantissa | 0x80_0000
        let shift = UInt32(14 - e)
        var r = significand >> shift
        let remainder = significand & ((UInt32(1) << shift) - 1)
        let halfway = UInt32(1) << (shift - 1)
        if remainder > halfway || (remainder == halfway && (r & 1) == 1) { r += 1 }
        return sign | UInt16(truncatingIfNeeded: r)
    }
    var h = (UInt32(e) << 10) | (mantissa >> 13)
    let remainder = mantissa & 0x1FFF
    if remainder > 0x1000 || (remainder == 0x1000 && (h & 1) == 1) { h += 1 }  // carry may reach infinity
    return sign | UInt16(truncatingIfNeeded: h)
}

/// bfloat16 bits -> Float (bfloat16 is the top half of a float32).
@inlinable
public func bfloat16BitsToFloat(_ b: UInt16) -> Float {
    Float(bitPattern: UInt32(b) << 16)
}

/// Float -> bfloat16 bits, rounding to nearest even; NaN stays NaN (quiet).
@inlinable
public func floatToBFloat16Bits(_ f: Float) -> UInt16 {
    let x = f.bitPattern
    if f.isNaN { return UInt16(truncatingIfNeeded: x >> 16) | 0x0040 }
    let rounded = x &+ 0x7FFF &+ ((x >> 16) & 1)
    return UInt16(truncatingIfNeeded: rounded >> 16)
}

/// float8 E4M3 ("fn" variant: bias 7, no infinities, S.1111.111 is NaN) -> Float.
@inlinable
public func float8E4M3BitsToFloat(_ b: UInt8) -> Float {
    let negative = (b & 0x80) != 0
    let exponent = Int((b >> 3) & 0x0F)
    let mantissa = Float(b & 0x07)
    let magnitude: Float
    if exponent == 0x0F && (b & 0x07) == 0x07 {
        return .nan
    } else if exponent == 0 {
        magnitude = mantissa * 0x1p-9  // (m / 8) × 2^-6
    } else {
        magnitude = (1 + mantissa / 8) * Float(sign: .plus, exponent: exponent - 7, significand: 1)
    }
    return negative ? -magnitude : magnitude
}

/// float8 E5M2 -> Float (the top byte of a binary16).
@inlinable
public func float8E5M2BitsToFloat(_ b: UInt8) -> Float {
    halfBitsToFloat(UInt16(b) << 8)
}

// MARK: - Bulk conversion

/// Every binary16 value as a Float, built once (256 KB) so bulk F16 reads are a table lookup.
let halfToFloatTable: [Float] = (0...0xFFFF).map { halfBitsToFloat(UInt16($0)) }

enum DTypeCodec {
    /// Converts `count` little-endian elements of `dtype` at `source` (any alignment) into floats.
    static func decode(_ dtype: SafetensorsDType, from source: UnsafeRawPointer, count: Int,
                       into destination: UnsafeMutablePointer<Float>) {
        if count == 0 { return }
        let grain = 1 << 16
        switch dtype {
        case .f32:
            #if _endian(little)
            Parallel.forRange(count, grain: grain) { r in
                UnsafeMutableRawPointer(destination + r.lowerBound)
                    .copyMemory(from: source + r.lowerBound * 4, byteCount: r.count * 4)
            }
            #else
            each(count, grain) { i in
                Float(bitPattern: UInt32(littleEndian: source.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
            }
            #endif
        case .f16:
            halfToFloatTable.withUnsafeBufferPointer { table in
                guard let lut = table.baseAddress else { return }
                each(count, grain) { i in
                    lut[Int(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))]
                }
            }
        case .bf16:
            each(count, grain) { i in
                bfloat16BitsToFloat(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
            }
        case .f64:
            each(count, grain) { i in
                Float(Double(bitPattern: UInt64(littleEndian: source.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))))
            }
        case .f8e4m3:
            each(count, grain) { i in float8E4M3BitsToFloat(source.load(fromByteOffset: i, as: UInt8.self)) }
        case .f8e5m2:
            each(count, grain) { i in float8E5M2BitsToFloat(source.load(fromByteOffset: i, as: UInt8.self)) }
        case .i64:
            each(count, grain) { i in
                Float(Int64(littleEndian: source.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)))
            }
        case .i32:
            each(count, grain) { i in
                Float(Int32(littleEndian: source.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)))
            }
        case .i16:
            each(count, grain) { i in
                Float(Int16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: Int16.self)))
            }
        case .i8:
            each(count, grain) { i in Float(source.load(fromByteOffset: i, as: Int8.self)) }
        case .u64:
            each(count, grain) { i in
                Float(UInt64(littleEndian: source.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)))
            }
        case .u32:
            each(count, grain) { i in
                Float(UInt32(littleEndian: source.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
            }
        case .u16:
            each(count, grain) { i in
                Float(UInt16(littleEndian: source.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
            }
        case .u8:
            each(count, grain) { i in Float(source.load(fromByteOffset: i, as: UInt8.self)) }
        case .bool:
            each(count, grain) { i in source.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0 }
        }

        @inline(__always)
        func each(_ n: Int, _ grain: Int, _ value: (Int) -> Float) {
            Parallel.forRange(n, grain: grain) { r in
                for i in r { destination[i] = value(i) }
            }
        }
    }

    /// Converts `count` floats at `source` into little-endian `dtype` bytes at `destination`
    /// (`count * dtype.byteSize` bytes). Only writable dtypes are accepted by callers.
    static func encode(_ dtype: SafetensorsDType, from source: UnsafePointer<Float>, count: Int,
                       into destination: UnsafeMutableRawPointer) {
        switch dtype {
        case .f32:
            for i in 0..<count {
                destination.storeBytes(of: source[i].bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
            }
        case .f16:
            for i in 0..<count {
                destination.storeBytes(of: floatToHalfBits(source[i]).littleEndian, toByteOffset: i * 2, as: UInt16.self)
            }
        case .bf16:
            for i in 0..<count {
                destination.storeBytes(of: floatToBFloat16Bits(source[i]).littleEndian, toByteOffset: i * 2, as: UInt16.self)
            }
        case .f64:
            for i in 0..<count {
                destination.storeBytes(of: Double(source[i]).bitPattern.littleEndian, toByteOffset: i * 8, as: UInt64.self)
            }
        default:
            break
        }
    }
}

extension DTypeCodec {
    /// Converts the strided view `shape`/`strides` (in elements) starting `offset` elements after
    /// `source` into a contiguous row-major Float buffer. The caller has checked that every
    /// element the view reaches lies inside the source. Rows whose last stride is 1 are converted
    /// as runs; other layouts element by element.
    static func gather(_ dtype: SafetensorsDType, from source: UnsafeRawPointer, offset: Int,
                       shape: [Int], strides: [Int], into destination: UnsafeMutablePointer<Float>) {
        let count = shape.reduce(1, *)
        if count == 0 { return }
        let size = dtype.byteSize
        guard let lastShape = shape.last, let lastStride = strides.last else {
            decode(dtype, from: source + offset * size, count: 1, into: destination)
            return
        }
        let outer = shape.dropLast()
        var index = [Int](repeating: 0, count: outer.count)
        var base = offset
        var written = 0
        while written < count {
            if lastStride == 1 {
                decode(dtype, from: source + base * size, count: lastShape, into: destination + written)
            } else {
                for j in 0..<lastShape {
                    decode(dtype, from: source + (base + j * lastStride) * size, count: 1, into: destination + written + j)
                }
            }
            written += lastShape
            // Odometer over the outer dimensions.
            var d = outer.count - 1
            while d >= 0 {
                index[d] += 1
                base += strides[d]
                if index[d] < shape[d] { break }
                base -= strides[d] * shape[d]
                index[d] = 0
                d -= 1
            }
        }
    }

    /// Reverses the byte order of every `elementSize`-byte element in place (big-endian files).
    static func swapBytes(_ buffer: UnsafeMutableRawPointer, byteCount: Int, elementSize: Int) {
        if elementSize <= 1 { return }
        let bytes = buffer.assumingMemoryBound(to: UInt8.self)
        var i = 0
        while i + elementSize <= byteCount {
            var lo = i, hi = i + elementSize - 1
            while lo < hi {
                let t = bytes[lo]
                bytes[lo] = bytes[hi]
                bytes[hi] = t
                lo += 1
                hi -= 1
            }
            i += elementSize
        }
    }
}
