import Foundation

// MARK: - Depthwise convolution

/// Reads 8 floats at `p`, `p + s`, …, `p + 7s`. Stride 2 reads p[0...15].
@inline(__always)
func loadStrided8(_ p: UnsafePointer<Float>, _ s: Int) -> V8 {
    if s == 1 { return load8(p) }
    if s == 2 { return loadEven8(p) }
    return V8(p[0], p[s], p[2 * s], p[3 * s], p[4 * s], p[5 * s], p[6 * s], p[7 * s])
}

/// Copies one H×W plane into the interior of a zero-bordered (H + 2ph)×(W + 2pw) buffer.
@inline(__always)
func copyIntoPadded(_ src: UnsafePointer<Float>, _ g: Conv2dGeometry, _ pad: UnsafeMutablePointer<Float>) {
    let wp = g.w + 2 * g.pw
    for ih in 0..<g.h { (pad + (ih + g.ph) * wp + g.pw).update(from: src + ih * g.w, count: g.w) }
}

/// The padded-plane buffer size: the plane plus slack for the 16-wide stride-2 loads.
@inline(__always)
func paddedPlaneCount(_ g: Conv2dGeometry) -> Int { (g.h + 2 * g.ph) * (g.w + 2 * g.pw) + 16 }

/// One output plane of a depthwise correlation: out[oh][ow] = bias + Σ pad[oh·sh + ki·dh][ow·sw + kj·dw]·k[ki][kj]
/// over a zero-padded input plane with rows of length `wp`, 8 outputs at a time.
@inline(__always)
func depthwisePlane(_ pad: UnsafePointer<Float>, wp: Int, _ k: UnsafePointer<Float>, kh: Int, kw: Int,
                    dh: Int, dw: Int, sh: Int, sw: Int, oh: Int, ow: Int, bias: Float,
                    _ out: UnsafeMutablePointer<Float>) {
    let bv = splat(bias)
    if kh == 3 && kw == 3 && sw == 1 {
        // The common case with the nine weights held in registers.
        let w0 = splat(k[0]), w1 = splat(k[1]), w2 = splat(k[2]), w3 = splat(k[3]), w4 = splat(k[4])
        let w5 = splat(k[5]), w6 = splat(k[6]), w7 = splat(k[7]), w8 = splat(k[8])
        let d1 = dw, d2 = 2 * dw
        for y in 0..<oh {
            let r0 = pad + y * sh * wp, r1 = r0 + dh * wp, r2 = r1 + dh * wp
            let orow = out + y * ow
            var j = 0
            while j + 8 <= ow {
                var acc = bv.addingProduct(load8(r0 + j), w0)
                acc = acc.addingProduct(load8(r0 + j + d1), w1)
                acc = acc.addingProduct(load8(r0 + j + d2), w2)
                acc = acc.addingProduct(load8(r1 + j), w3)
                acc = acc.addingProduct(load8(r1 + j + d1), w4)
                acc = acc.addingProduct(load8(r1 + j + d2), w5)
                acc = acc.addingProduct(load8(r2 + j), w6)
                acc = acc.addingProduct(load8(r2 + j + d1), w7)
                acc = acc.addingProduct(load8(r2 + j + d2), w8)
                store8(acc, orow + j)
                j += 8
            }
            while j < ow {
                var acc = bias
                for ki in 0..<3 {
                    let r = r0 + ki * dh * wp + j
                    for kj in 0..<3 { acc += r[kj * dw] * k[ki * 3 + kj] }
                }
                orow[j] = acc
                j += 1
            }
        }
        return
    }
    for y in 0..<oh {
        let orow = out + y * ow
        let base = pad + y * sh * wp
        var j = 0
        if sw == 1 {
            while j + 8 <= ow {
                var acc = bv
                for ki in 0..<kh {
                    let r = base + ki * dh * wp + j
                    for kj in 0..<kw { acc = acc.addingProduct(load8(r + kj * dw), splat(k[ki * kw + kj])) }
                }
                store8(acc, orow + j)
                j += 8
            }
        } else {
            while j + 8 <= ow {
                var acc = bv
                for ki in 0..<kh {
                    let r = base + ki * dh * wp + j * sw
                    for kj in 0..<kw { acc = acc.addingProduct(loadStrided8(r + kj * dw, sw), splat(k[ki * kw + kj])) }
                }
                store8(acc, orow + j)
                j += 8
            }
        }
        while j < ow {
            var acc = bias
            for ki in 0..<kh {
                let r = base + ki * dh * wp + j * sw
                for kj in 0..<kw { acc += r[kj * dw] * k[ki * kw + kj] }
            }
            orow[j] = acc
            j += 1
        }
    }
}

