import Foundation
import TensorEngine

// runpipe-bench WORKLOAD [--threads N] [--runs R] [--warmup W]
//
// Runs one workload and prints one JSON line on stdout:
//   {"workload", "impl": "runpipe", "threads", "runs", "warmup", "unit", "units_per_run",
//    "median_ms", "runs_ms", "flops_per_run", "gflops", "sgemm_gflops",
//    "peak_rss_mb", "baseline_rss_mb", "notes"}
// median_ms / runs_ms are per unit (one step, forward or call); flops_per_run is the FLOP count
// of that unit. On failure it prints {"workload", "impl", "error"} and exits 1.
// benchmarks/run drives it together with benchmarks/reference/torch_bench.py.

let usage = """
    usage: runpipe-bench WORKLOAD [--threads N] [--runs R] [--warmup W]
           runpipe-bench --list
    workloads: \(workloadNames.joined(separator: ", "))
    """

struct Options {
    var workload = ""
    var threads = 0
    var runs = 5
    var warmup = 1
}

func parseOptions(_ args: [String]) throws -> Options {
    var o = Options()
    var i = 0
    func value(_ flag: String) throws -> Int {
        i += 1
        guard i < args.count, let v = Int(args[i]), v >= 0 else { throw BenchError.usage("\(flag) needs a non-negative integer\n\(usage)") }
        return v
    }
    while i < args.count {
        let a = args[i]
        switch a {
        case "--threads": o.threads = try value(a)
        case "--runs": o.runs = try value(a)
        case "--warmup": o.warmup = try value(a)
        case "--list": print(workloadNames.joined(separator: "\n")); exit(0)
        case "-h", "--help": print(usage); exit(0)
        default:
            guard !a.hasPrefix("-"), o.workload.isEmpty else { throw BenchError.usage("unexpected argument '\(a)'\n\(usage)") }
            o.workload = a
        }
        i += 1
    }
    guard !o.workload.isEmpty else { throw BenchError.usage(usage) }
    guard o.runs >= 1 else { throw BenchError.usage("--runs must be at least 1") }
    return o
}

func emit(_ fields: [(String, JSONValue)]) {
    print(JSONValue.object(fields).text)
    fflush(stdout)
}

func runBench() -> Int32 {
    let options: Options
    do { options = try parseOptions(Array(CommandLine.arguments.dropFirst())) } catch {
        FileHandle.standardError.write("\(error)\n".data(using: .utf8)!)
        return 2
    }
    if options.threads > 0 { Parallel.threadCount = options.threads }
    let threads = Parallel.threadCount
    let failure: (Error) -> Int32 = { error in
        emit([("workload", .string(options.workload)), ("impl", .string("runpipe")), ("threads", .int(threads)),
              ("error", .string("\(error)"))])
        return 1
    }
    do {
        let workload = try makeWorkload(options.workload)
        let baseline = procStatusMiB("VmRSS")
        let sgemm = sgemmGFlops()
        let unit = try workload.setup()
        let m = try measure(workload.unitsPerRun, warmup: options.warmup, runs: options.runs, unit)
        let peak = procStatusMiB("VmHWM")
        emit([
            ("workload", .string(workload.name)),
            ("impl", .string("runpipe")),
            ("threads", .int(threads)),
            ("runs", .int(options.runs)),
            ("warmup", .int(options.warmup)),
            ("unit", .string(workload.unitName)),
            ("units_per_run", .int(workload.unitsPerRun)),
            ("median_ms", .number(m.medianMs)),
            ("runs_ms", .array(m.unitMs.map { .number($0) })),
            ("flops_per_run", .number(workload.flopsPerUnit)),
            ("gflops", .number(workload.flopsPerUnit / (m.medianMs * 1e6))),
            ("sgemm_gflops", .number(sgemm)),
            ("peak_rss_mb", .number(peak)),
            ("baseline_rss_mb", .number(baseline)),
            ("notes", .object(workload.notes.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })),
        ])
        return 0
    } catch {
        return failure(error)
    }
}

BLASCore.restartWithBetterKernelsIfNeeded()
exit(runBench())
