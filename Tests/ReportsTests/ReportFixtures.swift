import Foundation

/// Small run and sweep folders written into a temporary folder, so the report tests need no
/// training. Values come from a fixed linear congruential sequence: the same every time.
enum ReportFixtures {
    /// A fresh empty folder under the system temporary folder.
    static func temporaryFolder(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("runpipe-reports-\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func write(_ text: String, _ folder: URL, _ path: String) throws {
        let url = folder.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    /// Deterministic numbers in [0, 1).
    struct Sequence {
        var state: UInt64
        mutating func next() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) / Double(1 << 53)
        }
    }

    static let lock = """
        {
          "checkpoints" : [],
          "created" : "2026-11-30T05:00:00Z",
          "data" : [
            {"bytes" : 12201, "path" : "data/fixture/train.csv", "role" : "train",
             "sha256" : "c17978a426b79ee442eb6bc3aced86243cc7b4f8f457451c550a9cb837989a94"}
          ],
          "pipeline" : "/abs/pipelines/fixture.yaml",
          "pipeline_sha256" : "7a91b705a47e66d9b616ebe38f195e624d6a5e705dcf36741f45ddd3c0fa75fc",
          "runpipe" : "0.1.0",
          "seed" : 7,
          "stages" : {},
          "threads" : 2
        }
        """

    static func history(epochs: Int, metric: String) -> String {
        var s = "epoch,step,train_loss,lr,seconds,val.\(metric),val.loss\n"
        for e in 1...epochs {
            let t = Double(e)
            s += "\(e),\(e * 7),\(0.7 * exp(-t / 4) + 0.05),0.001,\(t * 0.1),\(0.95 - 0.4 * exp(-t / 3)),\(0.65 * exp(-t / 5) + 0.12)\n"
        }
        return s
    }

