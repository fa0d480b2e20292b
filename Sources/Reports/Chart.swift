import Foundation

/// A finished figure: an `<svg>` element of a fixed size, with the id the page gives its box.
struct SVGFigure {
    let id: String
    let width: Int
    let height: Int
    let svg: String
}

/// An x–y plot: a frame with ticks, grid and axis labels around a clipped plot area, marks
/// (lines, points, bars, text) in data coordinates, and a legend.
///
///     var chart = Chart(id: "fig-roc", title: "ROC", xLabel: "false positive rate",
///                       yLabel: "true positive rate", x: .fixed(0, 1), y: .fixed(0, 1))
///     chart.diagonal()
///     chart.line(xs: fpr, ys: tpr, color: Palette.series(0), label: "AUC 0.93")
///     let figure = chart.figure()
struct Chart {
    /// How an axis chooses its domain.
    enum Domain {
        case fixed(Double, Double)
        /// Nice bounds around the values (with 0 when `includeZero`).
        case data([Double], includeZero: Bool = false)
        /// A log axis over positive values.
        case log([Double])
        /// One slot per category at 0, 1, …, labelled with the names.
        case categories([String])
    }

    enum LegendPlace { case topLeft, topRight, bottomRight, bottomLeft }

    struct LegendEntry {
        var label: String
        var color: String
        var dashed = false
        var point = false
    }

    static let padding = 7.0

    let id: String
    let title: String
    let width: Int
    let height: Int
    let xLabel: String
    let yLabel: String
    let plot: (left: Double, top: Double, right: Double, bottom: Double)
    let x: Scale
    let y: Scale
    private let xCategories: [String]?
    private let yCategories: [String]?
    private(set) var marks: [String] = []
    private(set) var annotations: [String] = []
    /// Pixel positions covered by marks, to keep the legend off them.
    private var covered: [(Double, Double)] = []
    var legend: [LegendEntry] = []
    /// The preferred corner for the legend; another is used when it would hide fewer marks.
    var legendPlace: LegendPlace = .bottomRight

    init(id: String, title: String, xLabel: String, yLabel: String, x: Domain, y: Domain,
         width: Int = Page.figureWidth, height: Int = 360, rightInset: Double = 18) {
        self.id = id
        self.title = title
        self.width = width
        self.height = height
        self.xLabel = xLabel
        self.yLabel = yLabel
        plot = (68, 38, Double(width) - rightInset, Double(height) - 50)
        func scale(_ d: Domain, _ range: (Double, Double)) -> Scale {
            switch d {
            case .fixed(let a, let b): return Scale.linear([], fixed: (a, b), range: range)
            case .data(let values, let zero): return Scale.linear(values, range: range, includeZero: zero)
            case .log(let values): return Scale.log(values, range: range)
            case .categories(let names):
                return Scale.linear([], fixed: (-0.5, Double(max(names.count, 1)) - 0.5), range: range)
            }
        }
        // Data stops a few pixels inside the frame, so marks on the domain's edge are whole.
        let pad = Chart.padding
        self.x = scale(x, (plot.left + pad, plot.right - pad))
        self.y = scale(y, (plot.bottom - pad, plot.top + pad))
        if case .categories(let names) = x { xCategories = names } else { xCategories = nil }
        if case .categories(let names) = y { yCategories = names } else { yCategories = nil }
    }

    // MARK: Marks

