#!/usr/bin/env python3
"""Records OpenCLIP's token ids for the tokenizer tests: Tests/DataTests/Fixtures/tokenizer_openclip.json.

Each text is tokenized with `open_clip.tokenize(texts, context_length=N)` for N = 77 and 16: the
ids ClipLab's CLIPTokenizer must reproduce exactly. `cleaned` is the text after OpenCLIP's cleaning
(`_clean_lower`: ftfy, html.unescape twice, whitespace collapse, lower case), for failure reports.

Usage (from the repository root, in a Python environment with open-clip-torch and torch, e.g. the
one the PyTorch anchor benchmark uses):
    python3 -m venv /work/.venv-anchor && /work/.venv-anchor/bin/pip install torch open-clip-torch
    /work/.venv-anchor/bin/python scripts/make_tokenizer_fixture.py
"""
import json
import os
import sys

import ftfy
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
            {"text": text, "cleaned": _clean_lower(text), "ids": {str(n): rows[n][i] for n in CONTEXT_LENGTHS}}
            for i, text in enumerate(TEXTS)
        ],
    }
    # One case a line; non-ASCII and control characters \u-escaped, so nothing invisible is in the file.
    cases = fixture.pop("cases")
    head = json.dumps(fixture, indent=1)[:-2]
    body = ",\n".join("  " + json.dumps(case) for case in cases)
    with open(OUT, "w", encoding="ascii") as f:
        f.write(head + ',\n "cases": [\n' + body + "\n ]\n}\n")
    print("wrote %s: %d texts, open_clip %s" % (OUT, len(TEXTS), open_clip.__version__))


if __name__ == "__main__":
    main()
