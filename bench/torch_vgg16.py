"""PyTorch reference for `npm run bench`: exp's workload (VGG16 at 128x128, batch 32, blocks
1-4 frozen, Flatten/Dense(128)/Dense(17, sigmoid), Adam, binary cross-entropy) on the CPU.

VGG16 is built by hand (no torchvision) with random weights: speed does not depend on the
values. Input and weights channels-last by default (--layout nchw for PyTorch's default layout). Prints one JSON object on stdout:
  {"torch": version, "threads": n, "train_img_s": ..., "infer_img_s": ..., "train_step_s": [...], ...}

Usage: python3 bench/torch_vgg16.py [--threads 2] [--batch 32] [--size 128] [--train-steps 3] [--infer-batches 2]
"""
import argparse
import json
import resource
import time

import torch
from torch import nn

BLOCKS = [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512)]  # (convs, filters), as in Keras


def build(size: int, n_tags: int, trainable_blocks: set) -> nn.Sequential:
    layers = []
    cin = 3
    for b, (convs, filters) in enumerate(BLOCKS, start=1):
        block = []
        for _ in range(convs):
            block += [nn.Conv2d(cin, filters, 3, padding=1), nn.ReLU(inplace=True)]
            cin = filters
        block.append(nn.MaxPool2d(2, 2))
        seq = nn.Sequential(*block)
        for p in seq.parameters():
            p.requires_grad = b in trainable_blocks
        layers.append(seq)
    side = size // 32
    head = nn.Sequential(nn.Flatten(), nn.Linear(512 * side * side, 128), nn.ReLU(inplace=True), nn.Linear(128, n_tags), nn.Sigmoid())
    return nn.Sequential(*layers, head)


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--train-steps", type=int, default=3)
    ap.add_argument("--infer-batches", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--layout", default="channels-last", choices=["channels-last", "nchw"],
                    help="memory format; channels-last is oneDNN's fast path on CPU")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    fmt = torch.channels_last if a.layout == "channels-last" else torch.contiguous_format
    model = build(a.size, 17, {5}).to(dev).to(memory_format=fmt)
    x = (torch.rand(a.batch, 3, a.size, a.size) * 255 - 120).to(dev).contiguous(memory_format=fmt)
    y = (torch.rand(a.batch, 17) < 0.3).float().to(dev)
    # CUDA runs asynchronously: time to the end of the work, not of its launch.
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    loss_fn = nn.BCELoss(reduction="mean")

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        sync()

    model.train()
    step()  # warm-up: allocation, oneDNN primitive creation
    step()  # as exp's bench: two warm-up steps
    train_times = []
    c0 = cpu_s()
    for _ in range(a.train_steps):
        t0 = time.perf_counter()
        step()
        train_times.append(time.perf_counter() - t0)
    train_cpu = cpu_s() - c0

    model.eval()
    infer_times = []
    with torch.inference_mode():
        model(x)  # warm-up
        c0 = cpu_s()
        for _ in range(a.infer_batches):
            t0 = time.perf_counter()
            model(x)
            sync()
            infer_times.append(time.perf_counter() - t0)
        infer_cpu = cpu_s() - c0

    print(json.dumps({
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
        "gpu_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None,
        "threads": torch.get_num_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "layout": a.layout,
        "batch": a.batch,
        "size": a.size,
        "train_img_s": a.batch * len(train_times) / sum(train_times),
        "infer_img_s": a.batch * len(infer_times) / sum(infer_times),
        "train_step_s": train_times,
        "infer_batch_s": infer_times,
        "train_cpu_util": train_cpu / sum(train_times),
        "infer_cpu_util": infer_cpu / sum(infer_times),
    }))


if __name__ == "__main__":
    main()
