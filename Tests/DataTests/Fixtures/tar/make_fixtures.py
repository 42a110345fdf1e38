#!/usr/bin/env python3
"""Writes the tar fixtures of the Data tests (TarReaderTests) into this folder.

Every archive is made with Python's standard `tarfile` module; a few are then patched byte by
byte (with the header checksum recomputed) to get header forms `tarfile` does not write for small
files: an old v7 header, a base-256 size, a signed checksum, a PAX `size` that overrides the
header's size field. Times, owners and modes are fixed, so a rerun writes the same bytes.

    python3 make_fixtures.py                       # the tarfile fixtures
    /tmp/venv/bin/python make_fixtures.py          # with `pip install webdataset` in that venv:
                                                   # also webdataset-shard.tar

Member contents are short ASCII texts, so the tests can state them exactly. Run
`python3 make_fixtures.py --list` to print what Python's tarfile reads back from each fixture.
"""

import io
import os
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
MTIME = 1_700_000_000

LONG_GNU_NAME = "gnu/" + "long-directory-name-" * 4 + "/member-with-a-name-over-100-characters.txt"
LONG_LINK_TARGET = "target/" + "x" * 120 + ".txt"
LONG_PAX_NAME = "pax/" + "deeply-nested-folder-" * 5 + "/caption.txt"
PREFIX_NAME = "ustar/" + "p" * 70 + "/" + "q" * 60 + "/000042.txt"


def member(name, data, mtime=MTIME, kind=tarfile.REGTYPE, linkname="", pax=None):
    info = tarfile.TarInfo(name)
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mtime = mtime
    info.mode = 0o644 if kind != tarfile.DIRTYPE else 0o755
    info.uid = info.gid = 1000
    info.uname = info.gname = "cliplab"
    info.type = kind
    info.linkname = linkname
    if pax:
        info.pax_headers = dict(pax)
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def archive(members, fmt, pax_headers=None):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt, pax_headers=pax_headers) as tar:
        for info, data in members:
            tar.addfile(info, data)
    return bytearray(buffer.getvalue())


def header_offsets(data):
    """The offsets of every header block (extended headers included), walking the archive."""
    offsets, at = [], 0
    while at + 512 <= len(data) and any(data[at:at + 512]):
        offsets.append(at)
        size = tarfile.nti(bytes(data[at + 124:at + 136]))
        at += 512 + (size + 511) // 512 * 512
    return offsets


def fix_checksum(data, at, signed=False):
    block = data[at:at + 512]
    block[148:156] = b" " * 8
    total = sum((b - 256 if signed and b >= 128 else b) for b in block)
    data[at + 148:at + 156] = b"%06o\0 " % total


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(bytes(data))


