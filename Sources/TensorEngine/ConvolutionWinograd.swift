import Foundation

// MARK: - Winograd F(2×2, 3×3)
//
// For 3×3, stride 1, undilated, ungrouped convolutions (most of a ResNet's arithmetic) the output
// is computed in 2×2 tiles from 4×4 input tiles: Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A. The element-wise
// products of all tiles become 16 GEMMs [outC, inC]·[inC, tiles], 2.25× fewer multiplications
// than im2col. The transforms only add, subtract and halve, so rounding stays at im2col's level.
//
// Backward: the input gradient is the same algorithm applied to the output gradient with the
// kernel rotated 180° and in/out channels swapped (padding 2 − p); the weight gradient is
// Gᵀ[Σ_tiles (A dY Aᵀ) ⊙ (Bᵀ d B)]G, the exact adjoint of the forward transform, accumulated per
// fixed chunk of images like the im2col path.

/// Test hook: lets tests compare the Winograd kernels with the im2col ones.
enum ConvolutionAlgorithms {
    nonisolated(unsafe) static var winogradEnabled = true
}

extension Conv2dGeometry {
    /// Whether the Winograd kernels apply (and pay off) for this convolution.
    var usesWinograd: Bool {
        ConvolutionAlgorithms.winogradEnabled && kh == 3 && kw == 3 && sh == 1 && sw == 1 && dh == 1 && dw == 1
            && groups == 1 && ph <= 2 && pw <= 2 && c >= 16 && o >= 16 && oh >= 2 && ow >= 7
    }
}

/// Sizes of one Winograd convolution (input [n, c, h, w] → output [n, o, oh, ow]).
struct WinogradShape {
    let n: Int, c: Int, h: Int, w: Int, o: Int, ph: Int, pw: Int
    let oh: Int, ow: Int
    /// Tile rows and columns (2×2 outputs each).
    let th: Int, tw: Int
    /// Zero-padded input plane, stored as its even and its odd columns (two hp × wpe planes) so
    /// every tile's 4 columns are contiguous loads: rows, columns per half.
    let hp: Int, wpe: Int
    /// Padded output-gradient plane (also split into even and odd columns): columns per half.
    let wge: Int
    let sub: Int, subBatches: Int, chunks: Int

    var tiles: Int { th * tw }

    init(n: Int, c: Int, h: Int, w: Int, o: Int, ph: Int, pw: Int) {
        self.n = n; self.c = c; self.h = h; self.w = w; self.o = o; self.ph = ph; self.pw = pw
        oh = h + 2 * ph - 2
        ow = w + 2 * pw - 2
        th = (oh + 1) / 2
        tw = (ow + 1) / 2
        let blocks = (tw + 7) / 8
        hp = 2 * th + 2
        wpe = Swift.max(8 * blocks + 8, (w + pw) / 2 + 1)
        wge = 8 * blocks + 8
        let t = th * tw
        var s = 1
        // Aim for GEMMs at least 384 columns wide, but keep two or more sub-batches to divide.
        while s * t < 384 && s * 4 <= n && 16 * Swift.max(c, o) * s * 2 * t <= (1 << 22) { s *= 2 }
        sub = s
        subBatches = (n + s - 1) / s
        chunks = convGradientChunks(subBatches: subBatches, gradientCount: 16 * o * c)
    }

    @inline(__always) func images(_ s: Int) -> Range<Int> { (s * sub)..<Swift.min(n, (s + 1) * sub) }
    @inline(__always) func subBatches(inChunk ch: Int) -> Range<Int> {
        (ch * subBatches / chunks)..<((ch + 1) * subBatches / chunks)
    }
    var padCount: Int { 2 * hp * wpe }
    var gradPadCount: Int { 2 * 2 * th * wge }
    /// Row length of the transformed matrices for a sub-batch of `images` images: the tile
    /// columns plus 8 so that every 8-tile block may be stored whole (the spare lanes of a
    /// row's last block land in the next image's columns, written afterwards, or in the padding).
    @inline(__always) func rowLength(images: Int) -> Int { images * tiles + 8 }
    /// Floats of one transformed [16][rows][rowLength] buffer.
    func matrixCount(rows: Int) -> Int { 16 * rows * rowLength(images: sub) }
}

