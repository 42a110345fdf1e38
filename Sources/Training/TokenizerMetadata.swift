// Which tokenizer a checkpoint was trained with, recorded in its safetensors metadata so that
// `clip eval` and `clip embed` tokenize exactly as training did.

import CLIP
import Data
import Foundation

public enum TokenizerMetadata {
    /// "clip" or "trained".
    public static let kindKey = "cliplab.tokenizer"
    /// For a trained BPE: its merges, one "left right" pair per line, in rank order.
    public static let mergesKey = "cliplab.tokenizer.merges"

    /// The metadata entries describing `tokenizer`.
    public static func entries(kind: String, tokenizer: any Tokenizer) -> [String: String] {
        var m = [kindKey: kind]
        if kind == "trained", let t = tokenizer as? CLIPTokenizer {
            m[mergesKey] = t.merges.map { "\($0.0) \($0.1)" }.joined(separator: "\n")
        }
        return m
    }

    /// The tokenizer kind of a checkpoint: the one it records; for a file without ClipLab
    /// metadata (an OpenCLIP checkpoint) "clip"; else "trained".
    public static func kind(of metadata: [String: String]) -> String {
        metadata[kindKey] ?? (metadata[CLIPModel<Float>.configurationKey] == nil ? "clip" : "trained")
    }

    /// Rebuilds the tokenizer a checkpoint records; the error names the file and what is missing.
    /// A file without ClipLab metadata (an OpenCLIP checkpoint) records none: it gets CLIP's BPE
    /// when its vocabulary is CLIP's 49,408 tokens (OpenCLIP's default `SimpleTokenizer`), and is
    /// refused otherwise.
    public static func tokenizer(from metadata: [String: String], path: String, vocabularySize: Int) throws -> any Tokenizer {
        if metadata[kindKey] == nil && metadata[CLIPModel<Float>.configurationKey] == nil {
            guard vocabularySize == CLIPConfiguration.clipVocabularySize else {
                throw TrainingError.io(
                    path: path,
                    reason: "is not a ClipLab checkpoint and records no tokenizer, and its vocabulary of \(vocabularySize) tokens is not CLIP's "
                        + "\(CLIPConfiguration.clipVocabularySize), so ClipLab cannot tell how its texts were tokenized")
            }
            guard let url = TokenizerFiles.defaultMergesFile() else {
                throw TrainingError.io(
                    path: path,
                    reason: "has CLIP's vocabulary of \(vocabularySize) tokens and no ClipLab metadata (an OpenCLIP checkpoint), so it needs CLIP's BPE, "
                        + "but \(TokenizerFiles.mergesFileName) is not installed (run scripts/bootstrap.sh or set CLIPLAB_BPE_PATH)")
            }
            return try CLIPTokenizer(mergesFile: url)
        }
        switch metadata[kindKey] {
        case "clip":
            guard let url = TokenizerFiles.defaultMergesFile() else {
                throw TrainingError.io(path: path, reason: "was trained with CLIP's BPE, but \(TokenizerFiles.mergesFileName) is not installed (run scripts/bootstrap.sh or set CLIPLAB_BPE_PATH)")
            }
            return try CLIPTokenizer(mergesFile: url)
        case "trained":
            guard let text = metadata[mergesKey] else {
                throw TrainingError.io(path: path, reason: "records a trained tokenizer but not its merges (\(mergesKey))")
            }
            let merges = try text.split(separator: "\n").enumerated().map { (i, line) -> (String, String) in
                let parts = line.split(separator: " ")
                guard parts.count == 2 else { throw TrainingError.io(path: path, reason: "tokenizer merge \(i + 1) is not two symbols: '\(line)'") }
                return (String(parts[0]), String(parts[1]))
            }
            // A BPE trained to a size its captions could not fill stops early and keeps the size
            // asked for (`trainBPE`), so the embedding may have more rows than merges need.
            guard vocabularySize >= 512 + merges.count + 2 else {
                throw TrainingError.io(path: path, reason: "tokenizer has \(512 + merges.count + 2) tokens but the model's embedding has only \(vocabularySize)")
            }
            return try CLIPTokenizer(merges: merges, vocabularySize: vocabularySize)
        default:
            throw TrainingError.io(path: path, reason: "records no tokenizer (\(kindKey)); not a checkpoint written by clip train")
        }
    }
}
