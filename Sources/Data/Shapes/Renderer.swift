// Rendering of shapes-world scenes to (3, S, S) float images.
//
// Every shape is a signed distance function in the object's unit coordinates (the object's radius
// is 1, y grows downwards): a polygon, a union of discs, minus an optional disc. For each pixel of
// an object's bounding box the distance at the pixel centre decides: further than half a pixel
// diagonal outside or inside, the pixel is fully uncovered or covered; otherwise (an edge pixel) the
// coverage is the fraction of 4×4 sub-samples inside. Textured objects are sub-sampled everywhere,
// so stripes and dots are anti-aliased too. The distance functions are exact (or, for unions and
// differences, bounds of the right kind), so the shortcut never misclassifies a pixel.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension ShapesWorld {
    /// Renders `scene` at size×size into `pixels`, (3, S, S) channel-major Float in [0, 1],
    /// anti-aliased by 4×4 supersampling at edges and in textures.
    public func render(_ scene: Scene, size: Int, into pixels: UnsafeMutablePointer<Float>) {
        ShapesRenderer.render(scene, size: size, into: pixels)
    }

    /// Renders `scene` at size×size as an 8-bit RGB image (for contact sheets and PNG files).
    public func renderImage(_ scene: Scene, size: Int) -> RGBImage {
        var planes = [Float](repeating: 0, count: 3 * size * size)
        planes.withUnsafeMutableBufferPointer { render(scene, size: size, into: $0.baseAddress!) }
        return RGBImage(planes: planes, width: size, height: size)
    }
}

/// An outline as a signed distance function: max(min(polygon, discs…), −hole).
struct Outline: Sendable {
    /// Polygon vertices as (x, y) pairs; empty for none.
    var polygon: [Float] = []
    /// Discs (cx, cy, r) united with the polygon.
    var discs: [Float] = []
    /// A disc (cx, cy, r) cut out of the union, or empty.
    var hole: [Float] = []
    /// Every inside point lies within this distance of the origin.
    var extent: Float

    /// The outline of `shape`, sized so that the shapes look equally big.
    static func of(_ shape: Scene.Shape) -> Outline { outlines[shape]! }

    private static let outlines: [Scene.Shape: Outline] = {
        var table: [Scene.Shape: Outline] = [:]
        for shape in Scene.Shape.allCases {
            var o = Outline(extent: 0)
            switch shape {
            case .circle:
                o.discs = [0, 0, 0.88]
            case .square:
                let h: Float = 0.78
                o.polygon = [-h, -h, h, -h, h, h, -h, h]
            case .triangle:
                o.polygon = [0, -1.0, 1.04, 0.8, -1.04, 0.8]
            case .star:
                for k in 0..<10 {
                    let angle = -Float.pi / 2 + Float(k) * Float.pi / 5
                    let r: Float = k % 2 == 0 ? 1.05 : 0.45
                    o.polygon += [r * cosf(angle), r * sinf(angle) + 0.08]
                }
            case .cross:
                let w: Float = 0.32, l: Float = 0.92
                o.polygon = [-w, -l, w, -l, w, -w, l, -w, l, w, w, w, w, l, -w, l, -w, w, -l, w, -l, -w, -w, -w]
            case .diamond:
                o.polygon = [0, -1.05, 0.72, 0, 0, 1.05, -0.72, 0]
            case .hexagon:
                for k in 0..<6 {
                    let angle = Float(k) * Float.pi / 3
                    o.polygon += [1.05 * cosf(angle), 1.05 * sinf(angle)]
                }
            case .heart:
                // A square on its corner with a disc on each upper side.
                let h: Float = 0.778, cy: Float = 0.08
                o.polygon = [0, cy - h, h, cy, 0, cy + h, -h, cy]
                o.discs = [-h / 2, cy - h / 2, 0.55, h / 2, cy - h / 2, 0.55]
            case .crescent:
                o.discs = [0, 0, 0.92]
                o.hole = [0.42, -0.2, 0.72]
            }
            var extent: Float = 0
            for i in stride(from: 0, to: o.polygon.count, by: 2) {
                extent = max(extent, (o.polygon[i] * o.polygon[i] + o.polygon[i + 1] * o.polygon[i + 1]).squareRoot())
            }
            for i in stride(from: 0, to: o.discs.count, by: 3) {
                extent = max(extent, (o.discs[i] * o.discs[i] + o.discs[i + 1] * o.discs[i + 1]).squareRoot() + o.discs[i + 2])
            }
            o.extent = extent
            table[shape] = o
        }
        return table
    }()
}

