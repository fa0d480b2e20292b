import ArgumentParser
import Pipeline

extension Runpipe {
    /// Lists the stages and, for each, whether the cache holds it and why it must run.
    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show which stages a train run would take from the cache and which it would run, and why.")

        @OptionGroup var options: PipelineOptions

        func run() throws {
            try reportingErrors {
                let threads = options.applyThreads()
                let session = options.session
                let compiled = try session.compile(threads: threads)
                print(try session.plan(compiled).render(), terminator: "")
            }
        }
    }
}