    /// A polyline through the finite points, broken where a value is missing. Points less than
    /// a pixel from the last one drawn are left out (a curve of 100 000 thresholds draws the
    /// same with a few hundred).
    mutating func line(xs: [Double], ys: [Double], color: String, width: Double = 2, dashed: Bool = false,
                       label: String? = nil) {
        var segments: [[String]] = [[]]
        var previous: (Double, Double)?
        let count = min(xs.count, ys.count)
        for i in 0..<count {
            let a = xs[i], b = ys[i]
            guard a.isFinite && b.isFinite else {
                if !(segments.last?.isEmpty ?? true) { segments.append([]) }
                continue
            }
            let point = (x(a), y(b))
            if let p = previous, !segments[segments.count - 1].isEmpty {
                if abs(point.0 - p.0) + abs(point.1 - p.1) < 1 && i != count - 1 { continue }
                cover(from: p, to: point)
            }
            covered.append(point)
            previous = point
            segments[segments.count - 1].append("\(px(point.0)),\(px(point.1))")
        }
        let dash = dashed ? " stroke-dasharray=\"6 4\"" : ""
        for s in segments where !s.isEmpty {
            if s.count == 1 {
                let xy = s[0].split(separator: ",")
                marks.append("<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"2.5\" fill=\"\(color)\"/>")
            } else {
                marks.append("<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(px(width))\"\(dash) stroke-linejoin=\"round\" points=\"\(s.joined(separator: " "))\"/>")
            }
        }
        if let label { legend.append(LegendEntry(label: label, color: color, dashed: dashed)) }
    }

    /// Dots, each with an optional tooltip.
    mutating func points(xs: [Double], ys: [Double], color: String, radius: Double = 3, opacity: Double = 0.75,
                         colors: [String]? = nil, tooltips: [String]? = nil, label: String? = nil) {
        for i in 0..<min(xs.count, ys.count) where xs[i].isFinite && ys[i].isFinite {
            covered.append((x(xs[i]), y(ys[i])))
            let fill = colors?[i] ?? color
            let tip = tooltips.map { "<title>\(escape($0[i]))</title>" } ?? ""
            marks.append("<circle cx=\"\(px(x(xs[i])))\" cy=\"\(px(y(ys[i])))\" r=\"\(px(radius))\" fill=\"\(fill)\" fill-opacity=\"\(px(opacity))\">\(tip)</circle>")
        }
        if let label { legend.append(LegendEntry(label: label, color: color, point: true)) }
    }

    /// Records points every few pixels along a segment.
    private mutating func cover(from a: (Double, Double), to b: (Double, Double)) {
        let length = max(abs(b.0 - a.0), abs(b.1 - a.1))
        let steps = min(Int(length / 4), 400)
        guard steps > 1 else { return }
        for k in 1..<steps {
            let t = Double(k) / Double(steps)
            covered.append((a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t))
        }
    }

    /// The line y = x across the visible domain, grey and dashed.
    mutating func diagonal(label: String? = nil) {
        let lo = max(x.domain.lower, y.domain.lower), hi = min(x.domain.upper, y.domain.upper)
        guard lo < hi else { return }
        line(xs: [lo, hi], ys: [lo, hi], color: "#999999", width: 1.2, dashed: true, label: label)
    }

    /// A horizontal reference line.
    mutating func horizontal(at value: Double, color: String = "#999999", label: String? = nil) {
        line(xs: [x.domain.lower, x.domain.upper], ys: [value, value], color: color, width: 1.2, dashed: true,
             label: label)
    }

    /// A light bar from `y.domain.lower` up to `top`, spanning data x from `from` to `to`.
    mutating func bar(from a: Double, to b: Double, top: Double, color: String, text: String? = nil) {
        let x0 = x(a), x1 = x(b), y0 = y(y.domain.lower), y1 = y(top)
        marks.append("<rect x=\"\(px(x0 + 1))\" y=\"\(px(min(y0, y1)))\" width=\"\(px(max(x1 - x0 - 2, 0)))\" height=\"\(px(abs(y0 - y1)))\" fill=\"\(color)\"/>")
        if let text {
            annotations.append("<text x=\"\(px((x0 + x1) / 2))\" y=\"\(px(min(y0, y1) - 3))\" font-size=\"10\" text-anchor=\"middle\" fill=\"#666\">\(escape(text))</text>")
        }
    }

