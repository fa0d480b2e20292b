import ArgumentParser
import Cache
import Foundation
import Pipeline
import TensorEngine

/// Where `runpipe cache` looks: --cache-dir, else RUNPIPE_CACHE_DIR, else beside --pipeline or
/// the current folder.
struct CacheLocation: ParsableArguments {
    @Option(help: ArgumentHelp("Cache folder (default: RUNPIPE_CACHE_DIR, else .runpipe/cache beside --pipeline or here).",
                               valueName: "DIR"))
    var cacheDir: String?

    @Option(help: ArgumentHelp("A pipeline file whose default cache to use.", valueName: "FILE"))
    var pipeline: String?

    func store() -> ContentStore {
        let anchor = pipeline.map { URL(fileURLWithPath: $0) }
            ?? URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("pipeline.yaml")
        let root = ContentStore.defaultRoot(pipelineFile: anchor, override: cacheDir,
                                            environment: ProcessInfo.processInfo.environment)
        return ContentStore(root: root, diagnostics: { logLine("warning: \($0)") })
    }
}

extension Runpipe {
    /// Looks after the content-addressed stage cache.
    struct CacheCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cache",
            abstract: "List, check and clean the stage cache.",
            subcommands: [List.self, Verify.self, GC.self])

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(commandName: "ls", abstract: "List cached stage results.")
            @OptionGroup var location: CacheLocation

            func run() throws {
                try reportingErrors {
                    let store = location.store()
                    let entries = try store.list().sorted { ($0.created, $0.key) < ($1.created, $1.key) }
                    let f = ISO8601DateFormatter()
                    for e in entries {
                        print("\(e.key.prefix(12))  \(f.string(from: e.created))  \(pad(formatSize(e.size), 9))  \(pad(e.stage, 18))  \(e.description)")
                    }
                    let total = entries.reduce(Int64(0)) { $0 + Int64($1.size) }
                    print("\(entries.count) entr\(entries.count == 1 ? "y" : "ies"), \(formatSize(total)) in \(store.root.path)")
                }
            }
        }

        struct Verify: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Re-hash every cached file; remove and report damaged entries (they are recomputed when next needed).")
            @OptionGroup var location: CacheLocation

            func run() throws {
                try reportingErrors {
                    let report = try location.store().verify()
                    for c in report.removed { print("removed \(c.key.prefix(12)): \(c.reason)") }
                    print("\(report.verified) entr\(report.verified == 1 ? "y" : "ies") intact, \(report.removed.count) removed")
                }
            }
        }

        struct GC: ParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "gc",
                abstract: "Remove cache entries: all, or those not used by the given pipelines, or older than some days.")
            @OptionGroup var location: CacheLocation

            @Option(name: .customLong("keep"), help: ArgumentHelp("Keep every entry this pipeline's current stages use (repeatable).", valueName: "PIPELINE"))
            var keep: [String] = []

            @Option(help: "Only remove entries created more than this many days ago.")
            var olderThan: Double?

            func validate() throws {
                if let olderThan, olderThan < 0 { throw ValidationError("--older-than must be ≥ 0 days, got \(olderThan)") }
            }

            func run() throws {
                try reportingErrors {
                    let store = location.store()
                    var keepKeys: Set<String>?
                    if !keep.isEmpty {
                        var keys = Set<String>()
                        for p in keep {
                            let session = Session(pipeline: URL(fileURLWithPath: p), cacheDir: store.root.path,
                                                  environment: ProcessInfo.processInfo.environment)
                            let compiled = try session.compile(threads: Parallel.threadCount)
                            keys.formUnion(compiled.graph.nodes.map(\.key))
                        }
                        keepKeys = keys
                    }
                    let cutoff = olderThan.map { Date().addingTimeInterval(-$0 * 86400) }
                    let report = try store.gc(keep: keepKeys, olderThan: cutoff)
                    print("removed \(report.entriesRemoved) entr\(report.entriesRemoved == 1 ? "y" : "ies"), \(report.temporaryDirectoriesRemoved) temporary folder(s); freed \(formatSize(report.bytesFreed))")
                }
            }
        }
    }
}

private func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }

func formatSize<I: BinaryInteger>(_ n: I) -> String {
    let d = Double(n)
    if d < 1024 { return "\(n) B" }
    if d < 1_048_576 { return String(format: "%.1f KB", d / 1024) }
    if d < 1_073_741_824 { return String(format: "%.1f MB", d / 1_048_576) }
    return String(format: "%.2f GB", d / 1_073_741_824)
}
