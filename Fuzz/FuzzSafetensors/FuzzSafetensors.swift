// libFuzzer target: a safetensors checkpoint from an untrusted source, read as `clip eval` and
// `clip train --init-from` read one: the header and its offsets, every float tensor's values, the
// conversion notes, what the shapes say about the architecture, and ClipLab's model configuration
// in the metadata.

import CLIP
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(bytes: data, count: size)
    guard let file = try? SafetensorsFile(bytes: bytes, path: "fuzz.safetensors") else { return 0 }
    for (name, entry) in file.entries where SafetensorsFile.floatDTypes.contains(entry.dtype) {
        _ = try? file.doubles(name)
    }
    _ = CLIPModel<Float>.conversionNotes(file)
    _ = CheckpointShapes(file).suggestion(insteadOf: nil)
    if let json = file.metadata[CLIPModel<Float>.configurationKey],
        let config = try? JSONDecoder().decode(CLIPConfiguration.self, from: Data(json.utf8))
    {
        _ = try? config.validate()
    }
    return 0
}