    /// Text at a data position, in the plot area.
    mutating func text(_ s: String, atX a: Double, y b: Double, anchor: String = "start", size: Int = 11,
                       color: String = "#444") {
        annotations.append("<text x=\"\(px(x(a)))\" y=\"\(px(y(b)))\" font-size=\"\(size)\" text-anchor=\"\(anchor)\" fill=\"\(color)\">\(escape(s))</text>")
    }

    // MARK: Rendering

    func figure() -> SVGFigure {
        var s = svgOpen(id: id, width: width, height: height, title: title)
        let (l, t, r, b) = plot
        // Grid and ticks.
        var xTicks: [(Double, String)] = xCategories.map { names in names.enumerated().map { (Double($0.offset), $0.element) } } ?? x.ticks()
        var yTicks: [(Double, String)] = yCategories.map { names in names.enumerated().map { (Double($0.offset), $0.element) } } ?? y.ticks()
        xTicks = xTicks.filter { x($0.0) >= l - 0.5 && x($0.0) <= r + 0.5 }
        yTicks = yTicks.filter { y($0.0) <= b + 0.5 && y($0.0) >= t - 0.5 }
        s += "<g stroke=\"#ececec\" stroke-width=\"1\">"
        for (v, _) in xTicks { s += "<line x1=\"\(px(x(v)))\" y1=\"\(px(t))\" x2=\"\(px(x(v)))\" y2=\"\(px(b))\"/>" }
        for (v, _) in yTicks { s += "<line x1=\"\(px(l))\" y1=\"\(px(y(v)))\" x2=\"\(px(r))\" y2=\"\(px(y(v)))\"/>" }
        s += "</g>\n"
        s += "<g font-size=\"11\" fill=\"#444\">"
        let maxXLabel = max(4, Int((r - l) / Double(max(xTicks.count, 1)) / 6.5))
        for (v, label) in xTicks {
            s += "<text x=\"\(px(x(v)))\" y=\"\(px(b + 16))\" text-anchor=\"middle\">\(escape(shorten(label, maxXLabel)))</text>"
        }
        for (v, label) in yTicks {
            s += "<text x=\"\(px(l - 6))\" y=\"\(px(y(v) + 4))\" text-anchor=\"end\">\(escape(shorten(label, 9)))</text>"
        }
        s += "</g>\n"
        s += "<rect x=\"\(px(l))\" y=\"\(px(t))\" width=\"\(px(r - l))\" height=\"\(px(b - t))\" fill=\"none\" stroke=\"#999\"/>\n"
        s += "<text x=\"\(px((l + r) / 2))\" y=\"\(px(Double(height) - 12))\" font-size=\"12\" text-anchor=\"middle\" fill=\"#222\">\(escape(xLabel))</text>\n"
        s += "<text transform=\"translate(16 \(px((t + b) / 2))) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\" fill=\"#222\">\(escape(shorten(yLabel, 40)))</text>\n"
        // Marks, clipped to the plot area.
        let clip = "clip-" + id
        s += "<clipPath id=\"\(escape(clip))\"><rect x=\"\(px(l))\" y=\"\(px(t))\" width=\"\(px(r - l))\" height=\"\(px(b - t))\"/></clipPath>\n"
        s += "<g clip-path=\"url(#\(escape(clip)))\">\n" + marks.joined(separator: "\n") + "\n</g>\n"
        s += annotations.joined(separator: "\n")
        s += legendSVG()
        s += "</svg>"
        return SVGFigure(id: id, width: width, height: height, svg: s)
    }

