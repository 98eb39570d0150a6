"""MLflow python_function flavor for a model trained by exp (loader_module of its MLmodel).

    model = mlflow.pyfunc.load_model("runs:/<run_id>/model")
    probs = model.predict(images)          # a pandas DataFrame, one column per tag

`images` may be:
  - a numpy array [N, S, S, 3] of RGB pixel values 0-255, already S x S (S = the model's
    image_size): exactly what exp feeds the model after decoding and resizing, so the
    probabilities equal `exp predict`'s;
  - a list of image file paths, or a pandas DataFrame with a `path` column: each file is opened
    with Pillow and resized to S x S with the run's kernel (Pillow's nearest equals exp's pixel
    for pixel; Pillow's bilinear/bicubic/lanczos differ from exp's libvips kernels by a few
    grey levels).
The model file is a Keras HDF5 (data/model.h5, keras.models.load_model); data/exp_metadata.json
holds the tags, per-tag thresholds, image size, resize kernel and preprocessing.
`predict(images, params={"tags": True})` returns each image's predicted tags instead.
"""
import json
import os

import numpy as np

_BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype=np.float32)


class ExpModel:
    def __init__(self, path):
        import keras

        self.model = keras.models.load_model(os.path.join(path, "model.h5"), compile=False)
        with open(os.path.join(path, "exp_metadata.json")) as f:
            self.meta = json.load(f)

    def _load(self, paths):
        from PIL import Image

        size = int(self.meta["image_size"])
        kernel = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "lanczos3": Image.LANCZOS}[self.meta["resize"]]
        return np.stack([np.asarray(Image.open(p).convert("RGB").resize((size, size), kernel), dtype=np.float32) for p in paths])

    def _pixels(self, model_input):
        if hasattr(model_input, "columns"):  # a pandas DataFrame
            if "path" in model_input.columns:
                return self._load(list(model_input["path"]))
            return np.asarray(model_input.values, dtype=np.float32).reshape(len(model_input), self.meta["image_size"], self.meta["image_size"], 3)
        if isinstance(model_input, (list, tuple)) and model_input and isinstance(model_input[0], str):
            return self._load(model_input)
        return np.asarray(model_input, dtype=np.float32)

    def _preprocess(self, x):
        mode = self.meta["preprocessing"]
        if mode == "caffe":
            return x[..., ::-1] - _BGR_MEAN
        if mode == "rgb_mean":
            return x - _BGR_MEAN[::-1]
        return x

    def predict(self, model_input, params=None):
        import pandas as pd

        x = self._pixels(model_input)
        probs = self.model.predict(self._preprocess(x), verbose=0)
        tags = self.meta["tags"]
        if params and params.get("tags"):
            th = self.meta["thresholds"]
            return pd.DataFrame({"tags": [" ".join(t for t, p, c in zip(tags, row, th) if p > c) for row in probs]})
        return pd.DataFrame(probs, columns=tags)


def _load_pyfunc(path):
    return ExpModel(path)
