"""Prints the reference values of Tests/LayersTests/PositionalTablesTests.swift: PyTorch's
F.interpolate on small positional tables, the way OpenCLIP's resize_pos_embed (bicubic, antialias,
align_corners=False) and CLIPA's resize_text_pos_embed (linear, align_corners=False) call it.

Run with the anchor environment: .venv-anchor/bin/python scripts/make_positional_fixture.py
"""
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def table(rows, width):
    # A deterministic table: value(i, c) = sin(1.3·i + 0.7·c) + 0.1·i.
    return torch.tensor([[__import__("math").sin(1.3 * i + 0.7 * c) + 0.1 * i for c in range(width)] for i in range(rows)])


def grid_resize(src, dst, width):
    t = table(src * src, width).reshape(1, src, src, width).permute(0, 3, 1, 2)
    out = F.interpolate(t, size=(dst, dst), mode="bicubic", antialias=True, align_corners=False)
    return out.permute(0, 2, 3, 1).reshape(dst * dst * width).tolist()


def seq_resize(src, dst, width):
    t = table(src, width).permute(1, 0).unsqueeze(0)
    out = F.interpolate(t, size=dst, mode="linear", align_corners=False)
    return out.squeeze(0).permute(1, 0).reshape(dst * width).tolist()


def show(name, values):
    print(f"    static let {name}: [Double] = [")
    for i in range(0, len(values), 6):
        print("        " + ", ".join(f"{v:.15e}" for v in values[i:i + 6]) + ",")
    print("    ]")


show("bicubic3to5", grid_resize(3, 5, 2))
show("bicubic4to7", grid_resize(4, 7, 2))
show("bicubic6to4", grid_resize(6, 4, 2))
show("bicubic8to2", grid_resize(8, 2, 1))
show("linear4to7", seq_resize(4, 7, 2))
show("linear8to32", seq_resize(8, 32, 1))
show("linear6to4", seq_resize(6, 4, 2))
