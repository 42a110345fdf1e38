// Where every run of a study came from: figures/<study>/provenance.csv, one row per run, gathered
// from the runs' config.json (host, CPU and its features, threads, ranks, OpenBLAS and MPI
// library versions, compiler) and done.json (git commit, code version, seconds), so the committed
// figures say what produced them without the run cache.

import Compute
import Foundation
import Workbench

let provenanceColumns = [
    "variant", "seed", "run_id", "commit", "code", "host", "cpu", "cpu_features", "threads", "ranks", "local_batch", "parameters", "embed_dim",
    "openblas", "communication", "swift", "started", "seconds",
]

/// provenance.csv from the run directories; a run without config.json (a study whose executor
/// is not the trainer) gets its done.json fields alone.
func writeProvenance(_ runs: [(run: PlannedRun, directory: String)], output: String) throws -> [String] {
    func json(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw WorkbenchError.malformed(what: path, reason: "expected a JSON object")
        }
        return object
    }
    var rows: [[Cell]] = []
    for (run, dir) in runs {
        // A staged (CLIPA) run's environment is in its stages' config.json; the first stage's.
        let top = try json(dir + "/config.json"), done = try json(dir + "/done.json")
        let config = top["provenance"] == nil && top["stages"] != nil ? try json(dir + "/pretrain/config.json") : top
        let p = config["provenance"] as? [String: Any] ?? [:]
        let architecture = config["modelArchitecture"] as? [String: Any] ?? [:]
        func text(_ v: Any?) -> Cell {
            switch v {
            case let s as String: .text(s)
            case let n as NSNumber: .number(n.doubleValue)
            default: .text("")
            }
        }
        rows.append([
            .text(run.variant), .number(Double(run.seed)), .text(run.id), text(done["commit"]), text(done["code"]), text(p["host"]), text(p["cpu"]),
            text(p["cpu_features"]), text(p["threads"]), text(config["ranks"]), text(config["localBatch"]), text(config["parameters"]),
            text(architecture["embedDimension"]), text(p["openblas"]), text(p["communication"]), text(p["swift"]), text(p["started"]), text(done["seconds"]),
        ])
    }
    try writeAtomically(CSV.render(columns: provenanceColumns, rows: rows), to: output + "/provenance.csv")
    return ["provenance.csv"]
}