/// Writes a, b interleaved (a0 b0 a1 b1 …) to `n` ≤ 16 floats at p.
@inline(__always)
func storeInterleaved(_ a: V8, _ b: V8, _ p: UnsafeMutablePointer<Float>, _ n: Int) {
    let lo = V8(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3])
    let hi = V8(a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7])
    if n == 16 {
        store8(lo, p)
        store8(hi, p + 8)
    } else {
        for l in 0..<Swift.min(n, 8) { p[l] = lo[l] }
        if n > 8 { for l in 0..<(n - 8) { p[8 + l] = hi[l] } }
    }
}

/// Copies n floats to padded columns `offset ..< offset + n` of a row stored as even columns
/// (`even[c / 2]`) and odd columns (`odd[c / 2]`).
@inline(__always)
func deinterleaveRow(_ src: UnsafePointer<Float>, _ n: Int, offset: Int,
                     _ even: UnsafeMutablePointer<Float>, _ odd: UnsafeMutablePointer<Float>) {
    var k = 0
    if offset & 1 == 1, n > 0 { odd[offset >> 1] = src[0]; k = 1 }
    // From here padded column offset + k is even.
    while k + 16 <= n {
        let a = load8(src + k), b = load8(src + k + 8)
        let h = (offset + k) >> 1
        store8(V8(a[0], a[2], a[4], a[6], b[0], b[2], b[4], b[6]), even + h)
        store8(V8(a[1], a[3], a[5], a[7], b[1], b[3], b[5], b[7]), odd + h)
        k += 16
    }
    while k < n {
        let c = offset + k
        if c & 1 == 0 { even[c >> 1] = src[k] } else { odd[c >> 1] = src[k] }
        k += 1
    }
}

/// Bᵀ d B of every tile of one padded input plane (even/odd column halves, see
/// `WinogradShape.wpe`); element ξ of tile t goes to dst[ξ·xiStride + t].
/// Stores whole 8-tile blocks (see `WinogradShape.rowLength`).
func winogradInputTransform(_ pad: UnsafePointer<Float>, _ s: WinogradShape, _ dst: UnsafeMutablePointer<Float>, xiStride: Int) {
    let we = s.wpe, tw = s.tw
    let even = pad, odd = pad + s.hp * we
    for ty in 0..<s.th {
        var tx = 0
        while tx < tw {
            // Columns 2tx … 2tx+3 of padded row 2ty + r, for 8 tiles.
            @inline(__always) func quad(_ r: Int) -> (V8, V8, V8, V8) {
                let off = (2 * ty + r) * we + tx
                return (load8(even + off), load8(odd + off), load8(even + off + 1), load8(odd + off + 1))
            }
            let d0 = quad(0), d1 = quad(1), d2 = quad(2), d3 = quad(3)
            let p = dst + ty * tw + tx
            // Row i of t = Bᵀ d, then V row i = t_i B.
            @inline(__always) func row(_ i: Int, _ a: V8, _ b: V8, _ c: V8, _ d: V8) {
                let q = p + 4 * i * xiStride
                store8(a - c, q)
                store8(b + c, q + xiStride)
                store8(c - b, q + 2 * xiStride)
                store8(b - d, q + 3 * xiStride)
            }
            row(0, d0.0 - d2.0, d0.1 - d2.1, d0.2 - d2.2, d0.3 - d2.3)
            row(1, d1.0 + d2.0, d1.1 + d2.1, d1.2 + d2.2, d1.3 + d2.3)
            row(2, d2.0 - d1.0, d2.1 - d1.1, d2.2 - d1.2, d2.3 - d1.3)
            row(3, d1.0 - d3.0, d1.1 - d3.1, d1.2 - d3.2, d1.3 - d3.3)
            tx += 8
        }
    }
}

/// Aᵀ m A of every tile (element ξ of tile t at m[ξ·xiStride + t]) plus `bias`, into an oh×ow plane.
func winogradOutputTransform(_ m: UnsafePointer<Float>, _ s: WinogradShape, xiStride: Int, bias: Float,
                             _ out: UnsafeMutablePointer<Float>) {
    let tw = s.tw, OW = s.ow, OH = s.oh
    let bv = splat(bias)
    for ty in 0..<s.th {
        var tx = 0
        while tx < tw {
            let base = m + ty * tw + tx
            // One column j of Aᵀ m, then the two rows times A.
            @inline(__always) func column(_ j: Int) -> (V8, V8) {
                let m0 = load8(base + j * xiStride), m1 = load8(base + (4 + j) * xiStride)
                let m2 = load8(base + (8 + j) * xiStride), m3 = load8(base + (12 + j) * xiStride)
                return (m0 + m1 + m2, m1 - m2 - m3)
            }
            let q0 = column(0), q1 = column(1), q2 = column(2), q3 = column(3)
            let y00 = q0.0 + q1.0 + q2.0 + bv, y01 = q1.0 - q2.0 - q3.0 + bv
            let y10 = q0.1 + q1.1 + q2.1 + bv, y11 = q1.1 - q2.1 - q3.1 + bv
            let col = 2 * tx
            let n = Swift.min(16, OW - col)
            storeInterleaved(y00, y01, out + 2 * ty * OW + col, n)
            if 2 * ty + 1 < OH { storeInterleaved(y10, y11, out + (2 * ty + 1) * OW + col, n) }
            tx += 8
        }
    }
}

