import ArgumentParser

/// The `runpipe` command. Each subcommand lives in its own file as an extension of this type.
@main
struct Runpipe: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "runpipe",
        abstract: "Fine-tune pretrained models on multimodal tables from version-controlled pipeline files.",
        discussion: "runpipe compiles a pipeline file into a graph of cached stages and runs it on a native tensor engine. Pipeline subcommands (train, predict, plan, sweep) arrive with the pipeline compiler; `demo` exercises the engine today.",
        version: version,
        subcommands: [Demo.self]
    )
}