def main():
    # (a) GNU: a name over 100 bytes ('L' header), a symlink whose target is over 100 bytes
    # ('K' header), a directory, and plain members around them.
    write("gnu-longname.tar", archive([
        member("gnu/", b"", kind=tarfile.DIRTYPE),
        member("gnu/first.txt", b"first member\n"),
        member(LONG_GNU_NAME, b"long GNU name\n"),
        member("gnu/link", b"", kind=tarfile.SYMTYPE, linkname=LONG_LINK_TARGET),
        member("gnu/last.txt", b"last\n"),
    ], tarfile.GNU_FORMAT))

    # (b) PAX: a global header first (pax_headers), then members whose float mtimes make Python
    # write a PAX 'x' header before each of them; one name is over 100 bytes, one is not ASCII.
    write("pax-float-mtime.tar", archive([
        member("pax/a.txt", b"alpha\n", mtime=MTIME + 0.25),
        member(LONG_PAX_NAME, b"a long PAX path\n", mtime=MTIME + 0.5),
        member("pax/caf\u00e9.txt", b"caf\xc3\xa9\n", mtime=MTIME + 0.75),
        member("pax/int-mtime.txt", b"no extended header\n"),
    ], tarfile.PAX_FORMAT, pax_headers={"comment": "ClipLab fixture"}))

    # (c) ustar: a 141-byte name that Python splits into the 155-byte prefix field and the name.
    write("ustar-prefix.tar", archive([
        member(PREFIX_NAME, b"prefix joined\n"),
        member("ustar/short.txt", b"short\n"),
    ], tarfile.USTAR_FORMAT))

    # (d) The final member cut short: 1000 bytes declared, 300 present.
    whole = archive([
        member("t/000000.txt", b"complete\n"),
        member("t/000001.bin", bytes(i % 251 for i in range(1000))),
    ], tarfile.USTAR_FORMAT)
    second = header_offsets(whole)[1]
    write("truncated.tar", whole[:second + 512 + 300])

    # (e) The second header's checksum corrupted (one name byte changed after the sum was made).
    data = archive([
        member("c/000000.txt", b"zero\n"),
        member("c/000001.txt", b"one\n"),
        member("c/000002.txt", b"two\n"),
    ], tarfile.USTAR_FORMAT)
    second = header_offsets(data)[1]
    data[second] = ord("C")
    write("bad-checksum.tar", data)

    # Old v7 headers: no magic, version, owner names or prefix; a directory is a name ending in '/'
    # with type '\0'.
    data = archive([
        member("v7/", b"", kind=tarfile.DIRTYPE),
        member("v7/old.txt", b"version 7\n"),
    ], tarfile.USTAR_FORMAT)
    for at in header_offsets(data):
        data[at + 156] = 0  # typeflag '\0' (AREGTYPE): a directory only by its trailing '/'
        data[at + 257:at + 512] = bytes(255)
        fix_checksum(data, at)
    write("v7.tar", data)

    # A base-256 size field (0x80, then the size big-endian in the other 11 bytes), as GNU tar
    # writes for members of 8 GiB or more.
    data = archive([member("b/binary-size.txt", b"base-256 size\n")], tarfile.GNU_FORMAT)
    at = header_offsets(data)[0]
    data[at + 124:at + 136] = bytes([0x80]) + (14).to_bytes(11, "big")
    fix_checksum(data, at)
    write("base256-size.tar", data)

    # A checksum made with signed bytes (old Sun and NeXT tars): the UTF-8 name has bytes >= 0x80,
    # so the signed and unsigned sums differ.
    data = archive([member("s/\u00fcber.txt", b"signed sum\n")], tarfile.USTAR_FORMAT)
    fix_checksum(data, header_offsets(data)[0], signed=True)
    write("signed-checksum.tar", data)

    # A PAX 'x' header whose `size` is the truth: the ustar size field is patched to 0.
    data = archive([
        member("x/sized.txt", b"eleven byte", pax={"size": "11"}),
        member("x/after.txt", b"after\n"),
    ], tarfile.PAX_FORMAT)
    at = header_offsets(data)[1]  # [0] is the 'x' header, [1] the member's own header
    data[at + 124:at + 136] = b"%011o\0" % 0
    fix_checksum(data, at)
    write("pax-size.tar", data)

    # A PAX global header ('g') with a `path`: it names every following member, except where a
    # member's own 'x' header gives another path.
    write("pax-global.tar", archive([
        member("g/one.txt", b"one\n"),
        member("g/two.txt", b"two\n", pax={"path": "g/own-path.txt"}),
    ], tarfile.PAX_FORMAT, pax_headers={"path": "g/global-path.txt"}))

    # An archive that ends right after the last member's data, without the two zero blocks.
    data = archive([member("n/only.txt", b"no end blocks\n")], tarfile.USTAR_FORMAT)
    write("no-end-blocks.tar", data[:512 + 512])

    # WebDataset key rules: a metadata folder, a two-dot extension, an upper-case extension, names
    # with no key, a dot in a folder name, and a key that comes back after another.
    write("keys.tar", archive([
        member("a/", b"", kind=tarfile.DIRTYPE),
        member("__cache__/000001.txt", b"metadata\n"),
        member("a/b/000001.seg.png", b"segmentation\n"),
        member("a/b/000001.JPG", b"image\n"),
        member("a/b/000001.txt", b"caption one\n"),
        member("README", b"no extension\n"),
        member("a/.hidden.txt", b"no stem\n"),
        member("x.y/000002.txt", b"caption two\n"),
        member("x.y/000002.cls", b"7"),
        member("a/b/000001.json", b"{}"),
    ], tarfile.USTAR_FORMAT))

    # A sample with two members of one extension, between two good samples.
    write("duplicate.tar", archive([
        member("k/0.txt", b"zero\n"),
        member("k/1.txt", b"one\n"),
        member("k/1.jpg", b"jpeg\n"),
        member("k/1.txt", b"one again\n"),
        member("k/1.cls", b"1"),
        member("k/2.txt", b"two\n"),
    ], tarfile.USTAR_FORMAT))

    # A member patched to the old GNU sparse type 'S' (no extension blocks): its 6 stored bytes
    # are skipped.
    data = archive([
        member("s/0.txt", b"before\n"),
        member("s/1.txt", b"holes\n"),
        member("s/2.txt", b"after\n"),
    ], tarfile.GNU_FORMAT)
    at = header_offsets(data)[1]
    data[at + 156] = ord("S")
    fix_checksum(data, at)
    write("sparse.tar", data)

    write_webdataset_shard()

    if "--list" in sys.argv:
        for name in sorted(os.listdir(HERE)):
            if name.endswith(".tar"):
                list_archive(name)


def write_webdataset_shard():
    """Four samples written by webdataset.TarWriter with its default settings except a fixed mtime;
    the image is the 16×16 JPEG fixture of the image tests."""
    try:
        import webdataset
    except ImportError:
        print("webdataset is not installed: webdataset-shard.tar is left as it is", file=sys.stderr)
        return
    with open(os.path.join(HERE, "..", "images", "rgb.jpg"), "rb") as f:
        jpeg = f.read()
    path = os.path.join(HERE, "webdataset-shard.tar")
    with webdataset.TarWriter(path, mtime=MTIME) as sink:
        for i, caption in enumerate(["a red square", "two blue circles", "caf\u00e9 au lait", "a grey cat"]):
            sink.write({
                "__key__": "sample%06d" % i,
                "jpg": jpeg,
                "txt": caption,
                "json": {"index": i, "caption": caption},
                "cls": i % 3,
            })


def list_archive(name):
    print(name)
    try:
        with tarfile.open(os.path.join(HERE, name)) as tar:
            for info in tar:
                data = tar.extractfile(info).read() if info.isreg() else b""
                print("   %-3s %r size=%d header=%d data=%d %r" % (
                    info.type.decode(), info.name, info.size, info.offset, info.offset_data, data[:40]))
    except Exception as error:  # noqa: BLE001 - the damaged fixtures are meant to fail
        print("   error:", error)


if __name__ == "__main__":
    main()