    private func legendSVG() -> String {
        guard !legend.isEmpty else { return "" }
        let rowHeight = 17.0
        let labels = legend.map { shorten($0.label, 34) }
        let w = Double(labels.map(\.count).max() ?? 0) * 6.6 + 36
        let h = Double(legend.count) * rowHeight + 8
        let (l, t, r, b) = plot
        func origin(_ place: LegendPlace) -> (Double, Double) {
            switch place {
            case .topLeft: return (l + 8, t + 8)
            case .topRight: return (r - w - 8, t + 8)
            case .bottomRight: return (r - w - 8, b - h - 8)
            case .bottomLeft: return (l + 8, b - h - 8)
            }
        }
        // The preferred corner unless another hides fewer marks.
        let places = [legendPlace] + [LegendPlace.bottomRight, .topRight, .topLeft, .bottomLeft].filter { $0 != legendPlace }
        let hidden = places.map { place -> Int in
            let (x0, y0) = origin(place)
            return covered.filter { $0.0 >= x0 - 3 && $0.0 <= x0 + w + 3 && $0.1 >= y0 - 3 && $0.1 <= y0 + h + 3 }.count
        }
        let best = hidden.indices.min { (hidden[$0], $0) < (hidden[$1], $1) } ?? 0
        let (x0, y0) = origin(places[best])
        var s = "<g font-size=\"11\" fill=\"#222\"><rect x=\"\(px(x0))\" y=\"\(px(y0))\" width=\"\(px(w))\" height=\"\(px(h))\" fill=\"#ffffff\" fill-opacity=\"0.9\" stroke=\"#ccc\"/>"
        for (i, e) in legend.enumerated() {
            let cy = y0 + 4 + rowHeight * (Double(i) + 0.5)
            if e.point {
                s += "<circle cx=\"\(px(x0 + 15))\" cy=\"\(px(cy))\" r=\"3.5\" fill=\"\(e.color)\"/>"
            } else {
                let dash = e.dashed ? " stroke-dasharray=\"6 4\"" : ""
                s += "<line x1=\"\(px(x0 + 6))\" y1=\"\(px(cy))\" x2=\"\(px(x0 + 26))\" y2=\"\(px(cy))\" stroke=\"\(e.color)\" stroke-width=\"2\"\(dash)/>"
            }
            s += "<text x=\"\(px(x0 + 32))\" y=\"\(px(cy + 4))\">\(escape(labels[i]))</text>"
        }
        return s + "</g>\n"
    }
}

// MARK: - SVG helpers

/// The opening of a figure's `<svg>`: size, accessible name, white background and title.
func svgOpen(id: String, width: Int, height: Int, title: String) -> String {
    var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" role=\"img\" aria-label=\"\(escape(title))\">\n"
    s += "<rect width=\"\(width)\" height=\"\(height)\" fill=\"#ffffff\"/>\n"
    s += "<text x=\"12\" y=\"22\" font-size=\"14\" font-weight=\"bold\" fill=\"#222\">\(escape(shorten(title, Int(Double(width) / 8.5))))</text>\n"
    return s
}

/// A coordinate with one decimal (deterministic, compact).
func px(_ v: Double) -> String {
    let r = (v * 10).rounded() / 10
    if r == r.rounded() { return String(Int(r)) }
    return String(format: "%.1f", r)
}

/// `text` cut to `limit` characters with an ellipsis.
func shorten(_ text: String, _ limit: Int) -> String {
    text.count <= limit ? text : String(text.prefix(max(limit - 1, 1))) + "…"
}

/// An empty figure that says why there is nothing to draw.
func placeholderFigure(id: String, title: String, message: String, width: Int = Page.figureWidth,
                       height: Int = 360) -> SVGFigure {
    var s = svgOpen(id: id, width: width, height: height, title: title)
    s += "<rect x=\"12\" y=\"38\" width=\"\(width - 24)\" height=\"\(height - 50)\" fill=\"#fafafa\" stroke=\"#ddd\"/>"
    s += "<text x=\"\(width / 2)\" y=\"\(height / 2)\" font-size=\"12\" text-anchor=\"middle\" fill=\"#7a4b00\">\(escape(shorten(message, 80)))</text>"
    s += "</svg>"
    return SVGFigure(id: id, width: width, height: height, svg: s)
}
