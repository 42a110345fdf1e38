// Contact sheets: a grid of shapes-world samples, each image enlarged with its index and training
// caption written underneath, for a person to check what the model is trained on.

/// Renders grids of samples with their captions.
public enum ContactSheet {
    /// A sheet of the samples `indices` of `world` in `columns` columns on white: each image
    /// rendered at imageSize×imageSize, enlarged `scale` times (nearest neighbour) inside a thin
    /// grey frame, with "index: caption" word-wrapped underneath in the embedded bitmap font
    /// and, for mismatched captions, a red "[mismatched caption]" line. Each font pixel is
    /// `textScale`×`textScale` screen pixels; by default 2 for tiles at least 200 pixels wide
    /// (about 16 characters per line), else 1.
    public static func render(
        world: ShapesWorld, indices: [Int], imageSize: Int, scale: Int, columns: Int, textScale: Int? = nil
    ) -> RGBImage {
        precondition(imageSize > 0, "ContactSheet.render: imageSize must be > 0")
        let cells = indices.map { index -> (image: RGBImage, caption: String, flag: String?) in
            (world.renderImage(world.scene(index), size: imageSize), "\(index): \(world.caption(index))",
             world.isMismatched(index) ? "[mismatched caption]" : nil)
        }
        return render(cells: cells, scale: scale, columns: columns, textScale: textScale)
    }

    /// A sheet of `cells` laid out like `render(world:…)`: each image (all of one size) enlarged
    /// `scale` times in a frame, its caption word-wrapped underneath and its flag, if any, in red.
    public static func render(
        cells input: [(image: RGBImage, caption: String, flag: String?)], scale: Int, columns: Int, textScale: Int? = nil
    ) -> RGBImage {
        let imageSize = input.first?.image.width ?? 1
        let tile = imageSize * scale
        let textScale = textScale ?? (tile >= 200 ? 2 : 1)
        precondition(scale > 0 && columns > 0 && textScale > 0, "ContactSheet.render: scale, columns and textScale must be > 0")
        let margin = 12, gap = 16, textGap = 6
        let charsPerLine = max(8, tile / (BitmapFont.advance * textScale))
        let lineHeight = BitmapFont.lineHeight * textScale

        struct Cell {
            var image: RGBImage
            var lines: [String]
            var mismatched: Bool
        }
        let cells = input.map { item -> Cell in
            precondition(item.image.width == imageSize && item.image.height == imageSize, "ContactSheet.render: images must all be \(imageSize)×\(imageSize)")
            var lines = BitmapFont.wrap(item.caption, columns: charsPerLine)
            if let flag = item.flag { lines.append(flag) }
            return Cell(image: item.image, lines: lines, mismatched: item.flag != nil)
        }
        let rowCount = (cells.count + columns - 1) / columns
        let usedColumns = min(columns, max(cells.count, 1))
        // Each grid row is as tall as its longest caption needs.
        var rowHeights: [Int] = []
        for r in 0..<rowCount {
            let slice = cells[(r * columns)..<min(cells.count, (r + 1) * columns)]
            let lines = slice.map(\.lines.count).max() ?? 0
            rowHeights.append(tile + 2 + textGap + lines * lineHeight)
        }
        let width = 2 * margin + usedColumns * (tile + 2) + (usedColumns - 1) * gap
        let height = 2 * margin + rowHeights.reduce(0, +) + max(0, rowCount - 1) * gap
        var sheet = RGBImage(width: width, height: max(height, 2 * margin + 1))

        var top = margin
        for r in 0..<rowCount {
            for c in 0..<columns {
                let i = r * columns + c
                guard i < cells.count else { break }
                let left = margin + c * (tile + 2 + gap)
                let cell = cells[i]
                // Frame, then the enlarged image inside it.
                for x in left..<(left + tile + 2) {
                    sheet[x, top] = (170, 170, 170)
                    sheet[x, top + tile + 1] = (170, 170, 170)
                }
                for y in top..<(top + tile + 2) {
                    sheet[left, y] = (170, 170, 170)
                    sheet[left + tile + 1, y] = (170, 170, 170)
                }
                for y in 0..<tile {
                    for x in 0..<tile {
                        sheet[left + 1 + x, top + 1 + y] = cell.image[x / scale, y / scale]
                    }
                }
                var y = top + tile + 2 + textGap
                for (n, line) in cell.lines.enumerated() {
                    let red = cell.mismatched && n == cell.lines.count - 1
                    BitmapFont.draw(line, into: &sheet, x: left + 1, y: y, scale: textScale,
                                    colour: red ? (200, 20, 20) : (20, 20, 20))
                    y += lineHeight
                }
            }
            top += rowHeights[r] + gap
        }
        return sheet
    }
}
