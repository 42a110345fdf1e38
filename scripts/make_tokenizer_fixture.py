#!/usr/bin/env python3
"""Records OpenCLIP's token ids for the tokenizer tests: Tests/DataTests/Fixtures/tokenizer_openclip.json.

Each text is tokenized with `open_clip.tokenize(texts, context_length=N)` for N = 77 and 16: the
ids ClipLab's CLIPTokenizer must reproduce exactly. `cleaned` is the text after OpenCLIP's cleaning
(`_clean_lower`: ftfy, html.unescape twice, whitespace collapse, lower case), for failure reports.
`fix_encoding` and `badness` are ftfy's mojibake repair (`ftfy.fix_encoding`) and badness measure
(`ftfy.badness.badness`) of the text, which the mojibake tests check on their own.

The mojibake texts (MOJIBAKE) are made here from correct text with Python's codecs and ftfy's
sloppy ones, so each says how it was broken.

Usage (from the repository root, in a Python environment with open-clip-torch and torch, e.g. the
one the PyTorch anchor benchmark uses):
    python3 -m venv /work/.venv-anchor && /work/.venv-anchor/bin/pip install torch open-clip-torch
    /work/.venv-anchor/bin/python scripts/make_tokenizer_fixture.py
or any other venv with ftfy 6.3.1 and open_clip_torch, e.g.
    python3 -m venv /tmp/ftfyenv && /tmp/ftfyenv/bin/pip install ftfy==6.3.1 open_clip_torch
    /tmp/ftfyenv/bin/python scripts/make_tokenizer_fixture.py
"""
import json
import os
import sys

import ftfy
import ftfy.badness
import open_clip
import regex
from open_clip.tokenizer import _clean_lower

OUT = os.path.join("Tests", "DataTests", "Fixtures", "tokenizer_openclip.json")
CONTEXT_LENGTHS = [77, 16]

LONG = ("a very long caption about a crowded farmers market on a sunny saturday morning, where "
        "people buy fresh vegetables, flowers, bread and cheese, while a street musician plays the "
        "violin next to a fountain and children chase pigeons across the old cobblestone square "
        "near the town hall, which was built in 1852 and restored twice since then")

TEXTS = [
    # Plain captions.
    "a photo of a cat",
    "A Photo Of A Dog Running On The Beach",
    "two dogs playing in the snow",
    "the quick brown fox jumps over the lazy dog",
    "an aerial view of a city at night with lights",
    "photograph",
    # Contractions.
    "it's a dog's life, isn't it?",
    "we're here, you've won, i'm sure they'll come and he'd go",
    "IT'S LOUD",
    "rock 'n' roll and 'quoted' words",
    "don''t stop",
    # Digits and numbers.
    "2 cats and 10 dogs in 2024",
    "price: $19.99 (50% off)",
    "call 555-0123 at 7:30pm",
    "3.14159265358979",
    "Ⅻ roman numeral, ½ cup, ²",
    # Punctuation.
    "hello, world! how are you?",
    "wait... what?!",
    "e-mail me at john.doe@example.com #blessed @user",
    "<html> tags & ampersands > arrows",
    "c++ and c# are languages; so is python_3",
    # Long texts (truncation at 77 and at 16).
    LONG,
    " ".join(["word"] * 100),
    "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    # Accents and combining marks.
    "café crème brûlée à la française",
    "cafe\u0301 with a combining acute",
    "q\u0301 and n\u0303",
    "Ångström Zürich Øresund naïve",
    "İstanbul ΣΊΣΥΦΟΣ ΟΔΟΣ ẞ",
    "ǅemal and ĳssel",
    # Full-width, ligatures, curly quotes.
    "ＬＯＵＤ ＮＯＩＳＥＳ １２３！",
    "ｶﾀｶﾅ and ﾃﾞｰﾀ",
    "ﬁsh ﬂour eﬀort oﬃce",
    "“smart quotes” and ‘single’ and it’s ok",
    "„low“ ‚quotes‘ and the letter ʼokina",
    # HTML entities.
    "fish &amp; chips",
    "&lt;b&gt;bold&lt;/b&gt; &quot;quoted&quot; &#39;single&#39;",
    "double escaped &amp;amp; and triple &amp;amp;amp;",
    "&copy; 2024 &mdash; all rights reserved &hellip;",
    "&#x1F600; &#128512; &NTILDE; &eacute;",
    "broken &ampx &foo; &#xZZ; & alone",
    "line with < first\nthen &amp;amp; entity",
    # Control characters and whitespace.
    "tab\tseparated\nnew line\r\nwindows\rmac",
    "a\x1cb and c\x00d and e\x7ff",
    "zero\u200bwidth soft\u00adhyphen joiner\u200d",
    "\ufeffbyte order mark",
    "ideographic\u3000space and no\u00a0break",
    "\x1b[31mred text\x1b[0m",
    "ellipsis\x85 and \x93c1 quotes\x94",
    # Emoji, CJK and other scripts.
    "a dog 🐶 with a party hat 🎉",
    "family 👨‍👩‍👧 and flags 🇫🇷",
    "東京の夜景 tokyo night view",
    "한국어 텍스트 and 中文字符",
    "Москва зимой",
    "مرحبا بالعالم",
    "हिन्दी पाठ",
    # Specials and edge cases.
    "a caption <end_of_text> with a literal end token",
    "<start_of_text>starts",
    "",
    "   ",
    " \t\n ",
    "!",
    "!!!???...",
]


