// The shapes world: ClipLab's embedded default dataset. Scene `i` is a pure function of (seed, i):
// every random choice is a draw of the counter-based RNG at a counter derived from the index, so a
// scene, its caption and its pixels are the same in every run, on every thread, in any order.
//
// Random streams (all under `configuration.seed`):
//   "shapes.scene"     scene i uses counters i·256 ..< i·256 + 256
//   "shapes.caption"   caption i uses counters i·1024 ..< i·1024 + 1024
//   "shapes.mismatch"  caption i is mismatched by block i
//   "shapes.heldout.*" the evaluation scenes (Evaluation.swift): never the training streams

import Compute

/// The synthetic image–text dataset of flat shapes on a 3×3 grid, with grammar-generated captions.
///
/// ```swift
/// let world = ShapesWorld(scale: .cc3mMini, seed: 0)
/// world.caption(7)                         // "two green squares on the left and a red heart at the top"
/// world.loadImage(7, size: 32, into: buf)  // (3, 32, 32) floats in [0, 1]
/// ```
public struct ShapesWorld: ImageTextDataset {
    /// Everything that defines a shapes world. Two worlds with equal configurations are identical.
    public struct Configuration: Sendable, Codable, Hashable {
        /// The seed of every random stream.
        public var seed: UInt64
        /// Number of training pairs.
        public var count: Int
        /// Probability that a training caption is the caption of a different scene (web-like
        /// noise). Default 0.05.
        public var mismatchRate: Double
        /// Probability that a training caption carries a distractor phrase such as "a photo of" or
        /// ", rendered simply". Default 0.3.
        public var distractorRate: Double
        /// Probability that an object is striped or dotted rather than plain. Default 0.2.
        public var textureRate: Double
        /// Probability that a scene has a coloured (non-white) background. Default 0.3.
        public var backgroundRate: Double
        /// Probability that each object after the first copies the shape, colour and texture of an
        /// earlier one, so captions contain counts ("two green squares"). Default 0.35.
        public var repeatRate: Double
        /// Probability that each word with synonyms is replaced by a non-canonical synonym
        /// ("crimson" for "red"). Default 0.3.
        public var synonymRate: Double
        /// Probability that a training caption states the objects' sizes, and independently
        /// their positions. Shapes, colours, counts, textures and a coloured background are always
        /// stated. Default 0.8.
        public var detailRate: Double
        /// The largest number of objects in a scene, 1…4; the number is uniform in 1…maxObjects.
        /// Default 4.
        public var maxObjects: Int
        /// The largest rotation of an object, in degrees, either way. Default 10.
        public var rotationJitter: Double

        /// A configuration with the documented defaults for everything not given.
        public init(
            seed: UInt64, count: Int, mismatchRate: Double = 0.05, distractorRate: Double = 0.3,
            textureRate: Double = 0.2, backgroundRate: Double = 0.3, repeatRate: Double = 0.35,
            synonymRate: Double = 0.3, detailRate: Double = 0.8, maxObjects: Int = 4,
            rotationJitter: Double = 10
        ) {
            self.seed = seed
            self.count = count
            self.mismatchRate = mismatchRate
            self.distractorRate = distractorRate
            self.textureRate = textureRate
            self.backgroundRate = backgroundRate
            self.repeatRate = repeatRate
            self.synonymRate = synonymRate
            self.detailRate = detailRate
            self.maxObjects = maxObjects
            self.rotationJitter = rotationJitter
        }

        private enum CodingKeys: String, CodingKey {
            case seed, count, mismatchRate, distractorRate, textureRate, backgroundRate, repeatRate
            case synonymRate, detailRate, maxObjects, rotationJitter
        }