/// Borrowed views of an outline's arrays for the pixel loop.
struct OutlineView {
    let polygon: UnsafeBufferPointer<Float>
    let discs: UnsafeBufferPointer<Float>
    let hole: UnsafeBufferPointer<Float>

    /// Signed distance from (x, y) to the outline: negative inside.
    @inline(__always)
    func distance(_ x: Float, _ y: Float) -> Float {
        var d = Float.infinity
        let n = polygon.count / 2
        if n > 0 {
            var nearest = Float.infinity
            var inside = false
            var ax = polygon[2 * n - 2], ay = polygon[2 * n - 1]
            for i in 0..<n {
                let bx = polygon[2 * i], by = polygon[2 * i + 1]
                let ex = bx - ax, ey = by - ay
                let wx = x - ax, wy = y - ay
                let t = min(max((wx * ex + wy * ey) / (ex * ex + ey * ey), 0), 1)
                let qx = wx - ex * t, qy = wy - ey * t
                nearest = min(nearest, qx * qx + qy * qy)
                if (ay > y) != (by > y) && x < ax + ex * (y - ay) / ey { inside.toggle() }
                ax = bx
                ay = by
            }
            d = inside ? -nearest.squareRoot() : nearest.squareRoot()
        }
        var i = 0
        while i < discs.count {
            let dx = x - discs[i], dy = y - discs[i + 1]
            d = min(d, (dx * dx + dy * dy).squareRoot() - discs[i + 2])
            i += 3
        }
        if hole.count == 3 {
            let dx = x - hole[0], dy = y - hole[1]
            d = max(d, hole[2] - (dx * dx + dy * dy).squareRoot())
        }
        return d
    }

    /// Whether (x, y) is inside (the sign of `distance`, with cheaper polygon and disc tests).
    @inline(__always)
    func contains(_ x: Float, _ y: Float) -> Bool {
        if hole.count == 3 {
            let dx = x - hole[0], dy = y - hole[1]
            if dx * dx + dy * dy < hole[2] * hole[2] { return false }
        }
        var i = 0
        while i < discs.count {
            let dx = x - discs[i], dy = y - discs[i + 1]
            if dx * dx + dy * dy < discs[i + 2] * discs[i + 2] { return true }
            i += 3
        }
        let n = polygon.count / 2
        guard n > 0 else { return false }
        var inside = false
        var ax = polygon[2 * n - 2], ay = polygon[2 * n - 1]
        for i in 0..<n {
            let bx = polygon[2 * i], by = polygon[2 * i + 1]
            if (ay > y) != (by > y) && x < ax + (bx - ax) * (y - ay) / (by - ay) { inside.toggle() }
            ax = bx
            ay = by
        }
        return inside
    }
}

/// The scene rasteriser behind `ShapesWorld.render`.
enum ShapesRenderer {
    /// Sub-samples per axis at edge pixels and in textures (16 per pixel).
    static let samplesPerAxis = 4

    /// Texture period (stripes) and dot spacing, in object units.
    static let texturePeriod: Float = 0.7
    /// Dot radius, in object units.
    static let dotRadius: Float = 0.2

    static func render(_ scene: Scene, size: Int, into pixels: UnsafeMutablePointer<Float>) {
        precondition(size > 0, "ShapesWorld.render: size must be > 0, got \(size)")
        let plane = size * size
        let bg = scene.background.rgb
        pixels.update(repeating: Float(bg.r) / 255, count: plane)
        (pixels + plane).update(repeating: Float(bg.g) / 255, count: plane)
        (pixels + 2 * plane).update(repeating: Float(bg.b) / 255, count: plane)
        for object in scene.objects {
            let outline = Outline.of(object.shape)
            outline.polygon.withUnsafeBufferPointer { polygon in
                outline.discs.withUnsafeBufferPointer { discs in
                    outline.hole.withUnsafeBufferPointer { hole in
                        draw(object, OutlineView(polygon: polygon, discs: discs, hole: hole),
                             extent: outline.extent, size: size, into: pixels)
                    }
                }
            }
        }
    }