/// A dY Aᵀ of every 2×2 output-gradient tile of one padded plane (2·th rows, even/odd column
/// halves of `wge` columns). Stores whole 8-tile blocks.
func winogradGradOutputTransform(_ gpad: UnsafePointer<Float>, _ s: WinogradShape, _ dst: UnsafeMutablePointer<Float>, xiStride: Int) {
    let we = s.wge, tw = s.tw
    let even = gpad, odd = gpad + 2 * s.th * we
    for ty in 0..<s.th {
        let r0 = 2 * ty * we, r1 = r0 + we
        var tx = 0
        while tx < tw {
            let g00 = load8(even + r0 + tx), g01 = load8(odd + r0 + tx)
            let g10 = load8(even + r1 + tx), g11 = load8(odd + r1 + tx)
            let p = dst + ty * tw + tx
            // Rows of A·g: g0, g0 + g1, g0 − g1, −g1 (two columns each), then the same on columns.
            @inline(__always) func row(_ i: Int, _ a: V8, _ b: V8) {
                let q = p + 4 * i * xiStride
                store8(a, q)
                store8(a + b, q + xiStride)
                store8(a - b, q + 2 * xiStride)
                store8(V8() - b, q + 3 * xiStride)
            }
            row(0, g00, g01)
            row(1, g00 + g10, g01 + g11)
            row(2, g00 - g10, g01 - g11)
            row(3, V8() - g10, V8() - g11)
            tx += 8
        }
    }
}

/// U[ξ][a][b] = (G g Gᵀ)[ξ] for the 3×3 kernel g of weight [o, c, 3, 3]: a = output, b = input
/// channel; with `flip`, the kernel rotated 180° with a = input, b = output channel (the
/// input-gradient convolution).
func winogradWeights(_ pw: UnsafePointer<Float>, o: Int, c: Int, flip: Bool) -> Storage {
    let u = Storage(count: 16 * o * c)
    let pu = u.pointer
    let rows = flip ? c : o, cols = flip ? o : c
    let plane = rows * cols
    // Rows of U in the outer loop, columns inner, so the 16 output planes are written sequentially.
    Parallel.forRange(rows, grain: Swift.max(1, 4096 / Swift.max(cols, 1))) { r in
        for a in r {
            for b in 0..<cols {
                let oc = flip ? b : a, ic = flip ? a : b
                let k = pw + (oc * c + ic) * 9
                let g0: SIMD4<Float>, g1: SIMD4<Float>, g2: SIMD4<Float>
                if flip {
                    g0 = SIMD4(k[8], k[7], k[6], 0); g1 = SIMD4(k[5], k[4], k[3], 0); g2 = SIMD4(k[2], k[1], k[0], 0)
                } else {
                    g0 = SIMD4(k[0], k[1], k[2], 0); g1 = SIMD4(k[3], k[4], k[5], 0); g2 = SIMD4(k[6], k[7], k[8], 0)
                }
                let half = SIMD4<Float>(repeating: 0.5)
                // t = G g (rows), then each row · Gᵀ.
                let t0 = g0, t1 = half * (g0 + g1 + g2), t2 = half * (g0 - g1 + g2), t3 = g2
                let dst = pu + a * cols + b
                @inline(__always) func row(_ i: Int, _ t: SIMD4<Float>) {
                    dst[(4 * i) * plane] = t[0]
                    dst[(4 * i + 1) * plane] = 0.5 * (t[0] + t[1] + t[2])
                    dst[(4 * i + 2) * plane] = 0.5 * (t[0] - t[1] + t[2])
                    dst[(4 * i + 3) * plane] = t[2]
                }
                row(0, t0); row(1, t1); row(2, t2); row(3, t3)
            }
        }
    }
    return u
}