        /// Decodes a configuration; every key except `seed` and `count` may be absent and then
        /// takes its default, so a run's `config.json` can name only what it changes.
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let d = Configuration(seed: 0, count: 0)
            self.init(
                seed: try c.decode(UInt64.self, forKey: .seed),
                count: try c.decode(Int.self, forKey: .count),
                mismatchRate: try c.decodeIfPresent(Double.self, forKey: .mismatchRate) ?? d.mismatchRate,
                distractorRate: try c.decodeIfPresent(Double.self, forKey: .distractorRate) ?? d.distractorRate,
                textureRate: try c.decodeIfPresent(Double.self, forKey: .textureRate) ?? d.textureRate,
                backgroundRate: try c.decodeIfPresent(Double.self, forKey: .backgroundRate) ?? d.backgroundRate,
                repeatRate: try c.decodeIfPresent(Double.self, forKey: .repeatRate) ?? d.repeatRate,
                synonymRate: try c.decodeIfPresent(Double.self, forKey: .synonymRate) ?? d.synonymRate,
                detailRate: try c.decodeIfPresent(Double.self, forKey: .detailRate) ?? d.detailRate,
                maxObjects: try c.decodeIfPresent(Int.self, forKey: .maxObjects) ?? d.maxObjects,
                rotationJitter: try c.decodeIfPresent(Double.self, forKey: .rotationJitter) ?? d.rotationJitter)
        }
    }

    /// The world's configuration.
    public let configuration: Configuration

    /// Number of training pairs.
    public var count: Int { configuration.count }

    /// A world with the given configuration.
    public init(_ configuration: Configuration) {
        precondition(configuration.count >= 0, "ShapesWorld: count must be ≥ 0, got \(configuration.count)")
        precondition((1...4).contains(configuration.maxObjects),
                     "ShapesWorld: maxObjects must be in 1…4, got \(configuration.maxObjects)")
        for (name, p) in [("mismatchRate", configuration.mismatchRate), ("distractorRate", configuration.distractorRate),
                          ("textureRate", configuration.textureRate), ("backgroundRate", configuration.backgroundRate),
                          ("repeatRate", configuration.repeatRate), ("synonymRate", configuration.synonymRate),
                          ("detailRate", configuration.detailRate)] {
            precondition((0...1).contains(p), "ShapesWorld: \(name) must be in [0, 1], got \(p)")
        }
        self.configuration = configuration
    }

    /// The world of a named scale (its `count`) with the default rates.
    public init(scale: ShapesScale, seed: UInt64) {
        self.init(Configuration(seed: seed, count: scale.count))
    }

    // MARK: - Scenes

    /// Scene `index` (any index ≥ 0; the training set is `0..<count`).
    public func scene(_ index: Int) -> Scene {
        precondition(index >= 0, "ShapesWorld.scene: index must be ≥ 0, got \(index)")
        var draws = DrawSequence(
            rng: CounterRNG(seed: configuration.seed, streamNamed: "shapes.scene"),
            base: UInt64(index) << 8, budget: 256)
        return makeScene(&draws, SceneConstraints())
    }

    /// Writes scene `index` rendered at size×size into `pixels`, (3, S, S) in [0, 1].
    public func loadImage(_ index: Int, size: Int, into pixels: UnsafeMutablePointer<Float>) throws {
        precondition((0..<count).contains(index), "ShapesWorld.loadImage: index \(index) outside 0..<\(count)")
        render(scene(index), size: size, into: pixels)
    }

    /// What a generated scene must satisfy (the evaluation tasks pin one attribute).
    struct SceneConstraints {
        var objectCount: Int? = nil
        var shape: Scene.Shape? = nil
        var colour: Scene.Colour? = nil
        var place: Scene.Place? = nil
        /// All objects share shape, colour, size and texture (the count task).
        var identicalObjects = false
    }

    /// Draws a scene. The draw order is fixed, so the scene is a function of the draw sequence.
    func makeScene(_ d: inout DrawSequence, _ constraints: SceneConstraints) -> Scene {
        let c = configuration
        let n = constraints.objectCount ?? (1 + d.integer(below: c.maxObjects))
        // Distinct places: the first n entries of a partial Fisher–Yates shuffle of the nine.
        var places = Scene.Place.allCases
        for i in 0..<n {
            places.swapAt(i, i + d.integer(below: places.count - i))
        }
        if let place = constraints.place { places[0] = place }
        let coloured = Array(Scene.Background.allCases.dropFirst())
        let background = d.chance(c.backgroundRate) ? coloured[d.integer(below: coloured.count)] : .white

        var objects: [Scene.Object] = []
        let maxRotation = Float(c.rotationJitter * Double.pi / 180)
        for i in 0..<n {
            var shape = Scene.Shape.allCases[d.integer(below: Scene.Shape.allCases.count)]
            var colour = Scene.Colour.allCases[d.integer(below: Scene.Colour.allCases.count)]
            var size: Scene.Size = d.chance(0.5) ? .small : .large
            var texture = Scene.Texture.plain
            if d.chance(c.textureRate) { texture = d.chance(0.5) ? .striped : .dotted }
            let copies = d.chance(c.repeatRate), source = d.integer(below: max(i, 1)), copySize = d.chance(0.7)
            if i > 0 && (constraints.identicalObjects || copies) {
                let original = objects[constraints.identicalObjects ? 0 : source]
                shape = original.shape
                colour = original.colour
                texture = original.texture
                if constraints.identicalObjects || copySize { size = original.size }
            }
            if let s = constraints.shape { shape = s }
            if let k = constraints.colour { colour = k }
            let jitter = Scene.Place.jitter(for: size)
            let place = places[i]
            let x = place.centre.x + jitter * Float(2 * d.uniform() - 1)
            let y = place.centre.y + jitter * Float(2 * d.uniform() - 1)
            let rotation = maxRotation * Float(2 * d.uniform() - 1)
            objects.append(Scene.Object(shape: shape, colour: colour, size: size, texture: texture,
                                        place: place, x: x, y: y, rotation: rotation))
        }
        return Scene(objects: objects, background: background)
    }
}