def mis(text: str, *encodings: str, errors: str = "strict") -> str:
    """`text` as UTF-8 bytes decoded as each of `encodings` in turn: mojibake made on purpose."""
    for encoding in encodings:
        text = text.encode("utf-8").decode(encoding, errors=errors)
    return text


def nbsp_lost(text: str) -> str:
    """`text` with each no-break space turned into a space, as some software does."""
    return text.replace("\xa0", " ")


# UTF-8 read in the wrong encoding (the sloppy-* codecs are ftfy's: Windows code pages whose
# undefined bytes decode to the same-numbered code points), and look-alikes that are correct.
MOJIBAKE = [
    # Windows-1252, once.
    mis("café crème brûlée", "windows-1252"),
    mis("it’s a “quoted” word — ok…", "sloppy-windows-1252"),
    mis("Zürich Straße Ångström", "windows-1252"),
    mis("piñata, jalapeño and El Niño", "windows-1252"),
    mis("€5 and £10 ™ © ½", "windows-1252"),
    mis("a dog 🐶 with a party hat 🎉", "sloppy-windows-1252"),
    mis("東京の夜景 tokyo night view", "sloppy-windows-1252"),
    mis("Ελληνικά και ελληνικά", "sloppy-windows-1252"),
    mis("ÉCOLE NORMALE ÀÉÈ", "sloppy-windows-1252"),
    # Latin-1, once (C1 controls stay in the text).
    mis("café “quoted” text", "latin-1"),
    mis("naïve façade", "latin-1"),
    mis("Привет мир", "latin-1"),
    mis("em—dash and ellipsis…", "latin-1"),
    # Twice (and three times).
    mis("café", "windows-1252", "windows-1252"),
    mis("crème brûlée", "latin-1", "sloppy-windows-1252"),
    mis("“smart quotes” – ok", "sloppy-windows-1252", "sloppy-windows-1252"),
    mis("São Paulo", "windows-1252", "latin-1"),
    mis("résumé", "windows-1252", "windows-1252", "windows-1252"),
    # Windows-1250 and -1251.
    mis("Žluťoučký kůň úpěl ďábelské ódy", "sloppy-windows-1250"),
    mis("Łódź i Kraków", "sloppy-windows-1250"),
    mis("Москва зимой", "windows-1251"),
    mis("привет, мир", "windows-1251"),
    mis("it’s “quoted”", "windows-1251"),
    # Other code pages ftfy tries.
    mis("Αθήνα και Θεσσαλονίκη", "sloppy-windows-1253"),
    mis("İstanbul ve Ağrı", "sloppy-windows-1254"),
    mis("Rīga un Šiauliai", "sloppy-windows-1257"),
    mis("Kraków i Łódź", "iso-8859-2"),
    mis("café naïve", "mac_roman"),
    mis("café crème", "cp437"),
    # No-break spaces (byte A0) that became spaces.
    nbsp_lost(mis("à la mode", "windows-1252")),
    nbsp_lost(mis("voilà le travail", "windows-1252")),
    nbsp_lost(mis("no\xa0break space", "windows-1252")),
    nbsp_lost(mis("às vezes e àquele dia", "windows-1252")),
    nbsp_lost(mis("Šta je ovo", "windows-1252")),
    nbsp_lost(mis("fàcil", "windows-1252")),
    # Lossy: undefined bytes decoded as U+FFFD, or as "?".
    mis("“quoted” text", "windows-1252", errors="replace"),
    mis("Łódź", "windows-1252", errors="replace"),
    mis("“quoted” text", "windows-1252", errors="replace").replace("\ufffd", "?"),
    mis("café", "windows-1252").replace("©", "?"),
    # Good UTF-8 mixed with mojibake.
    "café and " + mis("café", "windows-1252"),
    "naïve — " + mis("“quoted”", "sloppy-windows-1252"),
    "Привет, " + mis("Привет", "windows-1252"),
    "日本語 and " + mis("日本語", "sloppy-windows-1252"),
    # CESU-8 (an emoji as two surrogates) and Java's C0 80 for U+0000, read as Windows-1252.
    mis("emoji ", "latin-1") + b"\xed\xa0\xbd\xed\xb8\x80".decode("sloppy-windows-1252"),
    b"caf\xc3\xa9\xc0\x80 end".decode("latin-1"),
    # Entities that unescape to mojibake; a later line with "<"; a final "À" before a newline
    # (ftfy's codec takes "\xc0\n" for U+0000 and drops the newline).
    "caf&Atilde;&copy; &amp; cr&Atilde;&uml;me",
    "first line " + mis("café", "windows-1252") + "\n<b>second</b> " + mis("crème", "windows-1252"),
    mis("café", "windows-1252") + " À\nnext line",
    # Look-alikes that are correct text and stay as they are.
    "São Paulo e Ribeirão Preto",
    "NÃO, SÃO JOÃO",
    "Âge d'or, Âme, CRÈME BRÛLÉE",
    "naïve café à la carte",
    "Ελληνικά: Αθήνα, Θεσσαλονίκη",
    "Москва, Россия — привет",
    "emoji 😀🐶🎉 👍🏽 🇫🇷",
    "5 × 3 = 15 ± 2 µm at 20 °C",
    "Þingvellir, Ðe and Ærøskøbing",
    "£5 €10 ¥100 ©2024 ® — “ok”",
]

