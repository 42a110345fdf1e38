// Tests of the shapes world: determinism in (seed, index), the scale presets, the mismatch rate,
// captions that state their scene's attributes and nothing false, scene layout, rendering, and
// the held-out evaluation tasks.

import Compute
import Data
import Dispatch
import Foundation
import Testing

/// The lower-case words of a caption ("a photo of a red circle." → ["a", "photo", …, "circle"]);
/// hyphenated words stay whole.
func captionWords(_ text: String) -> [String] {
    text.lowercased().split(whereSeparator: { !($0.isLetter || $0 == "-") }).map(String.init)
}

/// Whether the word sequence of `phrase` occurs in `words`.
func mentions(_ words: [String], _ phrase: String) -> Bool {
    let p = captionWords(phrase)
    guard p.count <= words.count else { return false }
    return (0...(words.count - p.count)).contains { Array(words[$0..<($0 + p.count)]) == p }
}

/// The places named in `words`, scanning left to right and preferring the longest phrase.
func placesNamed(in words: [String]) -> [Scene.Place] {
    let phrases = Scene.Place.allCases.flatMap { place in place.phrases.map { (place, captionWords($0)) } }
        .sorted { $0.1.count > $1.1.count }
    var found: [Scene.Place] = []
    var i = 0
    scan: while i < words.count {
        for (place, p) in phrases where i + p.count <= words.count && Array(words[i..<(i + p.count)]) == p {
            found.append(place)
            i += p.count
            continue scan
        }
        i += 1
    }
    return found
}

/// Renders `scene` at `size` and returns the planes.
func renderPlanes(_ world: ShapesWorld, _ scene: Scene, size: Int) -> [Float] {
    var planes = [Float](repeating: -1, count: 3 * size * size)
    planes.withUnsafeMutableBufferPointer { world.render(scene, size: size, into: $0.baseAddress!) }
    return planes
}

/// Per-pixel coverage of an object of colour `colour` on white: 0 for white, 1 for the colour.
func coverage(_ planes: [Float], size: Int, colour: Scene.Colour) -> [Float] {
    let n = size * size
    let red = Float(colour.rgb.r) / 255
    return (0..<n).map { (1 - planes[$0]) / (1 - red) }
}

@Suite("Shapes world")
struct ShapesWorldTests {
    let world = ShapesWorld(ShapesWorld.Configuration(seed: 7, count: 20_000))

    @Test("Scenes, captions and pixels are pure functions of (seed, index)")
    func determinism() throws {
        let again = ShapesWorld(ShapesWorld.Configuration(seed: 7, count: 20_000))
        let other = ShapesWorld(ShapesWorld.Configuration(seed: 8, count: 20_000))
        let indices = [0, 1, 2, 17, 999, 12_345, 19_999]
        for i in indices {
            #expect(world.scene(i) == again.scene(i))
            #expect(world.caption(i) == again.caption(i))
            #expect(renderPlanes(world, world.scene(i), size: 32) == renderPlanes(again, again.scene(i), size: 32))
        }
        // Another seed gives other scenes and captions (a coincidence at 7 indices is impossible).
        #expect(indices.filter { world.scene($0) == other.scene($0) }.isEmpty)
        #expect(indices.filter { world.caption($0) == other.caption($0) }.count < 2)

        // The same numbers in any order and on any number of threads.
        let n = 400
        let sequential = (0..<n).map { world.caption($0) + "|" + "\(renderPlanes(world, world.scene($0), size: 16))" }
        let box = ResultBox(count: n)
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            for i in stride(from: n - 1 - t, through: 0, by: -4) {
                box.set(i, world.caption(i) + "|" + "\(renderPlanes(world, world.scene(i), size: 16))")
            }
        }
        #expect(box.values == sequential)

