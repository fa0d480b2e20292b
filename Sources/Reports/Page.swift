import Foundation

/// A report page laid out with fixed sizes: every block (heading, table, figure) has a width
/// and height known here and is placed at absolute coordinates, so where each figure lands is
/// known before a browser draws it (`ReportDocument.figures`), which is what the screenshot
/// tests check. Text that would not fit a cell is cut with an ellipsis (the full text is in
/// the cell's `title`).
struct Page {
    static let width = 1240
    static let margin = 20
    static let contentWidth = width - 2 * margin
    static let gap = 20
    /// Two figures side by side fill the content width.
    static let figureWidth = (contentWidth - gap) / 2
    static let rowHeight = 24

    private(set) var blocks: [(box: FigureBox, html: String)] = []
    private(set) var figures: [FigureBox] = []
    private(set) var y = margin
    let title: String

    init(title: String) { self.title = title }

    // MARK: Blocks

    /// Places `html` at the current line with a fixed size; `gapBelow` separates it from the next.
    private mutating func place(_ html: String, x: Int = margin, width: Int, height: Int, id: String? = nil,
                                gapBelow: Int = 0) {
        let box = FigureBox(id: id ?? "", x: x, y: y, width: width, height: height)
        blocks.append((box, html))
        y += height + gapBelow
    }

    mutating func title(_ text: String, subtitle: String) {
        place("<h1>\(escape(text))</h1>", width: Page.contentWidth, height: 36)
        place("<p class=\"sub\">\(escape(subtitle))</p>", width: Page.contentWidth, height: 22, gapBelow: 12)
    }

    mutating func heading(_ text: String, id: String) {
        y += 8
        place("<h2 id=\"\(escape(id))\">\(escape(text))</h2>", width: Page.contentWidth, height: 32, gapBelow: 6)
    }

    /// One line of text (cut with an ellipsis if longer than the page).
    mutating func note(_ text: String) {
        place("<p class=\"note\" title=\"\(escape(text))\">\(escape(text))</p>", width: Page.contentWidth, height: 22,
              gapBelow: 6)
    }

    /// Tables side by side, top-aligned; the line advances past the tallest.
    mutating func tables(_ tables: [Table]) {
        var x = Page.margin
        var tallest = 0
        let top = y
        for t in tables {
            y = top
            place(t.html(), x: x, width: t.width, height: t.height)
            x += t.width + Page.gap
            tallest = max(tallest, t.height)
        }
        y = top + tallest + Page.gap
    }

    /// Figures left to right, a new line when the next would not fit (two `figureWidth`
    /// figures to a line); records their boxes by id.
    mutating func figures(_ list: [SVGFigure]) {
        var x = Page.margin
        var top = y
        var tallest = 0
        for f in list {
            if x > Page.margin && x + f.width > Page.margin + Page.contentWidth {
                top += tallest + Page.gap
                x = Page.margin
                tallest = 0
            }
            y = top
            place(f.svg, x: x, width: f.width, height: f.height, id: f.id)
            figures.append(FigureBox(id: f.id, x: x, y: top, width: f.width, height: f.height))
            x += f.width + Page.gap
            tallest = max(tallest, f.height)
        }
        y = list.isEmpty ? top : top + tallest + Page.gap
    }

    // MARK: Document

    var height: Int { y + Page.margin }

