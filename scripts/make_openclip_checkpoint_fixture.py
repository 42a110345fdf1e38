#!/usr/bin/env python3
"""Writes a checkpoint made by OpenCLIP itself, for the tests that load OpenCLIP checkpoints
(Tests/CLIPTests/OpenCLIPCheckpointTests.swift), into Tests/CLIPTests/Fixtures/:

- openclip_nano.safetensors: `safetensors.torch.save_file(model.state_dict())` of an OpenCLIP
  `CLIP` built from a config with ClipLab's nano shapes (a vocabulary of 100 keeps the file at
  about 140 KB); no ClipLab metadata;
- openclip_nano.json: the same config as a bare model config (open_clip's model_configs/*.json);
- open_clip_config.json: the config as `open_clip.push_to_hf_hub.save_config_for_hf` writes it
  beside hub weights ({"model_cfg": ..., "preprocess_cfg": ...});
- openclip_nano_outputs.json: fixed inputs (pixels in [0, 1] before normalisation, token ids) and
  OpenCLIP's `encode_image` / `encode_text` of them (before L2 normalisation), and `logit_scale`.

After OpenCLIP's initialisation every parameter gets N(0, 0.05^2) noise, so that LayerNorm gains
and biases are not 1 and 0 and a swapped or transposed tensor shows in the embeddings.

Usage (from the repository root, in a Python environment with torch and open-clip-torch, e.g. the
one the PyTorch anchor benchmark uses):
    python3 -m venv /tmp/oc && /tmp/oc/bin/pip install torch open-clip-torch
    /tmp/oc/bin/python scripts/make_openclip_checkpoint_fixture.py
"""
import json
import os
import pathlib
import sys

import open_clip
import safetensors
import torch
from open_clip.model import CLIP
from open_clip.push_to_hf_hub import save_config_for_hf
from safetensors.torch import save_file

OUT = os.path.join("Tests", "CLIPTests", "Fixtures")

# ClipLab's nano preset in OpenCLIP's terms (vision heads = width / head_width = 2).
CONFIG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 16, "layers": 1, "width": 32, "head_width": 16, "patch_size": 4},
    "text_cfg": {"context_length": 16, "vocab_size": 100, "width": 32, "heads": 2, "layers": 1},
}
IMAGES = 2
# Token ids < 99, end-of-text 99 (the largest id, where OpenCLIP pools), right-padded with 0.
TEXTS = [
    [98, 5, 17, 42, 99],
    [98, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 99],
    [98, 60, 99, 0, 7],  # ids after the end-of-text do not change the embedding
]


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    config_path = os.path.join(OUT, "openclip_nano.json")
    with open(config_path, "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    # Through OpenCLIP's factory, as for its own model_configs/*.json.
    open_clip.add_model_config(config_path)
    torch.manual_seed(20240517)
    model = open_clip.create_model("openclip_nano").eval()
    assert isinstance(model, CLIP)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, os.path.join(OUT, "openclip_nano.safetensors"))
    save_config_for_hf(model, pathlib.Path(OUT) / "open_clip_config.json", CONFIG)

    size, ctx = CONFIG["vision_cfg"]["image_size"], CONFIG["text_cfg"]["context_length"]
    pixels = torch.rand(IMAGES, 3, size, size, dtype=torch.float32)
    mean = torch.tensor(open_clip.OPENAI_DATASET_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(open_clip.OPENAI_DATASET_STD, dtype=torch.float32).view(1, 3, 1, 1)
    ids = torch.zeros(len(TEXTS), ctx, dtype=torch.long)
    for i, t in enumerate(TEXTS):
        ids[i, : len(t)] = torch.tensor(t)
    with torch.no_grad():
        image_features = model.encode_image((pixels - mean) / std)
        text_features = model.encode_text(ids)
    fixture = {
        "generator": "scripts/make_openclip_checkpoint_fixture.py",
        "open_clip_version": open_clip.__version__,
        "torch_version": torch.__version__,
        "safetensors_version": safetensors.__version__,
        "python_version": "%d.%d.%d" % sys.version_info[:3],
        "config": CONFIG,
        "logit_scale": model.logit_scale.item(),
        "pixels": pixels.flatten().tolist(),
        "ids": ids.tolist(),
        "image_features": image_features.tolist(),
        "text_features": text_features.tolist(),
    }
    with open(os.path.join(OUT, "openclip_nano_outputs.json"), "w") as f:
        json.dump(fixture, f)
        f.write("\n")
    print("wrote %s: %d tensors, open_clip %s, torch %s" % (OUT, len(state), open_clip.__version__, torch.__version__))


if __name__ == "__main__":
    main()
