import Training

// The cross-field rules of the label columns: checked with the rest of the file, before any
// data is read.

extension PipelineSpec {
    /// Whether the pipeline trains several tasks at once: more than one label column, unless
    /// `problem: multilabel` makes them the binary columns of one task.
    public var isMultiTask: Bool {
        data.labels.count > 1 && problem != .fixed(.multilabel)
    }

    /// A column named twice in `data.label`, a `problem` mapping or `data.label_weights` naming a
    /// column that is not a label (or weights with one task), and a label column given a
    /// modality in `data.columns`.
    static func validateLabels(_ spec: PipelineSpec, _ scope: Scope) {
        var seen: Set<String> = []
        for (i, label) in spec.data.labels.enumerated() where !seen.insert(label).inserted {
            scope.fail("data.label[\(i)]", "label column '\(label)' is listed twice in data.label",
                       hint: "list each label column once")
        }
        if case .perTask(let map) = spec.problem {
            for task in map.keys.sorted() where !spec.data.labels.contains(task) {
                scope.fail("problem.\(task)", "problem names '\(task)', which is not a label column\(Suggest.didYouMean(task, spec.data.labels))",
                           hint: "name one of the label columns (\(spec.data.labels.joined(separator: ", "))), or add '\(task)' to data.label")
            }
        }
        for task in spec.data.labelWeights.keys.sorted() {
            if !spec.isMultiTask {
                scope.fail("data.label_weights.\(task)", "data.label_weights applies only with several tasks, and this pipeline has one",
                           hint: "remove data.label_weights, or list several columns in data.label")
            } else if !spec.data.labels.contains(task) {
                scope.fail("data.label_weights.\(task)", "data.label_weights names '\(task)', which is not a label column\(Suggest.didYouMean(task, spec.data.labels))",
                           hint: "name one of the label columns (\(spec.data.labels.joined(separator: ", ")))")
            }
        }
        for name in spec.data.columns.keys.sorted() where spec.data.labels.contains(name) {
            scope.fail("data.columns.\(name)", "'\(name)' is a label column, so it cannot also be read as a \(spec.data.columns[name]?.rawValue ?? "feature")",
                       hint: "remove '\(name)' from data.columns, or from data.label to use it as a feature")
        }
    }
}
