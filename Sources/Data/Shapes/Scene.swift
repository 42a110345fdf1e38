// A scene of the shapes world: up to four flat objects on a background, each with a shape, colour,
// size, optional texture and a place on a 3×3 grid; plus the words the caption grammar uses for
// every attribute (the first word of each list is the canonical one, used by clean captions).

/// One scene of the shapes world: what `ShapesWorld.render` draws and the captions describe.
///
/// Coordinates are in image units: x grows to the right, y downwards, both in [0, 1], so a scene
/// renders identically at any resolution.
public struct Scene: Sendable, Hashable, Codable {
    /// The objects in drawing order (later ones are drawn on top). Each occupies its own grid place.
    public var objects: [Object]
    /// The background colour (`.white` for a plain background).
    public var background: Background

    /// A scene of `objects` on `background`.
    public init(objects: [Object], background: Background = .white) {
        self.objects = objects
        self.background = background
    }

    /// One flat object of a scene.
    public struct Object: Sendable, Hashable, Codable {
        /// Its outline.
        public var shape: Shape
        /// Its fill colour.
        public var colour: Colour
        /// Small or large.
        public var size: Size
        /// Plain, striped or dotted fill.
        public var texture: Texture
        /// The grid cell it sits in, the place its caption names.
        public var place: Place
        /// Horizontal centre in [0, 1] (the cell centre plus a small jitter).
        public var x: Float
        /// Vertical centre in [0, 1], growing downwards.
        public var y: Float
        /// Rotation in radians (a small jitter: never enough to turn a square into a diamond).
        public var rotation: Float

        /// An object with every attribute given; `x`, `y` default to the centre of `place`.
        public init(
            shape: Shape, colour: Colour, size: Size, texture: Texture = .plain, place: Place,
            x: Float? = nil, y: Float? = nil, rotation: Float = 0
        ) {
            self.shape = shape
            self.colour = colour
            self.size = size
            self.texture = texture
            self.place = place
            self.x = x ?? place.centre.x
            self.y = y ?? place.centre.y
            self.rotation = rotation
        }

        /// The radius, in image units, of the circle the shape is drawn inside.
        public var radius: Float { size.radius }
    }

    /// The shapes objects can have.
    public enum Shape: String, Sendable, Hashable, Codable, CaseIterable {
        case circle, square, triangle, star, cross, diamond, hexagon, heart, crescent

        /// Singular nouns for the shape, canonical first ("circle", "disc", "ring").
        public var synonyms: [String] { Scene.shapeWords[self]!.map(\.singular) }
        /// Plural nouns in the same order as `synonyms`.
        public var pluralSynonyms: [String] { Scene.shapeWords[self]!.map(\.plural) }
        /// The canonical noun (zero-shot class name).
        public var name: String { rawValue }
    }

    /// The fill colours objects can have; their RGB values are pairwise far apart.
    public enum Colour: String, Sendable, Hashable, Codable, CaseIterable {
        case red, orange, yellow, green, cyan, blue, purple, pink, brown, black

        /// 8-bit sRGB value.
        public var rgb: (r: UInt8, g: UInt8, b: UInt8) {
            switch self {
            case .red: (215, 38, 45)
            case .orange: (245, 135, 20)
            case .yellow: (245, 205, 25)
            case .green: (40, 160, 60)
            case .cyan: (30, 190, 205)
            case .blue: (35, 75, 215)
            case .purple: (130, 50, 175)
            case .pink: (240, 120, 185)
            case .brown: (125, 75, 35)
            case .black: (25, 25, 25)
            }
        }

        /// Adjectives for the colour, canonical first ("red", "crimson", "scarlet").
        public var synonyms: [String] {
            switch self {
            case .red: ["red", "crimson", "scarlet"]
            case .orange: ["orange", "tangerine", "amber"]
            case .yellow: ["yellow", "golden", "lemon"]
            case .green: ["green", "emerald", "grass-green"]
            case .cyan: ["cyan", "turquoise", "aqua"]
            case .blue: ["blue", "cobalt", "royal-blue"]
            case .purple: ["purple", "violet", "plum"]
            case .pink: ["pink", "rose", "fuchsia"]
            case .brown: ["brown", "chocolate", "chestnut"]
            case .black: ["black", "ebony", "jet-black"]
            }
        }
        /// The canonical adjective (zero-shot class name).
        public var name: String { rawValue }
    }

    /// Background colours: light tints, so every object colour stands out on every background.
    /// Their words never coincide with an object colour's words.
    public enum Background: String, Sendable, Hashable, Codable, CaseIterable {
        case white, grey, beige, lavender, mint, peach

        /// 8-bit sRGB value.
        public var rgb: (r: UInt8, g: UInt8, b: UInt8) {
            switch self {
            case .white: (255, 255, 255)
            case .grey: (200, 200, 200)
            case .beige: (236, 222, 190)
            case .lavender: (222, 212, 246)
            case .mint: (205, 240, 218)
            case .peach: (252, 220, 196)
            }
        }