TEXTS += MOJIBAKE


def main() -> None:
    rows = {n: open_clip.tokenize(TEXTS, context_length=n).tolist() for n in CONTEXT_LENGTHS}
    fixture = {
        "generator": "scripts/make_tokenizer_fixture.py",
        "open_clip_version": open_clip.__version__,
        "ftfy_version": ftfy.__version__,
        "regex_version": regex.__version__,
        "python_version": "%d.%d.%d" % sys.version_info[:3],
        "tokenizer": "open_clip.tokenize (SimpleTokenizer, clean='lower', bpe_simple_vocab_16e6.txt.gz)",
        "context_lengths": CONTEXT_LENGTHS,
        "cases": [
            {"text": text, "cleaned": _clean_lower(text), "fix_encoding": ftfy.fix_encoding(text),
             "badness": ftfy.badness.badness(text), "ids": {str(n): rows[n][i] for n in CONTEXT_LENGTHS}}
            for i, text in enumerate(TEXTS)
        ],
    }
    # One case a line; non-ASCII and control characters \u-escaped, so nothing invisible is in the file.
    cases = fixture.pop("cases")
    head = json.dumps(fixture, indent=1)[:-2]
    body = ",\n".join("  " + json.dumps(case) for case in cases)
    with open(OUT, "w", encoding="ascii") as f:
        f.write(head + ',\n "cases": [\n' + body + "\n ]\n}\n")
    print("wrote %s: %d texts (%d mojibake), open_clip %s" % (OUT, len(TEXTS), len(MOJIBAKE), open_clip.__version__))


if __name__ == "__main__":
    main()
