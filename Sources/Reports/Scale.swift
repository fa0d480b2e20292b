import Foundation

/// Maps data values to pixels along one axis, and chooses the axis's ticks.
struct Scale {
    enum Kind: Equatable {
        case linear
        /// Base-10 logarithmic; the domain is positive.
        case log
    }

    var kind: Kind
    var domain: (lower: Double, upper: Double)
    var range: (lower: Double, upper: Double)

    /// A linear scale over `values` widened to nice tick bounds (or `fixed` when given, as for
    /// probabilities in [0, 1]).
    static func linear(_ values: [Double], fixed: (Double, Double)? = nil, range: (Double, Double),
                       includeZero: Bool = false) -> Scale {
        if let fixed { return Scale(kind: .linear, domain: (fixed.0, fixed.1), range: (range.0, range.1)) }
        let finite = values.filter(\.isFinite)
        var lo = finite.min() ?? 0, hi = finite.max() ?? 1
        if includeZero { lo = min(lo, 0); hi = max(hi, 0) }
        if lo == hi {
            let pad = lo == 0 ? 1 : abs(lo) * 0.1
            lo -= pad
            hi += pad
        }
        let step = niceStep((hi - lo) / 5)
        lo = (lo / step).rounded(.down) * step
        hi = (hi / step).rounded(.up) * step
        return Scale(kind: .linear, domain: (lo, hi), range: (range.0, range.1))
    }

    /// A log scale over positive `values`, extended to whole decades.
    static func log(_ values: [Double], range: (Double, Double)) -> Scale {
        let positive = values.filter { $0.isFinite && $0 > 0 }
        let lo = Foundation.pow(10, Foundation.log10(positive.min() ?? 1).rounded(.down))
        var hi = Foundation.pow(10, Foundation.log10(positive.max() ?? 10).rounded(.up))
        if hi <= lo { hi = lo * 10 }
        return Scale(kind: .log, domain: (lo, hi), range: (range.0, range.1))
    }

    /// Whether positive values span at least two decades (and so read better on a log axis).
    static func spansDecades(_ values: [Double], decades: Double = 2) -> Bool {
        guard values.allSatisfy({ $0 > 0 && $0.isFinite }), let lo = values.min(), let hi = values.max() else { return false }
        return Foundation.log10(hi / lo) >= decades
    }

    func callAsFunction(_ value: Double) -> Double {
        let t: Double
        switch kind {
        case .linear:
            t = (value - domain.lower) / (domain.upper - domain.lower)
        case .log:
            let v = max(value, Double.leastNormalMagnitude)
            t = (Foundation.log10(v) - Foundation.log10(domain.lower)) /
                (Foundation.log10(domain.upper) - Foundation.log10(domain.lower))
        }
        return range.lower + t * (range.upper - range.lower)
    }

    /// Tick values and their labels: about five "nice" steps (1, 2 or 5 × 10ᵏ) on a linear
    /// scale; powers of ten on a log scale (with 2 and 5 between when it spans few decades).
    func ticks() -> [(value: Double, label: String)] {
        switch kind {
        case .linear:
            let step = Scale.niceStep((domain.upper - domain.lower) / 5)
            let first = (domain.lower / step - 1e-9).rounded(.up)
            let last = (domain.upper / step + 1e-9).rounded(.down)
            guard first <= last else { return [] }
            return stride(from: first, through: last, by: 1).map { k in
                let v = k * step
                return (v, Scale.tickLabel(v == 0 ? 0 : v, step: step))
            }
        case .log:
            let a = Int(Foundation.log10(domain.lower).rounded()), b = Int(Foundation.log10(domain.upper).rounded())
            var out: [(Double, String)] = []
            let fewDecades = b - a <= 2
            for e in a...b {
                let base = Foundation.pow(10, Double(e))
                out.append((base, Scale.powerLabel(e)))
                if fewDecades && e < b {
                    for m in [2.0, 5.0] { out.append((m * base, Scale.compactLabel(m * base))) }
                }
            }
            return out
        }
    }

    /// 1, 2 or 5 × 10ᵏ, the smallest such at least `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0 && raw.isFinite else { return 1 }
        let power = Foundation.pow(10, Foundation.log10(raw).rounded(.down))
        let f = raw / power
        let nice: Double = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10
        return nice * power
    }

    /// A tick label with as many decimals as the step needs.
    static func tickLabel(_ value: Double, step: Double) -> String {
        let magnitude = max(abs(value), step)
        if magnitude >= 1e6 || step < 1e-4 { return String(format: "%.1e", value) }
        let decimals = max(0, -Int(Foundation.log10(step).rounded(.down)))
        return String(format: "%.\(decimals)f", value)
    }

    /// "0.002", "2e-5": `%g` without the exponent's leading zero.
    static func compactLabel(_ value: Double) -> String {
        String(format: "%g", value).replacingOccurrences(of: "e-0", with: "e-").replacingOccurrences(of: "e+0", with: "e")
    }

    static func powerLabel(_ exponent: Int) -> String {
        switch exponent {
        case -3...3: return formatNumber(Foundation.pow(10, Double(exponent)))
        default: return "1e\(exponent)"
        }
    }
}

// MARK: - Colours

enum Palette {
    /// Tableau 10: distinct colours for series.
    static let series = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                         "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]

    static func series(_ i: Int) -> String { series[i % series.count] }

    /// Viridis at nine stops, for values in [0, 1].
    private static let viridis: [(Double, Double, Double)] = [
        (68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
        (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37),
    ]

    static func viridis(_ t: Double) -> String {
        let x = min(max(t.isFinite ? t : 0, 0), 1) * Double(viridis.count - 1)
        let i = min(Int(x), viridis.count - 2)
        let f = x - Double(i)
        let a = viridis[i], b = viridis[i + 1]
        func mix(_ p: Double, _ q: Double) -> Int { Int((p + (q - p) * f).rounded()) }
        return String(format: "#%02x%02x%02x", mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }

    /// White to dark blue, for counts in [0, 1] of the largest.
    static func blues(_ t: Double) -> String {
        let x = min(max(t.isFinite ? t : 0, 0), 1)
        let light = (247.0, 251.0, 255.0), dark = (8.0, 48.0, 107.0)
        func mix(_ p: Double, _ q: Double) -> Int { Int((p + (q - p) * x).rounded()) }
        return String(format: "#%02x%02x%02x", mix(light.0, dark.0), mix(light.1, dark.1), mix(light.2, dark.2))
    }
}
