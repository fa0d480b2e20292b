import TensorEngine
#if arch(x86_64) && os(Linux)
import _Builtin_intrinsics.intel
#endif

// SIMD8 load/store helpers for the fused optimizer loops (TensorEngine keeps its own internal).

@inline(__always)
func ld8(_ p: UnsafePointer<Float>) -> V8 { UnsafeRawPointer(p).loadUnaligned(as: V8.self) }

@inline(__always)
func st8(_ v: V8, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self) }

@inline(__always)
func ldPartial(_ p: UnsafePointer<Float>, _ n: Int) -> V8 {
    var v = V8()
    for i in 0..<n { v[i] = p[i] }
    return v
}

@inline(__always)
func stPartial(_ v: V8, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n { p[i] = v[i] }
}

/// Element count below which an update runs on the calling thread only.
let optimizerGrain = 16384

/// A parameter ready for a fused update: contiguous parameter memory and a contiguous gradient
/// of the same element count (kept alive for the duration of the update).
struct UpdateItem {
    let param: Tensor
    let grad: Tensor
    let state: ParamState
    let group: Int
    var count: Int { param.count }
}

/// Correctly rounded lane-wise square root. `SIMD8.squareRoot()` lowers to eight scalar
/// `sqrtf` calls with an errno check; on x86-64 Linux (built for Haswell) this is one `vsqrtps`.
@inline(__always)
func vsqrt(_ v: V8) -> V8 {
    #if arch(x86_64) && os(Linux)
    return _mm256_sqrt_ps(v)
    #else
    return v.squareRoot()
    #endif
}