/// gW[o][c] = Gᵀ dU[o][c] G from dU laid out [ξ][o][c].
func winogradWeightGradient(_ du: UnsafePointer<Float>, o: Int, c: Int, _ gw: UnsafeMutablePointer<Float>) {
    let plane = o * c
    Parallel.forRange(o, grain: Swift.max(1, 4096 / Swift.max(c, 1))) { r in
        for oc in r {
            for ic in 0..<c {
                let src = du + oc * c + ic
                @inline(__always) func mrow(_ i: Int) -> SIMD4<Float> {
                    SIMD4(src[(4 * i) * plane], src[(4 * i + 1) * plane], src[(4 * i + 2) * plane], src[(4 * i + 3) * plane])
                }
                let m0 = mrow(0), m1 = mrow(1), m2 = mrow(2), m3 = mrow(3)
                let half = SIMD4<Float>(repeating: 0.5)
                // t = Gᵀ m (rows), then each row · G.
                let t0 = m0 + half * (m1 + m2), t1 = half * (m1 - m2), t2 = half * (m1 + m2) + m3
                let dst = gw + (oc * c + ic) * 9
                @inline(__always) func row(_ i: Int, _ t: SIMD4<Float>) {
                    dst[i * 3] = t[0] + 0.5 * (t[1] + t[2])
                    dst[i * 3 + 1] = 0.5 * (t[1] - t[2])
                    dst[i * 3 + 2] = 0.5 * (t[1] + t[2]) + t[3]
                }
                row(0, t0); row(1, t1); row(2, t2)
            }
        }
    }
}

/// Runs `body(range, padBuffer)` over `0..<count` channels: whole in this thread, or split over
/// the workers (each with its own scratch plane) when `parallel`.
@inline(__always)
func winogradChannels(_ count: Int, padCount: Int, scratch: UnsafeMutablePointer<Float>, parallel: Bool,
                      _ body: (Range<Int>, UnsafeMutablePointer<Float>) -> Void) {
    if parallel && Parallel.threadCount > 1 && count > 1 {
        Parallel.forRange(count, grain: 1) { r in
            let store = Storage(zeroed: padCount)
            body(r, store.pointer)
            withExtendedLifetime(store) {}
        }
    } else {
        body(0..<count, scratch)
    }
}

/// Transforms channels of one image of [*, c, h, w] into V (column offset applied by the caller).
@inline(__always)
func winogradTransformImage(_ src: UnsafePointer<Float>, _ s: WinogradShape, channels: Range<Int>,
                            _ pad: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>, ld: Int) {
    let xiStride = s.c * ld
    for ch in channels {
        let plane = src + ch * s.h * s.w
        let odd = pad + s.hp * s.wpe
        for ih in 0..<s.h {
            let r = (ih + s.ph) * s.wpe
            deinterleaveRow(plane + ih * s.w, s.w, offset: s.pw, pad + r, odd + r)
        }
        winogradInputTransform(pad, s, v + ch * ld, xiStride: xiStride)
    }
}

/// Winograd forward over a batch: input px [n, c, h, w], transformed weights u [16][o][c].
func winogradForward(_ px: UnsafePointer<Float>, _ u: UnsafePointer<Float>, _ pb: UnsafePointer<Float>?,
                     _ s: WinogradShape, _ py: UnsafeMutablePointer<Float>) {
    if s.subBatches == 0 { return }
    let T = s.tiles
    let inner = s.subBatches == 1
    forEachWorker(units: s.subBatches) { worker, workers in
        // Zeroed so the spare lanes of partial blocks always hold finite values.
        let vStore = Storage(zeroed: s.matrixCount(rows: s.c)), mStore = Storage(zeroed: s.matrixCount(rows: s.o))
        let padStore = Storage(zeroed: s.padCount)
        let v = vStore.pointer, m = mStore.pointer
        var sb = worker
        while sb < s.subBatches {
            let images = s.images(sb)
            let cols = images.count * T, ld = s.rowLength(images: images.count)
            for (i, img) in images.enumerated() {
                let src = px + img * s.c * s.h * s.w
                winogradChannels(s.c, padCount: s.padCount, scratch: padStore.pointer, parallel: inner) { r, pad in
                    winogradTransformImage(src, s, channels: r, pad, v + i * T, ld: ld)
                }
            }
            for xi in 0..<16 {
                convGemm(transA: false, transB: false, m: s.o, n: cols, k: s.c, a: u + xi * s.o * s.c, lda: s.c,
                     b: v + xi * s.c * ld, ldb: ld, c: m + xi * s.o * ld, ldc: ld, parallel: inner)
            }
            let outPlane = s.oh * s.ow
            for (i, img) in images.enumerated() {
                let body: (Range<Int>) -> Void = { r in
                    for oc in r {
                        winogradOutputTransform(m + oc * ld + i * T, s, xiStride: s.o * ld, bias: pb?[oc] ?? 0,
                                                py + (img * s.o + oc) * outPlane)
                    }
                }
                if inner { Parallel.forRange(s.o, grain: 1, body) } else { body(0..<s.o) }
            }
            sb += workers
        }
        withExtendedLifetime((vStore, mStore, padStore)) {}
    }
}

