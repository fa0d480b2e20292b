import Foundation
import TensorEngine

// MARK: - Clock, statistics, memory

/// Seconds on the monotonic clock.
@inline(__always)
func monotonicSeconds() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
}

func median(_ xs: [Double]) -> Double {
    precondition(!xs.isEmpty, "median of no values")
    let s = xs.sorted()
    let m = s.count / 2
    return s.count % 2 == 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

/// A field of /proc/self/status in MiB (VmHWM is the peak resident set, VmRSS the current one).
func procStatusMiB(_ field: String) -> Double {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
        let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        if parts.count >= 2, let kb = Double(parts[1]) { return kb / 1024 }
    }
    return 0
}

// MARK: - Timing a workload

/// One benchmark: `unitsPerRun` calls of `unit` make one timed run; times are reported per unit.
struct Workload {
    let name: String
    /// What one unit is ("step", "forward", "call"), for the JSON record.
    let unitName: String
    /// Floating-point operations of one unit (matrix products and convolutions only).
    let flopsPerUnit: Double
    let unitsPerRun: Int
    /// Extra facts about the workload put into the JSON record.
    let notes: [String: String]
    /// Builds the model and data, returns the unit of work.
    let setup: () throws -> () throws -> Void
}

struct Measurement {
    let unitMs: [Double]
    let medianMs: Double
}

/// Warm-up runs first, then `runs` timed runs; each run calls the unit `unitsPerRun` times.
func measure(_ unitsPerRun: Int, warmup: Int, runs: Int, _ unit: () throws -> Void) rethrows -> Measurement {
    for _ in 0..<warmup { for _ in 0..<unitsPerRun { try unit() } }
    var times: [Double] = []
    for _ in 0..<runs {
        let t0 = monotonicSeconds()
        for _ in 0..<unitsPerRun { try unit() }
        times.append((monotonicSeconds() - t0) * 1000 / Double(unitsPerRun))
    }
    return Measurement(unitMs: times, medianMs: median(times))
}

// MARK: - Raw GEMM rate

/// GFLOP/s of one 1024³ `sgemm` through the engine's `gemm` wrapper (median of `calls` calls
/// after two warm-up calls), with the current `Parallel.threadCount`.
func sgemmGFlops(size n: Int = 1024, calls: Int = 10) -> Double {
    let count = n * n
    let a = UnsafeMutablePointer<Float>.allocate(capacity: count)
    let b = UnsafeMutablePointer<Float>.allocate(capacity: count)
    let c = UnsafeMutablePointer<Float>.allocate(capacity: count)
    defer { a.deallocate(); b.deallocate(); c.deallocate() }
    for i in 0..<count {
        a[i] = Float(i % 97) * 0.01 - 0.5
        b[i] = Float(i % 89) * 0.01 - 0.4
    }
    c.initialize(repeating: 0, count: count)
    func once() {
        gemm(transA: false, transB: false, m: n, n: n, k: n, a: a, lda: n, b: b, ldb: n, c: c, ldc: n)
    }
    once(); once()
    var times: [Double] = []
    for _ in 0..<calls {
        let t0 = monotonicSeconds()
        once()
        times.append(monotonicSeconds() - t0)
    }
    return 2 * Double(n) * Double(n) * Double(n) / median(times) / 1e9
}

// MARK: - JSON output

/// A JSON value, enough for the one-line records the harness reads.
enum JSONValue {
    case string(String)
    case number(Double)
    case int(Int)
    case array([JSONValue])
    case object([(String, JSONValue)])
    case null

    var text: String {
        switch self {
        case .string(let s): return JSONValue.quote(s)
        case .number(let d):
            guard d.isFinite else { return "null" }
            return String(format: "%.6g", d)
        case .int(let i): return String(i)
        case .array(let xs): return "[" + xs.map(\.text).joined(separator: ", ") + "]"
        case .object(let kv): return "{" + kv.map { JSONValue.quote($0.0) + ": " + $0.1.text }.joined(separator: ", ") + "}"
        case .null: return "null"
        }
    }

    static func quote(_ s: String) -> String {
        var out = "\""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if ch.value < 0x20 { out += String(format: "\\u%04x", ch.value) } else { out.unicodeScalars.append(ch) }
            }
        }
        return out + "\""
    }
}
