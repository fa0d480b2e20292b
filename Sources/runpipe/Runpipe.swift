import ArgumentParser

/// The `runpipe` command. Each subcommand lives in its own file as an extension of this type.
@main
struct Runpipe: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "runpipe",
        abstract: "Fine-tune pretrained models on multimodal tables from version-controlled pipeline files.",
        discussion: """
            runpipe compiles a pipeline file into a graph of cached stages (load → infer → split → fit → \
            encode → train → evaluate/predict) and runs it on a native tensor engine. Start with \
            `runpipe train pipelines/penguins.yaml`.
            """,
        version: version,
        subcommands: [Train.self, Sweep.self, Reproduce.self, Predict.self, Evaluate.self, Validate.self, Plan.self, Graph.self,
                      Inspect.self, Schema.self, Runs.self, CacheCommand.self, Demo.self, ReportCommand.self]
    )
}
