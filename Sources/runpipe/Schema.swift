import ArgumentParser
import Spec

extension Runpipe {
    /// Prints the pipeline file's JSON Schema, generated from the same Swift types that decode it.
    struct Schema: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the JSON Schema (draft 2020-12) of pipeline files.",
            discussion: "schemas/pipeline.schema.json in the repository is this output; editors use it for completion.")

        func run() throws {
            print(PipelineSchema.jsonSchema(), terminator: "")
        }
    }
}
