"""What the Keras and PyTorch recipes share, framework-free (numpy and the standard library only,
so each script's own Python can import it): reading exp's split and tags, loading the labelled
images with the caller's image reader, and Kaggle's F2.
"""
import csv
import os

import numpy as np


def read_lines(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def load(data, names, tags, size, read_image):
    """Images of `names` (read_image(path, size) -> HxWx3 array) and their 0/1 targets in `tags` order."""
    index = {t: i for i, t in enumerate(tags)}
    labels = {}
    with open(os.path.join(data, "train_v2.csv")) as f:
        for row in csv.DictReader(f):
            labels[row["image_name"]] = row["tags"].split()
    x = np.zeros((len(names), size, size, 3), dtype=np.float32)
    y = np.zeros((len(names), len(tags)), dtype=np.float32)
    for i, name in enumerate(names):
        x[i] = read_image(os.path.join(data, "train-jpg", name + ".jpg"), size)
        for t in labels[name]:
            y[i, index[t]] = 1
    return x, y


def fbeta_per_image(y, p, beta=2.0, threshold=0.5):
    """Kaggle's F2: per image from its own tp, fp, fn; an image with nothing true and nothing predicted scores 1 (as exp)."""
    pred = p > threshold
    truth = y > 0.5
    tp = (pred & truth).sum(1)
    fp = (pred & ~truth).sum(1)
    fn = (~pred & truth).sum(1)
    b2 = beta * beta
    denom = (1 + b2) * tp + b2 * fn + fp
    return np.where(denom == 0, 1.0, (1 + b2) * tp / np.maximum(denom, 1))


def per_tag_f2(y, p, tags, beta=2.0, threshold=0.5):
    pred = p > threshold
    truth = y > 0.5
    out = {}
    for j, t in enumerate(tags):
        tp = float((pred[:, j] & truth[:, j]).sum())
        fp = float((pred[:, j] & ~truth[:, j]).sum())
        fn = float((~pred[:, j] & truth[:, j]).sum())
        b2 = beta * beta
        d = (1 + b2) * tp + b2 * fn + fp
        out[t] = 0.0 if d == 0 else (1 + b2) * tp / d
    return out
