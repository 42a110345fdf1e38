// The caption grammar of the shapes world.
//
// A caption lists the scene's objects as noun phrases, grouping identical ones under a count:
//
//   caption     = [prefix] body [background] [suffix] ["."]
//   body        = list | "there is/are " list | position ", " phrase      (the last: one group only)
//   list        = phrase | phrase " and " phrase | phrase ", " … " and " phrase
//   phrase      = count [size] [texture] colour noun [positions]
//   count       = "a" | "an" | "one" | "a single" | "two" | "a pair of" | "three" | "four"
//   positions   = position | position " and " position | position ", " … " and " position
//   background  = " on a grey background" | " against a grey background" | " with a grey backdrop"
//
// Training captions vary synonyms (rate `synonymRate`), group order (reading order or shuffled),
// framing ("there is …", position first) and whether sizes and positions are stated (each with
// probability `detailRate`); they add a distractor phrase ("a photo of …", "…, rendered simply")
// with probability `distractorRate`. Shapes, colours, counts, textures and a non-white background
// are always stated, so a caption never contradicts its scene. With probability `mismatchRate`
// the training caption is that of another scene. The clean caption is one fixed form: canonical
// words, reading order, every attribute, no distractor, never mismatched.

import Compute

extension ShapesWorld {
    /// The training caption of pair `index`: usually a varied description of `scene(index)`; with
    /// probability `mismatchRate` (see `isMismatched`) the training caption of another scene.
    public func caption(_ index: Int) -> String {
        precondition(index >= 0, "ShapesWorld.caption: index must be ≥ 0, got \(index)")
        let source = mismatchPartner(index) ?? index
        var draws = DrawSequence(
            rng: CounterRNG(seed: configuration.seed, streamNamed: "shapes.caption"),
            base: UInt64(source) << 10, budget: 1024)
        return trainingCaption(for: scene(source), draws: &draws)
    }

    /// Whether `caption(index)` describes another scene than `scene(index)`.
    public func isMismatched(_ index: Int) -> Bool { mismatchPartner(index) != nil }

    /// The index whose caption pair `index` carries when its caption is mismatched, else nil.
    /// Never `index` itself; always in `0..<count`.
    public func mismatchPartner(_ index: Int) -> Int? {
        guard count >= 2, configuration.mismatchRate > 0 else { return nil }
        let rng = CounterRNG(seed: configuration.seed, streamNamed: "shapes.mismatch")
        let (u, v) = rng.uniformPair(at: UInt64(index))
        guard u < configuration.mismatchRate else { return nil }
        let offset = 1 + min(count - 2, Int(v * Double(count - 1)))
        return (index % count + offset) % count
    }

    /// The canonical caption of `scene`: canonical words, objects in reading order (top left to
    /// bottom right), identical objects counted, every size, texture and position stated, a
    /// non-white background named; e.g. "a large red circle at the top left and two small
    /// striped blue stars on the right and at the bottom on a grey background".
    public func cleanCaption(for scene: Scene) -> String {
        Self.cleanCaption(for: scene)
    }

    /// The canonical caption of `scene` (see the instance method).
    public static func cleanCaption(for scene: Scene) -> String {
        let phrases = groups(of: scene, bySize: true).map { group -> String in
            let words = [group.size!.synonyms[0]] + group.texture.synonyms.prefix(1) + [group.colour.synonyms[0]]
            let noun = group.places.count == 1 ? group.shape.synonyms[0] : group.shape.pluralSynonyms[0]
            let count = group.places.count == 1 ? "a" : Scene.countWords[group.places.count - 1]
            let head = fixArticle(([count] + words + [noun]).joined(separator: " "))
            return head + " " + joinList(group.places.map { $0.phrases[0] }, comma: false)
        }
        var text = joinList(phrases, comma: false)
        if scene.background != .white {
            text += " " + fixArticle("on a \(scene.background.synonyms[0]) background")
        }
        return text
    }

    /// Objects with equal shape, colour, texture (and size, when sizes are stated), in reading
    /// order of their first member.
    struct Group {
        var shape: Scene.Shape
        var colour: Scene.Colour
        var texture: Scene.Texture
        var size: Scene.Size?
        var places: [Scene.Place]
    }

    static func groups(of scene: Scene, bySize: Bool) -> [Group] {
        var groups: [Group] = []
        for object in scene.objects.sorted(by: { $0.place.rawValue < $1.place.rawValue }) {
            let size = bySize ? object.size : nil
            if let g = groups.firstIndex(where: {
                $0.shape == object.shape && $0.colour == object.colour && $0.texture == object.texture && $0.size == size
            }) {
                groups[g].places.append(object.place)
            } else {
                groups.append(Group(shape: object.shape, colour: object.colour, texture: object.texture,
                                    size: size, places: [object.place]))
            }
        }
        return groups
    }