        // loadImage is render(scene(i)).
        var loaded = [Float](repeating: 0, count: 3 * 32 * 32)
        try loaded.withUnsafeMutableBufferPointer { try world.loadImage(5, size: 32, into: $0.baseAddress!) }
        #expect(loaded == renderPlanes(world, world.scene(5), size: 32))
    }

    @Test("The named scales have the papers' sizes / 100")
    func scales() {
        #expect(ShapesScale.cc3mMini.count == 27_000)
        #expect(ShapesScale.cc12mMini.count == 91_000)
        #expect(ShapesScale.laion315mMini.count == 3_150_000)
        #expect(ShapesScale.allCases.map(\.rawValue) == ["cc3m-mini", "cc12m-mini", "laion315m-mini"])
        for scale in ShapesScale.allCases {
            let w = ShapesWorld(scale: scale, seed: 3)
            #expect(w.count == scale.count)
            #expect(w.configuration.mismatchRate == 0.05)
        }
        // The last index of the largest scale works.
        let big = ShapesWorld(scale: .laion315mMini, seed: 3)
        #expect(!big.caption(big.count - 1).isEmpty)
    }

    @Test("The mismatch rate is what the configuration asks for")
    func mismatchRate() {
        let n = 5000
        let mismatched = (0..<n).filter { world.isMismatched($0) }
        // Binomial(5000, 0.05): sd 0.0031; allow 4 sd.
        let rate = Double(mismatched.count) / Double(n)
        #expect(abs(rate - 0.05) < 0.0125, "mismatch rate \(rate)")
        for i in mismatched.prefix(50) {
            let partner = world.mismatchPartner(i)!
            #expect(partner != i && (0..<world.count).contains(partner))
            #expect(world.caption(i) == world.caption(partner) || world.isMismatched(partner))
        }
        let clean = ShapesWorld(ShapesWorld.Configuration(seed: 7, count: 1000, mismatchRate: 0))
        #expect((0..<1000).allSatisfy { !clean.isMismatched($0) })
        let noisy = ShapesWorld(ShapesWorld.Configuration(seed: 7, count: 2000, mismatchRate: 0.5))
        let noisyRate = Double((0..<2000).filter { noisy.isMismatched($0) }.count) / 2000
        #expect(abs(noisyRate - 0.5) < 0.045)
    }

    @Test("Every caption states its scene's shapes, colours, counts, textures and background, and nothing false")
    func captionsDescribeScenes() {
        var positionsStated = 0, sizesStated = 0, distractors = 0, synonyms = 0, checked = 0
        for i in 0..<3000 where !world.isMismatched(i) {
            checked += 1
            let scene = world.scene(i), caption = world.caption(i)
            let words = captionWords(caption)
            let shapes = Set(scene.objects.map(\.shape)), colours = Set(scene.objects.map(\.colour))
            let textures = Set(scene.objects.map(\.texture))
            for shape in Scene.Shape.allCases {
                let said = (shape.synonyms + shape.pluralSynonyms).contains { mentions(words, $0) }
                #expect(said == shapes.contains(shape), "\(i): \(shape) in \"\(caption)\"")
            }
            for colour in Scene.Colour.allCases {
                let said = colour.synonyms.contains { mentions(words, $0) }
                #expect(said == colours.contains(colour), "\(i): \(colour) in \"\(caption)\"")
            }
            for texture in Scene.Texture.allCases where texture != .plain {
                let said = texture.synonyms.contains { mentions(words, $0) }
                #expect(said == textures.contains(texture), "\(i): \(texture) in \"\(caption)\"")
            }
            for background in Scene.Background.allCases where background != .white {
                let said = background.synonyms.contains { mentions(words, $0) }
                #expect(said == (scene.background == background), "\(i): \(background) in \"\(caption)\"")
            }
            // Identical objects of one size are counted.
            var kinds: [String: [Scene.Object]] = [:]
            for o in scene.objects { kinds["\(o.shape) \(o.colour) \(o.texture)", default: []].append(o) }
            for (kind, members) in kinds where members.count > 1 && Set(members.map(\.size)).count == 1 {
                let n = members.count
                let said = mentions(words, Scene.countWords[n - 1]) || (n == 2 && mentions(words, "a pair of"))
                #expect(said, "\(i): \(n) × \(kind) in \"\(caption)\"")
            }
            // Stated places and sizes are true.
            let places = placesNamed(in: words)
            #expect(Set(places).isSubset(of: Set(scene.objects.map(\.place))), "\(i): places in \"\(caption)\"")
            if !places.isEmpty {
                positionsStated += 1
                #expect(places.count == scene.objects.count, "\(i): \(places) in \"\(caption)\"")
            }
            for size in Scene.Size.allCases where size.synonyms.contains(where: { mentions(words, $0) }) {
                #expect(scene.objects.contains { $0.size == size }, "\(i): \(size) in \"\(caption)\"")
            }
            if Scene.Size.allCases.contains(where: { $0.synonyms.contains { mentions(words, $0) } }) { sizesStated += 1 }
            if ["photo", "image", "picture", "drawing", "illustration", "clip", "rendering", "rendered", "flat",
                "digital", "computer", "minimalist", "plain"].contains(where: { words.contains($0) }) { distractors += 1 }
            if scene.objects.contains(where: { !words.contains($0.colour.rawValue) }) { synonyms += 1 }
        }
        // The configured rates show (detail 0.8, distractor 0.3; synonyms make some colour words non-canonical).
        let n = Double(checked)
        #expect(abs(Double(positionsStated) / n - 0.8) < 0.05)
        #expect(abs(Double(sizesStated) / n - 0.8) < 0.05)
        #expect(abs(Double(distractors) / n - 0.3) < 0.05)
        #expect(Double(synonyms) / n > 0.2)
    }

    @Test("Captions vary in words and word order")
    func captionVariety() {
        let captions = (0..<2000).map { world.caption($0) }
        #expect(Set(captions).count > 1900)
        #expect(captions.contains { $0.hasPrefix("at the ") || $0.hasPrefix("in the ") || $0.hasPrefix("on the ") })
        #expect(captions.contains { $0.hasPrefix("there is ") })
        #expect(captions.contains { $0.hasPrefix("there are ") })
        #expect(captions.contains { $0.hasPrefix("a photo of ") })
        #expect(captions.contains { $0.contains(", rendered simply") })
        #expect(captions.contains { $0.contains(" two ") || $0.hasPrefix("two ") })
        #expect(captions.contains { $0.contains("a pair of") })
        #expect(captions.contains { $0.contains("crimson") || $0.contains("scarlet") })
        #expect(captions.contains { $0.contains(" disc") || $0.contains(" ring") })
        #expect(captions.contains { $0.contains(" with ") })
        #expect(captions.contains { $0.contains("an orange") || $0.contains("an amber") })
        #expect(!captions.contains { $0.contains("a orange") || $0.contains("a amber") || $0.contains("a emerald") })
        #expect(!captions.contains { $0.contains("  ") || $0.hasPrefix(" ") || $0.hasSuffix(" ") })
    }

    @Test("Clean captions are canonical and complete")
    func cleanCaptions() {
        let scene = Scene(objects: [
            Scene.Object(shape: .star, colour: .blue, size: .small, texture: .striped, place: .bottom),
            Scene.Object(shape: .circle, colour: .red, size: .large, place: .topLeft),
            Scene.Object(shape: .star, colour: .blue, size: .small, texture: .striped, place: .right),
        ], background: .grey)
        #expect(world.cleanCaption(for: scene)
            == "a large red circle at the top left and two small striped blue stars on the right and at the bottom on a grey background")
        let orange = Scene(objects: [Scene.Object(shape: .heart, colour: .orange, size: .small, place: .centre)])
        #expect(world.cleanCaption(for: orange) == "a small orange heart in the centre")
        let lavender = Scene(objects: [
            Scene.Object(shape: .hexagon, colour: .green, size: .large, texture: .dotted, place: .topRight),
            Scene.Object(shape: .cross, colour: .black, size: .small, place: .bottomLeft),
            Scene.Object(shape: .crescent, colour: .yellow, size: .small, place: .left),
        ], background: .lavender)
        #expect(world.cleanCaption(for: lavender)
            == "a large dotted green hexagon at the top right, a small yellow crescent on the left and a small black cross at the bottom left on a lavender background")
        // Clean captions never vary and are never mismatched.
        for i in 0..<200 { #expect(world.cleanCaption(for: world.scene(i)) == world.cleanCaption(for: world.scene(i))) }
    }

    @Test("Scenes have 1–4 objects in distinct cells, and every attribute value occurs")
    func sceneLayout() {
        var shapes = Set<Scene.Shape>(), colours = Set<Scene.Colour>(), places = Set<Scene.Place>()
        var textures = Set<Scene.Texture>(), backgrounds = Set<Scene.Background>(), counts = Set<Int>()
        var repeats = 0
        for i in 0..<5000 {
            let scene = world.scene(i)
            #expect((1...4).contains(scene.objects.count))
            #expect(Set(scene.objects.map(\.place)).count == scene.objects.count)
            for o in scene.objects {
                let jitter = Scene.Place.jitter(for: o.size) + 1e-6
                #expect(abs(o.x - o.place.centre.x) <= jitter && abs(o.y - o.place.centre.y) <= jitter)
                #expect(abs(o.rotation) <= Float(10 * Double.pi / 180) + 1e-6)
                shapes.insert(o.shape); colours.insert(o.colour); places.insert(o.place); textures.insert(o.texture)
            }
            backgrounds.insert(scene.background)
            counts.insert(scene.objects.count)
            let kinds = Set(scene.objects.map { "\($0.shape)\($0.colour)\($0.texture)" })
            if kinds.count < scene.objects.count { repeats += 1 }
        }
        #expect(shapes.count == Scene.Shape.allCases.count && shapes.count >= 8)
        #expect(colours.count == Scene.Colour.allCases.count && colours.count >= 8)
        #expect(places.count == 9 && textures.count == 3 && backgrounds.count == Scene.Background.allCases.count)
        #expect(counts == [1, 2, 3, 4])
        #expect(repeats > 1000)
    }

    @Test("Colours are far apart and stand out on every background")
    func palette() {
        func distance(_ a: (r: UInt8, g: UInt8, b: UInt8), _ b: (r: UInt8, g: UInt8, b: UInt8)) -> Double {
            let dr = Double(a.r) - Double(b.r), dg = Double(a.g) - Double(b.g), db = Double(a.b) - Double(b.b)
            return (dr * dr + dg * dg + db * db).squareRoot()
        }
        let colours = Scene.Colour.allCases
        for i in colours.indices {
            for j in colours.indices where j > i {
                #expect(distance(colours[i].rgb, colours[j].rgb) > 60, "\(colours[i]) vs \(colours[j])")
            }
            for background in Scene.Background.allCases {
                #expect(distance(colours[i].rgb, background.rgb) > 80, "\(colours[i]) on \(background)")
            }
        }
        // No word names two things.
        var owners: [String: String] = [:]
        for c in colours { for w in c.synonyms { #expect(owners.updateValue("colour \(c)", forKey: w) == nil, "\(w)") } }
        for b in Scene.Background.allCases { for w in b.synonyms { #expect(owners.updateValue("background \(b)", forKey: w) == nil, "\(w)") } }
        for s in Scene.Shape.allCases { for w in s.synonyms + s.pluralSynonyms { #expect(owners.updateValue("shape \(s)", forKey: w) == nil, "\(w)") } }
    }

    @Test("Rendering: background, solid interiors, anti-aliased edges, values in [0, 1]")
    func rendering() {
        for size in [16, 32, 64] {
            let scene = Scene(objects: [Scene.Object(shape: .circle, colour: .red, size: .large, place: .centre)])
            let planes = renderPlanes(world, scene, size: size)
            #expect(planes.allSatisfy { $0 >= 0 && $0 <= 1 })
            let n = size * size, centre = (size / 2) * size + size / 2
            let red = Scene.Colour.red.rgb
            #expect(planes[centre] == Float(red.r) / 255 && planes[n + centre] == Float(red.g) / 255
                && planes[2 * n + centre] == Float(red.b) / 255)
            #expect(planes[0] == 1 && planes[n] == 1 && planes[2 * n] == 1)
            // Edge pixels take intermediate values.
            let green = planes[n..<(2 * n)]
            #expect(green.contains { $0 > Float(red.g) / 255 + 0.05 && $0 < 0.95 })
        }
        let tinted = Scene(objects: [Scene.Object(shape: .square, colour: .blue, size: .small, place: .topLeft)], background: .mint)
        let planes = renderPlanes(world, tinted, size: 32)
        let mint = Scene.Background.mint.rgb
        #expect(planes[31] == Float(mint.r) / 255 && planes[1024 + 31] == Float(mint.g) / 255)
    }

    @Test("Shapes have comparable areas and differ from each other at 32 px")
    func shapesAreDistinct() {
        let size = 32
        var masks: [Scene.Shape: [Float]] = [:]
        for shape in Scene.Shape.allCases {
            let scene = Scene(objects: [Scene.Object(shape: shape, colour: .black, size: .large, place: .centre)])
            masks[shape] = coverage(renderPlanes(world, scene, size: size), size: size, colour: .black)
        }
        let circleArea = masks[.circle]!.reduce(0, +)
        for shape in Scene.Shape.allCases {
            let area = masks[shape]!.reduce(0, +)
            #expect(area > 0.45 * circleArea && area < 1.2 * circleArea, "\(shape): area \(area) vs circle \(circleArea)")
        }
        for a in Scene.Shape.allCases {
            for b in Scene.Shape.allCases where a.rawValue < b.rawValue {
                let difference = zip(masks[a]!, masks[b]!).map { abs($0 - $1) }.reduce(0, +)
                // A hexagon differs from a circle only at its corners: the closest pair by far.
                let needed: Float = Set([a, b]) == [.circle, .hexagon] ? 0.08 : 0.15
                #expect(difference > needed * circleArea, "\(a) vs \(b): \(difference)")
            }
        }
    }

    @Test("Objects do not overlap")
    func noOverlap() {
        let size = 64
        var worst: Float = 0
        for i in 0..<300 {
            let scene = world.scene(i)
            let masks = scene.objects.map { o -> [Float] in
                var single = o
                single.colour = .black
                single.texture = .plain
                return coverage(renderPlanes(world, Scene(objects: [single]), size: size), size: size, colour: .black)
            }
            for a in masks.indices {
                for b in masks.indices where b > a {
                    worst = max(worst, zip(masks[a], masks[b]).map { min($0, $1) }.reduce(0, +))
                }
            }
        }
        // At most about one pixel's worth where two corners meet.
        #expect(worst < 1.5, "largest overlap \(worst) pixels")
    }

    @Test("Held-out scenes are never training scenes")
    func heldOutDisjoint() {
        let training = Set((0..<world.count).map { world.scene($0) })
        let tasks = world.zeroShotTasks(examplesPerClass: 20)
        for task in tasks {
            #expect(task.scenes.allSatisfy { !training.contains($0) }, "\(task.name)")
        }
        let retrieval = world.retrievalSet(count: 300)
        #expect(retrieval.allSatisfy { !training.contains($0.scene) })
    }

    @Test("Zero-shot tasks: labels agree with the scenes")
    func zeroShotTasks() {
        let tasks = world.zeroShotTasks(examplesPerClass: 12)
        #expect(tasks.map(\.name) == ["shape", "colour", "count", "position"])
        for task in tasks {
            #expect(task.scenes.count == 12 * task.classNames.count && task.labels.count == task.scenes.count)
            #expect(task.promptsPerClass >= 9 && task.classPrompts.allSatisfy { $0.count == task.promptsPerClass && Set($0).count == $0.count })
            #expect(Set(task.labels) == Set(task.classNames.indices))
            #expect(abs(task.chanceAccuracy - 1 / Double(task.classNames.count)) < 1e-12)
            for (scene, label) in zip(task.scenes, task.labels) {
                let name = task.classNames[label]
                switch task.name {
                case "shape":
                    #expect(scene.objects.count == 1 && scene.objects[0].shape.name == name)
                case "colour":
                    #expect(scene.objects.count == 1 && scene.objects[0].colour.name == name)
                case "count":
                    #expect(scene.objects.count == label + 1 && Scene.countWords[scene.objects.count - 1] == name)
                    let first = scene.objects[0]
                    #expect(scene.objects.allSatisfy {
                        $0.shape == first.shape && $0.colour == first.colour && $0.size == first.size && $0.texture == first.texture
                    })
                    #expect(Set(scene.objects.map(\.place)).count == scene.objects.count)
                case "position":
                    #expect(scene.objects.count == 1 && scene.objects[0].place.name == name)
                default:
                    Issue.record("unexpected task \(task.name)")
                }
            }
        }
        #expect(tasks[0].classNames.count == 9 && tasks[1].classNames.count == 10)
        #expect(tasks[2].classNames == ["one", "two", "three", "four"] && tasks[3].classNames.count == 9)
        // Other attributes vary within a class.
        #expect(Set(tasks[0].scenes.map { $0.objects[0].colour }).count > 5)
        // More examples per class keep the earlier ones; the same call gives the same scenes.
        let more = world.zeroShotTasks(examplesPerClass: 15)
        #expect(Array(more[0].scenes[0..<12]) == Array(tasks[0].scenes[0..<12]))
        #expect(world.zeroShotTasks(examplesPerClass: 12)[3].scenes == tasks[3].scenes)
        // Prompts are canonical noun phrases with the article fixed, the class's attribute in every one.
        let colour = tasks[1]
        let orange = colour.classNames.firstIndex(of: "orange")!
        #expect(colour.prompts(for: orange).contains("an orange circle"))
        #expect(tasks[0].prompts(for: 0).first == "a red circle")
        #expect(tasks[2].prompts(for: 2).contains("three blue stars") && tasks[2].prompts(for: 0).contains("a blue star"))
        #expect(tasks[3].prompts(for: 0).allSatisfy { $0.hasSuffix(" at the top left") })
        for task in tasks {
            for label in task.classNames.indices {
                // One object is "a" or "an" in the captions, never "one".
                let name = task.name == "count" && label == 0 ? "a" : task.classNames[label]
                #expect(task.prompts(for: label).allSatisfy { name == "a" ? $0.hasPrefix("a ") || $0.hasPrefix("an ") : true })
                #expect(name == "a" || task.prompts(for: label).allSatisfy { " \($0) ".contains(" \(name) ") || " \($0) ".contains(" \(name)s ") }, "\(task.name) \(name)")
            }
        }
    }

    @Test("Zero-shot prompts use only words the training captions use")
    func promptsInCaptionVocabulary() {
        let big = ShapesWorld(ShapesWorld.Configuration(seed: 3, count: 4000))
        var words = Set<String>()
        for i in 0..<big.count {
            for w in big.caption(i).split(whereSeparator: { $0 == " " || $0 == "," || $0 == "." }) { words.insert(String(w)) }
        }
        for task in big.zeroShotTasks(examplesPerClass: 1) {
            for label in task.classNames.indices {
                for prompt in task.prompts(for: label) {
                    let unseen = prompt.split(separator: " ").map(String.init).filter { !words.contains($0) }
                    #expect(unseen.isEmpty, "\(task.name) prompt '\(prompt)': \(unseen) never appear in 4,000 training captions")
                }
            }
        }
    }

    @Test("Retrieval set: distinct scenes with their clean captions")
    func retrievalSet() {
        let set = world.retrievalSet(count: 500)
        #expect(set.count == 500)
        #expect(Set(set.map(\.caption)).count == 500)
        for (scene, caption) in set { #expect(caption == world.cleanCaption(for: scene)) }
        let shorter = world.retrievalSet(count: 100)
        #expect(zip(shorter, set).allSatisfy { $0.scene == $1.scene && $0.caption == $1.caption })
        #expect(Set(set.map { $0.scene.objects.count }) == [1, 2, 3, 4])
    }

    @Test("Configuration decodes with defaults for missing keys and round-trips")
    func configurationCoding() throws {
        let json = #"{"seed": 5, "count": 100, "mismatchRate": 0.1}"#
        let decoded = try JSONDecoder().decode(ShapesWorld.Configuration.self, from: Foundation.Data(json.utf8))
        #expect(decoded == ShapesWorld.Configuration(seed: 5, count: 100, mismatchRate: 0.1))
        #expect(decoded.textureRate == 0.2 && decoded.maxObjects == 4)
        let full = ShapesWorld.Configuration(seed: 9, count: 3, distractorRate: 0.5, detailRate: 1)
        let trip = try JSONDecoder().decode(ShapesWorld.Configuration.self, from: JSONEncoder().encode(full))
        #expect(trip == full)
        let scene = world.scene(3)
        #expect(try JSONDecoder().decode(Scene.self, from: JSONEncoder().encode(scene)) == scene)
    }
}

/// Thread-safe slots for results computed concurrently.
final class ResultBox: @unchecked Sendable {
    private var slots: [String]
    private let lock = NSLock()

    init(count: Int) { slots = [String](repeating: "", count: count) }

    func set(_ i: Int, _ value: String) {
        lock.lock()
        slots[i] = value
        lock.unlock()
    }

    var values: [String] {
        lock.lock()
        defer { lock.unlock() }
        return slots
    }
}
