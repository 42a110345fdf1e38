// A small bitmap font for labelling images without a font library: printable ASCII in 5×9 cells
// (capitals and digits 7 rows high on the baseline, lower case with a 5-row x-height and 2-row
// descenders), drawn with 1 column and 2 rows of spacing, scaled by whole pixels. Glyphs were drawn
// by hand for this file: '#' is ink, '.' paper, rows top to bottom, missing rows blank.

/// The embedded 5×9 bitmap font.
public enum BitmapFont {
    /// Glyph width in font pixels.
    public static let glyphWidth = 5
    /// Glyph height in font pixels, descenders included.
    public static let glyphHeight = 9
    /// Horizontal advance per character in font pixels (glyph plus one column of spacing).
    public static let advance = 6
    /// Distance between baselines in font pixels.
    public static let lineHeight = 11

    private static let source = """
        a .....|.....|.###.|....#|.####|#...#|.####
        b #....|#....|####.|#...#|#...#|#...#|####.
        c .....|.....|.####|#....|#....|#....|.####
        d ....#|....#|.####|#...#|#...#|#...#|.####
        e .....|.....|.###.|#...#|#####|#....|.###.
        f ..##.|.#...|####.|.#...|.#...|.#...|.#...
        g .....|.....|.####|#...#|#...#|#...#|.####|....#|.###.
        h #....|#....|####.|#...#|#...#|#...#|#...#
        i ..#..|.....|.##..|..#..|..#..|..#..|.###.
        j ...#.|.....|..##.|...#.|...#.|...#.|...#.|#..#.|.##..
        k #....|#....|#..#.|#.#..|##...|#.#..|#..#.
        l .##..|..#..|..#..|..#..|..#..|..#..|.###.
        m .....|.....|##.#.|#.#.#|#.#.#|#.#.#|#.#.#
        n .....|.....|####.|#...#|#...#|#...#|#...#
        o .....|.....|.###.|#...#|#...#|#...#|.###.
        p .....|.....|####.|#...#|#...#|#...#|####.|#....|#....
        q .....|.....|.####|#...#|#...#|#...#|.####|....#|....#
        r .....|.....|#.##.|##..#|#....|#....|#....
        s .....|.....|.####|#....|.###.|....#|####.
        t .#...|.#...|####.|.#...|.#...|.#..#|..##.
        u .....|.....|#...#|#...#|#...#|#..##|.##.#
        v .....|.....|#...#|#...#|#...#|.#.#.|..#..
        w .....|.....|#...#|#...#|#.#.#|#.#.#|.#.#.
        x .....|.....|#...#|.#.#.|..#..|.#.#.|#...#
        y .....|.....|#...#|#...#|#...#|#...#|.####|....#|.###.
        z .....|.....|#####|...#.|..#..|.#...|#####
        A .###.|#...#|#...#|#####|#...#|#...#|#...#
        B ####.|#...#|#...#|####.|#...#|#...#|####.
        C .###.|#...#|#....|#....|#....|#...#|.###.
        D ####.|#...#|#...#|#...#|#...#|#...#|####.
        E #####|#....|#....|####.|#....|#....|#####
        F #####|#....|#....|####.|#....|#....|#....
        G .###.|#...#|#....|#.###|#...#|#...#|.####
        H #...#|#...#|#...#|#####|#...#|#...#|#...#
        I .###.|..#..|..#..|..#..|..#..|..#..|.###.
        J ..###|...#.|...#.|...#.|...#.|#..#.|.##..
        K #...#|#..#.|#.#..|##...|#.#..|#..#.|#...#
        L #....|#....|#....|#....|#....|#....|#####
        M #...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#
        N #...#|#...#|##..#|#.#.#|#..##|#...#|#...#
        O .###.|#...#|#...#|#...#|#...#|#...#|.###.
        P ####.|#...#|#...#|####.|#....|#....|#....
        Q .###.|#...#|#...#|#...#|#.#.#|#..#.|.##.#
        R ####.|#...#|#...#|####.|#.#..|#..#.|#...#
        S .####|#....|#....|.###.|....#|....#|####.
        T #####|..#..|..#..|..#..|..#..|..#..|..#..
        U #...#|#...#|#...#|#...#|#...#|#...#|.###.
        V #...#|#...#|#...#|#...#|#...#|.#.#.|..#..
        W #...#|#...#|#...#|#.#.#|#.#.#|#.#.#|.#.#.
        X #...#|#...#|.#.#.|..#..|.#.#.|#...#|#...#
        Y #...#|#...#|.#.#.|..#..|..#..|..#..|..#..
        Z #####|....#|...#.|..#..|.#...|#....|#####
        0 .###.|#...#|#..##|#.#.#|##..#|#...#|.###.
        1 ..#..|.##..|..#..|..#..|..#..|..#..|.###.
        2 .###.|#...#|....#|...#.|..#..|.#...|#####
        3 ####.|....#|....#|.###.|....#|....#|####.
        4 ...#.|..##.|.#.#.|#..#.|#####|...#.|...#.
        5 #####|#....|####.|....#|....#|#...#|.###.
        6 ..##.|.#...|#....|####.|#...#|#...#|.###.
        7 #####|....#|...#.|..#..|.#...|.#...|.#...
        8 .###.|#...#|#...#|.###.|#...#|#...#|.###.
        9 .###.|#...#|#...#|.####|....#|...#.|.##..
        . .....|.....|.....|.....|.....|.##..|.##..
        , .....|.....|.....|.....|.....|.##..|.##..|..#..|.#...
        : .....|.##..|.##..|.....|.##..|.##..|.....
        ; .....|.##..|.##..|.....|.##..|.##..|..#..|.#...
        ! ..#..|..#..|..#..|..#..|..#..|.....|..#..
        ? .###.|#...#|....#|...#.|..#..|.....|..#..
        ' ..#..|..#..|.#...
        " .#.#.|.#.#.|.#.#.
        ` .#...|..#..
        - .....|.....|.....|.###.
        + .....|..#..|..#..|#####|..#..|..#..
        = .....|.....|#####|.....|#####
        ( ...#.|..#..|.#...|.#...|.#...|..#..|...#.
        ) .#...|..#..|...#.|...#.|...#.|..#..|.#...
        [ .###.|.#...|.#...|.#...|.#...|.#...|.###.
        ] .###.|...#.|...#.|...#.|...#.|...#.|.###.
        { ...##|..#..|..#..|.#...|..#..|..#..|...##
        } ##...|..#..|..#..|...#.|..#..|..#..|##...
        < ...#.|..#..|.#...|#....|.#...|..#..|...#.
        > .#...|..#..|...#.|....#|...#.|..#..|.#...
        / ....#|....#|...#.|..#..|.#...|#....|#....
        \\ #....|#....|.#...|..#..|...#.|....#|....#
        | ..#..|..#..|..#..|..#..|..#..|..#..|..#..
        # .#.#.|.#.#.|#####|.#.#.|#####|.#.#.|.#.#.
        % ##..#|##..#|...#.|..#..|.#...|#..##|#..##
        & .##..|#..#.|#.#..|.#...|#.#.#|#..#.|.##.#
        * .....|..#..|#.#.#|.###.|#.#.#|..#..
        _ .....|.....|.....|.....|.....|.....|.....|#####
        @ .###.|#...#|#.###|#.#.#|#.###|#....|.####
        $ ..#..|.####|#.#..|.###.|..#.#|####.|..#..
        ^ ..#..|.#.#.|#...#
        ~ .....|.....|.#...|#.#.#|...#.
        """