    static func columns(label: String, problem: String, inputs: [(String, String)]) -> String {
        var cols = [#"{"name": "\#(label)", "modality": "\#(problem == "regression" ? "numeric" : "categorical")", "isLabel": true, "reason": "the label", "evidence": [{"label": "non-missing", "value": "60/60"}]}"#]
        for (name, modality) in inputs {
            let quoted = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            cols.append(#"{"name": "\#(quoted)", "modality": "\#(modality)", "isLabel": false, "reason": "detected", "evidence": [{"label": "non-missing", "value": "57/60"}]}"#)
        }
        return #"{"problem": {"problem": "\#(problem)"}, "schema": {"label": "\#(label)", "rowCount": 60, "columns": [\#(cols.joined(separator: ","))]}}"#
    }

    /// A binary run: label `smoker` (no/yes), 60 validation predictions, an input column whose
    /// name is markup (`<b>&"x"`) to check escaping.
    static func binaryRun(in folder: URL) throws {
        try write(lock, folder, "lock.json")
        try write("""
            {"validation": {"accuracy": 0.85, "roc_auc": 0.91, "loss": 0.33, "log_loss": "nan"},
             "test": {"accuracy": 0.8, "roc_auc": 0.88, "loss": 0.4, "log_loss": 0.4}}
            """, folder, "metrics.json")
        try write("# resolved\nversion: 1\nname: smokers\nmetric: accuracy\ndata:\n  label: smoker\nproblem: auto\n",
                  folder, "resolved.yaml")
        try write(history(epochs: 12, metric: "accuracy"), folder, "history.csv")
        try write(#"{"best_epoch": 9, "monitor": "val.loss"}"#, folder, "model/summary.json")
        try write(columns(label: "smoker", problem: "binary", inputs: [("age", "numeric"), ("<b>&\"x\"", "text")]),
                  folder, "model/columns.json")
        var rng = Sequence(state: 42)
        var csv = "age,\"<b>&\"\"x\"\"\",smoker,smoker_predicted,proba_no,proba_yes\n"
        for i in 0..<60 {
            let positive = i % 3 == 0
            // Scores that mostly rank positives higher, with overlap.
            let p = min(max((positive ? 0.62 : 0.32) + (rng.next() - 0.5) * 0.7, 0.01), 0.99)
            let p4 = (p * 10_000).rounded() / 10_000
            csv += "\(20 + i),\"note, \(i)\",\(positive ? "yes" : "no"),\(p4 >= 0.5 ? "yes" : "no"),\(1 - p4),\(p4)\n"
        }
        try write(csv, folder, "validation_predictions.csv")
    }

    /// A regression run on `price` with test predictions only.
    static func regressionRun(in folder: URL) throws {
        try write(lock, folder, "lock.json")
        try write(#"{"validation": {"rmse": 12.5, "r2": 0.8, "loss": 0.2}, "test": {"rmse": 13.1, "r2": 0.78, "loss": 0.22}}"#,
                  folder, "metrics.json")
        try write("name: prices\nmetric: rmse\ndata:\n  label: price\n", folder, "resolved.yaml")
        try write(history(epochs: 8, metric: "rmse"), folder, "history.csv")
        try write(columns(label: "price", problem: "regression", inputs: [("rooms", "numeric")]), folder, "model/columns.json")
        var rng = Sequence(state: 7)
        var csv = "rooms,price,price_predicted\n"
        for i in 0..<50 {
            let truth = 100 + Double(i) * 4
            csv += "\(i % 6),\(truth),\(truth + (rng.next() - 0.5) * 30)\n"
        }
        try write(csv, folder, "test_predictions.csv")
    }

    /// A multi-task run: `kind` (binary a/b) and `size` (regression), prediction columns named
    /// by task; the file has no probabilities for a third task, `flag`.
    static func multiTaskRun(in folder: URL) throws {
        try write(lock, folder, "lock.json")
        try write(#"{"validation": {"kind.accuracy": 0.9, "size.rmse": 1.5, "loss": 0.3}}"#, folder, "metrics.json")
        try write("name: multi\nmetric: accuracy\ndata:\n  label: [kind, size, flag]\n", folder, "resolved.yaml")
        try write("epoch,step,train_loss,lr,seconds,val.kind.accuracy,val.loss\n1,5,0.9,0.001,0.1,0.6,0.8\n2,10,0.5,0.001,0.2,0.8,0.6\n",
                  folder, "history.csv")
        try write("""
            {"problem": {"problem": "binary"},
             "tasks": [{"name": "kind", "columns": ["kind"], "problem": {"problem": "binary"}},
                       {"name": "size", "columns": ["size"], "problem": {"problem": "regression"}},
                       {"name": "flag", "columns": ["flag"], "problem": {"problem": "binary"}}],
             "schema": {"label": ["kind", "size", "flag"], "rowCount": 20, "columns": []}}
            """, folder, "model/columns.json")
        var csv = "kind,size,flag,kind_predicted,kind_proba_a,kind_proba_b,size_predicted\n"
        for i in 0..<20 {
            let p = Double(i) / 20
            csv += "\(i % 2 == 0 ? "a" : "b"),\(i),x,\(p < 0.5 ? "a" : "b"),\(1 - p),\(p),\(Double(i) + 0.5)\n"
        }
        try write(csv, folder, "validation_predictions.csv")
    }

    /// A sweep of nine trials over a learning rate (three decades), a dropout and a categorical
    /// fusion kind; one failed, one stopped early; the best trial has a history.csv.
    static func sweep(in folder: URL) throws {
        let lrs = ["1e-4", "1e-3", "1e-2"], dropouts = ["0.1", "0.3"], kinds = ["mlp", "transformer"]
        var trials: [String] = []
        var index = 0
        var best = (index: 0, value: -1.0)
        for lr in lrs {
            for (d, dropout) in dropouts.enumerated() {
                let kind = kinds[index % 3 == 1 ? 1 : 0]
                let status = index == 4 ? "failed" : index == 2 ? "stopped" : "finished"
                let value = 0.7 + 0.08 * Double(lrs.firstIndex(of: lr) ?? 0) - 0.03 * Double(d) + (kind == "mlp" ? 0.02 : 0)
                let metrics = status == "failed" ? "{}" : #"{"val.accuracy": \#(value), "val.loss": \#(1 - value)}"#
                let error = status == "failed" ? #""out of memory: <trial 4> & more""# : "null"
                if status == "finished" && value > best.value { best = (index, value) }
                trials.append("""
                    {"index": \(index), "name": "\(String(format: "%03d", index))",
                     "parameters": {"trainer.optimizer.lr": "\(lr)", "fusion.dropout": "\(dropout)", "fusion.kind": "\(kind)"},
                     "status": "\(status)", "run_dir": "trials/\(String(format: "%03d", index))",
                     "metrics": \(metrics), "seconds": \(10 + index), "epochs": \(status == "stopped" ? 5 : 30), "error": \(error)}
                    """)
                index += 1
            }
        }
        trials.append("""
            {"index": 6, "name": "006", "parameters": {"trainer.optimizer.lr": "1e-1", "fusion.dropout": "0.2", "fusion.kind": "mlp"},
             "status": "queued", "run_dir": "trials/006", "metrics": {}, "seconds": null, "epochs": null, "error": null}
            """)
        try write("""
            {"format": "runpipe-sweep-1", "id": "fixture-20261130-051500", "name": "fixture", "pipeline": "/abs/pipelines/fixture.yaml",
             "method": "grid", "monitor": "val.accuracy", "mode": "max", "created": "2026-11-30T05:15:00Z",
             "parameters": ["trainer.optimizer.lr", "fusion.dropout", "fusion.kind"],
             "trials": [\(trials.joined(separator: ",\n"))],
             "best": \(best.index)}
            """, folder, "sweep.json")
        try write(history(epochs: 15, metric: "accuracy"), folder, "trials/\(String(format: "%03d", best.index))/history.csv")
    }
}