        /// Adjectives for the background, canonical first.
        public var synonyms: [String] {
            switch self {
            case .white: ["white", "plain"]
            case .grey: ["grey", "gray", "silver"]
            case .beige: ["beige", "sand", "khaki"]
            case .lavender: ["lavender", "lilac"]
            case .mint: ["mint", "seafoam"]
            case .peach: ["peach", "apricot"]
            }
        }
    }

    /// Small or large: the radius of the circle an object is drawn inside.
    public enum Size: String, Sendable, Hashable, Codable, CaseIterable {
        case small, large

        /// Radius in image units. A large object nearly fills its grid cell (1/3 wide), so objects
        /// in different cells never overlap (see `Place.jitter`).
        public var radius: Float { self == .small ? 0.1 : 0.15 }

        /// Adjectives for the size, canonical first.
        public var synonyms: [String] { self == .small ? ["small", "little", "tiny"] : ["large", "big", "huge"] }
    }

    /// Fill textures: plain, diagonal stripes, or a grid of dots, in a lighter or darker tone.
    public enum Texture: String, Sendable, Hashable, Codable, CaseIterable {
        case plain, striped, dotted

        /// Adjectives for the texture, canonical first (none for plain).
        public var synonyms: [String] {
            switch self {
            case .plain: []
            case .striped: ["striped", "stripy", "banded"]
            case .dotted: ["dotted", "spotted", "polka-dot"]
            }
        }
    }

    /// The nine cells of a 3×3 grid over the image, in reading order.
    public enum Place: Int, Sendable, Hashable, Codable, CaseIterable {
        case topLeft, top, topRight, left, centre, right, bottomLeft, bottom, bottomRight

        /// Row 0 (top) … 2 (bottom).
        public var row: Int { rawValue / 3 }
        /// Column 0 (left) … 2 (right).
        public var column: Int { rawValue % 3 }

        /// The cell's centre in image units.
        public var centre: (x: Float, y: Float) { ((Float(column) + 0.5) / 3, (Float(row) + 0.5) / 3) }

        /// The largest offset of an object's centre from its cell centre, per axis, for an object
        /// of `size`: chosen so that the object stays inside its cell (a cell's half-width is 1/6).
        public static func jitter(for size: Size) -> Float { size == .small ? 0.05 : 0.008 }

        /// The short name ("top left", "centre"): the position task's class name.
        public var name: String {
            switch self {
            case .topLeft: "top left"
            case .top: "top"
            case .topRight: "top right"
            case .left: "left"
            case .centre: "centre"
            case .right: "right"
            case .bottomLeft: "bottom left"
            case .bottom: "bottom"
            case .bottomRight: "bottom right"
            }
        }

        /// Prepositional phrases naming the place, canonical first ("at the top left", "in the top
        /// left corner", "in the upper left").
        public var phrases: [String] {
            switch self {
            case .topLeft: ["at the top left", "in the top left corner", "in the upper left"]
            case .top: ["at the top", "at the top centre", "along the top edge"]
            case .topRight: ["at the top right", "in the top right corner", "in the upper right"]
            case .left: ["on the left", "at the left side", "on the left edge"]
            case .centre: ["in the centre", "in the middle", "at the centre"]
            case .right: ["on the right", "at the right side", "on the right edge"]
            case .bottomLeft: ["at the bottom left", "in the bottom left corner", "in the lower left"]
            case .bottom: ["at the bottom", "at the bottom centre", "along the bottom edge"]
            case .bottomRight: ["at the bottom right", "in the bottom right corner", "in the lower right"]
            }
        }
    }

    /// Singular and plural nouns per shape, canonical first.
    static let shapeWords: [Shape: [(singular: String, plural: String)]] = [
        .circle: [("circle", "circles"), ("disc", "discs"), ("ring", "rings")],
        .square: [("square", "squares"), ("box", "boxes"), ("block", "blocks")],
        .triangle: [("triangle", "triangles"), ("pyramid", "pyramids"), ("wedge", "wedges")],
        .star: [("star", "stars"), ("five-pointed star", "five-pointed stars")],
        .cross: [("cross", "crosses"), ("plus sign", "plus signs"), ("plus", "pluses")],
        .diamond: [("diamond", "diamonds"), ("rhombus", "rhombuses"), ("lozenge", "lozenges")],
        .hexagon: [("hexagon", "hexagons"), ("hex", "hexes")],
        .heart: [("heart", "hearts"), ("love heart", "love hearts")],
        .crescent: [("crescent", "crescents"), ("moon", "moons"), ("crescent moon", "crescent moons")],
    ]

    /// The number words captions use for counts 1 to 4: the count task's class names.
    public static let countWords = ["one", "two", "three", "four"]
}