    /// Glyph bitmaps: 9 rows of 5 bits each (bit 4 is the leftmost column), indexed by ASCII code.
    private static let glyphs: [[UInt8]] = {
        var table = [[UInt8]](repeating: [], count: 128)
        for line in source.split(separator: "\n") {
            let character = line.first!
            let rows = line.dropFirst(2).split(separator: "|")
            precondition(rows.count <= glyphHeight && rows.allSatisfy { $0.count == glyphWidth },
                         "BitmapFont: malformed glyph '\(character)'")
            var bits = rows.map { row in row.reduce(UInt8(0)) { $0 << 1 | ($1 == "#" ? 1 : 0) } }
            bits += [UInt8](repeating: 0, count: glyphHeight - bits.count)
            table[Int(character.asciiValue!)] = bits
        }
        table[32] = [UInt8](repeating: 0, count: glyphHeight)
        return table
    }()

    /// The bitmap of a character (9 rows, bit 4 leftmost); a hollow box for characters the font
    /// lacks.
    static func glyph(_ character: Character) -> [UInt8] {
        if let code = character.asciiValue, !glyphs[Int(code)].isEmpty { return glyphs[Int(code)] }
        return [0b11111, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11111, 0, 0]
    }

    /// Splits `text` into lines of at most `columns` characters, breaking at spaces and cutting
    /// words longer than a line.
    public static func wrap(_ text: String, columns: Int) -> [String] {
        precondition(columns > 0, "BitmapFont.wrap: columns must be > 0")
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            var word = Substring(word)
            while word.count > columns {
                if !line.isEmpty { lines.append(line); line = "" }
                lines.append(String(word.prefix(columns)))
                word = word.dropFirst(columns)
            }
            if line.isEmpty {
                line = String(word)
            } else if line.count + 1 + word.count <= columns {
                line += " " + word
            } else {
                lines.append(line)
                line = String(word)
            }
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }

    /// Draws one line of `text` into `image` with its top-left corner at (x, y), each font pixel
    /// a `scale`×`scale` block of `colour`; whatever falls outside the image is clipped.
    public static func draw(
        _ text: String, into image: inout RGBImage, x: Int, y: Int, scale: Int = 1,
        colour: (r: UInt8, g: UInt8, b: UInt8) = (0, 0, 0)
    ) {
        var left = x
        for character in text {
            let bits = glyph(character)
            for row in 0..<glyphHeight where bits[row] != 0 {
                for column in 0..<glyphWidth where bits[row] & (1 << (glyphWidth - 1 - column)) != 0 {
                    for dy in 0..<scale {
                        let py = y + row * scale + dy
                        guard py >= 0 && py < image.height else { continue }
                        for dx in 0..<scale {
                            let px = left + column * scale + dx
                            if px >= 0 && px < image.width { image[px, py] = colour }
                        }
                    }
                }
            }
            left += advance * scale
        }
    }
}
