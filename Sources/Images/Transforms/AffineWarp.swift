// Affine warps with nearest-neighbour sampling and zero fill, as torchvision's tensor `F.affine`
// and `F.rotate` compute them: the inverse matrix of `_get_inverse_affine_matrix`, the output grid
// of `_functional_tensor._gen_affine_grid` (pixel centres relative to the image centre) and
// `grid_sample(mode="nearest", padding_mode="zeros", align_corners=False)`. The grid is evaluated
// in Float like PyTorch's; source coordinates that land exactly on a half pixel can still round
// the other way (see TransformOpParityTests for the tolerance).

import Foundation

extension ImageTransforms {
    /// torchvision `_get_inverse_affine_matrix(center, angle, translate, scale, shear)`: the
    /// output→input matrix [a, b, c, d, e, f] (x_in = a·x + b·y + c, y_in = d·x + e·y + f) for a
    /// rotation by `angle` degrees, `scale`, `shear` (degrees, x then y) about `center`, followed
    /// by a translation by `translate` pixels.
    public static func inverseAffineMatrix(center: (Double, Double), angle: Double, translate: (Double, Double),
                                           scale: Double, shear: (Double, Double)) -> [Double] {
        let rot = angle * .pi / 180, sx = shear.0 * .pi / 180, sy = shear.1 * .pi / 180
        let (cx, cy) = center, (tx, ty) = translate
        let a = cos(rot - sy) / cos(sy)
        let b = -cos(rot - sy) * tan(sx) / cos(sy) - sin(rot)
        let c = sin(rot - sy) / cos(sy)
        let d = -sin(rot - sy) * tan(sx) / cos(sy) + cos(rot)
        var m = [d, -b, 0.0, -c, a, 0.0].map { $0 / scale }
        m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty)
        m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty)
        m[2] += cx
        m[5] += cy
        return m
    }

    /// torchvision tensor `F.affine(image, angle, translate, scale, shear, NEAREST, fill=0,
    /// center)`. `center` is in pixel coordinates (nil: the image centre); `translate` in pixels.
    public static func affine(_ image: RGBImage, angle: Double, translate: (Double, Double), scale: Double,
                              shear: (Double, Double), center: (Double, Double)? = nil) -> RGBImage {
        // torchvision expresses the centre relative to the image centre.
        let c = center.map { ($0.0 - Double(image.width) * 0.5, $0.1 - Double(image.height) * 0.5) } ?? (0, 0)
        let m = inverseAffineMatrix(center: c, angle: angle, translate: translate, scale: scale, shear: shear)
        return warpNearest(image, inverseMatrix: m)
    }

    /// torchvision tensor `F.rotate(image, degrees, NEAREST, expand=False, fill=0)`: counter-clockwise
    /// rotation about the image centre, same size, corners filled with zeros.
    public static func rotate(_ image: RGBImage, degrees: Double) -> RGBImage {
        let m = inverseAffineMatrix(center: (0, 0), angle: -degrees, translate: (0, 0), scale: 1, shear: (0, 0))
        return warpNearest(image, inverseMatrix: m)
    }

    /// Samples `image` at the nearest input pixel of each output pixel's centre mapped through
    /// `inverseMatrix` (torchvision's centred convention); outside the image → 0.
    static func warpNearest(_ image: RGBImage, inverseMatrix m: [Double]) -> RGBImage {
        let w = image.width, h = image.height, n = image.planeSize
        guard n > 0, m.count == 6 else { return image }
        // `_gen_affine_grid`: theta / [0.5 w, 0.5 h] in Float, applied to centred pixel centres.
        let hw = Float(0.5 * Double(w)), hh = Float(0.5 * Double(h))
        let t0 = Float(m[0]) / hw, t1 = Float(m[1]) / hw, t2 = Float(m[2]) / hw
        let t3 = Float(m[3]) / hh, t4 = Float(m[4]) / hh, t5 = Float(m[5]) / hh
        let fw = Float(w), fh = Float(h)
        return image.pixels.withUnsafeBufferPointer { src in
            makeImage(width: w, height: h) { dst in
                guard let s = src.baseAddress else { return }
                for i in 0..<h {
                    let y = Float(i) - fh * 0.5 + 0.5
                    for j in 0..<w {
                        let x = Float(j) - fw * 0.5 + 0.5
                        let gx = x * t0 + y * t1 + t2
                        let gy = x * t3 + y * t4 + t5
                        // grid_sample's unnormalisation (align_corners=False), then nearbyint.
                        let sx = (((gx + 1) * fw - 1) / 2).rounded(.toNearestOrEven)
                        let sy = (((gy + 1) * fh - 1) / 2).rounded(.toNearestOrEven)
                        let o = i * w + j
                        if sx >= 0, sx < fw, sy >= 0, sy < fh {
                            let k = Int(sy) * w + Int(sx)
                            dst[o] = s[k]
                            dst[n + o] = s[n + k]
                            dst[2 * n + o] = s[2 * n + k]
                        } else {
                            dst[o] = 0
                            dst[n + o] = 0
                            dst[2 * n + o] = 0
                        }
                    }
                }
            }
        }
    }
}