    /// The fill colour of `colour` and the tone of its stripes or dots: darker for light colours,
    /// lighter for dark ones.
    static func tones(_ colour: Scene.Colour) -> (fill: SIMD3<Float>, pattern: SIMD3<Float>) {
        let rgb = colour.rgb
        let fill = SIMD3<Float>(Float(rgb.r), Float(rgb.g), Float(rgb.b)) / 255
        let luma = 0.299 * fill.x + 0.587 * fill.y + 0.114 * fill.z
        let pattern = luma > 0.6 ? fill * 0.5 : fill + (SIMD3<Float>(repeating: 1) - fill) * 0.6
        return (fill, pattern)
    }

    private static func draw(
        _ object: Scene.Object, _ outline: OutlineView, extent: Float, size: Int,
        into pixels: UnsafeMutablePointer<Float>
    ) {
        let s = Float(size), plane = size * size
        let radius = object.radius * s  // pixels per object unit
        let inverse = 1 / radius
        let cx = object.x * s, cy = object.y * s
        let reach = extent * radius + 1
        let x0 = max(0, Int((cx - reach).rounded(.down))), x1 = min(size - 1, Int((cx + reach).rounded(.up)))
        let y0 = max(0, Int((cy - reach).rounded(.down))), y1 = min(size - 1, Int((cy + reach).rounded(.up)))
        guard x0 <= x1 && y0 <= y1 else { return }
        // Image → object units: translate, rotate by −rotation, scale.
        let c = cosf(object.rotation) * inverse, sn = sinf(object.rotation) * inverse
        let (fill, pattern) = tones(object.colour)
        let texture = object.texture
        let margin = 0.75 * inverse  // just over half a pixel diagonal, in object units
        let n = samplesPerAxis
        let step = 1 / Float(n)
        let weight = 1 / Float(n * n)
        let period = texturePeriod, dotR2 = (dotRadius / texturePeriod) * (dotRadius / texturePeriod)

        @inline(__always) func tone(_ u: Float, _ v: Float) -> SIMD3<Float> {
            switch texture {
            case .plain:
                return fill
            case .striped:
                let t = (u + v) * (0.70710678 / period)
                return t - t.rounded(.down) < 0.5 ? pattern : fill
            case .dotted:
                let a = u / period, b = v / period
                let da = a - a.rounded(), db = b - b.rounded()
                return da * da + db * db < dotR2 ? pattern : fill
            }
        }

        for py in y0...y1 {
            for px in x0...x1 {
                let dx = Float(px) + 0.5 - cx, dy = Float(py) + 0.5 - cy
                let u = c * dx + sn * dy, v = -sn * dx + c * dy
                var covered: Float
                var colour: SIMD3<Float>
                let d = outline.distance(u, v)
                if d > margin { continue }
                if d < -margin && texture == .plain {
                    covered = 1
                    colour = fill
                } else {
                    var inside = 0
                    var sum = SIMD3<Float>(repeating: 0)
                    for j in 0..<n {
                        let sy = dy + (Float(j) + 0.5) * step - 0.5
                        for i in 0..<n {
                            let sx = dx + (Float(i) + 0.5) * step - 0.5
                            let su = c * sx + sn * sy, sv = -sn * sx + c * sy
                            if d < -margin || outline.contains(su, sv) {
                                inside += 1
                                sum += tone(su, sv)
                            }
                        }
                    }
                    if inside == 0 { continue }
                    covered = Float(inside) * weight
                    colour = sum * weight  // already weighted by coverage
                }
                let k = py * size + px
                let keep = 1 - covered
                // `colour` is premultiplied: the sum of the covered sub-samples' tones.
                pixels[k] = pixels[k] * keep + colour.x
                pixels[plane + k] = pixels[plane + k] * keep + colour.y
                pixels[2 * plane + k] = pixels[2 * plane + k] * keep + colour.z
            }
        }
    }
}