    /// "x", "x and y", "x, y and z" (with `comma`, "x, y, and z").
    static func joinList(_ items: [String], comma: Bool) -> String {
        switch items.count {
        case 0: return ""
        case 1: return items[0]
        case 2: return items[0] + " and " + items[1]
        default: return items.dropLast().joined(separator: ", ") + (comma ? ", and " : " and ") + items.last!
        }
    }

    /// Replaces the article "a" by "an" before a word starting with a vowel letter.
    static func fixArticle(_ text: String) -> String {
        var words = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        for i in words.indices.dropLast() where words[i] == "a" || words[i] == "A" {
            if let first = words[i + 1].first, "aeiou".contains(first) { words[i] += "n" }
        }
        return words.joined(separator: " ")
    }

    /// The canonical word with probability 1 − synonymRate, otherwise one of the others.
    private func word(_ options: [String], _ d: inout DrawSequence) -> String {
        let swap = d.chance(configuration.synonymRate), which = d.integer(below: max(1, options.count - 1))
        return swap && options.count > 1 ? options[1 + which] : options[0]
    }

    /// A varied caption of `scene` (see the grammar at the top of this file).
    func trainingCaption(for scene: Scene, draws d: inout DrawSequence) -> String {
        let c = configuration
        let statesSize = d.chance(c.detailRate)
        let statesPlace = d.chance(c.detailRate)
        var groups = Self.groups(of: scene, bySize: statesSize)
        if d.chance(0.5) {
            // Shuffle the group order (Fisher–Yates on the draws).
            for i in stride(from: groups.count - 1, to: 0, by: -1) {
                groups.swapAt(i, d.integer(below: i + 1))
            }
        }
        let oxfordComma = d.chance(0.2)

        // Noun phrases.
        var phrases: [String] = []
        var placeLists: [String] = []
        for group in groups {
            let n = group.places.count
            var count: String
            switch n {
            case 1: count = word(["a", "one", "a single"], &d)
            case 2: count = word(["two", "a pair of"], &d)
            default: count = Scene.countWords[n - 1]
            }
            var words = [count]
            if let size = group.size { words.append(word(size.synonyms, &d)) }
            if group.texture != .plain { words.append(word(group.texture.synonyms, &d)) }
            words.append(word(group.colour.synonyms, &d))
            let nounIndex = d.chance(c.synonymRate) ? 1 + d.integer(below: group.shape.synonyms.count - 1) : 0
            words.append(n == 1 ? group.shape.synonyms[nounIndex] : group.shape.pluralSynonyms[nounIndex])
            phrases.append(Self.fixArticle(words.joined(separator: " ")))
            var places: [String] = []
            for place in group.places { places.append(word(place.phrases, &d)) }
            placeLists.append(Self.joinList(places, comma: oxfordComma))
        }

        // Body: the list, or a framed variant.
        var body: String
        let frame = d.uniform()
        if statesPlace && groups.count == 1 && frame < 0.3 {
            body = placeLists[0] + ", " + phrases[0]  // "at the top left, a red circle"
        } else {
            let items = statesPlace ? zip(phrases, placeLists).map { $0 + " " + $1 } : phrases
            if groups.count == 2 && d.chance(0.15) {
                body = items[0] + " with " + items[1]
            } else {
                body = Self.joinList(items, comma: oxfordComma)
            }
            if frame >= 0.85 {
                body = (groups[0].places.count == 1 ? "there is " : "there are ") + body
            }
        }
        let framed = frame < 0.3 && statesPlace && groups.count == 1 || frame >= 0.85

        if scene.background != .white {
            let name = word(scene.background.synonyms, &d)
            let forms = ["on a \(name) background", "against a \(name) background", "with a \(name) backdrop"]
            body += " " + Self.fixArticle(word(forms, &d))
        }

        // Distractor: a prefix ("a photo of …") or a suffix ("…, rendered simply").
        if d.chance(c.distractorRate) {
            let prefixes = ["a photo of", "an image of", "a picture of", "a drawing of", "a simple illustration of",
                            "clip art of", "a rendering of"]
            var suffixes = ["rendered simply", "in flat colours", "digital art", "computer graphics", "minimalist"]
            if scene.background == .white { suffixes += ["on a plain background", "on a white background"] }
            if !framed && d.chance(0.5) {
                body = d.pick(prefixes) + " " + body
            } else {
                body += ", " + d.pick(suffixes)
            }
        }
        if d.chance(0.3) { body += "." }
        return body
    }
}
