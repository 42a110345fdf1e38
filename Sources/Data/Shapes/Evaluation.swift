// Held-out evaluation of the shapes world: four zero-shot classification tasks (shape, colour,
// count, position) with prompts in the captions' own grammar, and an image↔text retrieval set with clean captions.
// Their mean stands in for the Datacomp average of the papers.
//
// Held-out scenes come from their own random streams ("shapes.heldout.<task>"), never from
// "shapes.scene", so they are new renderings (new jitter, rotation and attribute combinations)
// rather than training images. Example e of class c is keyed by (c, e), so asking for more
// examples per class keeps the earlier ones.
//
// Chance levels: a task with k classes has chance accuracy 1/k (shape 1/9, colour 1/10, count 1/4,
// position 1/9); retrieval recall R@k among n candidates has chance k/n.

import Compute

/// A zero-shot classification task: classify each scene's image by comparing it with the text
/// embeddings of the class prompts (CLIP's protocol: average the normalised embeddings of one
/// class's prompts, pick the class with the highest cosine similarity).
public struct ZeroShotTask: Sendable {
    /// The task's name: "shape", "colour", "count" or "position".
    public let name: String
    /// Class names, indexed by label ("circle", "red", "two", "top left").
    public let classNames: [String]
    /// The prompts of each class, indexed by label; every class has the same number.
    public let classPrompts: [[String]]
    /// The held-out scenes to classify.
    public let scenes: [Scene]
    /// The true class of each scene, an index into `classNames`.
    public let labels: [Int]

    /// A task from its parts.
    public init(name: String, classNames: [String], classPrompts: [[String]], scenes: [Scene], labels: [Int]) {
        precondition(scenes.count == labels.count, "ZeroShotTask: \(scenes.count) scenes but \(labels.count) labels")
        precondition(classPrompts.count == classNames.count, "ZeroShotTask: \(classPrompts.count) prompt lists for \(classNames.count) classes")
        precondition(!classPrompts.isEmpty && classPrompts.allSatisfy { $0.count == classPrompts[0].count && !$0.isEmpty },
                     "ZeroShotTask: every class needs the same, non-zero number of prompts")
        self.name = name
        self.classNames = classNames
        self.classPrompts = classPrompts
        self.scenes = scenes
        self.labels = labels
    }

    /// Chance accuracy: 1 / number of classes.
    public var chanceAccuracy: Double { 1 / Double(classNames.count) }

    /// Prompts per class (the same for every class).
    public var promptsPerClass: Int { classPrompts[0].count }

    /// The prompts of class `label`.
    public func prompts(for label: Int) -> [String] { classPrompts[label] }
}

extension ShapesWorld {
    /// The prompts of a zero-shot class: the canonical noun phrase of the training captions with
    /// the class's attribute set and every attribute the task does not ask about filled in with
    /// each of its canonical values, so the class embedding averages those out (CLIP's prompt
    /// ensembling, over the world's own attributes):
    ///
    /// - shape s: "a {colour} s" for the 10 colours ("a red circle", "an orange circle", …);
    /// - colour c: "a c {shape}" for the 9 shapes;
    /// - count n: "a {colour} {shape}" for one, "n {colour} {shapes}" otherwise, 90 per class;
    /// - position p: "a {colour} {shape} {p's canonical phrase}" ("a red circle at the top left"), 90.
    ///
    /// Every word is one the training captions use. (Generic templates such as "a photo of {}
    /// shapes." or "a shape at the {}." rest on words the captions never contain: "shape",
    /// "object", "thing"; their text embeddings are those of untrained tokens, and with them a
    /// micro model's count and position accuracy stayed at chance while its retrieval R@1 was 0.47.)
    public static func zeroShotPrompts(task: String, label: Int) -> [String] {
        let shapes = Scene.Shape.allCases, colours = Scene.Colour.allCases
        func phrase(_ count: Int, _ colour: Scene.Colour, _ shape: Scene.Shape) -> String {
            let noun = count == 1 ? shape.synonyms[0] : shape.pluralSynonyms[0]
            return fixArticle("\(count == 1 ? "a" : Scene.countWords[count - 1]) \(colour.synonyms[0]) \(noun)")
        }
        switch task {
        case "shape": return colours.map { phrase(1, $0, shapes[label]) }
        case "colour": return shapes.map { phrase(1, colours[label], $0) }
        case "count": return shapes.flatMap { s in colours.map { phrase(label + 1, $0, s) } }
        case "position":
            let place = Scene.Place.allCases[label].phrases[0]
            return shapes.flatMap { s in colours.map { phrase(1, $0, s) + " " + place } }
        default: preconditionFailure("zeroShotPrompts: unknown task '\(task)'")
        }
    }

