"""The recipe in PyTorch, written by us, for the bench's end-to-end epoch comparison: the same
data, split, tag order and initial base weights as exp's run (the arguments of keras_recipe.py),
trained on the CPU.

Method: images loaded with Pillow (nearest resize, as Keras's load_img), caffe preprocessing
(RGB->BGR, ImageNet mean subtracted), VGG16 (hand-built, no torchvision) with blocks 1-4 frozen
and loaded from the Keras-layout HDF5 base weights (h5py), Flatten / Linear(128) + ReLU /
Linear(17) + Sigmoid, Adam (eps 1e-7), binary cross-entropy, augmentation of the training batch
as a tensor op (rotation uniform in [-90, 90] degrees by grid_sample, bilinear, border = nearest
fill; then left-right and up-down flips, each p=0.5 per image), validation after each epoch, the
best val_loss weights kept. Channels-last memory format, which is oneDNN's fast path on CPU.

Prints one JSON object on its last line, with the fields of keras_recipe.py.

Usage: python bench/parity/torch_recipe.py --data DIR --split RUN/split --tags RUN/tags.txt
       --weights base.h5 [--size 128] [--epochs 2] [--batch 128] [--seed 1] [--threads 2]
"""
import argparse
import copy
import json
import math
import os
import sys
import time

import h5py
import numpy as np
import torch
from PIL import Image
from torch import nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from torch_vgg16 import BLOCKS, build  # noqa: E402
from recipe_data import fbeta_per_image, load, read_lines  # noqa: E402

CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def read_image(path, size):
    """As Keras's load_img(target_size, interpolation="nearest"): Pillow, RGB, nearest."""
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((size, size), Image.NEAREST), dtype=np.float32)


def caffe(x):
    """NHWC RGB 0-255 numpy -> NCHW BGR mean-subtracted tensor, channels-last in memory."""
    bgr = x[..., ::-1] - np.array(CAFFE_MEAN_BGR, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(bgr)).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)


def load_base(model, path):
    """Keras-layout HDF5 (layer groups, weight_names attrs) into the hand-built VGG16's convs."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    names = [f"block{b}_conv{i + 1}" for b, (n, _) in enumerate(BLOCKS, start=1) for i in range(n)]
    with h5py.File(path, "r") as f, torch.no_grad():
        for conv, name in zip(convs, names):
            g = f[name]
            wn = [w.decode() if isinstance(w, bytes) else w for w in g.attrs["weight_names"]]
            kernel = np.asarray(g[wn[0]])  # (kh, kw, in, out)
            conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
            conv.bias.copy_(torch.from_numpy(np.asarray(g[wn[1]])))


def augment(x, gen):
    """Rotation in [-90, 90] degrees (bilinear, nearest fill), then random flips, per image."""
    n = x.shape[0]
    theta = (torch.rand(n, generator=gen) * 2 - 1) * math.pi / 2
    cos, sin = torch.cos(theta), torch.sin(theta)
    affine = torch.zeros(n, 2, 3)
    affine[:, 0, 0], affine[:, 0, 1], affine[:, 1, 0], affine[:, 1, 1] = cos, -sin, sin, cos
    grid = F.affine_grid(affine, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    lr = torch.rand(n, generator=gen) < 0.5
    ud = torch.rand(n, generator=gen) < 0.5
    x = torch.where(lr[:, None, None, None], x.flip(3), x)
    x = torch.where(ud[:, None, None, None], x.flip(2), x)
    return x.contiguous(memory_format=torch.channels_last)


def main():
    ap = argparse.ArgumentParser()
    for k in ("data", "split", "tags", "weights", "workdir"):
        ap.add_argument(f"--{k}", required=k != "workdir")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    tags = read_lines(a.tags)
    xtr, ytr = load(a.data, read_lines(os.path.join(a.split, "train.txt")), tags, a.size, read_image)
    xva, yva = load(a.data, read_lines(os.path.join(a.split, "val.txt")), tags, a.size, read_image)
    xtr_t, ytr_t, xva_t, yva_t = caffe(xtr), torch.from_numpy(ytr), caffe(xva), torch.from_numpy(yva)

    model = build(a.size, len(tags), {5}).to(memory_format=torch.channels_last)
    load_base(model, a.weights)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3, eps=1e-7)
    bce = nn.BCELoss()

    def validate():
        model.eval()
        with torch.inference_mode():
            p = torch.cat([model(xva_t[i:i + a.batch]) for i in range(0, len(xva_t), a.batch)])
        model.train()
        return float(bce(p.clamp(1e-7, 1 - 1e-7), yva_t)), p.numpy()

    train_s, epoch_s, val_losses, best = [], [], [], None
    t_all = time.perf_counter()
    for _ in range(a.epochs):
        t0 = time.perf_counter()
        order = torch.randperm(len(xtr_t), generator=gen)
        for i in range(0, len(order), a.batch):
            idx = order[i:i + a.batch]
            xb = augment(xtr_t[idx], gen)
            opt.zero_grad(set_to_none=True)
            loss = bce(model(xb), ytr_t[idx])
            loss.backward()
            opt.step()
        train_s.append(time.perf_counter() - t0)
        vl, _ = validate()
        val_losses.append(vl)
        if best is None or vl < min(val_losses[:-1]):
            best = copy.deepcopy(model.state_dict())
        epoch_s.append(time.perf_counter() - t0)
    seconds = time.perf_counter() - t_all
    model.load_state_dict(best)
    val_loss, p = validate()
    print(json.dumps({
        "val_loss": val_loss, "val_f2": float(fbeta_per_image(yva, p).mean()), "per_tag_f2": {},
        "best_epoch": int(np.argmin(val_losses)) + 1, "train_img_s": len(xtr) * a.epochs / sum(train_s), "seconds": seconds,
        "train_s": train_s, "epoch_s": epoch_s, "framework": f"PyTorch {torch.__version__}", "train": len(xtr), "val": len(xva),
    }))


if __name__ == "__main__":
    main()
