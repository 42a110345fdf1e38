// libFuzzer target: the JSON files ClipLab reads from users and from checkpoints, each input given
// to every reader: an OpenCLIP model config (`--model-config`, either form), a model configuration
// as a checkpoint's `cliplab.config` metadata holds it (decoded, then validated), a run's
// config.json as `--resume` reads it (its training configuration decoded, then validated, which
// parses its data source, reductions and objective), and a zero-shot classes.json (`--zero-shot`).

import CLIP
import Foundation
import FuzzSupport
import Training

/// config.json as `Trainer(resuming:)` reads it.
struct Recorded: Decodable { let training: TrainingConfiguration }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let json = Data(bytes: data, count: size)
    _ = try? OpenCLIPConfig.configuration(json: json, name: "fuzz", source: "fuzz.json")
    if let config = try? JSONDecoder().decode(CLIPConfiguration.self, from: json) {
        _ = try? config.validate()
    }
    if let recorded = try? JSONDecoder().decode(Recorded.self, from: json) {
        _ = try? recorded.training.validate()
    }
    if let training = try? JSONDecoder().decode(TrainingConfiguration.self, from: json) {
        _ = try? training.validate()
    }
    _ = try? ZeroShotClasses.load(path: ScratchFile.write(data, size, suffix: ".json"))
    return 0
}
