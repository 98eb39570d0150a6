"""The recipe in Keras, written by us, for `npm run parity`: the same method exp implements,
run with TensorFlow/Keras from PyPI so that exp's results can be checked against the
framework the recipe was written for.

It reads what exp used, so the two differ only in the framework:
  - the dataset: train_v2.csv and train-jpg/ of --data;
  - the split: train.txt and val.txt of an exp run folder's split/ (--split), and that run's
    tag order (tags.txt);
  - the initial base weights: --weights, a Keras-layout HDF5 file both load.
Method (as the recipe): images loaded with keras.utils.load_img(target_size, interpolation=
'nearest') (PIL), VGG16 "caffe" preprocessing, VGG16 without top with blocks 1-4 frozen,
Flatten / Dense(units, relu, he_uniform) / Dense(17, sigmoid), Adam (epsilon 1e-7), binary
cross-entropy, augmentation of the training images only (a rotation uniform in [-90, 90]
degrees, bilinear, nearest fill; then left-right and up-down flips, each p=0.5), the
checkpoint with the best val_loss reloaded at the end. The F2 reported is exact: per image,
then averaged over the whole validation split (not Keras's per-batch average).

Prints one JSON object on its last line:
  {"val_loss", "val_f2", "per_tag_f2": {tag: f2}, "train_img_s", "best_epoch", "seconds",
   "train_s": [per epoch], "epoch_s": [per epoch, with validation], "framework", "train", "val"}

Usage: python bench/parity/keras_recipe.py --data DIR --split RUN/split --tags RUN/tags.txt
       --weights base.h5 [--size 32] [--epochs 15] [--batch 32] [--lr 1e-3] [--units 128] [--seed 1]
"""
import argparse
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

from recipe_data import fbeta_per_image, load, per_tag_f2, read_lines  # noqa: E402


def read_image(path, size):
    return keras.utils.img_to_array(keras.utils.load_img(path, target_size=(size, size), interpolation="nearest"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", required=True)
    ap.add_argument("--tags", required=True)
    ap.add_argument("--weights", required=True)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--units", type=int, default=128)
    ap.add_argument("--seed", type=int, default=1)
    # dihedral: flips and a random quarter turn per image (exp's augmentation.dihedral with flips), no continuous rotation
    ap.add_argument("--augment", choices=["rotation", "dihedral"], default="rotation")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--workdir", default="/tmp")
    a = ap.parse_args()
    if a.threads:
        tf.config.threading.set_intra_op_parallelism_threads(a.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(a.seed)
    tags = read_lines(a.tags)
    xtr, ytr = load(a.data, read_lines(os.path.join(a.split, "train.txt")), tags, a.size, read_image)
    xva, yva = load(a.data, read_lines(os.path.join(a.split, "val.txt")), tags, a.size, read_image)
    pre = keras.applications.vgg16.preprocess_input

    base = keras.applications.VGG16(include_top=False, weights=a.weights, input_shape=(a.size, a.size, 3))
    for layer in base.layers:
        layer.trainable = layer.name.startswith("block5_")
    x = keras.layers.Flatten()(base.output)
    x = keras.layers.Dense(a.units, activation="relu", kernel_initializer="he_uniform")(x)
    out = keras.layers.Dense(len(tags), activation="sigmoid")(x)
    model = keras.Model(base.input, out)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=a.lr, epsilon=1e-7), loss="binary_crossentropy")

    # Augmentation on the training images only: rotation first, then the flips (as Keras's ImageDataGenerator did).
    rotate = keras.layers.RandomRotation(0.25, fill_mode="nearest", interpolation="bilinear", seed=a.seed)
    flip = keras.layers.RandomFlip("horizontal_and_vertical", seed=a.seed + 1)

    def augment(img, lab):
        return pre(flip(rotate(img, training=True), training=True)), lab

    def dihedral(img, lab):
        img = tf.image.rot90(img, k=tf.random.uniform([], 0, 4, dtype=tf.int32))
        return tf.image.random_flip_up_down(tf.image.random_flip_left_right(img)), lab

    shuffled = tf.data.Dataset.from_tensor_slices((xtr, ytr)).shuffle(len(xtr), seed=a.seed, reshuffle_each_iteration=True)
    if a.augment == "dihedral":
        train = shuffled.map(dihedral, num_parallel_calls=1).batch(a.batch).map(lambda x, y: (pre(tf.cast(x, tf.float32)), y)).prefetch(1)
    else:
        train = shuffled.batch(a.batch).map(augment, num_parallel_calls=1).prefetch(1)
    val = (pre(xva.copy()), yva)

    best = os.path.join(a.workdir, f"keras-recipe-{os.getpid()}.weights.h5")
    times, epoch_times = [], []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t = time.perf_counter()

        def on_test_begin(self, logs=None):
            times.append(time.perf_counter() - self.t)  # training time of the epoch, without validation

        def on_epoch_end(self, epoch, logs=None):
            epoch_times.append(time.perf_counter() - self.t)  # training + validation

    t0 = time.perf_counter()
    # Validation at the training batch size, as exp does; the timer first, so an epoch's time
    # does not include writing the checkpoint (exp's does not either).
    hist = model.fit(train, validation_data=val, validation_batch_size=a.batch, epochs=a.epochs, verbose=0,
                     callbacks=[Timer(), keras.callbacks.ModelCheckpoint(best, monitor="val_loss", mode="min", save_best_only=True, save_weights_only=True)])
    seconds = time.perf_counter() - t0
    model.load_weights(best)
    os.remove(best)
    p = model.predict(val[0], batch_size=64, verbose=0)
    eps = 1e-7
    pc = np.clip(p, eps, 1 - eps)
    val_loss = float(-np.mean(yva * np.log(pc) + (1 - yva) * np.log(1 - pc)))
    losses = hist.history["val_loss"]
    print(json.dumps({
        "val_loss": val_loss, "val_loss_keras": float(min(losses)), "val_f2": float(fbeta_per_image(yva, p).mean()),
        "per_tag_f2": per_tag_f2(yva, p, tags), "best_epoch": int(np.argmin(losses)) + 1,
        "train_img_s": len(xtr) * a.epochs / sum(times), "seconds": seconds, "train_s": times, "epoch_s": epoch_times,
        "framework": f"Keras {keras.__version__} / TensorFlow {tf.__version__}", "train": len(xtr), "val": len(xva),
    }))


if __name__ == "__main__":
    main()