/// Winograd backward: input gradient via the rotated-kernel convolution, weight gradient via the
/// transposed transforms accumulated in fixed chunks.
func winogradBackward(_ pg: UnsafePointer<Float>, _ px: UnsafePointer<Float>, _ pw: UnsafePointer<Float>,
                      _ g: Conv2dGeometry, _ gx: UnsafeMutablePointer<Float>?, _ gw: UnsafeMutablePointer<Float>?) {
    if let gx {
        let s = WinogradShape(n: g.n, c: g.o, h: g.oh, w: g.ow, o: g.c, ph: 2 - g.ph, pw: 2 - g.pw)
        let u = winogradWeights(pw, o: g.o, c: g.c, flip: true)
        winogradForward(pg, u.pointer, nil, s, gx)
        withExtendedLifetime(u) {}
    }
    guard let gw else { return }
    let s = WinogradShape(n: g.n, c: g.c, h: g.h, w: g.w, o: g.o, ph: g.ph, pw: g.pw)
    let uCount = 16 * g.o * g.c
    if s.subBatches == 0 {
        gw.initialize(repeating: 0, count: g.o * g.c * 9)
        return
    }
    let T = s.tiles
    let duStore = Storage(count: s.chunks * uCount)
    let du = duStore.pointer
    let inner = s.chunks == 1
    forEachWorker(units: s.chunks) { worker, workers in
        let vStore = Storage(zeroed: s.matrixCount(rows: s.c)), gyStore = Storage(zeroed: s.matrixCount(rows: s.o))
        let padStore = Storage(zeroed: s.padCount), gpadStore = Storage(zeroed: s.gradPadCount)
        let v = vStore.pointer, gy = gyStore.pointer
        var chunk = worker
        while chunk < s.chunks {
            let acc = du + chunk * uCount
            var first = true
            for sb in s.subBatches(inChunk: chunk) {
                let images = s.images(sb)
                let cols = images.count * T, ld = s.rowLength(images: images.count)
                for (i, img) in images.enumerated() {
                    let src = px + img * s.c * s.h * s.w
                    winogradChannels(s.c, padCount: s.padCount, scratch: padStore.pointer, parallel: inner) { r, pad in
                        winogradTransformImage(src, s, channels: r, pad, v + i * T, ld: ld)
                    }
                    let gsrc = pg + img * s.o * s.oh * s.ow
                    winogradChannels(s.o, padCount: s.gradPadCount, scratch: gpadStore.pointer, parallel: inner) { r, gpad in
                        for oc in r {
                            let plane = gsrc + oc * s.oh * s.ow
                            let odd = gpad + 2 * s.th * s.wge
                            for y in 0..<s.oh { deinterleaveRow(plane + y * s.ow, s.ow, offset: 0, gpad + y * s.wge, odd + y * s.wge) }
                            winogradGradOutputTransform(gpad, s, gy + oc * ld + i * T, xiStride: s.o * ld)
                        }
                    }
                }
                for xi in 0..<16 {
                    convGemm(transA: false, transB: true, m: s.o, n: s.c, k: cols, a: gy + xi * s.o * ld, lda: ld,
                         b: v + xi * s.c * ld, ldb: ld, beta: first ? 0 : 1, c: acc + xi * s.o * s.c, ldc: s.c, parallel: inner)
                }
                first = false
            }
            chunk += workers
        }
        withExtendedLifetime((vStore, gyStore, padStore, gpadStore)) {}
    }
    if s.chunks > 1 {
        let chunks = s.chunks
        Parallel.forRange(uCount, grain: 16384) { r in
            let lo = r.lowerBound, len = r.count
            for ch in 1..<chunks { zip8(du + lo, du + ch * uCount + lo, du + lo, len) { $0 + $1 } }
        }
    }
    winogradWeightGradient(du, o: g.o, c: g.c, gw)
    withExtendedLifetime(duStore) {}
}
