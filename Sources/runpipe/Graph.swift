import ArgumentParser
import Pipeline

extension GraphFormat: ExpressibleByArgument {}

extension Runpipe {
    /// Prints the compiled stage graph.
    struct Graph: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the pipeline's stage graph as text, Graphviz dot or Mermaid.")

        @OptionGroup var options: PipelineOptions

        @Option(help: "Output format: \(GraphFormat.allCases.map(\.rawValue).joined(separator: ", ")).")
        var format: GraphFormat = .text

        func run() throws {
            try reportingErrors {
                let threads = options.applyThreads()
                let compiled = try options.session.compile(threads: threads)
                print(compiled.graph.render(format), terminator: "")
            }
        }
    }
}