func depthwiseForward(_ px: UnsafePointer<Float>, _ pw: UnsafePointer<Float>, _ pb: UnsafePointer<Float>?,
                      _ g: Conv2dGeometry, _ py: UnsafeMutablePointer<Float>) {
    let planes = g.n * g.c
    if planes == 0 { return }
    let wp = g.w + 2 * g.pw
    let kk = g.kh * g.kw
    forEachWorker(units: planes) { worker, workers in
        let padStore = Storage(zeroed: paddedPlaneCount(g))
        let pad = padStore.pointer
        var p = worker
        while p < planes {
            let ch = p % g.c
            copyIntoPadded(px + p * g.plane, g, pad)
            depthwisePlane(pad, wp: wp, pw + ch * kk, kh: g.kh, kw: g.kw, dh: g.dh, dw: g.dw, sh: g.sh, sw: g.sw,
                           oh: g.oh, ow: g.ow, bias: pb?[ch] ?? 0, py + p * g.pixels)
            p += workers
        }
        withExtendedLifetime(padStore) {}
    }
}

/// Depthwise gradients, one channel per task: each channel's weight gradient sums images in order.
///
/// The input gradient is a correlation of the rotated kernel with the output gradient, zero-padded
/// and (for strides > 1) zero-dilated, so it runs on the vector forward kernel; only padding wider
/// than the kernel's reach falls back to scattering into a padded plane.
func depthwiseBackward(_ pg: UnsafePointer<Float>, _ px: UnsafePointer<Float>, _ pw: UnsafePointer<Float>,
                       _ g: Conv2dGeometry, _ gx: UnsafeMutablePointer<Float>?, _ gw: UnsafeMutablePointer<Float>?) {
    let wp = g.w + 2 * g.pw
    let kk = g.kh * g.kw
    let OW = g.ow, sw = g.sw
    // Output-gradient padding that turns the input gradient into a correlation. Output-gradient
    // element (y, x) sits at (padTop + y·sh, padLeft + x·sw); the rest of the plane stays zero.
    let padTop = (g.kh - 1) * g.dh - g.ph, padLeft = (g.kw - 1) * g.dw - g.pw
    let correlate = padTop >= 0 && padLeft >= 0
    let gph = g.h + (g.kh - 1) * g.dh, gpw = g.w + (g.kw - 1) * g.dw
    let gpadCount = correlate ? gph * gpw + 16 : paddedPlaneCount(g)
    forEachWorker(units: g.c) { worker, workers in
        let xpadStore = Storage(zeroed: paddedPlaneCount(g))
        let gpadStore = Storage(zeroed: gpadCount)
        let flipStore = Storage(count: kk)
        let xpad = xpadStore.pointer, gpad = gpadStore.pointer, flipped = flipStore.pointer
        let total = UnsafeMutablePointer<Double>.allocate(capacity: kk)
        var ch = worker
        while ch < g.c {
            let wk = pw + ch * kk
            for k in 0..<kk { flipped[k] = wk[kk - 1 - k] }
            total.initialize(repeating: 0, count: kk)
            for img in 0..<g.n {
                let p = img * g.c + ch
                let gy = pg + p * g.pixels
                if gw != nil {
                    copyIntoPadded(px + p * g.plane, g, xpad)
                    // dW[k] += Σ gy · (input shifted by tap k)
                    for ki in 0..<g.kh {
                        for kj in 0..<g.kw {
                            var acc = V8()
                            var tail: Float = 0
                            for oh in 0..<g.oh {
                                let grow = gy + oh * OW
                                let xrow = xpad + (oh * g.sh + ki * g.dh) * wp + kj * g.dw
                                var j = 0
                                while j + 8 <= OW {
                                    acc = acc.addingProduct(load8(grow + j), loadStrided8(xrow + j * sw, sw))
                                    j += 8
                                }
                                while j < OW { tail += grow[j] * xrow[j * sw]; j += 1 }
                            }
                            total[ki * g.kw + kj] += Double(acc.sum() + tail)
                        }
                    }
                }
                guard let gx else { continue }
                let dst = gx + p * g.plane
                if correlate {
                    for y in 0..<g.oh {
                        let row = gpad + (padTop + y * g.sh) * gpw + padLeft
                        if sw == 1 { copyFloats(gy + y * OW, row, OW) } else { for x in 0..<OW { row[x * sw] = gy[y * OW + x] } }
                    }
                    depthwisePlane(gpad, wp: gpw, flipped, kh: g.kh, kw: g.kw, dh: g.dh, dw: g.dw, sh: 1, sw: 1,
                                   oh: g.h, ow: g.w, bias: 0, dst)
                } else {
                    gpad.initialize(repeating: 0, count: gpadCount)
                    for oh in 0..<g.oh {
                        for ow in 0..<OW {
                            let v = gy[oh * OW + ow]
                            let base = gpad + oh * g.sh * wp + ow * sw
                            for ki in 0..<g.kh {
                                for kj in 0..<g.kw { base[ki * g.dh * wp + kj * g.dw] += v * wk[ki * g.kw + kj] }
                            }
                        }
                    }
                    for ih in 0..<g.h { copyFloats(gpad + (ih + g.ph) * wp + g.pw, dst + ih * g.w, g.w) }
                }
            }
            if let gw { for k in 0..<kk { gw[ch * kk + k] = Float(total[k]) } }
            ch += workers
        }
        total.deallocate()
        withExtendedLifetime((xpadStore, gpadStore, flipStore)) {}
    }
}
