// Held-out evaluation of the shapes world: four zero-shot classification tasks (shape, colour,
// count, position) with prompt templates, and an image↔text retrieval set with clean captions.
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
/// embeddings of the class prompts (CLIP's protocol: average the embeddings of one class's
/// prompts, pick the class with the highest cosine similarity).
public struct ZeroShotTask: Sendable {
    /// The task's name: "shape", "colour", "count" or "position".
    public let name: String
    /// Class names, indexed by label ("circle", "red", "two", "top left").
    public let classNames: [String]
    /// Prompt templates with "{}" where the class name goes, e.g. "a photo of a {}.".
    public let templates: [String]
    /// The held-out scenes to classify.
    public let scenes: [Scene]
    /// The true class of each scene, an index into `classNames`.
    public let labels: [Int]

    /// A task from its parts.
    public init(name: String, classNames: [String], templates: [String], scenes: [Scene], labels: [Int]) {
        precondition(scenes.count == labels.count, "ZeroShotTask: \(scenes.count) scenes but \(labels.count) labels")
        self.name = name
        self.classNames = classNames
        self.templates = templates
        self.scenes = scenes
        self.labels = labels
    }

    /// Chance accuracy: 1 / number of classes.
    public var chanceAccuracy: Double { 1 / Double(classNames.count) }

    /// The prompts of class `label`: every template with "{}" replaced by the class name, and
    /// "a" turned into "an" before a vowel ("an orange shape.").
    public func prompts(for label: Int) -> [String] {
        templates.map { template in
            ShapesWorld.fixArticle(template.replacingOccurrences(of: "{}", with: classNames[label]))
        }
    }
}

extension String {
    /// `self` with every occurrence of `target` replaced by `replacement` (no Foundation needed).
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}

extension ShapesWorld {
    /// Prompt templates per task ("{}" is the class name).
    public static let zeroShotTemplates: [String: [String]] = [
        "shape": ["a {}.", "a photo of a {}.", "a drawing of a {}.", "a small {}.", "a large {}.",
                  "there is a {}.", "a picture of a {}."],
        "colour": ["something {}.", "a {} shape.", "a photo of a {} object.", "a {} thing.",
                   "the colour {}.", "a drawing in {}."],
        "count": ["{} shapes.", "a photo of {} shapes.", "there are {} objects.", "{} things.",
                  "a picture of {} objects."],
        "position": ["a shape at the {}.", "something at the {}.", "a photo of an object at the {}.",
                     "an object in the {} of the picture.", "a photo with a shape at the {}."],
    ]

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
        return ZeroShotTask(name: name, classNames: classNames, templates: Self.zeroShotTemplates[name]!,
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