    func document() -> ReportDocument {
        var out = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            \(Report.generatorMarker)
            <meta name="viewport" content="width=\(Page.width)">
            <title>\(escape(title))</title>
            <style>
            \(Page.css)
            </style>
            </head>
            <body>
            <div class="page" style="width:\(Page.width)px;height:\(height)px">

            """
        for (box, html) in blocks {
            let idAttribute = box.id.isEmpty ? "" : " id=\"\(escape(box.id))\""
            out += "<div class=\"b\"\(idAttribute) style=\"left:\(box.x)px;top:\(box.y)px;width:\(box.width)px;height:\(box.height)px\">"
            out += html
            out += "</div>\n"
        }
        out += "</div>\n</body>\n</html>\n"
        return ReportDocument(html: out, width: Page.width, height: height, figures: figures)
    }

    static let css = """
        html,body{margin:0;padding:0;background:#fff;color:#222}
        body{font:13px/1.3 "DejaVu Sans",Verdana,Arial,sans-serif}
        .page{position:relative;margin:0}
        .b{position:absolute;overflow:hidden}
        h1{font-size:24px;line-height:36px;margin:0;font-weight:bold;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
        h2{font-size:18px;line-height:30px;margin:0;border-bottom:1px solid #ccc;white-space:nowrap}
        p{margin:0;line-height:22px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
        p.sub{color:#555}
        p.note{color:#7a4b00}
        table{border-collapse:collapse;table-layout:fixed}
        th,td{height:24px;max-height:24px;padding:0 6px;box-sizing:border-box;border-bottom:1px solid #e3e3e3;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
        th{background:#f2f2f2;text-align:left;font-weight:bold;border-bottom:1px solid #bbb}
        td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
        tr.best td{background:#fff4cc}
        td.failed{color:#b00020}
        td.stopped{color:#7a4b00}
        td.mono{font-family:"DejaVu Sans Mono",monospace;font-size:12px}
        svg{display:block}
        svg text{font-family:"DejaVu Sans",Verdana,Arial,sans-serif}
        """
}

/// Where a figure is on the page, in CSS pixels from the page's top-left corner.
public struct FigureBox: Equatable, Sendable {
    public let id: String
    public let x: Int
    public let y: Int
    public let width: Int
    public let height: Int
}

/// A rendered page: its HTML, its size, and where each figure is.
public struct ReportDocument: Sendable {
    public let html: String
    public let width: Int
    public let height: Int
    public let figures: [FigureBox]

    public func figure(_ id: String) -> FigureBox? { figures.first { $0.id == id } }
}

// MARK: - Tables

/// A table of fixed-height rows and fixed column widths.
struct Table {
    struct Column {
        var title: String
        var width: Int
        var numeric = false
    }

    struct Cell {
        var text: String
        var tooltip: String?
        var style: String?

        init(_ text: String, tooltip: String? = nil, style: String? = nil) {
            self.text = text
            self.tooltip = tooltip
            self.style = style
        }
    }

    var columns: [Column]
    var rows: [[Cell]] = []
    /// Indices of rows to highlight.
    var highlighted: Set<Int> = []

    var width: Int { columns.reduce(0) { $0 + $1.width } }
    var height: Int { (rows.count + 1) * Page.rowHeight + 1 }

    func html() -> String {
        var out = "<table style=\"width:\(width)px\"><colgroup>"
        for c in columns { out += "<col style=\"width:\(c.width)px\">" }
        out += "</colgroup><thead><tr>"
        for c in columns {
            out += "<th\(c.numeric ? " class=\"n\"" : "") title=\"\(escape(c.title))\">\(escape(c.title))</th>"
        }
        out += "</tr></thead><tbody>"
        for (i, row) in rows.enumerated() {
            out += highlighted.contains(i) ? "<tr class=\"best\">" : "<tr>"
            for (k, cell) in row.enumerated() {
                var classes: [String] = []
                if k < columns.count && columns[k].numeric { classes.append("n") }
                if let s = cell.style { classes.append(s) }
                let classAttribute = classes.isEmpty ? "" : " class=\"\(classes.joined(separator: " "))\""
                let tip = cell.tooltip ?? cell.text
                out += "<td\(classAttribute) title=\"\(escape(tip))\">\(escape(cell.text))</td>"
            }
            out += "</tr>"
        }
        out += "</tbody></table>"
        return out
    }
}

// MARK: - Text

/// Escapes text for HTML and SVG content and attribute values.
func escape(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    for ch in text.unicodeScalars {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default:
            // Control characters are not allowed in XML; show them as a replacement character.
            if ch.value < 0x20 && ch != "\t" && ch != "\n" { out += "\u{FFFD}" } else { out.unicodeScalars.append(ch) }
        }
    }
    return out
}

/// A number for a table or a label: four significant digits, no trailing zeros; "nan", "inf".
func formatNumber(_ x: Double, digits: Int = 4) -> String {
    if x.isNaN { return "nan" }
    if x.isInfinite { return x > 0 ? "inf" : "-inf" }
    if x == 0 { return "0" }
    if x == x.rounded() && abs(x) < 1e7 { return String(Int64(x)) }
    let magnitude = abs(x)
    if magnitude >= 1e6 || magnitude < 1e-3 {
        return String(format: "%.\(max(digits - 1, 0))e", x)
    }
    return String(format: "%.\(digits)g", x)
}

/// An id fragment from user text: lowercase letters, digits and dashes.
func slug(_ text: String) -> String {
    var out = ""
    for ch in text.lowercased().unicodeScalars {
        if (ch >= "a" && ch <= "z") || (ch >= "0" && ch <= "9") {
            out.unicodeScalars.append(ch)
        } else if !out.hasSuffix("-") {
            out += "-"
        }
    }
    while out.hasSuffix("-") { out.removeLast() }
    return out.isEmpty ? "x" : out
}