/// The named dataset scales, 1/100 of the papers' datasets.
public enum ShapesScale: String, CaseIterable, Codable, Sendable {
    /// 27,000 pairs (CC3M / 100).
    case cc3mMini = "cc3m-mini"
    /// 91,000 pairs (CC12M / 100).
    case cc12mMini = "cc12m-mini"
    /// 3,150,000 pairs (LAION-315M / 100), for the full preset only.
    case laion315mMini = "laion315m-mini"

    /// Number of training pairs.
    public var count: Int {
        switch self {
        case .cc3mMini: 27_000
        case .cc12mMini: 91_000
        case .laion315mMini: 3_150_000
        }
    }
}

/// Consecutive draws from a block of one random stream: draw k uses counter `base + k`, one Philox
/// block per draw, so what a draw returns depends only on (seed, stream, base, k).
struct DrawSequence {
    let rng: CounterRNG
    let base: UInt64
    let budget: UInt64
    private(set) var used: UInt64 = 0

    init(rng: CounterRNG, base: UInt64, budget: UInt64) {
        self.rng = rng
        self.base = base
        self.budget = budget
    }

    private mutating func nextCounter() -> UInt64 {
        precondition(used < budget, "DrawSequence: more than \(budget) draws from one block")
        defer { used += 1 }
        return base + used
    }

    /// A uniform double in (0, 1).
    mutating func uniform() -> Double { rng.uniformPair(at: nextCounter()).0 }

    /// A uniform integer in 0..<bound.
    mutating func integer(below bound: Int) -> Int { rng.integer(below: bound, nextCounter()) }

    /// True with probability p.
    mutating func chance(_ p: Double) -> Bool { uniform() < p }

    /// A uniformly chosen element of a non-empty array.
    mutating func pick<T>(_ xs: [T]) -> T { xs[integer(below: xs.count)] }
}
