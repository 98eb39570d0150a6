"""Keras reference for `npm run bench`: exp's workload (VGG16 without top, blocks 1-4 frozen,
Flatten/Dense(128)/Dense(17, sigmoid), Adam, binary cross-entropy) in TensorFlow's own Python API,
which runs the same libtensorflow as exp's native backend but through compiled graphs
(tf.function, grappler and oneDNN fusions of Conv2D+BiasAdd+Relu). Random weights and inputs:
speed does not depend on the values. Prints one JSON object on stdout, with the same fields as
torch_vgg16.py.

Usage: python bench/keras_vgg16.py [--threads 2] [--batch 128] [--size 128] [--train-steps 3] [--infer-batches 2]
"""
import argparse
import json
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--train-steps", type=int, default=3)
    ap.add_argument("--infer-batches", type=int, default=2)
    a = ap.parse_args()
    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(0)
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(a.size, a.size, 3))
    for layer in base.layers:
        layer.trainable = layer.name.startswith("block5_")
    x = keras.layers.Flatten()(base.output)
    x = keras.layers.Dense(128, activation="relu", kernel_initializer="he_uniform")(x)
    model = keras.Model(base.input, keras.layers.Dense(17, activation="sigmoid")(x))
    model.compile(optimizer=keras.optimizers.Adam(1e-3, epsilon=1e-7), loss="binary_crossentropy")
    xs = np.random.uniform(-124, 152, (a.batch, a.size, a.size, 3)).astype(np.float32)
    ys = (np.random.uniform(0, 1, (a.batch, 17)) < 0.3).astype(np.float32)
    model.train_on_batch(xs, ys)  # warm-up: tracing, graph optimisation, allocation
    model.train_on_batch(xs, ys)  # as exp's bench: two warm-up steps
    train_times = []
    c0 = cpu_s()
    for _ in range(a.train_steps):
        t0 = time.perf_counter()
        model.train_on_batch(xs, ys)
        train_times.append(time.perf_counter() - t0)
    train_cpu = cpu_s() - c0
    model.predict_on_batch(xs)
    infer_times = []
    c0 = cpu_s()
    for _ in range(a.infer_batches):
        t0 = time.perf_counter()
        model.predict_on_batch(xs)
        infer_times.append(time.perf_counter() - t0)
    infer_cpu = cpu_s() - c0
    print(json.dumps({
        "torch": f"keras {keras.__version__} / tensorflow {tf.__version__}", "threads": a.threads, "mkldnn": True,
        "batch": a.batch, "size": a.size,
        "train_img_s": a.batch * len(train_times) / sum(train_times), "infer_img_s": a.batch * len(infer_times) / sum(infer_times),
        "train_step_s": train_times, "infer_batch_s": infer_times,
        "train_cpu_util": train_cpu / sum(train_times), "infer_cpu_util": infer_cpu / sum(infer_times),
    }))


if __name__ == "__main__":
    main()