    /// The four held-out zero-shot tasks, in the order shape, colour, count, position, each with
    /// `examplesPerClass` scenes per class (grouped by class):
    ///
    /// - shape (9 classes, chance 1/9): one object of the class's shape, other attributes random.
    /// - colour (10 classes, chance 1/10): one object of the class's colour.
    /// - count (4 classes "one" … "four", chance 1/4): 1–4 objects of one shape, colour, size and
    ///   texture at distinct places.
    /// - position (9 classes "top left" … "bottom right", chance 1/9): one object in that cell.
    ///
    /// Single-object scenes make the shape, colour and position labels unambiguous.
    public func zeroShotTasks(examplesPerClass: Int) -> [ZeroShotTask] {
        precondition(examplesPerClass >= 0, "zeroShotTasks: examplesPerClass must be ≥ 0")
        let shapes = Scene.Shape.allCases, colours = Scene.Colour.allCases, places = Scene.Place.allCases
        return [
            heldOutTask("shape", classNames: shapes.map(\.name), examplesPerClass: examplesPerClass) {
                SceneConstraints(objectCount: 1, shape: shapes[$0])
            },
            heldOutTask("colour", classNames: colours.map(\.name), examplesPerClass: examplesPerClass) {
                SceneConstraints(objectCount: 1, colour: colours[$0])
            },
            heldOutTask("count", classNames: Scene.countWords, examplesPerClass: examplesPerClass) {
                SceneConstraints(objectCount: $0 + 1, identicalObjects: true)
            },
            heldOutTask("position", classNames: places.map(\.name), examplesPerClass: examplesPerClass) {
                SceneConstraints(objectCount: 1, place: places[$0])
            },
        ]
    }

    private func heldOutTask(
        _ name: String, classNames: [String], examplesPerClass: Int, constraints: (Int) -> SceneConstraints
    ) -> ZeroShotTask {
        let rng = CounterRNG(seed: configuration.seed, streamNamed: "shapes.heldout.\(name)")
        var scenes: [Scene] = [], labels: [Int] = []
        for label in classNames.indices {
            for example in 0..<examplesPerClass {
                var draws = DrawSequence(rng: rng, base: (UInt64(label) << 32 | UInt64(example)) << 8, budget: 256)
                scenes.append(makeScene(&draws, constraints(label)))
                labels.append(label)
            }
        }
        return ZeroShotTask(name: name, classNames: classNames, classPrompts: classNames.indices.map { Self.zeroShotPrompts(task: name, label: $0) },
                            scenes: scenes, labels: labels)
    }

    /// `count` held-out scenes with their clean captions, for image↔text retrieval (R@1, R@5,
    /// R@10: the fraction of queries whose match ranks in the top k; chance k/count). The
    /// scenes are pairwise distinct down to their clean captions, so each caption matches one
    /// image; the same `count` always gives the same list, and a longer list extends a shorter one.
    public func retrievalSet(count: Int) -> [(scene: Scene, caption: String)] {
        precondition(count >= 0, "retrievalSet: count must be ≥ 0")
        let rng = CounterRNG(seed: configuration.seed, streamNamed: "shapes.heldout.retrieval")
        var seen = Set<String>()
        var result: [(scene: Scene, caption: String)] = []
        var candidate: UInt64 = 0
        while result.count < count {
            var draws = DrawSequence(rng: rng, base: candidate << 8, budget: 256)
            candidate += 1
            let scene = makeScene(&draws, SceneConstraints())
            let caption = cleanCaption(for: scene)
            if seen.insert(caption).inserted { result.append((scene, caption)) }
        }
        return result
    }
}
