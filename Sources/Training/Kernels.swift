import TensorEngine

// The fused optimizer loops use TensorEngine's SIMD8 helpers (load8, store8, loadPartial,
// storePartial, vsqrt).

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


