import ArgumentParser
import Foundation
import Spec

extension Runpipe {
    /// Checks pipeline files without reading data or running anything.
    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check pipeline files: keys, types, ranges, cross-field rules. Reads no data.")

        @Argument(help: "Pipeline files.")
        var pipelines: [String]

        @Option(name: .customLong("set"), help: ArgumentHelp("Override a key before checking (repeatable).", valueName: "KEY=VALUE"))
        var overrides: [String] = []

        func validate() throws {
            if pipelines.isEmpty { throw ValidationError("name at least one pipeline file") }
        }

        func run() throws {
            var failed = 0
            for p in pipelines {
                do {
                    let spec = try PipelineLoader.load(URL(fileURLWithPath: p), overrides: overrides)
                    print("\(p): ok (\(spec.name))")
                } catch {
                    failed += 1
                    FileHandle.standardError.write(Data((String(describing: error) + "\n").utf8))
                }
            }
            if failed > 0 { throw ExitCode(1) }
        }
    }
}
