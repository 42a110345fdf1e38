import ArgumentParser
import CLIP
import Compute
import Data
import Foundation
import Training

/// `clip embed`: image files or texts → embeddings as CSV.
struct Embed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Embed image files or texts with a checkpoint; prints CSV (input, e0, …, eE−1).",
        discussion: "Images (PNG or JPEG) are resized on the shorter side and centre-cropped to the model's input size.")

    @Option(help: "A ClipLab checkpoint (.safetensors), or an OpenCLIP one with --model or --model-config.") var checkpoint: String
    @OptionGroup(title: "Architecture of a checkpoint without ClipLab metadata (an OpenCLIP checkpoint)") var architecture: ArchitectureOptions
    @Option(parsing: .upToNextOption, help: "Image files to embed.") var images: [String] = []
    @Option(parsing: .upToNextOption, help: "Texts to embed.") var texts: [String] = []
    @Flag(help: "Leave the embeddings unnormalised (default: L2-normalised).") var raw = false
    @Option(help: "Write the CSV here instead of standard output.") var out: String?

    func validate() throws {
        if images.isEmpty && texts.isEmpty { throw ValidationError("give --images FILE… or --texts TEXT… (or both)") }
    }

    func run() throws {
        let (model, tokenizer) = try loadCheckpoint(checkpoint, architecture: architecture.source)
        let e = model.config.embedDimension, s = model.config.vision.imageSize
        let acts = model.makeActivations(batch: 32, memory: .inference)
        var lines = ["input," + (0..<e).map { "e\($0)" }.joined(separator: ",")]
        func rows(_ names: [String], _ emb: [Float]) {
            for (i, n) in names.enumerated() {
                let cells = (0..<e).map { "\(emb[i * e + $0])" }.joined(separator: ",")
                lines.append(csvField(n) + "," + cells)
            }
        }
        if !images.isEmpty {
            let pixels = AlignedBuffer<Float>(count: images.count * 3 * s * s)
            for (i, path) in images.enumerated() {
                let img = try ImageDecoder.decode(path: path)
                preprocess(img, size: s, into: pixels.pointer + i * 3 * s * s)
            }
            ImageNormalization.apply(pixels.pointer, batch: images.count, size: s)
            let emb = withExtendedLifetime(pixels) { model.embedImages(pixels.pointer, count: images.count, activations: acts, normalize: !raw) }
            rows(images, emb)
        }
        if !texts.isEmpty {
            let ctx = model.config.text.contextLength
            let ids = texts.flatMap { tokenizer.tokenize($0, contextLength: ctx) }
            rows(texts, model.embedTexts(ids, count: texts.count, activations: acts, normalize: !raw))
        }
        let text = lines.joined(separator: "\n") + "\n"
        if let out { try writeAtomically(Data(text.utf8), to: out) } else { print(text, terminator: "") }
    }
}

/// RFC 4180 quoting for a CSV cell.
func csvField(_ s: String) -> String {
    if s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
    return s
}
